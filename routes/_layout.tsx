import type { AppProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";

const NAV = [
  ["/", "Overview"],
  ["/jobs/enqueued", "Jobs"],
  ["/queues", "Queues"],
  ["/retries", "Retries"],
  ["/recurring", "Recurring"],
  ["/batches", "Batches"],
  ["/flows", "Flows"],
  ["/servers", "Servers"],
  ["/metrics/jobs", "Metrics"],
] as const;

export default function Layout({ Component, url, state }: AppProps<DashboardState>) {
  const current = (href: string) =>
    href === "/" ? url.pathname === "/" : url.pathname.startsWith(href.replace(/\/enqueued$/, ""));
  return (
    <>
      <header class="top">
        <a class="brand" href="/">TaskFlow</a>
        <nav>
          {NAV.map(([href, label]) => (
            <a href={href} class={current(href) ? "active" : undefined}>{label}</a>
          ))}
        </nav>
        <form class="search" action="/search" method="get" role="search">
          <input
            type="search"
            name="q"
            placeholder="job id or name prefix"
            aria-label="Search jobs"
          />
        </form>
        {state.security?.readOnly && <span class="badge">read-only</span>}
      </header>
      <main>
        <Component />
      </main>
      <footer>TaskFlow · {state.tf?.address}</footer>
    </>
  );
}
