/**
 * @module
 * Redis's own counters for a benchmark: CPU seconds used (`INFO cpu`) and commands run
 * (`INFO commandstats`), read on a connection of its own with one inline command.
 */

/**
 * CPU seconds (user + system) Redis has used, and the commands it has run, so far; for a
 * `redis+cluster://` URL summed over the nodes it lists (they all relay the wake-ups).
 */
export async function redisStats(url: string): Promise<{ cpuSeconds: number; calls: number }> {
  const cluster = /^rediss?\+cluster:\/\/([^/?]*)/.exec(url)?.[1];
  const servers = cluster ? cluster.split(",").map((node) => `redis://${node}`) : [url];
  let cpuSeconds = 0, calls = 0;
  for (const server of servers) {
    const text = await info(server);
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(text)?.[1]);
    for (const match of text.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) calls += Number(match[1]);
    cpuSeconds += field("used_cpu_user") + field("used_cpu_sys");
  }
  return { cpuSeconds, calls };
}

/** `INFO cpu` and `INFO commandstats` as one text (RESP bulk replies, read to their length). */
async function info(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port || 6379) });
  try {
    await conn.write(new TextEncoder().encode("INFO cpu\r\nINFO commandstats\r\n"));
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(65_536);
    const decoder = new TextDecoder();
    let text = "";
    while (!complete(text, 2)) {
      const read = await conn.read(buffer);
      if (read === null) break;
      chunks.push(buffer.slice(0, read));
      text = decoder.decode(concat(chunks));
    }
    return text;
  } finally {
    conn.close();
  }
}

/** True once `text` (ASCII, as INFO is) holds `replies` whole bulk replies. */
function complete(text: string, replies: number): boolean {
  let at = 0;
  for (let i = 0; i < replies; i++) {
    const end = text.indexOf("\r\n", at);
    if (end < 0 || text[at] !== "$") return false;
    at = end + 2 + Number(text.slice(at + 1, end)) + 2;
    if (at > text.length) return false;
  }
  return true;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) out.set(chunk, at), at += chunk.length;
  return out;
}
