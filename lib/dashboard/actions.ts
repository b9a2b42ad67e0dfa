/**
 * @module
 * Form actions are names from an explicit list; anything else (`toString`, `__proto__`, a
 * typo) is refused with a 400 before it can reach a lookup table.
 */

import { InvalidOptionError } from "../mod.ts";
import type { Action } from "../states.ts";

/** The operator actions on jobs (job page and bulk), as the transition table names them. */
export const JOB_ACTIONS = ["requeue", "delete"] as const satisfies readonly Action[];

/** `value` when it is one of `allowed`; otherwise an InvalidOptionError naming the list. */
export function formAction<const A extends string>(
  value: FormDataEntryValue | null,
  allowed: readonly A[],
): A {
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) {
    return value as A;
  }
  throw new InvalidOptionError(
    "action",
    typeof value === "string" ? value : value === null ? null : "(a file)",
    `must be one of ${allowed.join(", ")}`,
  );
}
