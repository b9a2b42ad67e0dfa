/**
 * @module
 * The Redis backend on a Redis Cluster: three masters started here on loopback ports 7101–7103
 * (bus ports 17101–17103), the storage contract and the worker, recurring and watch suites on
 * it, prefixes spread over the masters, MOVED and ASK followed, and one master killed while
 * the storages on the other two keep running. Also `redis+cluster://` URLs (no server needed).
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import {
  InvalidOptionError,
  StorageUnavailableError,
  UnknownStorageError,
} from "../storage/errors.ts";
import { openStorage } from "../storage/open.ts";
import { keySlot } from "../storage/redis/cluster.ts";
import { RedisStorage } from "../storage/redis/mod.ts";
import { parseRedisUrl } from "../storage/redis/url.ts";
import { eventually } from "./helpers.ts";
import {
  corruptRedis,
  REDIS_REQUIRED,
  redisFootprint,
  redisUnreachable,
  whenRedis,
} from "./redis_helpers.ts";
import { runRecurringSuite } from "./recurring_suite.ts";
import { runStorageContract } from "./storage_contract.ts";
import { runWatchSuite } from "./watch_suite.ts";
import { runWorkerSuite } from "./worker_suite.ts";

Deno.test("redis cluster URLs: nodes, credentials kept out of the address and errors, typed errors", async () => {
  const target = parseRedisUrl(
    "redis+cluster://ada:s3cret@127.0.0.1:7101,[::1]:7102,h.example/?prefix=app",
  );
  assert.deepEqual(target.nodes, [
    { host: "127.0.0.1", port: 7101 },
    { host: "::1", port: 7102 },
    { host: "h.example", port: 6379 },
  ]);
  assert.equal(
    target.address,
    "redis+cluster://127.0.0.1:7101,[::1]:7102,h.example:6379/?prefix=app",
  );
  assert.equal(target.prefix, "app");
  assert.equal(target.connection.username, "ada");
  assert.equal(target.connection.password, "s3cret");
  const tls = parseRedisUrl("rediss+cluster://h1:7000,h2:7000", "jobs");
  assert.equal(tls.address, "rediss+cluster://h1:7000,h2:7000/?prefix=jobs");
  assert.deepEqual(tls.connection.tls, { servername: "h1" });
  const bad: [string, RegExp][] = [
    ["redis+cluster://ada:s3cret@/?prefix=app", /names no node/],
    ["redis+cluster://ada:s3cret@h1:7000,,h2:7000/", /empty entry/],
    ["redis+cluster://ada:s3cret@h1:7000,h2:x/", /malformed/],
    ["redis+cluster://ada:s3cret@h1:7000/2", /only database 0, not 2/],
    ["redis+cluster://ada:s3cret@h1:7000/?db=1", /unknown parameter "db"/],
  ];
  for (const [url, reason] of bad) {
    assert.throws(() => parseRedisUrl(url), (error: unknown) => {
      assert.ok(error instanceof UnknownStorageError, url);
      assert.equal(error.code, "UNKNOWN_STORAGE_SCHEME");
      assert.match(error.message, reason);
      assert.match(error.message, /redis\+cluster:\/\/\*\*\*@/);
      assert.doesNotMatch(error.message, /s3cret/);
      return true;
    });
  }
  assert.throws(() => parseRedisUrl("redis+cluster://h1:7000/?prefix=a{b}"), InvalidOptionError);
  // Nothing listens on port 1: the storage is unavailable, named without the password.
  await assert.rejects(openStorage("redis+cluster://ada:s3cret@127.0.0.1:1/"), (error: unknown) => {
    assert.ok(error instanceof StorageUnavailableError);
    assert.match(error.message, /storage redis\+cluster:\/\/127\.0\.0\.1:1\/ unavailable: .*slot/);
    assert.doesNotMatch(error.message, /s3cret/);
    return true;
  });
});

Deno.test("redis cluster: key slots are CRC16 of the hash tag, as Redis computes them", () => {
  // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
  assert.equal(keySlot("123456789"), 0x31c3);
  assert.equal(keySlot("foo"), 12182);
  assert.equal(keySlot("{user1000}.following"), keySlot("user1000"));
  assert.equal(keySlot("foo{}{bar}"), keySlot("foo{}{bar}"), "an empty tag hashes the whole key");
  assert.notEqual(keySlot("foo{}{bar}"), keySlot("bar"));
  assert.equal(keySlot("{taskflow}:jobs"), keySlot("{taskflow}:log:0123"));
});

await whenRedis(
  "redis cluster on a plain server",
  () =>
    Deno.test("redis cluster: a redis+cluster:// URL naming a server without cluster mode is a configuration error", async () => {
      const { hostname, port } = new URL(
        Deno.env.get("TASKFLOW_TEST_REDIS_URL") ?? "redis://127.0.0.1:6379",
      );
      await assert.rejects(
        openStorage(`redis+cluster://${hostname}:${port || 6379}/?prefix=tftest-nocluster`),
        (error: unknown) => {
          assert.ok(error instanceof InvalidOptionError);
          assert.match(error.message, /rejected CLUSTER SLOTS: ERR .*cluster support disabled/);
          return true;
        },
      );
    }),
);

const PORTS = [7101, 7102, 7103];
const run = crypto.randomUUID().slice(0, 8);

/** Three masters of a cluster of the test's own, started as child processes in a temp dir. */
class LocalCluster {
  #dir = "";
  #children = new Map<number, Deno.ChildProcess>();

