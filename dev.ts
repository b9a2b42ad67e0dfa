/**
 * @module
 * Development entry: regenerates `fresh.gen.ts` from routes/ and islands/, then (unless
 * `--manifest`) runs `main.ts start` with `--watch`.
 */

import { generateManifest } from "./lib/fresh/manifest.ts";

const root = new URL(".", import.meta.url).pathname.replace(/\/$/, "");

/** Writes `fresh.gen.ts` if it changed; returns true when it did. */
export async function writeManifest(): Promise<boolean> {
  const text = await generateManifest(root);
  const path = `${root}/fresh.gen.ts`;
  const current = await Deno.readTextFile(path).catch(() => "");
  if (current === text) return false;
  await Deno.writeTextFile(path, text);
  return true;
}

if (import.meta.main) {
  const changed = await writeManifest();
  console.log(changed ? "fresh.gen.ts regenerated" : "fresh.gen.ts is up to date");
  if (!Deno.args.includes("--manifest")) {
    const args = Deno.args.filter((a) => a !== "--manifest");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--watch", `${root}/main.ts`, "start", ...args],
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    Deno.exit((await child.status).code);
  }
}
