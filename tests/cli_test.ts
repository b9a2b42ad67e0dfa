/**
 * The command line as a new user meets it, in real subprocesses of main.ts: per-command help,
 * --version, typo suggestions, one-line start-up failures with exit code 2 and no credentials,
 * `enqueue`, Ctrl-C twice, Deno KV without its flag, and Redis URLs the server rejects.
 */

import assert from "node:assert/strict";
import { InvalidOptionError, redact, TaskFlow, VERSION } from "../lib/mod.ts";
import { eventually } from "./helpers.ts";
import {
  freePort,
  REDIS_REQUIRED,
  REDIS_URL,
  RedisServer,
  redisServerMissing,
  redisUnreachable,
} from "./redis_helpers.ts";
import { RedisStorage } from "../storage/redis/mod.ts";

const root = new URL("..", import.meta.url).pathname;
const decoder = new TextDecoder();
const redisMissing = await redisUnreachable();
const serverMissing = await redisServerMissing();

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs main.ts with `args` (and `env` besides a temp KV storage) to the end. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A failure: exit code 2, one line on stderr matching `message`, no stack trace. */
function assertOneLine(ran: Ran, message: RegExp, code = 2): string {
  const text = ran.stdout + ran.stderr;
  assert.equal(ran.code, code, text);
  const lines = ran.stderr.split("\n").filter((line) => line.trim() !== "");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${ran.stderr}`);
  assert.match(lines[0], message);
  assert.doesNotMatch(text, /^\s+at |Uncaught/m, "no stack trace");
  return lines[0];
}

/** A running main.ts: its output so far, and how to stop it. */
interface Spawned {
  child: Deno.ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves once both streams are read to their end. */
  done(): Promise<void>;
  /** Sends `signal` (unless it has exited), then waits for its exit and the end of its output. */
  kill(signal: Deno.Signal): Promise<void>;
}

/**
 * Starts main.ts with `args` (and `env` besides NO_COLOR) and reads its output as it comes;
 * `quiet` discards the output instead.
 */
function spawnMain(args: string[], env: Record<string, string> = {}, quiet = false): Spawned {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdout: quiet ? "null" : "piped",
    stderr: quiet ? "null" : "piped",
  }).spawn();
  let out = "";
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const text = new TextDecoder();
    for await (const chunk of stream) out += text.decode(chunk, { stream: true });
  };
  const reading = quiet
    ? Promise.resolve()
    : Promise.all([read(child.stdout), read(child.stderr)]).then(() => {});
  return {
    child,
    output: () => out,
    done: () => reading,
    kill: async (signal) => {
      try {
        child.kill(signal);
      } catch {
        // exited already; its output says why
      }
      await child.status;
      await reading.catch(() => {});
    },
  };
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-cli-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cli: each command has its own --help, also as `help <command>`; `help` lists them", async () => {
  const worker = await cli(["worker", "--help"]);
  const dashboard = await cli(["dashboard", "--help"]);
  const enqueue = await cli(["enqueue", "-h"]);
  for (const ran of [worker, dashboard, enqueue]) assert.equal(ran.code, 0, ran.stderr);
  assert.notEqual(worker.stdout, dashboard.stdout);
  assert.match(worker.stdout, /usage: .*main\.ts worker/);
  assert.match(worker.stdout, /--concurrency N/);
  assert.doesNotMatch(worker.stdout, /--port/);
  assert.match(dashboard.stdout, /--port N/);
  assert.doesNotMatch(dashboard.stdout, /--concurrency/);
  assert.match(enqueue.stdout, /enqueue <name> \[json-args\]/);
  assert.match(enqueue.stdout, /--delay DURATION/);
  assert.equal((await cli(["help", "worker"])).stdout, worker.stdout);
  const all = await cli(["help"]);
  assert.equal(all.code, 0);
  for (
    const command of [
      "start",
      "worker",
      "dashboard",
      "enqueue",
      "queue",
      "rebuild",
      "doctor",
      "build",
    ]
  ) {
    assert.match(all.stdout, new RegExp(`^  ${command} `, "m"));
  }
  assert.equal((await cli(["--help"])).stdout, all.stdout);
  assertOneLine(await cli(["help", "nope"]), /no help for "nope": not a command/);
});

Deno.test("cli: --version prints lib's VERSION", async () => {
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
  for (const args of [["--version"], ["worker", "--version"]]) {
    const ran = await cli(args);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout.trim(), `taskflow ${VERSION} (deno ${Deno.version.deno})`);
  }
});

Deno.test("cli: an unknown flag or command gets a suggestion and exit code 2", async () => {
  const line = assertOneLine(await cli(["worker", "--concurency", "5"]), /unknown flag/);
  assert.equal(line, "error: unknown flag --concurency (did you mean --concurrency?)");
  assertOneLine(
    await cli(["dashboard", "--concurrency", "5"]),
    /^error: flag --concurrency does not apply to dashboard \(only to start, worker, queue\)$/,
  );
  assertOneLine(
    await cli(["enqueue", "x", "--queues", "a"]),
    /flag --queues does not apply to enqueue .*\(did you mean --queue\?\)/,
  );
  assertOneLine(
    await cli(["wroker"]),
    /^error: unknown command "wroker" \(did you mean worker\?\)$/,
  );
  assertOneLine(await cli(["worker", "--port"]), /flag --port does not apply to worker/);
  assertOneLine(await cli(["dashboard", "--port"]), /flag --port needs a value/);
  assertOneLine(await cli(["dashboard", "--read-only=yes"]), /flag --read-only takes no value/);
  assertOneLine(await cli(["worker", "extra"]), /unexpected argument "extra"/);
  assertOneLine(await cli([]), /no command given/);
});

Deno.test("cli: out-of-range values fail at start with one line naming the flag", async () => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [["worker", "--concurrency", "-1"], {}, /invalid --concurrency \(TASKFLOW_CONCURRENCY\) "-1"/],
    [["worker", "--concurrency", "20000"], {}, /--concurrency .* 20000: must be at most 10000/],
    [["dashboard", "--port", "99999"], {}, /invalid --port \(TASKFLOW_DASHBOARD_PORT\) 99999/],
    [["dashboard"], { TASKFLOW_DASHBOARD_PORT: "80a" }, /--port \(TASKFLOW_DASHBOARD_PORT\) "80a"/],
    // Beyond 2^31-1 ms a timer fires at once: shutdown would not wait at all.
    [["worker", "--shutdown-timeout-ms", "3000000000"], {}, /must be at most 2147483647/],
    [["worker", "--heartbeat-ms", "2000000000"], {}, /--heartbeat-ms .* must be at most/],
    [["worker", "--poll-ms", "0"], {}, /--poll-ms .* "0": must be a whole number, at least 1/],
    [["dashboard", "--host", "a b"], {}, /--host .* must be a host name or IP address/],
  ];
  await withDir(async (dir) => {
    for (const [args, env, message] of cases) {
      const ran = await cli(args, { TASKFLOW_STORAGE: `kv:${dir}/t.sqlite`, ...env });
      assertOneLine(ran, message);
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing was opened or written");
  });
});

Deno.test("cli: start-up failures are one line naming the cause, exit code 2", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (busy.addr as Deno.NetAddr).port;
  try {
    assertOneLine(
      await cli(["dashboard", "--storage", "memory:", "--port", String(port)]),
      new RegExp(
        `cannot serve the dashboard on 127\\.0\\.0\\.1:${port}: the port is already in use`,
      ),
    );
  } finally {
    busy.close();
  }
  assertOneLine(
    await cli(["dashboard", "--storage", "memory:", "--host", "nosuch.invalid", "--insecure"]),
    /nosuch\.invalid.*(does not resolve|not a loopback)/,
  );
  assertOneLine(
    await cli(["worker", "--storage", "kv:/proc/x/db.sqlite"]),
    /STORAGE_UNAVAILABLE.*cannot create the directory "\/proc\/x"/,
  );
  assertOneLine(
    await cli(["worker", "--storage", `redis://127.0.0.1:${freePort()}`]),
    /STORAGE_UNAVAILABLE.*connection refused/,
  );
  assertOneLine(await cli(["doctor", "--storage", "ftp://x"]), /unknown scheme "ftp:"/);
});

