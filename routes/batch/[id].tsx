import type { Handlers, PageProps } from "../../lib/fresh/types.ts";
import type { DashboardState } from "../../lib/dashboard/state.ts";
import { type BatchStatus, memberId } from "../../lib/batch.ts";
import type { JobRecord } from "../../lib/job.ts";
import { InvalidOptionError } from "../../lib/mod.ts";
import { Csrf, JobTable } from "../../components/Jobs.tsx";
import { limitParam, pageParam } from "../../components/params.ts";
import { iso, plural } from "../../components/format.ts";
import { Progress } from "../../components/Batch.tsx";
import { seeOther } from "../../components/problem.ts";

interface Data {
  status: BatchStatus;
  members: JobRecord[];
  /** Members of this page no longer stored (pruned once the batch finished). */
  gone: number;
  page: number;
  limit: number;
  done?: string;
}

export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const status = await ctx.state.tf.batchStatus(ctx.params.id);
    if (!status) return ctx.renderNotFound();
    const limit = limitParam(ctx.url), page = pageParam(ctx.url);
    const start = (page - 1) * limit;
    if (start >= status.batch.total && page > 1) {
      throw new InvalidOptionError(
        "page",
        page,
        `is beyond the batch's ${plural(status.batch.total, "member")}`,
      );
    }
    const ids = Array.from(
      { length: Math.max(0, Math.min(limit, status.batch.total - start)) },
      (_, i) => memberId(status.batch.id, start + i),
    );
    const members = (await ctx.state.tf.getMany(ids)).filter((r): r is JobRecord => r !== null);
    return ctx.render({
      status,
      members,
      gone: ids.length - members.length,
      page,
      limit,
      done: ctx.url.searchParams.get("done") ?? undefined,
    });
  },
  async POST(req, ctx) {
    const action = (await req.formData()).get("action");
    if (action !== "cancel") throw new InvalidOptionError("action", action, "must be cancel");
    await ctx.state.tf.cancelBatch(ctx.params.id);
    return seeOther(`/batch/${encodeURIComponent(ctx.params.id)}`, "Cancelled.");
  },
};

export default function BatchPage({ data, state, url }: PageProps<Data, DashboardState>) {
  const { status } = data;
  const { batch, counts } = status;
  const pages = Math.ceil(batch.total / data.limit);
  const link = (page: number) =>
    `${url.pathname}?${new URLSearchParams({ page: String(page), limit: String(data.limit) })}`;
  return (
    <>
      <h1 class="mono">Batch {batch.id}</h1>
      {data.done && <p class="notice">{data.done}</p>}
      <section class="job-head">
        <span class="state big">{batch.state}</span>
        <Progress status={status} />
        {!state.security.readOnly && (batch.state === "open" || batch.state === "creating") && (
          <form method="post" action={url.pathname} class="actions">
            <Csrf token={state.csrf} />
            <button type="submit" name="action" value="cancel" class="danger">Cancel batch</button>
          </form>
        )}
      </section>
      <dl class="facts">
        <dt>Members</dt>
        <dd>{batch.total}</dd>
        <dt>Succeeded / failed / deleted</dt>
        <dd>{counts.succeeded} / {counts.failed} / {counts.deleted}</dd>
        <dt>Created</dt>
        <dd>{iso(batch.createdAt)}</dd>
        <dt>Continuation</dt>
        <dd>
          {batch.thenId
            ? <a class="mono" href={`/job/${encodeURIComponent(batch.thenId)}`}>{batch.thenId}</a>
            : "none"}
          {batch.thenId && ` (runs when all ${batch.on === "finished" ? "finished" : "succeeded"})`}
        </dd>
      </dl>
      <h2>Members</h2>
      <JobTable jobs={data.members} now={Date.now()} />
      {data.gone > 0 && batch.state !== "open" && batch.state !== "creating" && (
        <p class="meta" data-gone>
          {plural(data.gone, "member")} of this page {data.gone === 1 ? "is" : "are"}{" "}
          no longer stored: finished members are pruned by the retention policy once the batch and
          its continuation are done.
        </p>
      )}
      <nav class="pager">
        {data.page > 1 && <a href={link(data.page - 1)}>« Previous</a>}
        <span>Page {data.page} of {pages}</span>
        {data.page < pages && <a href={link(data.page + 1)}>Next »</a>}
      </nav>
    </>
  );
}
