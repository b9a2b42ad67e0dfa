/**
 * @module
 * The typed error for a storage call that failed below TaskFlow (a client library, a socket, a
 * database file): one {@link StorageUnavailableError} naming the address and the cause's text.
 */

import { StorageUnavailableError, TaskFlowError } from "./errors.ts";

/** The text of anything thrown. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * `error` as a {@link StorageUnavailableError} of the storage at `address` (a TaskFlow error
 * passes unchanged); `text` replaces the cause's own text when given.
 */
export function unavailable(address: string, error: unknown, text?: string): Error {
  if (error instanceof TaskFlowError) return error;
  return new StorageUnavailableError(address, text ?? message(error), error);
}

/** The error of a call on a storage that was closed. */
export function closedStorage(address: string): StorageUnavailableError {
  return new StorageUnavailableError(address, "the storage was closed");
}
