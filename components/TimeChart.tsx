/**
 * @module
 * Charts on a real time axis, as inline SVG (server-rendered, and re-rendered by islands): each
 * bucket is drawn over its own span of time, so a quiet minute is a gap, not a squeezed point.
 */

import type { WaitPoint } from "../lib/mod.ts";
import type { Point } from "./Chart.tsx";
import { duration } from "./format.ts";

const WIDTH = 1200, HEIGHT = 200, PAD = 36;

/** The time axis of a chart from `from` to `to`, with a labelled tick every `tickMs`. */
function TimeAxis(
  { from, to, tickMs, format }: {
    from: number;
    to: number;
    tickMs: number;
    format: (at: number) => string;
  },
) {
  const ticks: number[] = [];
  for (let at = Math.ceil(from / tickMs) * tickMs; at <= to; at += tickMs) ticks.push(at);
  const x = xScale(from, to);
  return (
    <g class="time-axis">
      <line x1={PAD} y1={HEIGHT - PAD} x2={WIDTH} y2={HEIGHT - PAD} class="axis-line" />
      {ticks.map((at) => (
        <g>
          <line x1={x(at)} y1={HEIGHT - PAD} x2={x(at)} y2={HEIGHT - PAD + 4} class="axis-line" />
          <text x={x(at)} y={HEIGHT - 8} class="axis" text-anchor="middle">{format(at)}</text>
        </g>
      ))}
    </g>
  );
}

const xScale = (from: number, to: number) => (at: number) =>
  Number((PAD + ((at - from) / Math.max(1, to - from)) * (WIDTH - PAD)).toFixed(1));

/**
 * Succeeded and failed per bucket of `stepMs` from `from` to `to`, stacked (failed on top of
 * succeeded, so neither hides the other), each bucket drawn over its own time span.
 */
export function StackedTimeChart(
  { points, from, to, stepMs, tickMs, label, unit, format }: {
    points: readonly Point[];
    from: number;
    to: number;
    stepMs: number;
    tickMs: number;
    label: string;
    unit: string;
    format: (at: number) => string;
  },
) {
  const shown = points.filter((p) => p.at + stepMs > from && p.at <= to);
  const max = Math.max(1, ...shown.map((p) => p.succeeded + p.failed));
  const x = xScale(from, to);
  const y = (v: number) => Number((HEIGHT - PAD - (v / max) * (HEIGHT - 2 * PAD)).toFixed(1));
  const area = (low: (p: Point) => number, high: (p: Point) => number) =>
    shown.map((p) => {
      const x0 = Math.max(PAD, x(p.at)), x1 = Math.min(WIDTH, x(p.at + stepMs));
      return `M${x0},${y(low(p))} L${x0},${y(high(p))} L${x1},${y(high(p))} L${x1},${y(low(p))} Z`;
    }).filter((_, i) => high(shown[i]) > low(shown[i])).join(" ");
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={label}>
        <text x="0" y="12" class="axis">{max} {unit}</text>
        <path d={area(() => 0, (p) => p.succeeded)} class="ok-area" />
        <path d={area((p) => p.succeeded, (p) => p.succeeded + p.failed)} class="bad-area" />
        {shown.filter((p) => p.succeeded + p.failed > 0).map((p) => (
          <rect
            class="bucket"
            x={Math.max(PAD, x(p.at))}
            y={y(p.succeeded + p.failed)}
            width={Math.max(1, Math.min(WIDTH, x(p.at + stepMs)) - Math.max(PAD, x(p.at)))}
            height={HEIGHT - PAD - y(p.succeeded + p.failed)}
            data-at={p.at}
            data-succeeded={p.succeeded}
            data-failed={p.failed}
          >
            <title>{`${format(p.at)}: ${p.succeeded} succeeded, ${p.failed} failed`}</title>
          </rect>
        ))}
        <TimeAxis from={from} to={to} tickMs={tickMs} format={format} />
      </svg>
      <figcaption>
        {label} <span class="ok-key">succeeded</span> <span class="bad-key">failed</span>
      </figcaption>
    </figure>
  );
}

/** Queue wait p50 and p95 per minute from `from` to `to` (a gap where nothing started). */
export function WaitChart(
  { points, from, to, label, format }: {
    points: readonly WaitPoint[];
    from: number;
    to: number;
    label: string;
    format: (at: number) => string;
  },
) {
  const step = 60_000;
  const max = Math.max(1, ...points.map((p) => p.p95Ms ?? 0));
  const x = xScale(from, to);
  const y = (v: number) => Number((HEIGHT - PAD - (v / max) * (HEIGHT - 2 * PAD)).toFixed(1));
  const line = (key: "p50Ms" | "p95Ms") => {
    let d = "", open = false;
    for (const p of points) {
      const v = p[key];
      if (v === undefined) {
        open = false;
        continue;
      }
      d += `${open ? " L" : " M"}${x(p.at + step / 2)},${y(v)}`;
      open = true;
    }
    return d.trim();
  };
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={label}>
        <text x="0" y="12" class="axis">{duration(max)}</text>
        <path d={line("p95Ms")} class="p95-line" />
        <path d={line("p50Ms")} class="p50-line" />
        {points.filter((p) => p.started > 0).map((p) => (
          <circle
            class="wait-point"
            cx={x(p.at + step / 2)}
            cy={y(p.p95Ms ?? 0)}
            r="2"
            data-at={p.at}
            data-started={p.started}
          >
            <title>
              {`${format(p.at)}: ${p.started} started, p50 ${duration(p.p50Ms ?? 0)}, p95 ${
                duration(p.p95Ms ?? 0)
              }`}
            </title>
          </circle>
        ))}
        <TimeAxis from={from} to={to} tickMs={10 * step} format={format} />
      </svg>
      <figcaption>
        {label} <span class="p50-key">p50</span> <span class="p95-key">p95</span>
      </figcaption>
    </figure>
  );
}
