/**
 * @module
 * Prometheus text exposition helpers for `/metrics`: label escaping and histograms
 * (`_bucket{le}` cumulative, `_sum`, `_count`) from TaskFlow's per-bucket counts.
 */

import type { Histogram } from "../mod.ts";

/** A label value escaped as the text format wants it. */
export function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** `{a="x",b="y"}` for the labels given (values escaped), or "" for none. */
export function labels(pairs: Record<string, string>): string {
  const text = Object.entries(pairs).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",");
  return text ? `{${text}}` : "";
}

/**
 * One histogram family in seconds: HELP and TYPE, then per series its cumulative buckets, sum
 * and count. `series` maps a label set (e.g. `{ queue: "mail" }`) to its histogram (ms).
 */
export function histogramLines(
  name: string,
  help: string,
  series: Array<[Record<string, string>, Histogram]>,
): string[] {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (const [pairs, { bounds, counts, sumMs }] of series) {
    let cumulative = 0;
    const le = (bound: string) => labels({ ...pairs, le: bound });
    bounds.forEach((bound, i) => {
      cumulative += counts[i] ?? 0;
      lines.push(`${name}_bucket${le(String(bound / 1_000))} ${cumulative}`);
    });
    cumulative += counts[bounds.length] ?? 0;
    lines.push(`${name}_bucket${le("+Inf")} ${cumulative}`);
    lines.push(`${name}_sum${labels(pairs)} ${sumMs / 1_000}`);
    lines.push(`${name}_count${labels(pairs)} ${cumulative}`);
  }
  return lines;
}
