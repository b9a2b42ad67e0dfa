/**
 * @module
 * Job tables, paging links and action forms shared by the list pages.
 */

import type { JobRecord } from "../lib/job.ts";
import type { Action } from "../lib/states.ts";
import { duration, iso, relative } from "./format.ts";
import SelectAll from "../islands/SelectAll.tsx";

/** A hidden CSRF field for action forms. */
export function Csrf({ token }: { token: string }) {
  return <input type="hidden" name="_csrf" value={token} />;
}

/** Buttons for `actions`, posting to `action` (one form). */
export function ActionButtons(
  { action, actions, csrf, readOnly, label }: {
    action: string;
    actions: Action[];
    csrf: string;
    readOnly: boolean;
    label?: string;
  },
) {
  if (readOnly || actions.length === 0) return null;
  return (
    <form method="post" action={action} class="actions">
      <Csrf token={csrf} />
      {actions.map((a) => (
        <button type="submit" name="action" value={a} class={a === "delete" ? "danger" : undefined}>
          {a === "requeue" ? "Requeue" : "Delete"}
          {label ? ` ${label}` : ""}
        </button>
      ))}
    </form>
  );
}

/**
 * A table of jobs; with `bulk`, rows get checkboxes for a bulk form with id `bulk` (all checked
 * with `selected`) and the header a select-all box; `marks` are warnings shown by a job's reason.
 */
export function JobTable({ jobs, now, bulk, selected, extra, marks }: {
  jobs: JobRecord[];
  now: number;
  bulk?: boolean;
  selected?: boolean;
  extra?: { title: string; cell: (job: JobRecord) => string };
  marks?: Record<string, string>;
}) {
  if (jobs.length === 0) return <p class="empty">No jobs here.</p>;
  return (
    <table class="jobs">
      <thead>
        <tr>
          {bulk && (
            <th class="select">
              <SelectAll form="bulk" checked={selected === true} />
            </th>
          )}
          <th>Id</th>
          <th>Name</th>
          <th>Queue</th>
          <th>State</th>
          <th>Since</th>
          <th>Attempt</th>
          {extra && <th>{extra.title}</th>}
          <th>Reason</th>
        </tr>
      </thead>
      <tbody>
        {jobs.map((job) => (
          <tr class={marks?.[job.id] ? "orphaned" : undefined}>
            {bulk && (
              <td class="select">
                <input
                  type="checkbox"
                  name="ids"
                  value={job.id}
                  form="bulk"
                  checked={selected}
                  aria-label={`select ${job.id}`}
                />
              </td>
            )}
            <td class="mono">
              <a href={`/job/${encodeURIComponent(job.id)}`}>{job.id}</a>
            </td>
            <td>{job.name}</td>
            <td>{job.queue}</td>
            <td>
              <span class={`state ${job.state.toLowerCase()}`}>{job.state}</span>
            </td>
            <td title={iso(job.stateAt)}>{relative(job.stateAt, now)}</td>
            <td>{job.attempt}</td>
            {extra && <td>{extra.cell(job)}</td>}
            <td class="reason">
              {job.reason ?? ""}
              {marks?.[job.id] && (
                <span class="badge orphaned" data-orphan={job.id}>{marks[job.id]}</span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** What a paged list of jobs renders: the jobs, the next cursor, and where the reader is. */
export interface JobPage {
  jobs: JobRecord[];
  cursor?: string;
  page: number;
  limit: number;
}

/** "Next page" link carrying the cursor, and a link back to the first page. */
export function Pager(
  { base, cursor, page, limit, query = {} }: {
    base: string;
    cursor?: string;
    page: number;
    limit: number;
    /** Other parameters every page link keeps (a search term). */
    query?: Record<string, string>;
  },
) {
  const href = (params: Record<string, string>) =>
    `${base}?${new URLSearchParams({ ...query, ...params, limit: String(limit) })}`;
  return (
    <nav class="pager">
      {page > 1 && <a href={href({})}>« First page</a>}
      <span>Page {page}</span>
      {cursor && <a href={href({ cursor, page: String(page + 1) })}>Next page »</a>}
    </nav>
  );
}

/** Time spent in each state, from consecutive state events. */
export function stateDurations(
  events: Array<{ type: string; at: number; state?: string; reason?: string }>,
  now: number,
): Array<{ state: string; at: number; spent: string; reason?: string }> {
  const states = events.filter((e) => e.type === "state") as Array<
    { at: number; state: string; reason?: string }
  >;
  return states.map((e, i) => ({
    state: e.state,
    at: e.at,
    spent: duration((states[i + 1]?.at ?? now) - e.at) + (i === states.length - 1 ? " so far" : ""),
    reason: e.reason,
  }));
}
