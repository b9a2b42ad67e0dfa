import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import { type JobPage, JobTable, Pager } from "../components/Jobs.tsx";
import { limitParam, pageParam } from "../components/params.ts";
import { iso, relative } from "../components/format.ts";

/** Retries are Scheduled jobs with `retryOf` set (Hangfire's Retries page). */
export const handler: Handlers<JobPage, DashboardState> = {
  async GET(_req, ctx) {
    const limit = limitParam(ctx.url), page = pageParam(ctx.url);
    const result = await ctx.state.tf.list({
      state: "Scheduled",
      cursor: ctx.url.searchParams.get("cursor") ?? undefined,
      limit,
    });
    return ctx.render({
      jobs: result.jobs.filter((j) => j.retryOf !== undefined),
      cursor: result.cursor,
      page,
      limit,
    });
  },
};

export default function Retries({ data, url }: PageProps<JobPage, DashboardState>) {
  const now = Date.now();
  return (
    <>
      <h1>Retries</h1>
      <p class="meta">Jobs waiting to run again after a failed attempt.</p>
      <JobTable
        jobs={data.jobs}
        now={now}
        extra={{
          title: "Retry",
          cell: (job) =>
            `after attempt ${job.retryOf}, ${relative(job.runAt, now)} (${iso(job.runAt)})`,
        }}
      />
      <Pager base={url.pathname} cursor={data.cursor} page={data.page} limit={data.limit} />
    </>
  );
}
