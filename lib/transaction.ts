/**
 * @module
 * The `transaction` option of the create calls: jobs written in the caller's own database
 * transaction, on a storage that can (PostgreSQL), so that they exist if and only if it commits.
 */

import { TransactionNotSupportedError } from "../storage/errors.ts";
import type { JobWriter } from "./create.ts";
import { guard } from "./options.ts";

/**
 * The writer and options of a create call: with a `transaction` option, a writer whose storage
 * writes in that transaction (no group commit: the caller's COMMIT decides), and the options
 * without it; otherwise both unchanged.
 */
export function withTransaction<T>(
  writer: JobWriter,
  options: T,
  where = "options",
): { writer: JobWriter; options: T } {
  let transaction: { value: unknown } | undefined;
  try {
    if (typeof options === "object" && options !== null && Object.hasOwn(options, "transaction")) {
      transaction = { value: (options as { transaction?: unknown }).transaction };
    }
  } catch {
    // Unreadable options: the call's own reading of them reports it, with the usual text.
    return { writer, options };
  }
  if (transaction === undefined) return { writer, options };
  const rest = guard(where, () => {
    const { transaction: _, ...others } = options as Record<string, unknown>;
    return others as T;
  });
  if (transaction.value === undefined) return { writer, options: rest };
  const storage = writer.storage.inTransaction?.(transaction.value);
  if (!storage) throw new TransactionNotSupportedError(writer.storage.address);
  return { writer: { storage, now: writer.now, random: writer.random }, options: rest };
}