Deno.test("redact: credentials leave every URL-looking text, mistyped ones too", () => {
  const cases: Array<[string, string]> = [
    ["reddis://user:pw@host:6379", "reddis://***@host:6379"],
    ["redis://user:pa/ss@host/0", "redis://***@host/0"],
    ["rediss://:secret@h.example:6380", "rediss://***@h.example:6380"],
    ["redis://u:p@ss@host", "redis://***@host"],
    [`cannot open storage "redis://a:b@h": x`, `cannot open storage "redis://***@h": x`],
    [
      "kv:https://tok:en@api.example/db and redis://h:1",
      "kv:https://***@api.example/db and redis://h:1",
    ],
    ["redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"],
  ];
  for (const [text, expected] of cases) assert.equal(redact(text), expected);
});

Deno.test("cli: credentials in storage URLs never reach the output", async () => {
  const urls = [
    "reddis://user:pw1x@host",
    "redis://user:pa/ss2x@host",
    "rediss://:secret3x@nosuch.invalid:6380",
    "redis://user:pw4x@127.0.0.1:1",
    "redis://:secret5x@127.0.0.1:6379/x",
    "kv:https://user:pw6x@nosuch.invalid/db",
  ];
  for (const url of urls) {
    for (const command of ["worker", "doctor"]) {
      const ran = await cli([command, "--storage", url]);
      const text = ran.stdout + ran.stderr;
      assertOneLine(ran, /error/);
      assert.doesNotMatch(text, /pw\dx|ss\dx|secret\dx/, text);
    }
  }
});

