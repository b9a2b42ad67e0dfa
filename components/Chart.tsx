/**
 * @module
 * Succeeded/failed bar charts as inline SVG (server-rendered, and re-rendered by islands).
 */

export interface Point {
  at: number;
  succeeded: number;
  failed: number;
}

/** A two-series bar chart of `points`, with the largest value as the scale. */
export function BarChart(
  { points, label, format }: { points: Point[]; label: string; format: (at: number) => string },
) {
  const width = 1200, height = 200, pad = 28;
  const max = Math.max(1, ...points.map((p) => Math.max(p.succeeded, p.failed)));
  const step = (width - pad) / Math.max(1, points.length);
  const bar = Math.max(1, step / 2 - 1);
  const y = (v: number) => height - pad - (v / max) * (height - 2 * pad);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
        <text x="0" y="12" class="axis">{max}</text>
        <line x1={pad} y1={height - pad} x2={width} y2={height - pad} class="axis-line" />
        {points.map((p, i) => (
          <g>
            <rect
              class="ok"
              x={pad + i * step}
              y={y(p.succeeded)}
              width={bar}
              height={height - pad - y(p.succeeded)}
            >
              <title>{`${format(p.at)}: ${p.succeeded} succeeded`}</title>
            </rect>
            <rect
              class="bad"
              x={pad + i * step + bar + 1}
              y={y(p.failed)}
              width={bar}
              height={height - pad - y(p.failed)}
            >
              <title>{`${format(p.at)}: ${p.failed} failed`}</title>
            </rect>
          </g>
        ))}
        {points.length > 0 && (
          <text x={pad} y={height - 6} class="axis">{format(points[0].at)}</text>
        )}
        {points.length > 1 && (
          <text x={width} y={height - 6} class="axis" text-anchor="end">
            {format(points[points.length - 1].at)}
          </text>
        )}
      </svg>
      <figcaption>
        {label} <span class="ok-key">succeeded</span> <span class="bad-key">failed</span>
      </figcaption>
    </figure>
  );
}
