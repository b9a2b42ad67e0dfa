/**
 * @module
 * The browser bundle that hydrates islands, built with `Deno.bundle` (at start-up, or ahead of
 * time by `deno task build` where bundling at run time is unavailable, as on Deno Deploy).
 */

import type { Manifest } from "./types.ts";

/** Island names as the page markers and the bundle use them: the file name without extension. */
export function islandName(path: string): string {
  return path.replace(/^.*\//, "").replace(/\.[jt]sx?$/, "");
}

/** The source of the client entry: imports every island and hydrates its markers. */
export function clientEntry(manifest: Manifest): string {
  const names = Object.keys(manifest.islands);
  const imports = names.map((path, i) =>
    `import island${i} from ${JSON.stringify(new URL(path, manifest.baseUrl).href)};`
  );
  const table = names.map((path, i) => `${JSON.stringify(islandName(path))}: island${i}`);
  return `import { h, hydrate } from "npm:preact@10.29.8";
${imports.join("\n")}
const islands = { ${table.join(", ")} };
const data = document.getElementById("tf-islands");
const props = data ? JSON.parse(data.textContent ?? "[]") : [];
for (const element of document.querySelectorAll("[data-tf-island]")) {
  const island = islands[element.getAttribute("data-tf-island")];
  const index = Number(element.getAttribute("data-tf-props"));
  if (island) hydrate(h(island, props[index] ?? {}), element);
}
`;
}

/** Bundles the client entry of `manifest` for the browser; returns the JavaScript. */
export async function buildIslands(manifest: Manifest): Promise<string> {
  const bundle = (Deno as unknown as { bundle?: typeof Deno.bundle }).bundle;
  if (typeof bundle !== "function") {
    throw new Error(
      "Deno.bundle is unavailable (run with --unstable-bundle, or use `deno task build`)",
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "taskflow-islands-" });
  try {
    const entry = `${dir}/entry.js`;
    await Deno.writeTextFile(entry, clientEntry(manifest));
    const result = await bundle({
      entrypoints: [entry],
      platform: "browser",
      format: "esm",
      minify: true,
      write: false,
    });
    const output = result.outputFiles?.[0];
    if (!result.success || !output) {
      throw new Error(`bundling islands failed: ${result.errors.map((e) => e.text).join("; ")}`);
    }
    return output.text();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
