import type { Snapshot } from "../lib/dashboard/hub.ts";
import { STATES } from "../lib/states.ts";
import { count, noun } from "../components/format.ts";
import { connected, useLive } from "../components/live_store.ts";

/** Counters for every state, totals and servers, updated live. */
export default function LiveCounters({ initial }: { initial: Snapshot }) {
  const snapshot = useLive(initial);
  const { states, totals } = snapshot.counts;
  return (
    <section class="counters" aria-live="polite">
      {STATES.map((state) => (
        <a class={`counter ${state.toLowerCase()}`} href={`/jobs/${state.toLowerCase()}`}>
          <span class="value" data-state={state}>{count(states[state])}</span>
          <span class="label">{state}</span>
          {state === "Processing" && snapshot.orphaned.count > 0 && (
            <span class="badge orphaned" data-orphaned title="their server stopped heartbeating">
              {count(snapshot.orphaned.count)}
              {snapshot.orphaned.more ? "+" : ""} orphaned
            </span>
          )}
        </a>
      ))}
      <a class="counter scheduled" href="/retries">
        <span class="value" data-retrying>{count(snapshot.counts.retrying)}</span>
        <span class="label">{noun(snapshot.counts.retrying, "retry", "retries")} waiting</span>
      </a>
      <div class="counter">
        <span class="value" data-total="succeeded">{count(totals.succeeded)}</span>
        <span class="label">succeeded, all time</span>
      </div>
      <div class="counter">
        <span class="value" data-total="failed">{count(totals.failed)}</span>
        <span class="label">failed, all time</span>
      </div>
      <a class="counter" href="/servers">
        <span class="value" data-servers>{snapshot.servers.length}</span>
        <span class="label">{noun(snapshot.servers.length, "server")}</span>
      </a>
      <span class={connected.value ? "live on" : "live"} title="live updates">●</span>
    </section>
  );
}
