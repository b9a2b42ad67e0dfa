/**
 * @module
 * The dashboard in-process, for tests: memory storage, a clock moved by hand, and `get(path)`.
 */

import { TaskFlow } from "../lib/client.ts";
import { createDashboard } from "../lib/dashboard/app.ts";
import { TestClock } from "./helpers.ts";

const ORIGIN = "http://127.0.0.1:8000";

/** A page the dashboard answered: its status and body. */
export interface Page {
  status: number;
  text: string;
}

/** A dashboard on memory storage with a {@link TestClock}; `close` stops the dashboard only. */
export async function dashboardSetup(): Promise<{
  clock: TestClock;
  tf: TaskFlow;
  get: (path: string) => Promise<Page>;
  close: () => void;
}> {
  const clock = new TestClock();
  const tf = await TaskFlow.open("memory:", { now: clock.now });
  // Interval 0: every page reads the hub afresh, so each assertion sees the storage as it is.
  const dashboard = createDashboard({ tf, liveIntervalMs: 0 });
  const get = async (path: string) => {
    const response = await dashboard.handler(new Request(`${ORIGIN}${path}`));
    return { status: response.status, text: await response.text() };
  };
  return { clock, tf, get, close: () => dashboard.close() };
}