  url(prefix: string): string {
    return `redis+cluster://${
      PORTS.map((port) => `127.0.0.1:${port}`).join(",")
    }/?prefix=${prefix}`;
  }

  async start(): Promise<void> {
    this.#dir = await Deno.makeTempDir({ prefix: "taskflow-cluster-" });
    for (const port of PORTS) await this.#node(port);
    const created = await new Deno.Command("redis-cli", {
      args: [
        "--cluster",
        "create",
        ...PORTS.map((port) => `127.0.0.1:${port}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const output = new TextDecoder().decode(created.stdout) +
      new TextDecoder().decode(created.stderr);
    assert.ok(created.success, `redis-cli --cluster create failed: ${output}`);
    for (const port of PORTS) {
      await eventually(
        async () => assert.match(await this.cli(port, "CLUSTER", "INFO"), /cluster_state:ok/),
        10_000,
      );
    }
  }

  /** Starts a cluster-enabled redis-server on `port` and waits until it answers. */
  async #node(port: number): Promise<void> {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      throw new Error(
        `port ${port} is taken (a cluster of an earlier run? redis-cli -p ${port} shutdown nosave)`,
      );
    }
    const child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `${this.#dir}/nodes-${port}.conf`,
        // A lost master is marked failed within a second, and the others keep serving their
        // slots (the default stops the whole cluster while any slot has no master).
        "--cluster-node-timeout",
        "1000",
        "--cluster-require-full-coverage",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        this.#dir,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#children.set(port, child);
    await eventually(async () => {
      const reason = await redisUnreachable(`redis://127.0.0.1:${port}`, 200);
      assert.equal(reason, undefined);
    });
  }

  /** Starts a node on `port` and makes it a replica of the master on `of`, in sync. */
  async addReplica(port: number, of: number): Promise<void> {
    await this.#node(port);
    const added = await new Deno.Command("redis-cli", {
      args: [
        "--cluster",
        "add-node",
        `127.0.0.1:${port}`,
        `127.0.0.1:${of}`,
        "--cluster-slave",
        "--cluster-master-id",
        await this.cli(of, "CLUSTER", "MYID"),
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(added.success, new TextDecoder().decode(added.stderr));
    await eventually(
      async () =>
        assert.match(await this.cli(port, "INFO", "replication"), /master_link_status:up/),
      15_000,
    );
  }

  /**
   * Migrates `slot` from the master on `from` to the one on `to` as `redis-cli --cluster reshard`
   * does; `halfway` runs once both sides know of the migration, before the keys move.
   */
  async migrate(
    slot: number,
    from: number,
    to: number,
    halfway?: () => Promise<void>,
  ): Promise<void> {
    const [fromId, toId] = [
      await this.cli(from, "CLUSTER", "MYID"),
      await this.cli(to, "CLUSTER", "MYID"),
    ];
    assert.equal(await this.cli(to, "CLUSTER", "SETSLOT", String(slot), "IMPORTING", fromId), "OK");
    assert.equal(await this.cli(from, "CLUSTER", "SETSLOT", String(slot), "MIGRATING", toId), "OK");
    await halfway?.();
    const keys = (await this.cli(from, "CLUSTER", "GETKEYSINSLOT", String(slot), "10000")).split(
      "\n",
    ).filter(Boolean);
    if (keys.length) {
      const moved = await this.cli(
        from,
        "MIGRATE",
        "127.0.0.1",
        String(to),
        "",
        "0",
        "5000",
        "KEYS",
        ...keys,
      );
      assert.equal(moved, "OK");
    }
    // The importing side first: it takes a new config epoch, which wins over the old owner's.
    for (
      const port of [
        to,
        from,
        ...[...this.#children.keys()].filter((p) => p !== to && p !== from),
      ]
    ) {
      await this.cli(port, "CLUSTER", "SETSLOT", String(slot), "NODE", toId);
    }
  }

  /** A command sent by redis-cli to the node on `port`; its output. */
  async cli(port: number, ...args: string[]): Promise<string> {
    const { stdout } = await new Deno.Command("redis-cli", {
      args: ["-p", String(port), ...args],
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(stdout).trim();
  }

  /** SIGKILLs the node on `port`. */
  async kill(port: number): Promise<void> {
    const child = this.#children.get(port);
    this.#children.delete(port);
    if (!child) return;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
  }

  async stop(): Promise<void> {
    for (const port of [...this.#children.keys()]) await this.kill(port);
    if (this.#dir) await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
    this.#dir = "";
  }

  /** The same at process exit, for a run that filtered out the last case. */
  stopNow(): void {
    for (const child of this.#children.values()) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    this.#children.clear();
    if (this.#dir) Deno.removeSync(this.#dir, { recursive: true });
  }
}

/** Why the cluster cannot be started here, or undefined. */
async function toolsMissing(): Promise<string | undefined> {
  for (const tool of ["redis-server", "redis-cli"]) {
    try {
      const { success } = await new Deno.Command(tool, { args: ["--version"] }).output();
      if (!success) return `${tool} --version failed`;
    } catch {
      return `${tool} is not on PATH`;
    }
  }
  return undefined;
}

/** A storage on the cluster under a fresh prefix, and the cleanup deleting its keys. */
async function openOnCluster(cluster: LocalCluster, label: string, prefix?: string) {
  const storage = await RedisStorage.open(
    cluster.url(prefix ?? `tfc-${label}-${crypto.randomUUID().slice(0, 12)}`),
  );
  return {
    storage,
    cleanup: async () => {
      await storage.deleteAllKeys().catch(() => {});
      await storage.close();
    },
  };
}

/** A prefix (of this run) whose slot lies in `[from, to]`. */
function prefixIn(from: number, to: number, label: string): string {
  for (let i = 0;; i++) {
    const prefix = `tfc-${label}-${run}-${i}`;
    const slot = keySlot(`{${prefix}}:`);
    if (slot >= from && slot <= to) return prefix;
  }
}

/** The port of the node a storage's commands go to. */
async function portOf(storage: RedisStorage): Promise<number> {
  const [, port] = await storage.command<string[]>("CONFIG", "GET", "port");
  return Number(port);
}

const missing = await toolsMissing();
if (missing && !REDIS_REQUIRED) {
  console.log(
    `skipping redis cluster: ${missing} (set TASKFLOW_TEST_REDIS=required to fail instead)`,
  );
  Deno.test({ name: `redis cluster: skipped, ${missing}`, ignore: true, fn() {} });
} else {
  const cluster = new LocalCluster();
  globalThis.addEventListener("unload", () => cluster.stopNow());
  await cluster.start();

  runStorageContract("redis cluster", async () => {
    const { storage, cleanup } = await openOnCluster(cluster, "contract");
    return { storage, cleanup, corrupt: corruptRedis, footprint: () => redisFootprint(storage) };
  });
  runWorkerSuite("redis cluster", () => openOnCluster(cluster, "worker"));
  runRecurringSuite("redis cluster", () => openOnCluster(cluster, "rec"));
  runWatchSuite("redis cluster", async () => {
    const { storage, cleanup } = await openOnCluster(cluster, "watch");
    return {
      storage,
      shrink: async () => {
        await storage.command("XTRIM", `${storage.keyPrefix}feed`, "MAXLEN", 1);
      },
      cleanup,
    };
  });

  Deno.test({
    name: "redis cluster: MOVED and ASK are followed while a prefix's slot migrates",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const { storage, cleanup } = await openOnCluster(cluster, "move", prefixIn(0, 5460, "move"));
      const tf = new TaskFlow(storage);
      const job = defineJob("moved", (args: { n: number }) => args.n);
      try {
        const slot = keySlot(storage.keyPrefix);
        const first = await tf.enqueue(job, { n: 1 });
        assert.equal(await portOf(storage), 7101);
        await cluster.migrate(slot, 7101, 7102);
        // The storage still routes to 7101, which answers MOVED.
        const second = await tf.enqueue(job, { n: 2 });
        assert.equal(await portOf(storage), 7102);
        const log = await tf.events(second);
        await cluster.migrate(slot, 7102, 7103, async () => {
          // Halfway: the records are on 7103, the logs still on 7102, which answers ASK for them.
          await cluster.cli(
            7102,
            "MIGRATE",
            "127.0.0.1",
            "7103",
            "",
            "0",
            "5000",
            "KEYS",
            `${storage.keyPrefix}jobs`,
          );
          assert.deepEqual((await tf.getMany([first, second])).map((r) => r?.state), [
            "Enqueued",
            "Enqueued",
          ]);
          assert.equal(await portOf(storage), 7102);
        });
        await cluster.migrate(slot, 7103, 7101);
        // A command without keys goes wherever the storage routes; one with keys gets MOVED.
        assert.equal(await portOf(storage), 7102);
        assert.deepEqual((await tf.getMany([first, second])).map((r) => r?.state), [
          "Enqueued",
          "Enqueued",
        ]);
        assert.equal(await portOf(storage), 7101);
        assert.deepEqual(await tf.events(second), log);
      } finally {
        await tf.close();
        await cleanup();
      }
    },
  });

  Deno.test({
    name: "redis cluster: wake-ups published by one process's scripts reach another's subscribers",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const prefix = prefixIn(5461, 10922, "wake");
      const listening = await openOnCluster(cluster, "wake", prefix);
      const writing = await openOnCluster(cluster, "wake", prefix);
      const tf = new TaskFlow(writing.storage);
      const heard = { jobs: 0, feed: 0 };
      const stopJobs = listening.storage.notifier.listen(() => heard.jobs++);
      const stopFeed = listening.storage.feed.listen(() => heard.feed++);
      try {
        const job = defineJob("wake", () => {});
        // The subscriptions are made in the background: enqueue until one is heard.
        await eventually(async () => {
          await tf.enqueue(job, {});
          assert.ok(heard.jobs > 0 && heard.feed > 0, JSON.stringify(heard));
        });
      } finally {
        stopJobs();
        stopFeed();
        await tf.close();
        await writing.cleanup();
        await listening.storage.close();
      }
    },
  });

  Deno.test({
    name:
      "redis cluster: when a master dies its replica takes over, and the prefix carries on there",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const [master, replica] = [7103, 7104];
      await cluster.addReplica(replica, master);
      const { storage, cleanup } = await openOnCluster(
        cluster,
        "failover",
        prefixIn(10923, 16383, "failover"),
      );
      const tf = new TaskFlow(storage);
      const job = defineJob("survivor", (args: { n: number }) => args.n + 1);
      const worker = createWorker({ storage, jobs: [job], pollIntervalMs: 50, logger: () => {} });
      try {
        const before = await tf.enqueueMany(
          Array.from({ length: 10 }, (_, n) => ({ job, args: { n } })),
        );
        assert.equal(await portOf(storage), master);
        // Replication is asynchronous: wait until the replica has every write so far.
        assert.equal(await storage.command("WAIT", 1, 5_000), 1);
        await cluster.kill(master);
        await assert.rejects(tf.enqueue(job, { n: -1 }), StorageUnavailableError);
        // Once promoted, the replica is found through the slot map, without a restart.
        const after = await eventually(() => tf.enqueue(job, { n: 10 }), 20_000);
        assert.equal(await portOf(storage), replica);
        await worker.start();
        await eventually(async () => {
          const records = await tf.getMany([...before, after]);
          assert.deepEqual(
            records.map((record) => record?.result),
            Array.from({ length: 11 }, (_, n) => n + 1),
          );
        }, 10_000);
      } finally {
        await worker.stop({ now: true });
        await tf.close();
        await cleanup();
      }
    },
  });

  Deno.test({
    name:
      "redis cluster: prefixes spread over the masters; a lost master fails only its prefixes, with STORAGE_UNAVAILABLE",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const ranges: [number, number][] = [[0, 5460], [5461, 10922], [10923, 16383]];
      const opened = await Promise.all(
        ranges.map(([from, to], i) =>
          openOnCluster(cluster, "spread", prefixIn(from, to, `spread${i}`))
        ),
      );
      const storages = opened.map(({ storage }) => storage);
      const clients = storages.map((storage) => new TaskFlow(storage));
      const logs: string[][] = storages.map(() => []);
      const job = defineJob("spread", (args: { n: number }) => args.n * 2);
      const workers = storages.map((storage, i) =>
        createWorker({
          storage,
          jobs: [job],
          pollIntervalMs: 50,
          heartbeatMs: 200,
          logger: (level, message) => logs[i].push(`${level}: ${message}`),
        })
      );
      try {
        // Each storage's keys hash to its slot, which lives on its own master.
        const ports = await Promise.all(storages.map(portOf));
        assert.equal(new Set(ports).size, 3, `the prefixes live on ${ports.join(", ")}`);
        for (const storage of storages) {
          const slot = await storage.command<number>(
            "CLUSTER",
            "KEYSLOT",
            `${storage.keyPrefix}log:x`,
          );
          assert.equal(slot, keySlot(storage.keyPrefix));
        }
        for (const worker of workers) await worker.start();
        const runAll = async (tfs: TaskFlow[], n: number) => {
          const ids = await Promise.all(
            tfs.map((tf) =>
              tf.enqueueMany(Array.from({ length: n }, (_, i) => ({ job, args: { n: i } })))
            ),
          );
          await eventually(async () => {
            for (const [k, tf] of tfs.entries()) {
              const states = (await tf.getMany(ids[k])).map((record) => record?.state);
              assert.deepEqual(new Set(states), new Set(["Succeeded"]));
            }
          }, 20_000);
        };
        await runAll(clients, 20);
        for (const port of ports) {
          const keys = Number(await cluster.cli(port, "DBSIZE"));
          assert.ok(keys > 0, `the node on ${port} holds keys of its prefix`);
        }

        await cluster.kill(ports[0]);
        // The lost master's prefix fails fast, with the typed error naming the storage.
        await assert.rejects(clients[0].enqueue(job, { n: 0 }), (error: unknown) => {
          assert.ok(error instanceof StorageUnavailableError, String(error));
          assert.equal(error.code, "STORAGE_UNAVAILABLE");
          assert.ok(error.message.includes(storages[0].address), error.message);
          return true;
        });
        // After the others marked it failed (node timeout 1 s) the other prefixes still run.
        await eventually(
          async () => assert.match(await cluster.cli(ports[1], "CLUSTER", "NODES"), /master,fail/),
          10_000,
        );
        await runAll(clients.slice(1), 20);
        await eventually(() =>
          assert.ok(
            logs[0].some((line) => line.includes("[STORAGE_UNAVAILABLE]")),
            logs[0].join("\n"),
          )
        );
        assert.ok(logs.slice(1).every((lines) => !lines.some((line) => line.startsWith("error"))));
        await assert.rejects(clients[0].get("anything"), StorageUnavailableError);
      } finally {
        await Promise.all(workers.map((worker) => worker.stop({ now: true })));
        for (const tf of clients) await tf.close();
        for (const { cleanup } of opened) await cleanup();
        await cluster.stop();
      }
    },
  });
}
