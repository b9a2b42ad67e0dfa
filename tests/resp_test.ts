/**
 * @module
 * The Redis connection (`storage/redis/connection.ts`, `protocol.ts`): RESP encoding and decoding without a
 * server, then against a redis-server of the test's own: password and database from the URL,
 * the append script reloaded after SCRIPT FLUSH, pipelined replies in order, a typed failure
 * while the server is down and a reconnect once it is back.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { StorageUnavailableError } from "../storage/errors.ts";
import { RedisStorage } from "../storage/redis/mod.ts";
import { RespConnection } from "../storage/redis/connection.ts";
import { encode, parse, replyEnd, ReplyError } from "../storage/redis/protocol.ts";
import { eventually } from "./helpers.ts";
import { freePort, REDIS_REQUIRED, RedisServer, redisServerMissing } from "./redis_helpers.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("resp: commands are encoded with byte lengths, also beyond ASCII", () => {
  assert.equal(new TextDecoder().decode(encode([["GET", "k"]])), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  for (const text of ["é", "日本", "😀", "a\u0000b", "", "lone \ud800 surrogate"]) {
    const encoded = new TextDecoder().decode(encode([["SET", text]]));
    const length = new TextEncoder().encode(text).length;
    assert.ok(encoded.endsWith(`$${length}\r\n${text.toWellFormed()}\r\n`), JSON.stringify(text));
  }
  // A command in parts is one command: one count, the arguments in order.
  assert.deepEqual(encode([["SET"], [], ["k", "é"]]), encode([["SET", "k", "é"]]));
  assert.equal(
    new TextDecoder().decode(encode([["A"], ["bc", "d"]])),
    "*3\r\n$1\r\nA\r\n$2\r\nbc\r\n$1\r\nd\r\n",
  );
});

Deno.test("resp: a reply is decoded only once all of it has arrived, at any split", () => {
  // "jé" is 3 bytes: bulk lengths count bytes.
  const text = "*4\r\n*2\r\n$5\r\nhello\r\n$-1\r\n:-42\r\n$3\r\nj\u00e9\r\n+OK\r\n$2\r\nno\r\n";
  const whole = bytes(text);
  for (let cut = 0; cut < whole.length; cut++) {
    const buffer = new Uint8Array(whole.length);
    buffer.set(whole.subarray(0, cut));
    const partial = parse(buffer, 0, cut);
    const firstEnds = whole.length - "$2\r\nno\r\n".length;
    if (cut < firstEnds) assert.equal(partial, undefined, `cut at ${cut}`);
    else assert.deepEqual(partial?.value, [["hello", null], -42, "jé", "OK"]);
    // The length scan the reader does between reads agrees with the decoder at every cut.
    assert.equal(replyEnd(buffer, 0, cut), partial ? partial.next : -1, `scan cut at ${cut}`);
  }
  const first = parse(whole, 0, whole.length)!;
  assert.deepEqual(parse(whole, first.next, whole.length), { value: "no", next: whole.length });
  const error = parse(bytes("-NOSCRIPT No matching script\r\n"), 0, 30);
  assert.ok(error?.value instanceof ReplyError);
  assert.equal(error.value.message, "NOSCRIPT No matching script");
  assert.throws(() => parse(bytes("?huh\r\n"), 0, 6), /unexpected reply type/);
});

const missing = await redisServerMissing();
if (missing && !REDIS_REQUIRED) console.log(`skipping resp server tests: ${missing}`);

Deno.test({
  name:
    "resp: password and database from the URL, script reload, pipelining, fail fast and reconnect",
  ignore: Boolean(missing) && !REDIS_REQUIRED,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const server = new RedisServer(freePort(), ["--requirepass", "s3cret"]);
    let storage: RedisStorage | undefined;
    let raw: RespConnection | undefined;
    try {
      await server.start();
      const url = `redis://:s3cret@127.0.0.1:${server.port}/3?prefix=resp`;
      storage = await RedisStorage.open(url);
      const tf = new TaskFlow(storage);
      const id = await tf.enqueue("x", { n: 1 });
      assert.equal((await tf.get(id))!.state, "Enqueued");
      // The append went to database 3.
      assert.equal(await storage.command("HEXISTS", "{resp}:jobs", id), 1);
      raw = new RespConnection({
        host: "127.0.0.1",
        port: server.port,
        db: 0,
        password: "s3cret",
        connectTimeoutMs: 1_000,
        timeoutMs: 5_000,
      });
      assert.equal(await raw.call(["DBSIZE"]), 0, "database 0 holds nothing");
      // Pipelined: a thousand requests at once, answered in order.
      const echoes = await Promise.all(
        Array.from({ length: 1_000 }, (_, i) => raw!.call(["ECHO", `m${i}`])),
      );
      assert.deepEqual(echoes, Array.from({ length: 1_000 }, (_, i) => `m${i}`));
      // Requests queued together, in the shared write buffer or not: too large for it, beyond
      // ASCII, and small ones after them, several rounds (the buffer is reused between rounds).
      for (let round = 0; round < 3; round++) {
        const texts = [`a${round}`, "b".repeat(300_000), "ünï", "c".repeat(100_000), `d${round}`];
        assert.deepEqual(await Promise.all(texts.map((text) => raw!.call(["ECHO", text]))), texts);
      }
      // A reply larger than the read buffer, arriving in pieces, with characters beyond ASCII.
      const big = "é😀x".repeat(60_000);
      assert.equal(await raw.call(["ECHO", big]), big);
      await assert.rejects(raw.call(["NOSUCHCOMMAND"]), ReplyError);
      assert.equal(await raw.call(["PING"]), "PONG", "an error reply leaves the connection usable");
      // The server forgets its scripts: the next append loads the script again.
      await raw.call(["SCRIPT", "FLUSH"]);
      const second = await tf.enqueue("x", { n: 2 });
      assert.equal((await tf.get(second))!.version, 2);

      await server.kill();
      const started = Date.now();
      await assert.rejects(tf.enqueue("x", { n: 3 }), (error: unknown) => {
        assert.ok(error instanceof StorageUnavailableError, String(error));
        assert.doesNotMatch(error.message, /s3cret/);
        return true;
      });
      assert.ok(Date.now() - started < 5_000, "fails fast while the server is down");
      await server.start();
      const third = await tf.enqueue("x", { n: 3 });
      await eventually(async () => assert.equal((await tf.get(third))!.state, "Enqueued"));
      assert.equal((await tf.counts()).states.Enqueued, 1, "the server came back empty");
    } finally {
      raw?.close();
      await storage?.close();
      await server.kill();
    }
  },
});

/** A test CA and a server certificate for localhost signed by it, made with openssl. */
async function testCertificates(dir: string): Promise<boolean> {
  const openssl = (...args: string[]) =>
    new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "null" }).output();
  try {
    const steps = [
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem"],
      ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr"],
    ];
    await Deno.writeTextFile(
      `${dir}/server.ext`,
      "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    );
    for (const [i, step] of steps.entries()) {
      const subject = i === 0 ? "/CN=TaskFlow test CA" : "/CN=localhost";
      if (!(await openssl(...step, "-days", "1", "-subj", subject)).success) return false;
    }
    const signed = await openssl(
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "1",
      "-extfile",
      "server.ext",
    );
    return signed.success;
  } catch {
    return false; // no openssl
  }
}

