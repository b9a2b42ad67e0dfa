/**
 * @module
 * A job's dependency graph: the jobs it waits for (and theirs), the jobs waiting for it (and
 * theirs), laid out in columns by distance and drawn as SVG on the server, coloured by state.
 */

import type { TaskFlow } from "../lib/client.ts";
import type { JobRecord } from "../lib/job.ts";

/** Columns drawn on each side of the job. */
const DEPTH = 4;
/** Most jobs drawn (the rest are counted). */
const MOST = 80;
const W = 170, H = 34, GAP_X = 50, GAP_Y = 12;

/** One job of the graph, in its column (negative: dependencies; positive: dependents). */
export interface GraphNode {
  id: string;
  name: string;
  state: JobRecord["state"];
  column: number;
}

/** A job's neighbourhood: nodes, edges from a dependency to its dependent, and what was cut. */
export interface Graph {
  nodes: GraphNode[];
  edges: Array<[from: string, to: string]>;
  /** Jobs left out (beyond the depth or the node limit, or gone). */
  more: number;
}

/**
 * Reads the graph around `job` through the client (breadth first both ways), or null for a
 * job with neither dependencies nor dependents.
 */
export async function dependencyGraph(tf: TaskFlow, job: JobRecord): Promise<Graph | null> {
  if (!job.dependsOn?.length && !job.dependents?.length) return null;
  const nodes = new Map<string, GraphNode>([[job.id, node(job, 0)]]);
  const edges = new Set<string>();
  let more = 0;
  for (const direction of [-1, 1]) {
    let level = [job];
    for (let depth = 1; depth <= DEPTH && level.length; depth++) {
      const next = new Set<string>();
      for (const record of level) {
        const ids = direction < 0 ? record.dependsOn ?? [] : record.dependents ?? [];
        for (const id of ids) {
          edges.add(direction < 0 ? `${id} ${record.id}` : `${record.id} ${id}`);
          if (!nodes.has(id)) next.add(id);
        }
      }
      const room = Math.max(0, MOST - nodes.size);
      const ids = [...next];
      more += Math.max(0, ids.length - room);
      const records = await tf.getMany(ids.slice(0, room));
      level = records.filter((r): r is JobRecord => r !== null);
      more += records.length - level.length;
      for (const record of level) nodes.set(record.id, node(record, direction * depth));
    }
    // Beyond the last column: the jobs not drawn.
    for (const record of level) {
      more += (direction < 0 ? record.dependsOn : record.dependents)?.length ?? 0;
    }
  }
  const drawn = [...edges].map((e) => e.split(" ") as [string, string])
    .filter(([from, to]) => nodes.has(from) && nodes.has(to));
  return { nodes: [...nodes.values()], edges: drawn, more };
}

function node(record: JobRecord, column: number): GraphNode {
  return { id: record.id, name: record.name, state: record.state, column };
}

/** The graph as SVG: one column per distance, each job a box linking to its page. */
export function DependencyGraph({ graph, current }: { graph: Graph; current: string }) {
  const columns = [...new Set(graph.nodes.map((n) => n.column))].sort((a, b) => a - b);
  const place = new Map<string, { x: number; y: number }>();
  let rows = 0;
  columns.forEach((column, cx) => {
    const inColumn = graph.nodes.filter((n) => n.column === column);
    inColumn.forEach((n, cy) => place.set(n.id, { x: cx * (W + GAP_X), y: cy * (H + GAP_Y) }));
    rows = Math.max(rows, inColumn.length);
  });
  const width = columns.length * (W + GAP_X) - GAP_X + 2;
  const height = rows * (H + GAP_Y) - GAP_Y + 2;
  return (
    <section class="dependency-graph" data-graph>
      <h2>Dependencies</h2>
      <svg
        xmlns="http://www.w3.org/2000/svg"
        width={width}
        height={height}
        viewBox={`-1 -1 ${width} ${height}`}
        role="img"
        aria-label="dependency graph: the jobs on the left run first"
      >
        {graph.edges.map(([from, to]) => {
          const a = place.get(from)!, b = place.get(to)!;
          return (
            <line
              class="edge"
              x1={a.x + W}
              y1={a.y + H / 2}
              x2={b.x}
              y2={b.y + H / 2}
              data-edge={`${from} ${to}`}
            />
          );
        })}
        {graph.nodes.map((n) => {
          const { x, y } = place.get(n.id)!;
          const label = n.name.length > 22 ? `${n.name.slice(0, 21)}…` : n.name;
          return (
            <a href={`/job/${encodeURIComponent(n.id)}`}>
              <g
                class={`node ${n.state.toLowerCase()}${n.id === current ? " current" : ""}`}
                data-node={n.id}
                data-state={n.state}
              >
                <title>{`${n.name} ${n.id}: ${n.state}`}</title>
                <rect x={x} y={y} width={W} height={H} rx={4} />
                <text x={x + 6} y={y + 14}>{label}</text>
                <text x={x + 6} y={y + 28} class="sub">{`${n.state} · …${n.id.slice(-6)}`}</text>
              </g>
            </a>
          );
        })}
      </svg>
      {graph.more > 0 && <p class="reason">{graph.more} more not drawn.</p>}
    </section>
  );
}