Deno.test("cli: enqueue prints the id and the job's dashboard link; the job is stored", async () => {
  await withDir(async (dir) => {
    const storage = `kv:${dir}/t.sqlite`;
    const before = Date.now();
    const now = await cli(["enqueue", "demo.noop", '{"n":1}', "--storage", storage], {
      TASKFLOW_DASHBOARD_PORT: "8123",
    });
    const later = await cli([
      "enqueue",
      "demo.noop",
      "--queue",
      "mail",
      "--delay",
      "10s",
      "--storage",
      storage,
      "--host",
      "::1",
      "--port",
      "9000",
    ]);
    const after = Date.now();
    assert.equal(now.code, 0, now.stderr);
    assert.equal(later.code, 0, later.stderr);
    const link = /http:\/\/127\.0\.0\.1:8123\/job\/(\S+)/.exec(now.stdout);
    assert.ok(link, now.stdout);
    const id = decodeURIComponent(link[1]);
    assert.match(now.stdout, new RegExp(`enqueued job ${id} \\(demo\\.noop on queue default\\)`));
    const laterId = decodeURIComponent(/http:\/\/\[::1\]:9000\/job\/(\S+)/.exec(later.stdout)![1]);
    assert.match(later.stdout, /scheduled job .* on queue mail\) to run at \d{4}-/);
    const tf = await TaskFlow.open(storage);
    try {
      const job = (await tf.get(id))!;
      assert.equal(job.state, "Enqueued");
      assert.equal(job.name, "demo.noop");
      assert.deepEqual(job.args, { n: 1 });
      const scheduled = (await tf.get(laterId))!;
      assert.equal(scheduled.state, "Scheduled");
      assert.equal(scheduled.queue, "mail");
      assert.ok(scheduled.runAt! >= before + 10_000 && scheduled.runAt! <= after + 10_000);
    } finally {
      await tf.close();
    }
    for (
      const [args, message] of [
        [["demo.noop", "{n:1}"], /invalid json-args "\{n:1\}": is not JSON/],
        [["demo.noop", "--delay", "10"], /invalid --delay "10": must be a duration such as 250ms/],
        [["demo.noop", "--delay", "5 minutes"], /invalid --delay "5 minutes"/],
        [["demo.noop", "--delay", "9999999999d"], /invalid --delay .*at most 100 years/],
        [["bad name!"], /INVALID_NAME/],
        [[], /enqueue needs a job name/],
        [["demo.noop", "--storage", "memory:"], /enqueue cannot use memory:/],
      ] as const
    ) {
      assertOneLine(await cli(["enqueue", "--storage", storage, ...args]), message);
    }
    const tf2 = await TaskFlow.open(storage);
    try {
      assert.equal((await tf2.counts()).totals.created, 2, "the refused ones wrote nothing");
    } finally {
      await tf2.close();
    }
  });
});

