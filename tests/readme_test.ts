import assert from "node:assert/strict";

/** Runs the first ts example under `heading` in a temporary directory; answers its output. */
async function runExample(
  heading: string,
  check: (dir: string) => Promise<void> = async () => {},
): Promise<{ stdout: string }> {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = readme.slice(readme.indexOf(heading));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, `README has a ts example under ${heading}`);
  const mod = new URL("../lib/mod.ts", import.meta.url).href;
  const dir = await Deno.makeTempDir({ prefix: "taskflow-readme-" });
  try {
    await Deno.writeTextFile(
      `${dir}/example.ts`,
      code.replaceAll('"./lib/mod.ts"', JSON.stringify(mod)),
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-kv", "--no-config", "example.ts"],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    await check(dir);
    return { stdout: new TextDecoder().decode(output.stdout) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the README's library example runs as written", async () => {
  const { stdout } = await runExample("## Library API", async (dir) => {
    assert.ok((await Deno.stat(`${dir}/data/taskflow.sqlite`)).isFile);
  });
  assert.match(stdout, /state: "Enqueued"/);
});

Deno.test("the README is for users: at most 350 lines, the quick start on its first screen", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const lines = readme.split("\n");
  assert.ok(lines.length - 1 <= 350, `README.md has ${lines.length - 1} lines`);
  const quick = lines.findIndex((line) => line === "## Quick start");
  assert.ok(quick >= 0 && quick < 15, "## Quick start opens the README");
  assert.match(lines.slice(quick, 50).join("\n"), /deno task start/);
  assert.match(lines.slice(quick, 50).join("\n"), /deno task test/);
});

Deno.test("the README's workflows example runs as written", async () => {
  const { stdout } = await runExample("### Workflows");
  assert.match(stdout, /^Awaiting 3$/m);
});
