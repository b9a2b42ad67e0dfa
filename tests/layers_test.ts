/**
 * @module
 * Layers: the module graph, as `deno info --json` reports it, stays one-way. No import cycle in
 * lib/, storage/, routes/, islands/ or components/; the dashboard reaches storage only through
 * the client; storage imports only types from lib/; lib/ and storage/ use full specifiers,
 * because other projects import them by URL without our import map.
 */

import assert from "node:assert/strict";

/** One import of a module: as written, and what it resolved to as code and as types. */
export interface Import {
  specifier: string;
  /** Repo-relative path of a local module, else the resolved URL (`npm:…`, `node:…`). */
  code?: string;
  type?: string;
}

/** Every local module (repo-relative path) with its imports. */
export type Graph = Map<string, Import[]>;

const ROOT = new URL("..", import.meta.url).href;
const LAYERED = ["lib/", "storage/", "routes/", "islands/", "components/"];
const DASHBOARD = ["routes/", "islands/", "components/", "lib/dashboard/"];
const ENTRIES = ["main.ts", "fresh.gen.ts", "lib/mod.ts", "storage/open.ts"];

const under = (path: string, dirs: readonly string[]) => dirs.some((d) => path.startsWith(d));
const local = (url: string) => url.startsWith(ROOT) ? url.slice(ROOT.length) : url;

interface InfoModule {
  specifier: string;
  dependencies?: Array<
    { specifier: string; code?: { specifier?: string }; type?: { specifier?: string } }
  >;
}

