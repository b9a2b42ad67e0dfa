/**
 * @module
 * Job states and the one table of allowed transitions. No other code decides whether a job may
 * move from one state to another; the dashboard's buttons are derived from this table too.
 */

/** Every state a job can be in, named as Hangfire names them. */
export const STATES = [
  "Scheduled",
  "Enqueued",
  "Awaiting",
  "Processing",
  "Succeeded",
  "Failed",
  "Deleted",
] as const;

/** A job state. */
export type State = typeof STATES[number];

/** States a job stays in until someone acts on it: no worker will move it on by itself. */
export const FINAL_STATES: readonly State[] = ["Succeeded", "Failed", "Deleted"];

/**
 * Allowed transitions: `TRANSITIONS[from]` lists the states a job may enter from `from`;
 * `TRANSITIONS.new` lists the states a job may be created in.
 *
 * - Processing → Enqueued: lease expired (server died), server shutdown, or manual requeue.
 * - Processing → Scheduled: a retry after a failed attempt.
 * - Succeeded/Failed/Deleted → Enqueued: manual requeue.
 * - Awaiting → Scheduled: dependencies done, a scheduled job waits for its time.
 * - Awaiting → Failed: a dependency failed (`onDependencyFailure: "fail"`).
 */
export const TRANSITIONS: Readonly<Record<State | "new", readonly State[]>> = {
  new: ["Enqueued", "Scheduled", "Awaiting"],
  Scheduled: ["Enqueued", "Deleted"],
  Enqueued: ["Processing", "Deleted"],
  Awaiting: ["Enqueued", "Deleted", "Scheduled", "Failed"],
  Processing: ["Succeeded", "Failed", "Scheduled", "Enqueued", "Deleted"],
  Succeeded: ["Enqueued", "Deleted"],
  Failed: ["Enqueued", "Deleted"],
  Deleted: ["Enqueued"],
};

/** True when the table allows a job in `from` (null: not yet created) to enter `to`. */
export function canTransition(from: State | null, to: State): boolean {
  return TRANSITIONS[from ?? "new"].includes(to);
}

/** Operator actions offered on jobs, and the state each one moves a job into. */
export const ACTIONS = {
  requeue: "Enqueued",
  delete: "Deleted",
} as const satisfies Record<string, State>;

/** An operator action name. */
export type Action = keyof typeof ACTIONS;

/** The actions the transition table allows on a job in `state`. */
export function allowedActions(state: State): Action[] {
  return (Object.keys(ACTIONS) as Action[]).filter((a) => canTransition(state, ACTIONS[a]));
}

/** True when `value` is one of {@link STATES}. */
export function isState(value: unknown): value is State {
  return typeof value === "string" && (STATES as readonly string[]).includes(value);
}
