/**
 * @module
 * The doctor: checks that every listed job's record is readable and equals the fold of its
 * events, and that counters equal index sizes. It reads only; `rebuild` repairs what the event
 * logs can repair.
 */

import type { Storage } from "../storage/storage.ts";
import type { JobRecord } from "./job.ts";
import { fold } from "./projection.ts";
import { STATES } from "./states.ts";

/** One problem found, about one job (or `"counters"`). */
export interface Finding {
  id: string;
  problem: string;
}

/** What the doctor found. */
export interface DoctorReport {
  /** Jobs examined (listed in a state index). */
  jobs: number;
  findings: Finding[];
}

/** Examines every job and counter of `storage`. */
export async function doctor(storage: Storage): Promise<DoctorReport> {
  const findings: Finding[] = [];
  const listed: Record<string, number> = {};
  let jobs = 0;
  for (const state of STATES) {
    listed[state] = 0;
    let cursor: string | undefined;
    do {
      const page = await storage.list({ state, cursor, limit: 500 });
      jobs += page.jobs.length;
      listed[state] += page.jobs.length;
      // A page's jobs are examined together: their event reads overlap.
      const problems = await Promise.all(page.jobs.map((job) => examine(storage, job, state)));
      page.jobs.forEach((job, i) => {
        if (problems[i]) findings.push({ id: job.id, problem: problems[i]! });
      });
      cursor = page.cursor;
    } while (cursor);
  }
  const counts = await storage.counts();
  for (const state of STATES) {
    if (counts.states[state] !== listed[state]) {
      findings.push({
        id: "counters",
        problem: `${state}: the counter says ${counts.states[state]}, the index lists ${
          listed[state]
        } readable jobs`,
      });
    }
  }
  return { jobs, findings };
}

/** What is wrong with a job as its state index listed it (listings hold readable records). */
async function examine(
  storage: Storage,
  record: JobRecord,
  state: string,
): Promise<string | undefined> {
  if (record.state !== state) return `listed under ${state} but its record says ${record.state}`;
  try {
    const events = await storage.events(record.id);
    if (events.length === 0) return "its event log is missing";
    const folded = fold(record.id, events);
    const differing = Object.keys({ ...folded, ...record }).filter((key) =>
      JSON.stringify((folded as unknown as Record<string, unknown>)[key]) !==
        JSON.stringify((record as unknown as Record<string, unknown>)[key])
    );
    if (differing.length) return `its record differs from its events in ${differing.join(", ")}`;
  } catch (error) {
    return `cannot be read: ${(error as Error).message}`;
  }
  return undefined;
}
