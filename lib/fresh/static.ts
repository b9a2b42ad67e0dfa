/**
 * @module
 * Static files from one directory, with no way out of it (`..`, encoded slashes, symlinks).
 */

const TYPES: Record<string, string> = {
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
  json: "application/json",
  woff2: "font/woff2",
};

/** Serves `url`'s path from `dir`, or returns undefined when there is no such file. */
export async function serveStatic(
  req: Request,
  url: URL,
  dir: string,
): Promise<Response | undefined> {
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return undefined;
  }
  const segments = path.split("/").filter(Boolean);
  if (
    segments.some((s) =>
      s === ".." || s === "." || s.includes("\\") || s.includes("\0") || s.startsWith(".")
    )
  ) {
    return undefined;
  }
  const extension = segments.at(-1)?.split(".").pop() ?? "";
  const type = TYPES[extension];
  if (!type) return undefined;
  const file = `${dir}/${segments.join("/")}`;
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(file);
  } catch {
    return undefined;
  }
  if (!info.isFile) return undefined;
  const etag = `W/"${info.size}-${info.mtime?.getTime() ?? 0}"`;
  const headers = { "content-type": type, etag, "cache-control": "public, max-age=300" };
  if (req.headers.get("if-none-match") === etag) {
    return new Response(null, { status: 304, headers });
  }
  const body = req.method === "HEAD" ? null : await Deno.readFile(file);
  return new Response(body, { headers });
}
