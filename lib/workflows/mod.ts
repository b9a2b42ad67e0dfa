/**
 * @module
 * Workflows: jobs that wait for others (`dependsOn`), flows of them, and their release.
 */

export { enqueueAfter as after, enqueueManyAfter, hasDependencies as waits } from "./depend.ts";
export { createFlow, type FlowIds, type FlowNode, type FlowRecord } from "./flow.ts";
export { type FlowStatus, flowStatus, listFlows } from "./status.ts";
