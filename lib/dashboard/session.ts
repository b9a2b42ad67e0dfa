/**
 * @module
 * Browser sessions after `?token=`: the cookie carries an expiry and an HMAC of it and the token
 * under a key that lives only in this process, so it never reveals the token, is worthless to
 * other services on the same host, and ends when the dashboard restarts.
 */

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Cookie a browser gets after opening the dashboard with `?token=`. */
export const SESSION_COOKIE = "tf_session";
/** How long a session lasts (12 hours); then `?token=` again. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1_000;

const KEY = randomBytes(32);

function mac(expires: number, token: string): Buffer {
  return createHmac("sha256", KEY).update(`tf-session\n${expires}\n${token}`).digest();
}

/** A new session cookie value for `token`, valid for {@link SESSION_TTL_MS} from `now`. */
export function newSession(token: string, now = Date.now()): string {
  const expires = now + SESSION_TTL_MS;
  return `${expires.toString(36)}.${mac(expires, token).toString("base64url")}`;
}

/** Whether a session cookie value is valid for `token` at `now`. */
export function checkSession(
  value: string,
  token: string,
  now = Date.now(),
): "ok" | "expired" | "invalid" {
  const match = /^([0-9a-z]{1,12})\.([\w-]{43})$/.exec(value);
  if (!match) return "invalid";
  const expires = parseInt(match[1], 36);
  const given = Buffer.from(match[2], "base64url");
  const expected = mac(expires, token);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "invalid";
  return expires > now ? "ok" : "expired";
}

/** The cookie attributes: `Secure` when the browser talks to us over HTTPS. */
export function cookieAttributes(secure: boolean, sameSite: "Strict" | "Lax", maxAgeS?: number) {
  return `Path=/; HttpOnly; SameSite=${sameSite}${secure ? "; Secure" : ""}${
    maxAgeS === undefined ? "" : `; Max-Age=${maxAgeS}`
  }`;
}
