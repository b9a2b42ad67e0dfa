/**
 * @module
 * Credentials out of text: every `scheme://user:password@` in a message or log line loses its
 * user part, also in mistyped URLs that no parser accepts (`reddis://…`, an unescaped `/` in
 * the password), which is exactly when they get printed.
 */

/**
 * A URL-looking run of text: a scheme, `//`, then everything up to whitespace. The user part
 * ends at the run's LAST `@`, because a mistyped password may hold `/`, `?`, `#` or `@`.
 */
const URL_RUN = /\b([a-z][a-z0-9+.-]*:\/\/)(\S*@)/gi;

/** Placeholder for removed credentials. */
export const REDACTED = "***";

/**
 * `text` with the credentials of every URL in it replaced by `***`
 * (`redis://user:pw@host:6379` → `redis://***@host:6379`).
 */
export function redact(text: string): string {
  return text.replace(URL_RUN, (_, scheme: string) => `${scheme}${REDACTED}@`);
}