async function info(path: string): Promise<InfoModule[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", path],
    cwd: new URL(ROOT).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  assert.equal(output.code, 0, `deno info ${path} failed: ${text(output.stderr)}`);
  return JSON.parse(text(output.stdout)).modules;
}

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}${entry.name}`;
    if (entry.isDirectory) yield* sources(`${path}/`);
    else if (/\.tsx?$/.test(entry.name)) yield path;
  }
}

/** The graph from the entry points, plus any module of the layered folders they do not reach. */
export async function readGraph(): Promise<Graph> {
  const graph: Graph = new Map();
  const add = (modules: InfoModule[]) => {
    for (const m of modules) {
      if (!m.specifier.startsWith(ROOT) || graph.has(local(m.specifier))) continue;
      graph.set(
        local(m.specifier),
        (m.dependencies ?? []).map((d) => ({
          specifier: d.specifier,
          ...d.code?.specifier ? { code: local(d.code.specifier) } : {},
          ...d.type?.specifier ? { type: local(d.type.specifier) } : {},
        })),
      );
    }
  };
  for (const entry of ENTRIES) add(await info(entry));
  for (const dir of LAYERED) {
    for await (const path of sources(dir)) if (!graph.has(path)) add(await info(path));
  }
  return graph;
}

/** Import cycles (code and type-only imports alike) through a module of the layered folders. */
export function cycles(graph: Graph): string[] {
  const targets = (path: string) => [
    ...new Set(
      (graph.get(path) ?? []).flatMap((i) => [i.code, i.type])
        .filter((t): t is string => t !== undefined && graph.has(t)),
    ),
  ];
  // Tarjan's strongly connected components: every cycle lies inside one.
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of targets(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || targets(v).includes(v)) components.push(component.sort());
    }
  };
  for (const path of [...graph.keys()].sort()) if (!index.has(path)) visit(path);
  return components.filter((c) => c.some((path) => under(path, LAYERED))).map((component) => {
    // The shortest way back to the first module, naming each import as written.
    const start = component[0], members = new Set(component);
    const previous = new Map<string, string>();
    const queue = [start];
    while (queue.length > 0 && !previous.has(start)) {
      const v = queue.shift()!;
      for (const w of targets(v)) {
        if (members.has(w) && !previous.has(w)) {
          previous.set(w, v);
          queue.push(w);
        }
      }
    }
    const path: string[] = [];
    for (let v = previous.get(start)!; v !== start; v = previous.get(v)!) path.unshift(v);
    path.unshift(start);
    const steps = path.map((from, i) => {
      const to = path[(i + 1) % path.length];
      const written = graph.get(from)!.find((d) => d.code === to || d.type === to)!.specifier;
      return `${from} imports "${written}" (${to})`;
    });
    const rest = component.length > path.length ? `; its group: ${component.join(", ")}` : "";
    return `import cycle: ${steps.join(", ")}${rest}`;
  });
}

/** Imports (of code or types) from storage/ in routes/, islands/, components/, lib/dashboard/. */
export function dashboardReachesStorage(graph: Graph): string[] {
  return [...graph].filter(([path]) => under(path, DASHBOARD)).flatMap(([path, imports]) =>
    imports.filter((i) => [i.code, i.type].some((t) => t?.startsWith("storage/"))).map((i) =>
      `${path} imports "${i.specifier}" (${
        i.code ?? i.type
      }): the dashboard reads and writes only through the TaskFlow client and lib/mod.ts`
    )
  );
}

/** Code imports of lib/ from storage/ (only `import type` may reach up). */
export function storageImportsLibCode(graph: Graph): string[] {
  return [...graph].filter(([path]) => path.startsWith("storage/")).flatMap(([path, imports]) =>
    imports.filter((i) => i.code?.startsWith("lib/")).map((i) =>
      `${path} imports "${i.specifier}" (${i.code}) as code: storage/ may import only types from lib/`
    )
  );
}

const FULL = /^(\.{1,2}\/|node:|npm:\/?(@[\w.-]+\/)?[\w.-]+@\d[^/]*(\/|$))/;

/** Specifiers in lib/ and storage/ that only our import map resolves (bare or unversioned). */
export function bareSpecifiers(graph: Graph): string[] {
  return [...graph].filter(([path]) => under(path, ["lib/", "storage/"])).flatMap((
    [path, imports],
  ) =>
    imports.filter((i) => !FULL.test(i.specifier)).map((i) =>
      `${path} imports "${i.specifier}": lib/ and storage/ are imported by URL without our ` +
      `import map, so write a relative path, node:… or npm:name@version`
    )
  );
}

let graph: Promise<Graph> | undefined;
const realGraph = () => graph ??= readGraph();
const report = (found: string[]) => `${found.length} found:\n  ${found.join("\n  ")}`;

Deno.test("layers: the graph holds every module of the layered folders", async () => {
  const modules = await realGraph();
  for (const dir of LAYERED) {
    for await (const path of sources(dir)) assert.ok(modules.has(path), `${path} not in graph`);
  }
  // A sanity check of the reading itself: a known type-only and a known code import.
  const effects = modules.get("storage/effects.ts")!;
  assert.ok(effects.some((i) => i.type === "lib/job.ts" && i.code === undefined));
  assert.ok(modules.get("lib/mod.ts")!.some((i) => i.code === "lib/client.ts"));
});

Deno.test("layers: no import cycle in lib/, storage/, routes/, islands/, components/", async () => {
  const found = cycles(await realGraph());
  assert.deepEqual(found, [], report(found));
});

Deno.test("layers: routes, islands, components and lib/dashboard import nothing from storage/", async () => {
  const found = dashboardReachesStorage(await realGraph());
  assert.deepEqual(found, [], report(found));
});

Deno.test("layers: the dashboard never reaches past the client to its storage", async () => {
  // The graph cannot see `tf.storage.x()`; the source can (`.storage` or `{ storage }` of a client).
  const found: string[] = [];
  for (const dir of DASHBOARD) {
    for await (const path of sources(dir)) {
      const lines = (await Deno.readTextFile(new URL(path, ROOT))).split("\n");
      lines.forEach((line, i) => {
        const code = line.replace(/\/\/.*$|^\s*\*.*$/, "");
        if (/\.storage\b|\{[^}]*\bstorage\b[^}]*\}\s*=/.test(code)) {
          found.push(`${path}:${i + 1}: ${line.trim()}`);
        }
      });
    }
  }
  assert.deepEqual(found, [], report(found));
});

Deno.test("layers: the worker does not construct a client (lib/worker/ never imports lib/client.ts)", async () => {
  const found = [...await realGraph()].filter(([path]) => path.startsWith("lib/worker/"))
    .flatMap(([path, imports]) =>
      imports.filter((i) => i.code === "lib/client.ts").map((i) =>
        `${path} imports "${i.specifier}"`
      )
    );
  assert.deepEqual(found, [], report(found));
});

Deno.test("layers: no file in lib/ or storage/ is over 450 lines", async () => {
  const found: string[] = [];
  for (const dir of ["lib/", "storage/"]) {
    for await (const path of sources(dir)) {
      const lines = (await Deno.readTextFile(new URL(path, ROOT))).split("\n").length - 1;
      if (lines > 450) found.push(`${path}: ${lines} lines`);
    }
  }
  assert.deepEqual(found, [], report(found));
});

Deno.test("layers: storage/ imports only types from lib/", async () => {
  const found = storageImportsLibCode(await realGraph());
  assert.deepEqual(found, [], report(found));
});

Deno.test("layers: lib/ and storage/ use full specifiers, no import-map names", async () => {
  const found = bareSpecifiers(await realGraph());
  assert.deepEqual(found, [], report(found));
});

Deno.test("layers: each rule reports a violation, naming the module and the import", () => {
  const bad: Graph = new Map([
    ["lib/a.ts", [{ specifier: "./b.ts", type: "lib/b.ts" }, {
      specifier: "preact",
      code: "npm:preact@10.29.8",
    }]],
    ["lib/b.ts", [{ specifier: "./a.ts", code: "lib/a.ts" }]],
    ["routes/x.tsx", [{ specifier: "../storage/s.ts", type: "storage/s.ts" }]],
    ["storage/s.ts", [
      { specifier: "../lib/b.ts", code: "lib/b.ts" },
      { specifier: "../lib/a.ts", type: "lib/a.ts" },
      { specifier: "npm:ioredis", code: "npm:ioredis@5.11.1" },
    ]],
  ]);
  assert.deepEqual(cycles(bad), [
    'import cycle: lib/a.ts imports "./b.ts" (lib/b.ts), lib/b.ts imports "./a.ts" (lib/a.ts)',
  ]);
  assert.deepEqual(dashboardReachesStorage(bad).map((m) => m.split(":")[0]), [
    'routes/x.tsx imports "../storage/s.ts" (storage/s.ts)',
  ]);
  assert.deepEqual(storageImportsLibCode(bad).map((m) => m.split(":")[0]), [
    'storage/s.ts imports "../lib/b.ts" (lib/b.ts) as code',
  ]);
  assert.deepEqual(bareSpecifiers(bad).map((m) => m.split(":")[0]), [
    'lib/a.ts imports "preact"',
    'storage/s.ts imports "npm',
  ]);
  const good: Graph = new Map([
    ["lib/a.ts", [
      { specifier: "npm:preact@10.29.8", code: "npm:preact@10.29.8" },
      { specifier: "npm:/preact@10.29.8/hooks", code: "npm:preact@10.29.8/hooks" },
      { specifier: "npm:@preact/signals@2.11.4", code: "npm:@preact/signals@2.11.4" },
      { specifier: "node:path", code: "node:path" },
      { specifier: "../storage/t.ts", code: "storage/t.ts" },
    ]],
    ["storage/s.ts", [{ specifier: "../lib/a.ts", type: "lib/a.ts" }]],
    ["routes/x.tsx", [{ specifier: "../lib/a.ts", code: "lib/a.ts" }]],
  ]);
  for (const check of [cycles, dashboardReachesStorage, storageImportsLibCode, bareSpecifiers]) {
    assert.deepEqual(check(good), [], check.name);
  }
  // A self-import is a cycle too; a cycle wholly outside the layered folders is not ours.
  assert.equal(
    cycles(new Map([["lib/s.ts", [{ specifier: "./s.ts", code: "lib/s.ts" }]]])).length,
    1,
  );
  assert.deepEqual(
    cycles(
      new Map([
        ["bench/a.ts", [{ specifier: "./b.ts", code: "bench/b.ts" }]],
        ["bench/b.ts", [{ specifier: "./a.ts", code: "bench/a.ts" }]],
      ]),
    ),
    [],
  );
});
