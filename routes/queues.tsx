import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import type { JobRecord } from "../lib/job.ts";
import { STATES } from "../lib/states.ts";
import { count, iso, plural, relative } from "../components/format.ts";
import { Csrf } from "../components/Jobs.tsx";
import {
  type Counts,
  InvalidOptionError,
  type LimiterUse,
  type QueueConfig,
  zeroStates,
} from "../lib/mod.ts";
import { seeOther } from "../components/problem.ts";
import { formAction } from "../lib/dashboard/actions.ts";
import { LimitsForm, LimitsText, readLimitsForm } from "../components/QueueLimits.tsx";
import { configText } from "../lib/queues/config.ts";

interface Data {
  queues: Array<
    {
      name: string;
      counts: Counts["queues"][string];
      oldest?: JobRecord;
      paused: boolean;
      /** Live workers that take jobs from this queue. */
      servedBy: number;
      /** The queue's stored limits (`tf.queues`); `{}` when it has none. */
      limits: QueueConfig;
      /** Current use of the limits (queues with limits only). */
      use?: LimiterUse;
    }
  >;
  done?: string;
}

export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const { tf } = ctx.state;
    const [counts, paused, servers, configured] = await Promise.all([
      tf.counts(),
      tf.pausedQueues(),
      tf.servers(),
      tf.queues.list(),
    ]);
    const limits = new Map(configured.map(({ name, updatedAt: _, ...config }) => [name, config]));
    const names = [...new Set([...Object.keys(counts.queues), ...paused, ...limits.keys()])]
      .sort();
    const [heads, uses] = await Promise.all([
      Promise.all(names.map((queue) => tf.list({ queue, limit: 1 }))),
      Promise.all(names.map((queue) => limits.has(queue) ? tf.queues.use(queue, counts) : null)),
    ]);
    return ctx.render({
      queues: names.map((name, i) => ({
        name,
        counts: counts.queues[name] ?? zeroStates(),
        oldest: heads[i].jobs[0],
        paused: paused.includes(name),
        servedBy: servers.filter((server) => server.queues.includes(name)).length,
        limits: limits.get(name) ?? {},
        use: uses[i] ?? undefined,
      })),
      done: ctx.url.searchParams.get("done") ?? undefined,
    });
  },
  async POST(req, ctx) {
    const form = await req.formData();
    const queue = form.get("queue");
    const action = formAction(form.get("action"), ["pause", "resume", "limits"]);
    if (typeof queue !== "string") throw new InvalidOptionError("queue", queue, "name a queue");
    if (action === "limits") {
      const stored = await ctx.state.tf.queues.configure(queue, readLimitsForm(form));
      return seeOther("/queues", `Limits of ${queue}: ${configText(stored)}.`);
    }
    if (action === "pause") await ctx.state.tf.pauseQueue(queue);
    else await ctx.state.tf.resumeQueue(queue);
    const done = `${action === "pause" ? "Paused" : "Resumed"} ${queue}.`;
    return seeOther("/queues", done);
  },
};

export default function Queues({ data, state }: PageProps<Data, DashboardState>) {
  const now = Date.now();
  const readOnly = state.security.readOnly;
  const others = STATES.filter((s) => s !== "Enqueued");
  return (
    <>
      <h1>Queues</h1>
      {data.done && <p class="notice">{data.done}</p>}
      {data.queues.length === 0
        ? <p class="empty">No queue has had a job yet.</p>
        : (
          <table class="jobs">
            <thead>
              <tr>
                <th>Queue</th>
                <th>Status</th>
                <th>Length (Enqueued)</th>
                <th>Next to run</th>
                {others.map((s) => <th key={s}>{s}</th>)}
                <th>Limits</th>
              </tr>
            </thead>
            <tbody>
              {data.queues.map((q) => (
                <tr key={q.name}>
                  <td>{q.name}</td>
                  <td>
                    {q.paused ? <span class="badge">paused</span> : "active"}
                    {q.servedBy === 0
                      ? (
                        <span class="badge idle" data-unserved={q.name}>
                          no worker serves this queue
                        </span>
                      )
                      : (
                        <span class="reason" title="live workers that take jobs from this queue">
                          {" "}
                          ({plural(q.servedBy, "worker")})
                        </span>
                      )}
                    {!readOnly && (
                      <form method="post" action="/queues" class="actions">
                        <Csrf token={state.csrf} />
                        <input type="hidden" name="queue" value={q.name} />
                        <button type="submit" name="action" value={q.paused ? "resume" : "pause"}>
                          {q.paused ? "Resume" : "Pause"}
                        </button>
                      </form>
                    )}
                  </td>
                  <td>{count(q.counts.Enqueued)}</td>
                  <td>
                    {q.oldest
                      ? (
                        <a
                          href={`/job/${encodeURIComponent(q.oldest.id)}`}
                          title={iso(q.oldest.stateAt)}
                        >
                          {q.oldest.name}, waiting{" "}
                          {relative(q.oldest.stateAt, now).replace(" ago", "")}
                        </a>
                      )
                      : "–"}
                  </td>
                  {others.map((s) => <td key={s}>{count(q.counts[s])}</td>)}
                  <td data-limits={q.name}>
                    <LimitsText limits={q.limits} use={q.use} />
                    {!readOnly && <LimitsForm queue={q.name} limits={q.limits} csrf={state.csrf} />}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      {!readOnly && (
        <section class="limits">
          <h2>Limits of another queue</h2>
          <LimitsForm limits={{}} csrf={state.csrf} open />
        </section>
      )}
    </>
  );
}