Deno.test("cli: queue shows and changes a queue's stored limits", async () => {
  await withDir(async (dir) => {
    const storage = `kv:${dir}/t.sqlite`;
    const run = (...args: string[]) => cli(["queue", "mail", "--storage", storage, ...args]);
    const none = await run();
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /^queue mail in kv:.*: no limits$/m);
    const set = await run("--concurrency", "5", "--rate", "100/1s");
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /: concurrency 5, rate 100\/s \(saved; every worker obeys it\)$/m);
    // A worker's TASKFLOW_CONCURRENCY is not a queue limit: flags come from the command line.
    const part = await cli(
      [
        "queue",
        "mail",
        "--storage",
        storage,
        "--partition-concurrency",
        "1",
        "--partition-rate",
        "5/m",
      ],
      { TASKFLOW_CONCURRENCY: "3" },
    );
    assert.match(
      part.stdout,
      /concurrency 5, rate 100\/s, per partition: concurrency 1, rate 5\/min/,
    );
    const tf = await TaskFlow.open(storage);
    try {
      const stored = await tf.queues.get("mail");
      assert.equal(stored?.concurrency, 5);
      assert.deepEqual(stored?.rateLimit, { max: 100, perMs: 1_000 });
      assert.deepEqual(stored?.partition, { concurrency: 1, rateLimit: { max: 5, perMs: 60_000 } });
    } finally {
      await tf.close();
    }
    assert.match((await run("--rate", "none")).stdout, /: concurrency 5, per partition/);
    for (
      const [args, message] of [
        [["--rate", "10"], /invalid --rate "10": must be MAX\/PERIOD such as 100\/1s/],
        [["--rate", "0/1s"], /invalid --rate "0\/1s": MAX must be from 1/],
        [
          ["--partition-rate", "1/2d"],
          /invalid --partition-rate "1\/2d": PERIOD must be from 1ms to 1d/,
        ],
        [["--concurrency", "0"], /invalid --concurrency "0": must be a whole number from 1/],
        [["--concurrency", "1.5"], /invalid --concurrency "1\.5"/],
        [["--clear", "--concurrency", "2"], /--clear removes every limit; give it alone/],
        [["--queue", "x"], /flag --queue does not apply to queue/],
        [["--storage", "memory:", "--concurrency", "2"], /queue cannot change limits in memory:/],
      ] as const
    ) {
      assertOneLine(await run(...args), message);
    }
    assertOneLine(await cli(["queue", "--storage", storage]), /queue needs a queue name/);
    assertOneLine(await cli(["queue", "a b", "--storage", storage]), /INVALID_NAME/);
    assert.match(
      (await run()).stdout,
      /: concurrency 5, per partition: concurrency 1, rate 5\/min$/m,
    );
    const cleared = await run("--clear");
    assert.match(cleared.stdout, /: no limits \(saved/);
    const tf2 = await TaskFlow.open(storage);
    try {
      assert.deepEqual(await tf2.queues.list(), []);
    } finally {
      await tf2.close();
    }
  });
});

