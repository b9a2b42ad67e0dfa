/**
 * @module
 * What every dashboard route finds in `ctx.state`.
 */

import type { TaskFlow } from "../client.ts";
import type { LiveHub } from "./hub.ts";
import type { SecurityConfig } from "./security.ts";

/** Per-request state set up by `routes/_middleware.ts`. */
export interface DashboardState {
  /** The client: routes read and write only through its calls, as any user of the API would. */
  tf: TaskFlow;
  hub: LiveHub;
  security: SecurityConfig;
  /** How the request authenticated (`none` when no password or token is set). */
  via: "none" | "basic" | "bearer" | "session" | "query";
  /** This browser's CSRF token, for the hidden field of every action form. */
  csrf: string;
  /** Deploy mode only: runs due and ready jobs now (the cron's work, on demand). */
  drain?: () => Promise<unknown>;
}
