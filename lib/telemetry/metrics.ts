/**
 * @module
 * The metric instruments a worker records in-process through `npm:@opentelemetry/api`: queue
 * wait, attempt duration, outcomes, pruned jobs and rate/partition limiter decisions, and the
 * jobs each worker holds, observed when the SDK collects. Without a registered SDK they are the API's no-op instruments.
 */

import {
  type Attributes,
  type Counter,
  type Histogram,
  type MeterProvider,
  metrics,
  type ObservableResult,
} from "npm:@opentelemetry/api@1.10.0";
import { VERSION } from "../version.ts";
import { Memo } from "./memo.ts";
import { SCOPE } from "./trace.ts";

/** The names of TaskFlow's metric instruments. */
export const METRIC_NAMES = {
  wait: "taskflow.job.wait",
  duration: "taskflow.job.duration",
  outcomes: "taskflow.job.outcomes",
  inFlight: "taskflow.worker.in_flight",
  pruned: "taskflow.jobs.pruned",
  limiter: "taskflow.limiter.decisions",
} as const;

/** TaskFlow's instruments on one meter provider. */
export interface Instruments {
  /** Seconds from when a job became due to when an attempt started, per queue. */
  wait: Histogram;
  /** Seconds an attempt's handler ran, per job name and outcome. */
  duration: Histogram;
  /** Attempts ended, per job name and outcome. */
  outcomes: Counter;
  /** Jobs removed by retention, per final state. */
  pruned: Counter;
  /** Jobs a rate or partition limit admitted, and claim turns it refused, per queue. */
  limiter: Counter;
}

// Boundaries in seconds, from a fast no-op job to a long report.
const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

let cached: { provider: MeterProvider; instruments: Instruments } | undefined;

/**
 * The instruments on the global meter provider. A meter does not follow a provider registered
 * after it was made (unlike a tracer), so they are made again when the provider changed.
 */
export function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (cached?.provider === provider) return cached.instruments;
  const meter = provider.getMeter(SCOPE, VERSION);
  const seconds = { unit: "s", advice: { explicitBucketBoundaries: BUCKETS } };
  const made: Instruments = {
    wait: meter.createHistogram(METRIC_NAMES.wait, {
      ...seconds,
      description: "Time from when a job became due to the start of its attempt",
    }),
    duration: meter.createHistogram(METRIC_NAMES.duration, {
      ...seconds,
      description: "Time an attempt's handler ran",
    }),
    outcomes: meter.createCounter(METRIC_NAMES.outcomes, {
      description: "Attempts ended, by outcome (succeeded, retried, failed, ...)",
    }),
    pruned: meter.createCounter(METRIC_NAMES.pruned, {
      description: "Finished jobs removed by retention",
    }),
    limiter: meter.createCounter(METRIC_NAMES.limiter, {
      description: "Jobs a queue's rate or partition limit admitted, and claims it refused",
    }),
  };
  // Read when the SDK collects, not counted per job: a worker's running jobs are at hand.
  meter.createObservableUpDownCounter(METRIC_NAMES.inFlight, {
    description: "Jobs a worker holds now (running, or writing their outcome)",
  }).addCallback(observeInFlight);
  cached = { provider, instruments: made };
  return made;
}

// One attribute object per queue, and per job name and outcome, instead of one per attempt.
const byQueue = new Memo<string, Attributes>((queue) => ({ "messaging.destination.name": queue }));
const byName = new Memo((name: string) =>
  new Memo<string, Attributes>((outcome) => ({
    "taskflow.job.name": name,
    "taskflow.job.outcome": outcome,
  }))
);

/** The attributes of queue `queue`'s wait measurements. */
export function queueAttributes(queue: string): Attributes {
  return byQueue.get(queue);
}

/** The attributes of the duration and outcome measurements of an attempt of job `name`. */
export function outcomeAttributes(name: string, outcome: string): Attributes {
  return byName.get(name).get(outcome);
}

/** The workers whose jobs in flight are reported: id → how many it holds now. */
const inFlight = new Map<string, () => number>();

function observeInFlight(result: ObservableResult): void {
  for (const [id, held] of inFlight) result.observe(held(), { "taskflow.worker.id": id });
}

/** Reports worker `id`'s jobs in flight (`held()`) until the returned function is called. */
export function reportInFlight(id: string, held: () => number): () => void {
  inFlight.set(id, held);
  return () => {
    if (inFlight.get(id) === held) inFlight.delete(id);
  };
}
