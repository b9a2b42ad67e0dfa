/**
 * @module
 * A client's create calls as middleware and traces see them: the jobs of each call (copies the
 * middleware may change, written back into the call's input), inside the call's PRODUCER span.
 */

import type { EnqueueItem, EnqueueOptions, JobRef } from "../create.ts";
import type { FlowIds, FlowNode } from "../workflows/flow.ts";
import { producing } from "../telemetry/trace.ts";
import { InvalidOptionError } from "../../storage/errors.ts";
import { type CreateCall, type CreateJob, type CreateMiddleware, runChain } from "./mod.ts";

/** The name of a job reference, or "?" for what is not one (the write refuses it later). */
export function nameOf(job: unknown): string {
  if (typeof job === "string") return job;
  try {
    const name = (job as { name?: unknown } | null)?.name;
    return typeof name === "string" ? name : "?";
  } catch {
    return "?"; // a hostile getter: the write names the problem
  }
}

/**
 * One job of a call as middleware sees it; `copy` (there is middleware) copies its options, so
 * a middleware changing them never changes the caller's object. Options that are not an object
 * are kept as given, for the write to refuse.
 */
export function jobOf(job: JobRef, args: unknown, options: unknown, copy = true): CreateJob {
  let given = options ?? {};
  try {
    if (copy && typeof options === "object" && !Array.isArray(options)) given = { ...options };
  } catch {
    given = options!; // a revoked proxy, a throwing getter: the write refuses it
  }
  return { name: nameOf(job), args, options: given as Record<string, unknown> };
}

/**
 * Runs a create call: inside its PRODUCER span, through `chain`, `write` innermost; `ids`
 * lists the ids of its result in the order of `jobs`.
 */
export function creating<T>(
  chain: readonly CreateMiddleware[],
  call: CreateCall,
  parts: { jobs: CreateJob[]; write: () => Promise<T>; ids: (result: T) => string[] },
): Promise<T> {
  const { jobs, write, ids } = parts;
  const names = new Set(jobs.map((job) => job.name));
  const name = call === "flow" || names.size === 1 ? jobs[0]?.name ?? "?" : "jobs";
  return producing(call, name, async () => {
    if (!chain.length) return await write();
    let result: { value: T } | undefined;
    await runChain(chain, { call, jobs }, async () => {
      const value = await write();
      result = { value };
      return ids(value);
    });
    if (!result) {
      throw new InvalidOptionError(
        "middleware",
        call,
        "resolved without calling next() or throwing",
      );
    }
    return result.value;
  }, (span, result) => {
    const list = ids(result);
    span.setAttribute("messaging.batch.message_count", list.length);
    if (list.length === 1) span.setAttribute("messaging.message.id", list[0]);
  });
}

/** The items of `enqueueMany` or a batch as jobs, and the items rebuilt from them. */
export function itemJobs(
  items: readonly EnqueueItem[],
  copy = true,
): { jobs: CreateJob[]; items: () => EnqueueItem[] } {
  let jobs: (CreateJob | null)[];
  try {
    jobs = [...items].map((item) =>
      item !== null && typeof item === "object"
        ? jobOf(item.job, item.args, item.options, copy)
        : null
    );
  } catch {
    // Not an array, a hostile item: the write refuses it with the call's own message.
    return { jobs: [], items: () => items as EnqueueItem[] };
  }
  return {
    jobs: jobs.filter((job): job is CreateJob => job !== null),
    items: () =>
      items.map((item, i) => {
        const job = jobs[i];
        return job ? { ...item, args: job.args, options: job.options as EnqueueOptions } : item;
      }),
  };
}

/** A flow's nodes as jobs (depth first, root first), and the tree rebuilt from them. */
export function flowJobs(root: FlowNode): { jobs: CreateJob[]; tree: () => FlowNode } {
  try {
    return readFlow(root);
  } catch {
    // A hostile node: the write refuses it with the flow's own message.
    return { jobs: [], tree: () => root };
  }
}

function readFlow(root: FlowNode): { jobs: CreateJob[]; tree: () => FlowNode } {
  const jobs: CreateJob[] = [];
  const copies = new Map<FlowNode, { job: CreateJob; children: FlowNode[] }>();
  // Without recursion: a flow may be a chain thousands of nodes deep.
  const stack: unknown[] = [root];
  while (stack.length) {
    const node = stack.pop() as FlowNode;
    if (node === null || typeof node !== "object" || copies.has(node)) continue;
    const job = jobOf(node.job, node.args, node.options);
    const children = Array.isArray(node.children) ? node.children : [];
    jobs.push(job);
    copies.set(node, { job, children });
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  const tree = () => {
    const outs = new Map<FlowNode, FlowNode>();
    for (const [node, { job }] of copies) {
      outs.set(node, { ...node, args: job.args, options: job.options as EnqueueOptions });
    }
    for (const [node, out] of outs) {
      if (Array.isArray(node.children)) out.children = node.children.map((c) => outs.get(c) ?? c);
    }
    return outs.get(root) ?? root;
  };
  return { jobs, tree };
}

/** The ids of a created flow, depth first, root first (the order of {@link flowJobs}). */
export function flowIdList(ids: FlowIds): string[] {
  const out: string[] = [];
  const stack = [ids];
  while (stack.length) {
    const node = stack.pop()!;
    out.push(node.id);
    for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]);
  }
  return out;
}
