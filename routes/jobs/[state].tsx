import type { Handlers, PageProps } from "../../lib/fresh/types.ts";
import type { DashboardState } from "../../lib/dashboard/state.ts";
import type { State } from "../../lib/states.ts";
import { allowedActions, STATES } from "../../lib/states.ts";
import {
  actionParam,
  limitParam,
  pageParam,
  selectParam,
  stateParam,
} from "../../components/params.ts";
import { type JobPage, JobTable, Pager } from "../../components/Jobs.tsx";
import { count, iso, noun, relative } from "../../components/format.ts";
import {
  type Counts,
  InvalidOptionError,
  orphanText,
  readOrphans,
  type StoredRetention,
} from "../../lib/mod.ts";
import { StateRetention } from "../../components/Retention.tsx";
import { finalKey } from "../../lib/retention/keep.ts";
import { seeOther } from "../../components/problem.ts";

interface Data extends JobPage {
  state: State;
  /** Jobs in each state, for the tabs. */
  states: Counts["states"];
  /** Every row's box checked (`?select=all`). */
  selected: boolean;
  /** Processing jobs whose server stopped heartbeating, with what happens next. */
  marks: Record<string, string>;
  /** The client's clock when the page was read. */
  now: number;
  /** The retention policy in force, for the pages of finished jobs. */
  retention: StoredRetention | null;
  done?: string;
}

export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const state = stateParam(ctx.params.state);
    if (!state) return ctx.renderNotFound();
    const limit = limitParam(ctx.url), page = pageParam(ctx.url);
    const cursor = ctx.url.searchParams.get("cursor") ?? undefined;
    const selected = selectParam(ctx.url);
    const { tf } = ctx.state;
    const [result, counts, retention] = await Promise.all([
      tf.list({ state, cursor, limit }),
      tf.counts(),
      finalKey(state) ? tf.retention() : null,
    ]);
    const orphans = state === "Processing" ? await readOrphans(tf, result.jobs) : [];
    const now = tf.now();
    return ctx.render({
      state,
      jobs: result.jobs,
      cursor: result.cursor,
      page,
      limit,
      states: counts.states,
      selected,
      marks: Object.fromEntries(
        orphans.flatMap((orphan) => orphan ? [[orphan.id, orphanText(orphan, now)]] : []),
      ),
      now,
      retention,
      done: ctx.url.searchParams.get("done") ?? undefined,
    });
  },
  async POST(req, ctx) {
    const state = stateParam(ctx.params.state);
    if (!state) return ctx.renderNotFound();
    const form = await req.formData();
    const action = actionParam(form.get("action"));
    const ids = form.getAll("ids").filter((v): v is string => typeof v === "string");
    if (ids.length === 0) throw new InvalidOptionError("ids", [], "select at least one job");
    if (ids.length > 500) {
      throw new InvalidOptionError("ids", ids.length, "at most 500 jobs per bulk action");
    }
    // All at once, so the client's group commit writes them together.
    const outcomes = await Promise.allSettled(
      ids.map((id) =>
        action === "requeue"
          ? ctx.state.tf.requeue(id, { reason: "requeued from the dashboard" })
          : ctx.state.tf.delete(id, { reason: "deleted from the dashboard" })
      ),
    );
    const failed = outcomes.filter((outcome) => outcome.status === "rejected").length;
    const ok = ids.length - failed;
    const done = `${action}: ${ok} done${
      failed ? `, ${failed} not possible (state changed or not allowed)` : ""
    }`;
    return seeOther(`/jobs/${state.toLowerCase()}`, done);
  },
};

export default function JobsPage({ data, state: s, url }: PageProps<Data, DashboardState>) {
  const { now } = data;
  const actions = allowedActions(data.state);
  const readOnly = s.security.readOnly;
  return (
    <>
      <h1>Jobs</h1>
      <nav class="tabs">
        {STATES.map((state) => (
          <a
            href={`/jobs/${state.toLowerCase()}`}
            class={state === data.state ? "active" : undefined}
          >
            {state}
            <span class="count" data-count={state}>{count(data.states[state])}</span>
          </a>
        ))}
      </nav>
      <h2>
        {data.state}{" "}
        <small>
          {count(data.states[data.state])} {noun(data.states[data.state], "job")}
        </small>
      </h2>
      <StateRetention state={data.state} retention={data.retention} />
      {data.done && <p class="notice">{data.done}</p>}
      {!readOnly && actions.length > 0 && data.jobs.length > 0 && (
        <form id="bulk" method="post" action={url.pathname} class="bulk">
          <input type="hidden" name="_csrf" value={s.csrf} />
          <span>Selected jobs:</span>
          {actions.map((a) => (
            <button
              type="submit"
              name="action"
              value={a}
              class={a === "delete" ? "danger" : undefined}
            >
              {a === "requeue" ? "Requeue" : "Delete"}
            </button>
          ))}
          <noscript>
            <a class="select-all-link" href={selectHref(url, !data.selected)}>
              {data.selected ? "Clear the selection" : "Select all on this page"}
            </a>
          </noscript>
        </form>
      )}
      <JobTable
        jobs={data.jobs}
        now={now}
        bulk={!readOnly && actions.length > 0}
        selected={data.selected}
        marks={data.marks}
        extra={data.state === "Scheduled"
          ? { title: "Due", cell: (job) => `${relative(job.runAt, now)} (${iso(job.runAt)})` }
          : undefined}
      />
      <Pager base={url.pathname} cursor={data.cursor} page={data.page} limit={data.limit} />
    </>
  );
}

/** This page's address with every box checked (`select=all`), or without. */
function selectHref(url: URL, all: boolean): string {
  const params = new URLSearchParams(url.searchParams);
  params.delete("done");
  if (all) params.set("select", "all");
  else params.delete("select");
  const query = params.toString();
  return query ? `${url.pathname}?${query}` : url.pathname;
}
