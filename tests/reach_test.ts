/**
 * @module
 * Reach: other projects import lib/mod.ts by URL with no import map of ours, and its module
 * graph stays free of UI, browser-test and Redis packages.
 */

import assert from "node:assert/strict";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function run(
  args: string[],
  cwd = root,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test({
  name: "reach: a project without our deno.json imports lib/mod.ts over http and enqueues into KV",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const controller = new AbortController();
    let port = 0;
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      signal: controller.signal,
      onListen: (a) => port = a.port,
    }, async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      if (path.includes("..") || !/^\/(lib|storage)\/[\w/.-]+\.ts$/.test(path)) {
        return new Response("not found", { status: 404 });
      }
      try {
        return new Response(await Deno.readFile(`${root}${path}`), {
          headers: { "content-type": "application/typescript" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    });
    const dir = await Deno.makeTempDir({ prefix: "taskflow-url-" });
    try {
      await Deno.writeTextFile(
        `${dir}/producer.ts`,
        `import { TaskFlow } from "http://127.0.0.1:${port}/lib/mod.ts";
const tf = await TaskFlow.open("kv:${dir}/jobs.sqlite");
const id = await tf.enqueue("email.send", { to: "a@example.com" }, { queue: "mail" });
const job = await tf.get(id);
console.log(JSON.stringify({ id, state: job?.state, queue: job?.queue }));
await tf.close();
`,
      );
      const result = await run([
        "run",
        "-A",
        "--unstable-kv",
        "--no-config",
        "--no-lock",
        "--reload=http://127.0.0.1",
        "producer.ts",
      ], dir);
      assert.equal(result.code, 0, result.stderr);
      const printed = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
      assert.equal(printed.state, "Enqueued");
      assert.equal(printed.queue, "mail");
    } finally {
      controller.abort();
      await server.finished;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("reach: lib/mod.ts's module graph has no preact, playwright or ioredis", async () => {
  const result = await run(["info", "--json", "lib/mod.ts"]);
  assert.equal(result.code, 0, result.stderr);
  // npmPackages lists the whole lockfile; what the graph uses is in the modules' dependencies.
  const graph = JSON.parse(result.stdout) as {
    modules: Array<{ specifier: string; dependencies?: Array<{ specifier: string }> }>;
  };
  const names = graph.modules.flatMap((
    m,
  ) => [m.specifier, ...(m.dependencies ?? []).map((d) => d.specifier)])
    .join("\n");
  assert.match(names, /npm:croner@/, "the check sees npm dependencies");
  for (const banned of ["preact", "playwright", "ioredis"]) {
    assert.doesNotMatch(names, new RegExp(banned), `${banned} is in lib/mod.ts's graph`);
  }
  assert.doesNotMatch(names, /\/routes\/|\/islands\/|fresh\.gen/);
});

Deno.test("reach: files under lib/ and storage/ use no bare import-map names", async () => {
  const bare: string[] = [];
  for (const dir of ["lib", "storage"]) {
    for await (const file of walk(`${root}/${dir}`)) {
      const text = await Deno.readTextFile(file);
      for (const match of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) {
        const specifier = match[1];
        if (!/^(\.{1,2}\/|npm:[^@]+@\d|npm:@[^/]+\/[^@]+@\d|node:)/.test(specifier)) {
          bare.push(`${file}: ${specifier}`);
        }
      }
    }
  }
  assert.deepEqual(bare, []);
});

Deno.test("reach: deno doc --lint lib/mod.ts is clean", async () => {
  const result = await run(["doc", "--lint", "lib/mod.ts"]);
  assert.equal(result.code, 0, result.stdout + result.stderr);
});

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (/\.tsx?$/.test(entry.name)) yield path;
  }
}
