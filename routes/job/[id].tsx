import type { Handlers, PageProps } from "../../lib/fresh/types.ts";
import type { DashboardState } from "../../lib/dashboard/state.ts";
import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import { checkJobId } from "../../lib/job.ts";
import { batchIdOf } from "../../lib/batch.ts";
import { allowedActions } from "../../lib/states.ts";
import type { Lease } from "../../lib/projection.ts";
import { ActionButtons, stateDurations } from "../../components/Jobs.tsx";
import { actionParam } from "../../components/params.ts";
import { count, duration, iso, noun, plural, relative } from "../../components/format.ts";
import { type BatchStatus, liveServers, type Orphan, orphanOf, orphanText } from "../../lib/mod.ts";
import { seeOther } from "../../components/problem.ts";
import { DependencyGraph, dependencyGraph, type Graph } from "../../components/DependencyGraph.tsx";
import { DEFAULT_RETENTION, type StoredRetention } from "../../lib/mod.ts";
import { finalKey } from "../../lib/retention/keep.ts";
import { prunedText, pruneForecast } from "../../lib/retention/explain.ts";
import { Explanation } from "../../components/Explanation.tsx";
import type { Explanation as Why } from "../../lib/mod.ts";

interface Data {
  job: JobRecord;
  events: JobEvent[];
  children: (JobRecord | null)[];
  lease: Lease | null;
  /** Set when the job is Processing under a server that stopped heartbeating. */
  orphan: Orphan | null;
  /** The batch a batch continuation waits for, with its progress. */
  awaitedBatch: BatchStatus | null;
  /** Why the job is where it is (`tf.explain`). */
  explanation: Why;
  /** The client's clock when the page was read. */
  now: number;
  /** Why an Enqueued job waits under its queue's limits. */
  waiting?: string;
  /** When a finished job will be pruned, and by which rule. */
  forecast?: string;
  /** True when no policy is stored yet (the forecast then uses the defaults). */
  defaults?: boolean;
  done?: string;
  /** Its dependencies and dependents, when it has any. */
  graph?: Graph | null;
}

/** A job id nothing was found under, and why it is probably gone when that can be told. */
interface Missing {
  missing: string;
  pruned?: string;
}

/** Why `id` is not found: "probably pruned" only for an id TaskFlow made, old enough to be. */
async function missingJob(
  tf: DashboardState["tf"],
  id: string,
): Promise<string | undefined> {
  const stored = await tf.retention();
  return stored ? prunedText(id, stored, tf.now()) : undefined;
}

/** When the retention policy in force prunes `job` (finished jobs only). */
async function forecastOf(
  tf: DashboardState["tf"],
  job: JobRecord,
  children: (JobRecord | null)[],
): Promise<{ forecast?: string; defaults?: boolean }> {
  if (!finalKey(job.state)) return {};
  const [stored, status] = await Promise.all([
    tf.retention(),
    job.batchId ? tf.batchStatus(job.batchId) : null,
  ]);
  const thenId = status?.batch.thenId;
  const then = thenId ? await tf.get(thenId) : null;
  const jobs = new Map(job.continuations.map((c, i) => [c.id, children[i]]));
  if (thenId) jobs.set(thenId, then);
  const batches = new Map(job.batchId ? [[job.batchId, status?.batch ?? null]] : []);
  const policy: StoredRetention | typeof DEFAULT_RETENTION = stored ?? DEFAULT_RETENTION;
  const now = tf.now();
  const when = (at: number) =>
    at <= now ? "at the next pass (due now)" : `around ${iso(at)} (${relative(at, now)})`;
  return { forecast: pruneForecast(job, policy, { jobs, batches }, when), defaults: !stored };
}

/** The batch id of a batch continuation (`batch:<id>:then`), else undefined. */
function batchOfContinuation(job: JobRecord): string | undefined {
  const batch = batchIdOf(job.id);
  return job.state === "Awaiting" && batch?.then ? batch.batchId : undefined;
}

