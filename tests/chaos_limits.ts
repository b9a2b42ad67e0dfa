/**
 * @module
 * The chaos run with a queue limit on (issue 21 point 4): a queue `limited` at a global
 * concurrency, served first by every worker, its jobs among the kills. Afterwards the run log
 * shows at most that many of its handlers running at once, except runs whose lease expired
 * while their worker lived on (the limit counts starts, not handler time after a reap).
 */

import type { TaskFlow } from "../lib/client.ts";
import type { JobEvent } from "../lib/events.ts";
import { mostAtOnce } from "./flow_suite.ts";

/** The limited queue of a chaos run. */
export interface ChaosLimits {
  /** Its global concurrency. */
  concurrency: number;
  /** Jobs enqueued into it. */
  jobs: number;
}

/** The limited queue's name. */
export const LIMITED_QUEUE = "limited";

/** The queues a chaos worker serves when a limit is on: the limited one first. */
export function limitedQueues(limits: ChaosLimits | undefined): string[] | undefined {
  return limits ? [LIMITED_QUEUE, "default"] : undefined;
}

/** Sets the limit (before any worker starts, so each one's first read of the limits has it). */
export async function configureLimits(tf: TaskFlow, limits: ChaosLimits): Promise<void> {
  await tf.queues.configure(LIMITED_QUEUE, { concurrency: limits.concurrency });
}

/** Enqueues the limited queue's jobs (the chaos mix of durations); their ids. */
export async function enqueueLimited(
  tf: TaskFlow,
  limits: ChaosLimits,
  random: () => number,
): Promise<string[]> {
  return await tf.enqueueMany(Array.from({ length: limits.jobs }, () => ({
    job: "chaos.work",
    args: { ms: random() < 0.8 ? Math.floor(random() * 20) : 50 + Math.floor(random() * 250) },
    options: { queue: LIMITED_QUEUE },
  })));
}

/** The run log's line marking a worker's kill (written by the chaos driver once it is dead). */
export function killLine(pid: number): string {
  return `kill ${pid}\n`;
}

/** What the run log says about the limited queue. */
export interface LimitsFinding {
  /** The most of its handlers running at once, runs whose lease expired left out. */
  mostAtOnce: number;
  /** Its runs reaped while their worker lived (lease expired): not held to the limit. */
  leaseExpiredRuns: number;
  problems: string[];
}

/**
 * Checks the limit of `limits` over the run log `lines` ("start <id> <pid>", "end <id> <pid>", "kill
 * <pid>"). A run ends at its "end", else at its worker's kill, else with the log (counted as
 * running to the end). A run is left out when the job's log shows its claim reaped while the
 * claiming worker was not killed.
 */
export async function checkLimits(
  limits: ChaosLimits,
  how: {
    lines: readonly string[];
    /** The limited queue's jobs. */
    ids: readonly string[];
    killed: ReadonlySet<number>;
    /** A job's log (from its archive once pruned). */
    events: (id: string) => Promise<JobEvent[]>;
  },
): Promise<LimitsFinding> {
  const limited = new Set(how.ids);
  const expired = new Set<string>();
  for (const id of limited) expiredRuns(id, await how.events(id), how.killed, expired);
  const open = new Map<string, number>();
  const spans: [number, number][] = [];
  let leaseExpiredRuns = 0;
  const close = (run: string, at: number) => {
    const start = open.get(run)!;
    open.delete(run);
    if (expired.has(run)) leaseExpiredRuns++;
    else spans.push([start, at]);
  };
  how.lines.forEach((line, at) => {
    const [kind, a, b] = line.split(" ");
    if (kind === "kill") {
      for (const run of [...open.keys()]) if (run.endsWith(` ${a}`)) close(run, at);
    } else if ((kind === "start" || kind === "end") && limited.has(a)) {
      const run = `${a} ${b}`;
      if (kind === "start") open.set(run, at);
      else if (open.has(run)) close(run, at);
    }
  });
  for (const run of [...open.keys()]) close(run, how.lines.length);
  const most = mostAtOnce(spans);
  const problems = most > limits.concurrency
    ? [`${most} jobs of queue ${LIMITED_QUEUE} ran at once, over its limit ${limits.concurrency}`]
    : [];
  if (spans.length < limited.size) {
    problems.push(`only ${spans.length} of ${limited.size} limited jobs have a run in the log`);
  }
  return { mostAtOnce: most, leaseExpiredRuns, problems };
}

/** Adds to `out` the runs (`<id> <pid>`) of job `id` reaped while their worker lived. */
function expiredRuns(
  id: string,
  events: readonly JobEvent[],
  killed: ReadonlySet<number>,
  out: Set<string>,
): void {
  const states = events.filter((e) => e.type === "state");
  states.forEach((event, i) => {
    if (event.type !== "state" || event.state !== "Processing") return;
    const pid = Number((event.data?.serverId as string | undefined)?.split(":").at(-2));
    const next = states[i + 1];
    if (next?.type === "state" && next.state === "Enqueued" && !killed.has(pid)) {
      out.add(`${id} ${pid}`);
    }
  });
}
