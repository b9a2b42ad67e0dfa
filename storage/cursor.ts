/**
 * @module
 * Opaque page cursors for backends that page by index key.
 */

import { InvalidOptionError } from "./errors.ts";
import type { Tuple } from "./sorted.ts";

/** Encodes the last index key of a page as an opaque, URL-safe cursor. */
export function encodeCursor(key: Tuple): string {
  return btoa(JSON.stringify(key)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Decodes a cursor made by {@link encodeCursor}; throws a typed error on anything else. */
export function decodeCursor(cursor: string): Tuple {
  try {
    const key = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/")));
    if (Array.isArray(key) && key.every((k) => typeof k === "string" || typeof k === "number")) {
      return key;
    }
  } catch {
    // fall through to the typed error
  }
  throw new InvalidOptionError("cursor", cursor, "is not a cursor this storage returned");
}
