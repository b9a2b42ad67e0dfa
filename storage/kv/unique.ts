/**
 * @module
 * Unique keys on Deno KV: `unique/<key>` holds the id of the job holding the key. A create
 * commit's claim checks the entry's versionstamp in the commit's atomic (null when it expects
 * no holder, so a free key costs no read) and sets it to the new job's id.
 */

import type { Change, Commit } from "../storage.ts";
import type { Key, KeyOf } from "./projections.ts";

/** A unique key's stored holder and the versionstamp it was read at (null: absent). */
export interface UniqueEntry {
  holder: string | null;
  versionstamp: string | null;
}

/** The unique keys `change` claims (usually none). */
export function claimsOf(change: Change): string[] {
  const keys: string[] = [];
  for (const commit of change.commits) if (commit.unique) keys.push(commit.unique.key);
  return keys;
}

/**
 * The entries of the keys claimed by `commits`: read from the database for claims expecting a
 * holder (or all, with `all`); a claim expecting none is taken at its word, its atomic's check
 * of a null versionstamp proves it.
 */
export async function readClaims(
  kv: Deno.Kv,
  key: KeyOf,
  commits: readonly Commit[],
  all = false,
): Promise<Map<string, UniqueEntry>> {
  const entries = new Map<string, UniqueEntry>();
  const read: string[] = [];
  for (const { unique } of commits) {
    if (!unique) continue;
    if (all || unique.holder !== null) read.push(unique.key);
    else entries.set(unique.key, { holder: null, versionstamp: null });
  }
  for (let i = 0; i < read.length; i += 10) {
    const keys = read.slice(i, i + 10).map((k) => key("unique", k));
    for (const entry of await kv.getMany<string[]>(keys)) {
      entries.set(entry.key[entry.key.length - 1] as string, {
        holder: entry.value,
        versionstamp: entry.versionstamp,
      });
    }
  }
  return entries;
}

/** True when `commit` claims a key whose holder is not the one it expects. */
export function claimRefused(commit: Commit, entries: Map<string, UniqueEntry>): boolean {
  const unique = commit.unique;
  return unique !== undefined && (entries.get(unique.key)?.holder ?? null) !== unique.holder;
}

/** Adds `commit`'s claim (if any) to `atomic`: checked at the entry read, set to the job. */
export function claim(
  atomic: Deno.AtomicOperation,
  key: KeyOf,
  commit: Commit,
  entries: Map<string, UniqueEntry>,
): void {
  if (!commit.unique) return;
  const stored: Key = key("unique", commit.unique.key);
  const versionstamp = entries.get(commit.unique.key)?.versionstamp ?? null;
  atomic.check({ key: stored, versionstamp }).set(stored, commit.id);
}