Deno.test({
  name: "cli: Ctrl-C says what shutdown waits for; a second one aborts and requeues at once",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withDir(async (dir) => {
      const url = `kv:${dir}/t.sqlite`;
      // A handler that ignores its abort signal: only the requeue can free its job.
      await Deno.writeTextFile(
        `${dir}/jobs.ts`,
        `import { defineJob } from "${root}lib/mod.ts";\n` +
          `export const stuck = defineJob("stuck", () => new Promise(() => {}));\n`,
      );
      const tf = await TaskFlow.open(url);
      const worker = spawnMain([
        "worker",
        "--storage",
        url,
        "--jobs",
        `${dir}/jobs.ts`,
        "--shutdown-timeout-ms",
        "600000",
      ]);
      const { child, output } = worker;
      try {
        const ids = [await tf.enqueue("stuck", 1), await tf.enqueue("stuck", 2)];
        await eventually(async () => {
          for (const id of ids) assert.equal((await tf.get(id))!.state, "Processing");
        }, 20_000);
        child.kill("SIGINT");
        await eventually(() => assert.match(output(), /press Ctrl-C again/), 10_000);
        assert.match(
          output(),
          /signal received, shutting down: waiting up to 600 s for 2 running handlers; press Ctrl-C again to abort them now/,
        );
        for (const id of ids) assert.equal((await tf.get(id))!.state, "Processing");
        // A person's second press, not the same signal delivered twice.
        await new Promise((resolve) => setTimeout(resolve, 800));
        child.kill("SIGINT");
        // Far sooner than the 600 s the first signal would wait.
        const status = await Promise.race([
          child.status,
          new Promise<null>((resolve) => setTimeout(() => resolve(null), 30_000)),
        ]);
        assert.ok(status, `still running 30 s after the second Ctrl-C:\n${output()}`);
        assert.equal(status.code, 0, output());
        await worker.done();
        assert.match(output(), /second signal: aborting 2 handlers now/);
        for (const id of ids) {
          const job = (await tf.get(id))!;
          assert.equal(job.state, "Enqueued", output());
          assert.equal(job.reason, "server shutdown");
        }
        assert.deepEqual(await tf.servers(), []);
      } finally {
        await worker.kill("SIGKILL");
        await tf.close();
      }
    }),
});

Deno.test("kv: without --unstable-kv the error names the flag and the deno.json setting", async () => {
  await withDir(async (dir) => {
    // Its own deno.json without "unstable": ["kv"], so the repo's setting does not apply.
    await Deno.writeTextFile(`${dir}/deno.json`, "{}\n");
    await Deno.writeTextFile(
      `${dir}/open.ts`,
      `import { TaskFlow } from "${root}lib/mod.ts";\n` +
        `try { await TaskFlow.open("kv::memory:"); console.log("opened"); }\n` +
        `catch (e) { console.log(e.code + ": " + e.message); }\n`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", `${dir}/deno.json`, `${dir}/open.ts`],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = decoder.decode(output.stdout) + decoder.decode(output.stderr);
    assert.match(text, /STORAGE_UNAVAILABLE: .*--unstable-kv.*"unstable": \["kv"\] to deno\.json/);
    assert.doesNotMatch(text, /is not a function/);
    // The command line says the same in one line.
    const cliRun = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", "main.ts", "worker", "--storage", "kv::memory:"],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertOneLine(
      {
        code: cliRun.code,
        stdout: decoder.decode(cliRun.stdout),
        stderr: decoder.decode(cliRun.stderr),
      },
      /Deno KV is not enabled: run deno with --unstable-kv/,
    );
  });
});

Deno.test({
  name: "redis: a URL the server rejects at connect is a configuration error, not an outage",
  ignore: Boolean(redisMissing) && !REDIS_REQUIRED,
  fn: async () => {
    const url = `${REDIS_URL}/99`;
    await assert.rejects(RedisStorage.open(url), (error: unknown) => {
      assert.ok(error instanceof InvalidOptionError, String(error));
      assert.match(error.message, /the server rejected SELECT 99: ERR DB index is out of range/);
      return true;
    });
    assertOneLine(
      await cli(["worker", "--storage", url]),
      /^error \[INVALID_OPTION\]: invalid storage "redis:.*\/99": the server rejected SELECT 99/,
    );
  },
});

