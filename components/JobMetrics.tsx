/**
 * @module
 * The Metrics pages' parts: a row of a job name's attempt statistics, and its duration
 * histogram as bars (server-rendered).
 */

import type { Histogram, JobStats } from "../lib/mod.ts";
import { count, duration } from "./format.ts";

/** The header cells matching {@link StatCells}. */
export function StatHeads() {
  return (
    <>
      <th class="num">Succeeded</th>
      <th class="num">Failed</th>
      <th class="num">Retried</th>
      <th class="num">Failure rate</th>
      <th class="num">p50</th>
      <th class="num">p95</th>
      <th class="num">p99</th>
    </>
  );
}

/** A job name's statistics over one window as table cells (dashes where nothing ran). */
export function StatCells({ stats }: { stats?: JobStats }) {
  if (!stats) return <td class="num empty" colSpan={7}>nothing ran</td>;
  return (
    <>
      <td class="num" data-stat="succeeded">{count(stats.succeeded)}</td>
      <td class="num" data-stat="failed">{count(stats.failed)}</td>
      <td class="num" data-stat="retried">{count(stats.retried)}</td>
      <td class="num" data-stat="failure-rate">{percent(stats)}</td>
      <td class="num" data-stat="p50">{duration(stats.p50Ms)}</td>
      <td class="num" data-stat="p95">{duration(stats.p95Ms)}</td>
      <td class="num" data-stat="p99">{duration(stats.p99Ms)}</td>
    </>
  );
}

function percent(stats: JobStats): string {
  return stats.succeeded + stats.failed === 0 ? "–" : `${(stats.failureRate * 100).toFixed(1)} %`;
}

/** Attempts per duration bucket, one bar each (labelled by its upper bound). */
export function DurationBars({ histogram, label }: { histogram: Histogram; label: string }) {
  const width = 1200, height = 180, pad = 28;
  const { bounds, counts } = histogram;
  const max = Math.max(1, ...counts);
  const step = (width - pad) / counts.length;
  const y = (v: number) => height - pad - (v / max) * (height - 2 * pad);
  const name = (i: number) =>
    i < bounds.length ? `≤ ${duration(bounds[i])}` : `> ${duration(bounds.at(-1))}`;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
        <text x="0" y="12" class="axis">{max}</text>
        <line x1={pad} y1={height - pad} x2={width} y2={height - pad} class="axis-line" />
        {counts.map((n, i) => (
          <g>
            <rect
              class="ok"
              x={pad + i * step + 2}
              y={y(n)}
              width={step - 4}
              height={height - pad - y(n)}
              data-bucket={i}
              data-count={n}
            >
              <title>{`${name(i)}: ${n} attempts`}</title>
            </rect>
            <text x={pad + i * step + step / 2} y={height - 8} class="axis" text-anchor="middle">
              {name(i)}
            </text>
          </g>
        ))}
      </svg>
      <figcaption>{label}</figcaption>
    </figure>
  );
}
