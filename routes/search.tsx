import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";

interface Data {
  q: string;
}

/** Search: an exact job id (or recurring id) jumps to its page. */
export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const q = (ctx.url.searchParams.get("q") ?? "").trim();
    if (q && /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/.test(q) && await ctx.state.tf.get(q)) {
      return new Response(null, {
        status: 303,
        headers: { location: `/job/${encodeURIComponent(q)}` },
      });
    }
    return ctx.render({ q });
  },
};

export default function Search({ data }: PageProps<Data, DashboardState>) {
  return (
    <>
      <h1>Search</h1>
      <form action="/search" method="get">
        <input type="search" name="q" value={data.q} placeholder="job id" aria-label="job id" />
        <button type="submit">Search</button>
      </form>
      {data.q && <p class="empty">No job has the id {JSON.stringify(data.q)}.</p>}
    </>
  );
}