export const handler: Handlers<Data | Missing, DashboardState> = {
  async GET(_req, ctx) {
    const id = checkJobId(ctx.params.id);
    const { tf } = ctx.state;
    const [job, events] = await Promise.all([tf.get(id), tf.events(id)]);
    if (!job) return ctx.render({ missing: id, pruned: await missingJob(tf, id) }, { status: 404 });
    const processing = job.state === "Processing";
    const batchId = batchOfContinuation(job);
    const [children, lease, servers, awaitedBatch, waiting] = await Promise.all([
      tf.getMany(job.continuations.map((c) => c.id)),
      processing ? tf.lease(id) : null,
      processing ? tf.servers() : [],
      batchId ? tf.batchStatus(batchId) : null,
      tf.queues.waiting(job),
    ]);
    return ctx.render({
      waiting,
      job,
      events,
      children,
      lease,
      orphan: processing ? orphanOf(job, lease, liveServers(servers)) : null,
      awaitedBatch,
      explanation: await tf.explain(id),
      now: tf.now(),
      ...await forecastOf(tf, job, children),
      graph: await dependencyGraph(tf, job),
      done: ctx.url.searchParams.get("done") ?? undefined,
    });
  },
  async POST(req, ctx) {
    const id = checkJobId(ctx.params.id);
    const action = actionParam((await req.formData()).get("action"));
    if (action === "requeue") {
      await ctx.state.tf.requeue(id, { reason: "requeued from the dashboard" });
    } else await ctx.state.tf.delete(id, { reason: "deleted from the dashboard" });
    const done = action === "requeue" ? "Requeued." : "Deleted.";
    return seeOther(`/job/${encodeURIComponent(id)}`, done);
  },
};

