/**
 * @module
 * Flows: a tree of jobs (any DAG through `dependsOn` and custom ids) where each node waits for
 * its children. Written like batches: the flow record is stored "creating", every node is
 * created staged (Awaiting, never released), children first; then the record is opened and
 * the nodes unstaged, roots first, leaves last. A producer that dies before opening leaves
 * nothing runnable; one that dies after is finished by the workers' sweep (`settleFlows`).
 */

import type { Change, Commit, RecurringRecord, Storage } from "../../storage/storage.ts";
import {
  ConflictError,
  DependencyNotFoundError,
  InvalidOptionError,
  JobExistsError,
} from "../../storage/errors.ts";
import { backoff, MAX_TRIES, withContinuations } from "../changes.ts";
import { appendCommit } from "../commits.ts";
import {
  type EnqueueOptions,
  type JobRef,
  type JobWriter,
  MAX_CONTINUATIONS,
  type PreparedJob,
  prepareJob,
  refuseTaken,
} from "../create.ts";
import { type JobRecord, readJobOptions } from "../job.ts";
import { guard, readOptions } from "../options.ts";
import {
  checkRoom,
  type Dependencies,
  DEPENDENCY_OPTIONS,
  dependentCommit,
  readDependencies,
} from "./depend.ts";
import { releaseEvent } from "./release.ts";

/** Most jobs in one flow. */
export const MAX_FLOW = 10_000;

/** Reason a flow node shows while its flow is being written. */
export const FLOW_STAGED = "waiting for its flow to be created";

/**
 * One node of a flow: a job, and the nodes it waits for (`children`, created before it; their
 * results are its `ctx.dependencies()`).
 */
export interface FlowNode {
  /** The job: its definition or its name. */
  job: JobRef;
  /** Its arguments (JSON). */
  args: unknown;
  /** Its options; `dependsOn` may name other nodes of the flow by their custom `id`. */
  options?: EnqueueOptions;
  /** The nodes it waits for. */
  children?: FlowNode[];
}

/** The ids of a created flow, in the shape of its nodes. */
export interface FlowIds {
  /** The node's job id (the root's is the flow's id). */
  id: string;
  /** Its children's ids, in order. */
  children: FlowIds[];
}

/** A stored flow. */
export interface FlowRecord extends RecurringRecord {
  /** creating: nodes being written (none runs); open: written, released or being released. */
  state: "creating" | "open";
  /** Every node was unstaged. */
  released: boolean;
  /** Jobs in the flow. */
  total: number;
  /** The root's job name. */
  name: string;
  /** When the flow was created (ms since epoch). */
  createdAt: number;
}

interface Node {
  job: PreparedJob;
  deps: Dependencies | undefined;
  children: Node[];
  /** Ids this node waits for: its children's, then its own `dependsOn`. */
  waitsFor: string[];
}

/** Reads and prepares the tree under `value` (nothing is written). */
function readTree(writer: JobWriter, value: unknown): { root: Node; nodes: Node[] } {
  const nodes: Node[] = [];
  const read = (value: unknown, where: string): { self: Node; list: unknown[] } => {
    const node = readOptions(value, {
      call: "flow",
      where,
      allowed: ["job", "args", "options", "children"],
    });
    if (value === undefined || !("job" in node)) {
      throw new InvalidOptionError(
        where,
        value,
        "must be an object { job, args, options?, children? }",
      );
    }
    if (nodes.length >= MAX_FLOW) {
      throw new InvalidOptionError("flow", MAX_FLOW + 1, `has more than ${MAX_FLOW} nodes`);
    }
    const options = readJobOptions(node.options, {
      call: "flow",
      where: `${where}.options`,
      extra: ["id", "expiresAt", ...DEPENDENCY_OPTIONS],
    });
    const deps = readDependencies(options, `${where}.options`);
    const job = prepareJob(writer, {
      job: node.job as JobRef,
      args: node.args,
      options: node.options as EnqueueOptions,
    }, {
      first: { state: "Awaiting", reason: FLOW_STAGED },
      call: "flow",
      where: `${where}.options`,
      extra: DEPENDENCY_OPTIONS,
    });
    if (deps?.onFailure) job.created.options.onDependencyFailure = deps.onFailure;
    const list = node.children === undefined
      ? []
      : guard(`${where}.children`, () => Array.isArray(node.children) ? [...node.children] : null);
    if (!list) {
      throw new InvalidOptionError(`${where}.children`, node.children, "must be an array of nodes");
    }
    const self: Node = { job, deps, children: [], waitsFor: [] };
    nodes.push(self);
    return { self, list };
  };
  // Depth first without recursion (a 10,000-deep chain must not overflow the stack); a deep
  // node's place is named by its number rather than a path of thousands of steps.
  const root = read(value, "flow");
  const stack = [{ ...root, where: "flow" }];
  while (stack.length) {
    const { self, list, where } = stack.pop()!;
    const children = list.map((child, i) => {
      const at = where.length > 200 ? `flow node ${nodes.length + 1}` : `${where}.children[${i}]`;
      return { ...read(child, at), where: at };
    });
    self.children = children.map((c) => c.self);
    self.waitsFor = [...new Set([...self.children.map((c) => c.job.id), ...self.deps?.ids ?? []])];
    stack.push(...children.reverse());
  }
  return { root: root.self, nodes };
}