Deno.test({
  name: "redis: a missing or wrong password fails at open with its reason, the password unshown",
  ignore: (Boolean(serverMissing) || Boolean(redisMissing)) && !REDIS_REQUIRED,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const server = new RedisServer(freePort(), ["--requirepass", "right-one"]);
    try {
      await server.start();
      const base = `127.0.0.1:${server.port}`;
      for (
        const [url, reason] of [
          [`redis://${base}`, /rejected PING: NOAUTH/],
          [`redis://:wrong-one@${base}`, /rejected AUTH: WRONGPASS/],
          [`redis://bob:wrong-one@${base}`, /rejected AUTH for user "bob": WRONGPASS/],
        ] as const
      ) {
        await assert.rejects(TaskFlow.open(url), (error: unknown) => {
          assert.ok(error instanceof InvalidOptionError, String(error));
          assert.match(error.message, reason);
          assert.doesNotMatch(error.message, /wrong-one/);
          return true;
        });
      }
      const tf = await TaskFlow.open(`redis://:right-one@${base}/2?prefix=cli`);
      assert.equal(tf.address, `redis://${base}/2?prefix=cli`);
      await tf.close();
    } finally {
      await server.kill();
    }
  },
});

Deno.test({
  name: "cli: --allowed-hosts names more hosts the dashboard answers; others get 421",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    assertOneLine(
      await cli(["dashboard", "--storage", "memory:", "--allowed-hosts", "http://tf.example"]),
      /tf\.example/,
    );
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    // The flag wins over the environment variable.
    const flagged = spawnMain(
      [
        "dashboard",
        "--storage",
        "memory:",
        "--port",
        String(port),
        "--allowed-hosts",
        "tf.example",
      ],
      { TASKFLOW_ALLOWED_HOSTS: "ignored.example" },
      true,
    );
    try {
      // fetch() does not send a Host header of its own choosing: a raw request does.
      const status = async (host: string) => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          const request = `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
          await conn.write(new TextEncoder().encode(request));
          const head = new Uint8Array(64);
          const n = await conn.read(head);
          return Number(/^HTTP\/1\.1 (\d{3})/.exec(decoder.decode(head.subarray(0, n ?? 0)))?.[1]);
        } finally {
          conn.close();
        }
      };
      await eventually(async () => assert.equal(await status(`127.0.0.1:${port}`), 200), 20_000);
      assert.equal(await status(`tf.example:${port}`), 200);
      assert.equal(await status(`ignored.example:${port}`), 421);
      assert.equal(await status(`evil.example:${port}`), 421);
    } finally {
      await flagged.kill("SIGTERM");
    }
  },
});

/** Runs `worker` on `url` with `flags` until the policy in force is stored, then stops it. */
async function workerStoringPolicy(url: string, dir: string, flags: string[]): Promise<string> {
  await Deno.writeTextFile(
    `${dir}/jobs.ts`,
    `import { defineJob } from "${root}lib/mod.ts";\nexport const noop = defineJob("noop", () => 1);\n`,
  );
  const worker = spawnMain(["worker", "--storage", url, "--jobs", `${dir}/jobs.ts`, ...flags]);
  try {
    await eventually(() => assert.match(worker.output(), /Ctrl-C stops it/), 20_000).catch(
      (error) => {
        throw new Error(`${error.message}\n${worker.output()}`);
      },
    );
  } finally {
    await worker.kill("SIGINT");
  }
  return worker.output();
}

Deno.test({
  name:
    "cli: worker --retention/--archive stores the policy in force; prune shows it and refuses to drop what it archives",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withDir(async (dir) => {
      const url = `kv:${dir}/t.sqlite`;
      await workerStoringPolicy(url, dir, [
        "--retention",
        "succeeded=1h,failed=7d+count:100,deleted=forever",
        "--archive",
        `${dir}/archive`,
      ]);
      const tf = await TaskFlow.open(url);
      try {
        const stored = await tf.retention();
        assert.deepEqual(
          { succeeded: stored?.succeeded, failed: stored?.failed, deleted: stored?.deleted },
          {
            succeeded: { maxAgeMs: 3_600_000 },
            failed: { maxAgeMs: 7 * 86_400_000, maxCount: 100 },
            deleted: false,
          },
        );
        assert.equal(stored?.archive, true);
      } finally {
        await tf.close();
      }
      const dry = await cli(["prune", "--dry-run", "--storage", url]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /would remove 0 jobs from kv:.*: 0 succeeded, 0 failed, 0 deleted/);
      assert.match(
        dry.stdout,
        /policy: succeeded 1h, failed 7d and 100 newest, deleted forever, archived before removal \(stored by .+\)/,
      );
      assertOneLine(
        await cli(["prune", "--storage", url]),
        /archives jobs before removing them: pass an archive function \(the CLI: --archive <dir>\)/,
      );
    }),
});

Deno.test({
  name:
    "cli: prune --dry-run lists expired jobs and removes nothing; prune --archive writes NDJSON, then removes",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withDir(async (dir) => {
      const url = `kv:${dir}/t.sqlite`;
      const tf = await TaskFlow.open(url, { now: () => Date.now() - 2 * 86_400_000 });
      let id: string;
      try {
        id = await tf.enqueue("old", { n: 1 });
        await tf.delete(id);
      } finally {
        await tf.close();
      }
      const dry = await cli(["prune", "--dry-run", "--storage", url]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /would remove 1 job from kv:.*: 0 succeeded, 0 failed, 1 deleted/);
      assert.match(dry.stdout, new RegExp(`^  ${id}$`, "m"));
      assert.match(dry.stdout, /policy: none stored yet: the default/);
      const real = await cli(["prune", "--storage", url, "--archive", `${dir}/archive`]);
      assert.equal(real.code, 0, real.stderr);
      assert.match(real.stdout, /removed 1 job from kv:.*: 0 succeeded, 0 failed, 1 deleted/);
      const [file] = [...Deno.readDirSync(`${dir}/archive`)].map((e) => e.name);
      assert.match(file, /^\d{4}-\d{2}-\d{2}\.ndjson$/);
      const lines = (await Deno.readTextFile(`${dir}/archive/${file}`)).trim().split("\n");
      assert.equal(lines.length, 1);
      const { record, events } = JSON.parse(lines[0]);
      assert.equal(record.id, id);
      assert.deepEqual(events.map((e: { type: string }) => e.type), ["created", "state", "state"]);
      const after = await TaskFlow.open(url);
      try {
        assert.equal(await after.get(id), null);
      } finally {
        await after.close();
      }
    }),
});

Deno.test({
  name: "cli: one SIGTERM delivered twice at once (process group and deno task) is one signal",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withDir(async (dir) => {
      const url = `kv:${dir}/t.sqlite`;
      await Deno.writeTextFile(
        `${dir}/jobs.ts`,
        `import { defineJob } from "${root}lib/mod.ts";\n` +
          `export const slow = defineJob("slow", () => new Promise((r) => setTimeout(r, 1500)));\n`,
      );
      const tf = await TaskFlow.open(url);
      const worker = spawnMain(["worker", "--storage", url, "--jobs", `${dir}/jobs.ts`]);
      const { child, output } = worker;
      try {
        const id = await tf.enqueue("slow", 1);
        await eventually(async () => assert.equal((await tf.get(id))!.state, "Processing"), 20_000);
        // As `deno task` forwards it a moment after the group's own delivery.
        child.kill("SIGTERM");
        await new Promise((resolve) => setTimeout(resolve, 50));
        child.kill("SIGTERM");
        assert.equal((await child.status).code, 0, output());
        await worker.done();
        assert.match(output(), /signal received, shutting down/);
        assert.doesNotMatch(output(), /second signal/);
        // The graceful path: the handler was waited for, not aborted.
        assert.equal((await tf.get(id))!.state, "Succeeded", output());
      } finally {
        await worker.kill("SIGKILL");
        await tf.close();
      }
    }),
});
