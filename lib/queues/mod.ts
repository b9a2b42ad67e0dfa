/**
 * @module
 * Flow control of queues: stored limits (`tf.queues`), the pure limiter decisions shared by
 * every backend, and the partition key of a job.
 */

export * from "./config.ts";
export * from "./store.ts";
export * from "./limiter.ts";
export * from "./fair.ts";
export * from "./rate.ts";
export * from "./partition.ts";
export * from "./wait.ts";
