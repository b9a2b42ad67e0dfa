/**
 * @module
 * Which addresses count as loopback (by the IP a name resolves to, never by its spelling) and
 * which `Host` names the dashboard answers, so that a DNS-rebinding page cannot reach it.
 */

import { InvalidOptionError } from "../mod.ts";

/** The dotted-quad bytes of an IPv4 literal, or undefined. */
function ipv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p))) return undefined;
  const bytes = parts.map(Number);
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

/** An IPv6 literal (brackets allowed) without its brackets, lowercased, or undefined. */
function ipv6(text: string): string | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (!bare.includes(":")) return undefined;
  try {
    // URL parsing validates and normalizes (`0:0::1` → `::1`, `::ffff:7f00:1`).
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

/** True when `text` is an IP address literal (IPv4, or IPv6 with or without brackets). */
export function isIpLiteral(text: string): boolean {
  return ipv4(text) !== undefined || ipv6(text) !== undefined;
}

/** True for loopback IP literals: 127.0.0.0/8, ::1 and IPv4-mapped 127.x. */
export function isLoopbackAddress(address: string): boolean {
  const v4 = ipv4(address);
  if (v4) return v4[0] === 127;
  const v6 = ipv6(address);
  if (v6 === undefined) return false;
  if (v6 === "::1") return true;
  const mapped = /^::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}$/.exec(v6);
  return mapped !== null && parseInt(mapped[1], 16) >> 8 === 127;
}

/**
 * The address Deno would bind for `hostname` (resolved the way `Deno.serve` resolves it, by a
 * throwaway listener on port 0), or undefined when it does not resolve or is not local.
 */
export function resolveBindAddress(hostname: string): string | undefined {
  if (isIpLiteral(hostname)) return ipv6(hostname) ?? hostname;
  try {
    const listener = Deno.listen({ hostname, port: 0 });
    const address = (listener.addr as Deno.NetAddr).hostname;
    listener.close();
    return address;
  } catch {
    return undefined;
  }
}

/**
 * True when `hostname` is a loopback address or a name that resolves to one. Decided by the
 * resolved IP: `127.0.0.1.example.com` is loopback only if DNS says so.
 */
export function isLoopback(hostname: string): boolean {
  const address = resolveBindAddress(hostname);
  return address !== undefined && isLoopbackAddress(address);
}

/** Where the dashboard listens and which other names it answers; from flags and environment. */
export interface HostPolicy {
  /** The `--host` the server binds (a name or an address). */
  bindHost: string;
  /** Extra names (`--allowed-hosts`/`TASKFLOW_ALLOWED_HOSTS`); `.example.com` also allows subdomains, `*` any. */
  allowedHosts: readonly string[];
}

/**
 * Parses a comma-separated host list (`TASKFLOW_ALLOWED_HOSTS`): names, IP literals, `.domain`
 * for a domain and its subdomains, or `*`. A port or scheme is a mistake worth naming.
 */
export function parseAllowedHosts(
  text: string,
  option = "--allowed-hosts (TASKFLOW_ALLOWED_HOSTS)",
): string[] {
  const hosts = text.split(",").map((h) => h.trim().toLowerCase()).filter((h) => h !== "");
  for (const host of hosts) {
    const name = host.startsWith(".") ? host.slice(1) : host;
    const ok = host === "*" || isIpLiteral(host) ||
      /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/.test(name);
    if (!ok) {
      throw new InvalidOptionError(
        option,
        host,
        "must be a host name or IP address without scheme or port (e.g. dash.example.com, .example.com, 10.0.0.5)",
      );
    }
  }
  return hosts;
}

/** The lowercased host name of a `Host`-style value (`name:port`, `[v6]:port`), brackets kept. */
export function hostName(hostHeader: string): string {
  const value = hostHeader.trim().toLowerCase();
  if (value.startsWith("[")) return value.slice(0, value.indexOf("]") + 1);
  return value.replace(/:\d*$/, "").replace(/\.$/, "");
}

/**
 * True when the dashboard answers requests for `host` (a host name without port). A page on
 * another name that resolves to us (DNS rebinding) is refused; an IP literal cannot be rebound,
 * so any of our addresses is answered when the bind is a wildcard.
 */
export function hostAllowed(host: string, policy: HostPolicy): boolean {
  const bare = host.startsWith("[") ? host.slice(1, -1) : host;
  const bind = policy.bindHost.toLowerCase();
  const bindBare = bind.startsWith("[") ? bind.slice(1, -1) : bind;
  if (bare === "localhost" || bare.endsWith(".localhost")) return true;
  if (bare === bindBare || (isIpLiteral(bare) && ipv6(bare) === ipv6(bindBare) && ipv6(bare))) {
    return true;
  }
  if (isIpLiteral(bare)) {
    if (isLoopbackAddress(bare)) return true;
    if (bindBare === "0.0.0.0" || ipv6(bindBare) === "::") return true;
  }
  return policy.allowedHosts.some((allowed) =>
    allowed === "*" || allowed === bare ||
    (allowed.startsWith(".") && (bare === allowed.slice(1) || bare.endsWith(allowed)))
  );
}
