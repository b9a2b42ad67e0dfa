/**
 * @module
 * Opaque page cursors for backends that page by index key, and the one error for a bad cursor.
 */

import { InvalidOptionError } from "./errors.ts";

/** The index key a cursor carries: strings and numbers, in order. */
export type CursorKey = readonly (string | number)[];

/** Encodes the last index key of a page as an opaque, URL-safe cursor. */
export function encodeCursor(key: CursorKey): string {
  return btoa(JSON.stringify(key)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Decodes a cursor made by {@link encodeCursor}; throws a typed error on anything else. */
export function decodeCursor(cursor: string): CursorKey {
  try {
    const key = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/")));
    if (Array.isArray(key) && key.every((k) => typeof k === "string" || typeof k === "number")) {
      return key;
    }
  } catch {
    // fall through to the typed error
  }
  throw badCursor(cursor);
}

/** The error for a cursor that no listing of this storage returned (same text on every backend). */
export function badCursor(cursor: string): InvalidOptionError {
  return new InvalidOptionError("cursor", cursor, "is not a cursor this storage returned");
}

/**
 * Deno KV's own list cursor from one of ours: wrapped, because KV accepts some strings no listing
 * returned. Undefined for the first page.
 */
export function unwrapKvCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const key = decodeCursor(cursor);
  if (key.length !== 1 || typeof key[0] !== "string") throw badCursor(cursor);
  return key[0];
}