/** The nodes children first (a topological order of the flow's own edges); refuses a cycle. */
function childrenFirst(nodes: Node[], byId: Map<string, Node>): Node[] {
  const order: Node[] = [];
  const mark = new Map<string, "open" | "done">();
  for (const start of nodes) {
    if (mark.has(start.job.id)) continue;
    // Iterative depth-first search: a 10,000-deep chain must not overflow the stack.
    const stack: Array<{ node: Node; next: number }> = [{ node: start, next: 0 }];
    mark.set(start.job.id, "open");
    while (stack.length) {
      const top = stack[stack.length - 1];
      const inner = top.node.waitsFor.filter((id) => byId.has(id));
      if (top.next < inner.length) {
        const child = byId.get(inner[top.next++])!;
        const seen = mark.get(child.job.id);
        if (seen === "open") {
          throw new InvalidOptionError("flow", child.job.id, "its dependsOn make a cycle");
        }
        if (!seen) {
          mark.set(child.job.id, "open");
          stack.push({ node: child, next: 0 });
        }
      } else {
        mark.set(top.node.job.id, "done");
        order.push(top.node);
        stack.pop();
      }
    }
  }
  return order;
}

/** Creates a flow (see `TaskFlow.flow`) and returns its ids in the shape of `tree`. */
export async function createFlow(writer: JobWriter, tree: FlowNode): Promise<FlowIds> {
  const { root, nodes } = readTree(writer, tree);
  const { storage } = writer;
  const byId = new Map<string, Node>();
  for (const node of nodes) {
    if (byId.has(node.job.id)) throw new JobExistsError(node.job.id);
    byId.set(node.job.id, node);
  }
  const order = childrenFirst(nodes, byId);
  const dependents = new Map<string, string[]>();
  for (const node of nodes) {
    for (const id of node.waitsFor) {
      if (id === node.job.id) {
        throw new InvalidOptionError("flow", id, "a job cannot wait for itself");
      }
      if (!byId.has(id)) continue;
      const list = dependents.get(id);
      if (list) list.push(node.job.id);
      else dependents.set(id, [node.job.id]);
    }
  }
  for (const [id, list] of dependents) {
    if (list.length > MAX_CONTINUATIONS) {
      throw new InvalidOptionError(
        "flow",
        id,
        `is waited for by ${list.length} nodes, more than ${MAX_CONTINUATIONS}`,
      );
    }
  }
  const outside = [...new Set(nodes.flatMap((n) => n.waitsFor.filter((id) => !byId.has(id))))];
  const external = new Map<string, JobRecord>();
  const read = await storage.getMany(outside);
  read.forEach((record, i) => {
    if (!record) throw new DependencyNotFoundError(outside[i]);
    external.set(record.id, record);
  });
  await refuseTaken(storage, nodes.filter((n) => n.job.custom).map((n) => n.job.id));
  const flowId = root.job.id;
  const at = writer.now();
  const flow: FlowRecord = {
    id: flowId,
    version: 1,
    state: "creating",
    released: false,
    total: nodes.length,
    name: root.job.created.name,
    createdAt: at,
  };
  if (!await storage.flows.put(flow, 0)) throw new JobExistsError(`flow:${flowId}`);
  // Nodes without outside dependencies are written in chunks; a node with some is written
  // with their `dependent` events, by compare-and-set on each (retried when one moved).
  const plain = order.filter((n) => !n.waitsFor.some((id) => external.has(id)));
  for (let i = 0; i < plain.length; i += 200) {
    const changes: Change[] = plain.slice(i, i + 200).map((node) => ({
      commits: [commitOf(node, [], at)],
    }));
    const results = await storage.append(changes);
    const taken = results.flatMap((r) => r.ok ? [] : r.conflicts);
    if (taken.length) throw new JobExistsError(taken[0]);
  }
  const written = new Set(plain);
  for (const node of order.filter((n) => !written.has(n))) {
    const ids = node.waitsFor.filter((id) => external.has(id));
    await writeWithOutside(writer, node, ids, commitOf);
  }
  const open = { ...flow, version: 2, state: "open" as const };
  if (!await storage.flows.put(open, 1)) throw new JobExistsError(`flow:${flowId}`);
  await releaseFlow(storage, open, writer.now);
  const ids = new Map(nodes.map((node) => [node, { id: node.job.id, children: [] as FlowIds[] }]));
  for (const [node, shaped] of ids) shaped.children = node.children.map((c) => ids.get(c)!);
  return ids.get(root)!;

  function commitOf(node: Node, outsideDeps: JobRecord[], at: number) {
    const waiting = dependents.get(node.job.id);
    return dependentCommit(node.job, outsideDeps, at, {
      dependsOn: node.waitsFor,
      ...waiting ? { dependents: waiting } : {},
      flowId,
      staged: true,
    });
  }
}

