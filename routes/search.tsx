import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import type { JobRecord } from "../lib/job.ts";
import { JobTable, Pager } from "../components/Jobs.tsx";
import { limitParam, pageParam } from "../components/params.ts";

interface Data {
  q: string;
  jobs: JobRecord[];
  cursor?: string;
  page: number;
  limit: number;
}

/** Search: an exact job id jumps to its page; anything else lists jobs by name prefix. */
export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const q = (ctx.url.searchParams.get("q") ?? "").trim();
    const { tf } = ctx.state;
    if (q && /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/.test(q) && await tf.get(q)) {
      return new Response(null, {
        status: 303,
        headers: { location: `/job/${encodeURIComponent(q)}` },
      });
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
