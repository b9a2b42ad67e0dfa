/**
 * @module
 * The release of TaskFlow this code is, printed by `main.ts --version`.
 */

/** TaskFlow's version (semver), e.g. to log next to a job's outcome or to check in a health probe. */
export const VERSION = "0.18.0";