/** Writes a flow node that waits for jobs outside the flow, with their `dependent` events. */
async function writeWithOutside(
  writer: JobWriter,
  node: Node,
  ids: string[],
  commitOf: (node: Node, deps: JobRecord[], at: number) => Commit,
): Promise<void> {
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const outside = (await writer.storage.getMany(ids)).map((record, i) => {
      if (!record) throw new DependencyNotFoundError(ids[i]);
      checkRoom(record);
      return record;
    });
    const at = writer.now();
    const parents = outside.map((d) =>
      appendCommit(d, [{ type: "dependent", at, childId: node.job.id }])
    );
    const [result] = await writer.storage.append([{
      commits: [...parents, commitOf(node, outside, at)],
    }]);
    if (result.ok) return;
    if (result.conflicts.includes(node.job.id)) throw new JobExistsError(node.job.id);
    await backoff(tries, writer.random);
  }
  throw new ConflictError(node.job.id, MAX_TRIES);
}

/**
 * Unstages every node of an open flow, roots first (so that a leaf released early finds its
 * parent unstaged), leaves last; idempotent, so a worker's sweep finishes what a producer that
 * died started. A node released into a final state (a failed outside dependency) tells its
 * dependents in the same change.
 */
export async function releaseFlow(
  storage: Storage,
  flow: FlowRecord,
  now: () => number,
): Promise<void> {
  const order = await flowNodes(storage, flow.id);
  for (let i = 0; i < order.length; i += 200) {
    let todo = order.slice(i, i + 200);
    for (let tries = 0; todo.length && tries < 50; tries++) {
      const records = await storage.getMany(todo);
      const changes: Change[] = [];
      for (const record of records) {
        if (!record?.staged || record.state !== "Awaiting") continue;
        const at = now();
        const unstaged = appendCommit(record, [{ type: "unstaged", at }]);
        const release = releaseEvent(unstaged.record, at);
        const commit = release
          ? appendCommit(record, [{ type: "unstaged", at }, release])
          : unstaged;
        changes.push(await withContinuations(storage, commit, at));
      }
      const results = changes.length ? await storage.append(changes) : [];
      todo = changes.flatMap((c, k) => results[k].ok ? [] : [c.commits[0].id]);
    }
  }
  const current = await storage.flows.get(flow.id) as FlowRecord | null;
  if (current && current.state === "open" && !current.released) {
    await storage.flows.put(
      { ...current, version: current.version + 1, released: true },
      current.version,
    );
  }
}

/** The ids of the nodes of flow `flowId`, parents before children (breadth first from the root). */
export async function flowNodes(storage: Storage, flowId: string): Promise<string[]> {
  const seen = new Set<string>();
  let level = [flowId];
  const out: string[] = [];
  while (level.length) {
    const records = await storage.getMany(level);
    const next: string[] = [];
    for (const record of records) {
      if (!record || record.flowId !== flowId || seen.has(record.id)) continue;
      seen.add(record.id);
      out.push(record.id);
      for (const id of record.dependsOn ?? []) if (!seen.has(id)) next.push(id);
    }
    level = [...new Set(next)];
  }
  return out;
}