function Json({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}

function NotFound({ data }: { data: Missing }) {
  return (
    <main class="problem" data-missing>
      <h1>404</h1>
      <p>
        {data.pruned
          ? `${data.pruned[0].toUpperCase()}${data.pruned.slice(1)}.`
          : `No such job: ${data.missing}.`}
      </p>
      <p>
        <a href="/">Back to the overview</a>
      </p>
    </main>
  );
}

export default function JobPage(
  { data: page, state }: PageProps<Data | Missing, DashboardState>,
) {
  if ("missing" in page) return <NotFound data={page} />;
  const data = page;
  const { job, events, lease, orphan, awaitedBatch, now } = data;
  const logs = events.filter((e) => e.type === "log");
  const max = job.options.attempts;
  return (
    <>
      <h1 class="mono">{job.id}</h1>
      {data.done && <p class="notice">{data.done}</p>}
      <section class="job-head">
        <span class={`state big ${job.state.toLowerCase()}`}>{job.state}</span>
        <span>{relative(job.stateAt, now)}</span>
        {job.reason && <span class="reason">{job.reason}</span>}
        {data.waiting && <span class="badge waiting">waits: {data.waiting}</span>}
        {orphan && (
          <span class="badge orphaned" data-orphan={job.id}>{orphanText(orphan, now)}</span>
        )}
        <ActionButtons
          action={`/job/${encodeURIComponent(job.id)}`}
          actions={allowedActions(job.state)}
          csrf={state.csrf}
          readOnly={state.security.readOnly}
        />
      </section>
      <Explanation explanation={data.explanation} />
      <dl class="facts">
        <dt>Name</dt>
        <dd>{job.name}</dd>
        <dt>Queue</dt>
        <dd>
          <a href="/queues">{job.queue}</a> (priority {job.priority})
        </dd>
        {job.options.partition !== undefined && (
          <>
            <dt>Partition</dt>
            <dd data-partition>{job.options.partition}</dd>
          </>
        )}
        {job.options.unique !== undefined && (
          <>
            <dt>Unique key</dt>
            <dd data-unique class="mono">{job.options.unique.key}</dd>
            {job.options.debounce
              ? (
                <>
                  <dt>Debounced</dt>
                  <dd data-debounced>
                    {job.debounced ?? 0} {job.debounced === 1 ? "enqueue" : "enqueues"}{" "}
                    postponed it ({job.options.debounce.delayMs} ms each
                    {job.options.debounce.maxWaitMs === undefined
                      ? ""
                      : `, at most ${job.options.debounce.maxWaitMs} ms after the first`})
                  </dd>
                </>
              )
              : (
                <>
                  <dt>Deduplicated</dt>
                  <dd data-deduplicated>
                    {job.deduplicated ?? 0} {job.deduplicated === 1 ? "enqueue" : "enqueues"}{" "}
                    absorbed
                  </dd>
                </>
              )}
          </>
        )}
        <dt>Created</dt>
        <dd title={iso(job.createdAt)}>{iso(job.createdAt)} ({relative(job.createdAt, now)})</dd>
        <dt>Attempt</dt>
        <dd>{job.attempt}{max ? ` of ${max}` : ""}</dd>
        {job.runAt !== undefined && (
          <>
            <dt>Due</dt>
            <dd>{iso(job.runAt)} ({relative(job.runAt, now)})</dd>
          </>
        )}
        {job.serverId && (
          <>
            <dt>Server</dt>
            <dd class="mono">{job.serverId}</dd>
          </>
        )}
        {lease && (
          <>
            <dt>Lease</dt>
            <dd>
              until {iso(lease.until)} ({relative(lease.until, now)})
              {orphan && `; server ${orphan.serverId} stopped heartbeating`}
            </dd>
          </>
        )}
        {job.durationMs !== undefined && (
          <>
            <dt>Last run took</dt>
            <dd>{duration(job.durationMs)}</dd>
          </>
        )}
        {job.progress !== undefined && (
          <>
            <dt>Progress</dt>
            <dd>
              <progress max={100} value={job.progress}>{job.progress}%</progress> {job.progress}
            </dd>
          </>
        )}
        {job.batchId && (
          <>
            <dt>Batch</dt>
            <dd>
              <a class="mono" href={`/batch/${encodeURIComponent(job.batchId)}`}>{job.batchId}</a>
            </dd>
          </>
        )}
        {awaitedBatch && (
          <>
            <dt>Waits for</dt>
            <dd data-awaits>
              batch{" "}
              <a class="mono" href={`/batch/${encodeURIComponent(awaitedBatch.batch.id)}`}>
                {awaitedBatch.batch.id}
              </a>
              : {count(awaitedBatch.done)} of {plural(awaitedBatch.batch.total, "member")}{" "}
              finished; runs when all {awaitedBatch.batch.on === "finished" ? "finish" : "succeed"}
            </dd>
          </>
        )}
        {data.forecast && (
          <>
            <dt>Retention</dt>
            <dd data-forecast>
              {`${data.forecast[0].toUpperCase()}${data.forecast.slice(1)}`}
              {data.defaults ? " (the default policy, once a worker runs)" : ""}.
            </dd>
          </>
        )}
        {job.parentId && (
          <>
            <dt>Continues</dt>
            <dd>
              <a class="mono" href={`/job/${encodeURIComponent(job.parentId)}`}>{job.parentId}</a>
              {" "}
              when it {job.on === "finished" ? "finishes" : "succeeds"}
            </dd>
          </>
        )}
      </dl>
      <h2>Arguments</h2>
      <Json value={job.args} />
      {job.result !== undefined && (
        <>
          <h2>Result</h2>
          <Json value={job.result} />
        </>
      )}
      {job.error && (
        <section class="error">
          <h2>{job.state === "Failed" ? "Error" : "Last error"}</h2>
          <p>
            <strong>{job.error.name}</strong>
            {job.error.code ? ` [${job.error.code}]` : ""}: {job.error.message}
          </p>
          {job.error.stack && <pre class="stack">{job.error.stack}</pre>}
        </section>
      )}
      {job.continuations.length > 0 && (
        <>
          <h2>Continuations</h2>
          <ul>
            {job.continuations.map((c, i) => (
              <li>
                <a class="mono" href={`/job/${encodeURIComponent(c.id)}`}>{c.id}</a> on {c.on}
                {data.children[i] ? ` — ${data.children[i]!.name}, ${data.children[i]!.state}` : ""}
              </li>
            ))}
          </ul>
        </>
      )}
      {data.graph && <DependencyGraph graph={data.graph} current={job.id} />}
      <h2>Timeline</h2>
      <table class="timeline">
        <thead>
          <tr>
            <th>State</th>
            <th>Entered</th>
            <th>Time in state</th>
          </tr>
        </thead>
        <tbody>
          {stateDurations(events, now).map((row) => (
            <tr>
              <td>
                <span class={`state ${row.state.toLowerCase()}`}>{row.state}</span>
                {row.reason ? <span class="reason">{row.reason}</span> : null}
              </td>
              <td>{iso(row.at)}</td>
              <td>{row.spent}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {logs.length > 0 && (
        <>
          <h2>Log</h2>
          <pre class="log">{logs.map((e) => `${iso(e.at)}  ${e.type === "log" ? e.message : ""}`).join("\n")}</pre>
        </>
      )}
      <details>
        <summary>All {events.length} {noun(events.length, "event")}</summary>
        <Json value={events} />
      </details>
    </>
  );
}
