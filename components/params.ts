/**
 * @module
 * Reading and checking query parameters and form fields. A bad value throws
 * InvalidOptionError, which the middleware answers with 400.
 */

import { InvalidOptionError } from "../lib/mod.ts";
import { type Action, isState, type State, STATES } from "../lib/states.ts";
import { formAction, JOB_ACTIONS } from "../lib/dashboard/actions.ts";

/** The page size from `?limit=` (default 50, 1–500). */
export function limitParam(url: URL): number {
  const text = url.searchParams.get("limit");
  if (text === null) return 50;
  const n = Number(text);
  if (!/^\d{1,4}$/.test(text) || n < 1 || n > 500) {
    throw new InvalidOptionError("limit", text, "must be a whole number from 1 to 500");
  }
  return n;
}

/** The page number shown from `?page=` (1–1,000,000). */
export function pageParam(url: URL): number {
  const text = url.searchParams.get("page");
  if (text === null) return 1;
  const n = Number(text);
  if (!/^\d{1,7}$/.test(text) || n < 1) {
    throw new InvalidOptionError("page", text, "must be a whole number from 1 to 9999999");
  }
  return n;
}

/** `?select=all` (every row's box checked, the select-all without JavaScript); else false. */
export function selectParam(url: URL): boolean {
  const text = url.searchParams.get("select");
  if (text === null) return false;
  if (text === "all") return true;
  throw new InvalidOptionError("select", text, "must be all");
}

/** A state from a URL segment (`failed` → `Failed`), or undefined. */
export function stateParam(segment: string): State | undefined {
  const state = STATES.find((s) => s.toLowerCase() === segment.toLowerCase());
  return isState(state) ? state : undefined;
}

/** A job action name from a form: one of an explicit list (never a property lookup). */
export function actionParam(value: FormDataEntryValue | null): Action {
  return formAction(value, JOB_ACTIONS);
}