Deno.test({
  name: "resp: rediss:// works on both connections, with a CA the process trusts",
  ignore: Boolean(missing) && !REDIS_REQUIRED,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-tls-" });
    const tlsPort = freePort();
    const server = new RedisServer(freePort(), [
      "--tls-port",
      String(tlsPort),
      "--tls-cert-file",
      `${dir}/server.pem`,
      "--tls-key-file",
      `${dir}/server.key`,
      "--tls-ca-cert-file",
      `${dir}/ca.pem`,
      "--tls-auth-clients",
      "no",
    ]);
    try {
      if (!await testCertificates(dir)) {
        await t.step({
          name: "skipped: openssl could not make test certificates",
          ignore: true,
          fn() {},
        });
        return;
      }
      await server.start();
      const url = `rediss://localhost:${tlsPort}/4?prefix=tls`;
      const client = new URL("./fixtures/tls_client.ts", import.meta.url).pathname;
      const run = (env: Record<string, string>) =>
        new Deno.Command(Deno.execPath(), { args: ["run", "-A", client, url], env }).output();
      const trusted = await run({ DENO_CERT: `${dir}/ca.pem` });
      const stderr = new TextDecoder().decode(trusted.stderr);
      assert.ok(trusted.success, stderr);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(trusted.stdout)), {
        state: "Enqueued",
        args: { text: "über" },
      });
      // Without the CA the certificate is refused, with a typed error naming the address.
      const untrusted = await run({});
      assert.equal(untrusted.success, false);
      assert.match(
        new TextDecoder().decode(untrusted.stderr),
        /StorageUnavailableError: storage rediss:\/\/localhost:\d+\/4\?prefix=tls unavailable: .*certificate/,
      );
    } finally {
      await server.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
