import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import { isJobId } from "../lib/job.ts";
import { type JobPage, JobTable, Pager } from "../components/Jobs.tsx";
import { limitParam, pageParam } from "../components/params.ts";
import { seeOther } from "../components/problem.ts";

interface Data extends JobPage {
  q: string;
}

/** Search: an exact job id jumps to its page; anything else lists jobs by name prefix. */
export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const q = (ctx.url.searchParams.get("q") ?? "").trim();
    const { tf } = ctx.state;
    if (isJobId(q) && await tf.get(q)) {
      return seeOther(`/job/${encodeURIComponent(q)}`);
    }
    const limit = limitParam(ctx.url), page = pageParam(ctx.url);
    if (!q) return ctx.render({ q, jobs: [], page, limit });
    const result = await tf.search(q, {
      cursor: ctx.url.searchParams.get("cursor") ?? undefined,
      limit,
    });
    return ctx.render({ q, jobs: result.jobs, cursor: result.cursor, page, limit });
  },
};

export default function Search({ data }: PageProps<Data, DashboardState>) {
  return (
    <>
      <h1>Search</h1>
      <form action="/search" method="get" class="actions">
        <input
          type="search"
          name="q"
          value={data.q}
          placeholder="job id or name prefix"
          aria-label="job id or name prefix"
        />
        <button type="submit">Search</button>
      </form>
      {data.q && (
        <>
          <p class="meta">
            Jobs whose name starts with {JSON.stringify(data.q)}, by name, newest first.
          </p>
          <JobTable jobs={data.jobs} now={Date.now()} />
          <Pager
            base="/search"
            query={{ q: data.q }}
            cursor={data.cursor}
            page={data.page}
            limit={data.limit}
          />
        </>
      )}
    </>
  );
}
