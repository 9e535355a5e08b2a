/**
 * Hand-written SVG chart of the headline figures (no packages): one panel per
 * headline scenario, one bar per server, with the median and min–max range.
 * Throughput and latency panels use a log scale because the servers span
 * orders of magnitude; the memory panel is linear.
 */
import type { ServerSummary } from "./report";
import { fmtValue } from "./report";
import type { Scenario } from "./scenarios";

const COLORS: Record<string, string> = {
  wirechat: "#2563eb",
  "wirechat-A2": "#60a5fa",
  "wirechat-batch": "#1e3a8a",
  rawBun: "#f59e0b",
  rawBunBatch: "#b45309",
  nodeWs: "#16a34a",
  socketIo: "#9333ea",
  idealC: "#6b7280",
};

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

interface Panel {
  scenario: Scenario;
  title: string;
  log: boolean;
}

function panel(p: Panel, data: Record<string, ServerSummary>, servers: string[], x0: number, y0: number, w: number): string {
  const rowH = 22,
    labelW = 90,
    valueW = 150,
    barW = w - labelW - valueW;
  const rows = servers.filter((s) => data[s] && Number.isFinite(data[s]!.value.median));
  const maxV = Math.max(...rows.map((s) => data[s]!.value.max), 1);
  const minV = p.log ? Math.max(1, Math.min(...rows.map((s) => data[s]!.value.min)) / 2) : 0;
  const scale = (v: number) => (p.log ? (barW * Math.log10(Math.max(v, minV) / minV)) / Math.log10(maxV / minV || 10) : (barW * v) / maxV);
  const out = [`<text x="${x0}" y="${y0 + 14}" font-weight="bold">${esc(p.title)}</text>`];
  rows.forEach((s, i) => {
    const d = data[s]!.value,
      y = y0 + 24 + i * rowH,
      bx = x0 + labelW;
    out.push(`<text x="${bx - 6}" y="${y + 14}" text-anchor="end">${esc(s)}</text>`);
    out.push(`<rect x="${bx}" y="${y + 3}" width="${Math.max(1, scale(d.median)).toFixed(1)}" height="${rowH - 6}" fill="${COLORS[s] ?? "#999"}"/>`);
    // The range over repetitions, as a thin whisker.
    out.push(
      `<line x1="${(bx + scale(d.min)).toFixed(1)}" x2="${(bx + scale(d.max)).toFixed(1)}" y1="${y + rowH / 2}" y2="${y + rowH / 2}" stroke="#111" stroke-width="1.5"/>`,
    );
    out.push(`<text x="${bx + barW + 6}" y="${y + 14}">${esc(fmtValue(p.scenario, d.median))}</text>`);
  });
  return out.join("\n");
}

/** The chart as an SVG document. */
export function chart(scenarios: Scenario[], summary: Record<string, Record<string, ServerSummary>>, servers: string[], caption: string): string {
  const pick = (id: string) => scenarios.find((s) => s.id === id);
  const latency = pick("latency-20000") ?? pick("latency-2000");
  const idle = scenarios.find((s) => s.kind === "idle");
  const panels: Panel[] = [];
  const b = pick("broadcast-N64"),
    d = pick("direct-N64");
  if (b) panels.push({ scenario: b, title: "Broadcast deliveries/s, N=64 (log scale, higher is better)", log: true });
  if (d) panels.push({ scenario: d, title: "Direct deliveries/s, N=64 (log scale, higher is better)", log: true });
  const b1k = pick("broadcast-N1000"),
    d1k = pick("direct-N1000");
  // A big room: where coalescing (-batch: one array per topic and batch) pays most.
  if (b1k) panels.push({ scenario: b1k, title: "Broadcast deliveries/s, N=1,000 (log scale, higher is better)", log: true });
  if (d1k) panels.push({ scenario: d1k, title: "Direct deliveries/s, N=1,000 (log scale, higher is better)", log: true });
  if (latency)
    panels.push({ scenario: latency, title: `DM latency p99 at ${latency.kind === "latency" ? latency.rate : 0}/s (log scale, lower is better)`, log: true });
  if (idle) panels.push({ scenario: idle, title: `Idle memory per connection, ${idle.n} conns (lower is better)`, log: false });
  const colW = 470;
  // Each row of two panels is as tall as the one with more servers measured.
  const bars = (p: Panel) => servers.filter((s) => Number.isFinite(summary[p.scenario.id]?.[s]?.value.median)).length;
  const rowH: number[] = [];
  for (let i = 0; i < panels.length; i += 2) rowH.push(24 + Math.max(bars(panels[i]!), panels[i + 1] ? bars(panels[i + 1]!) : 0) * 22 + 16);
  const rowY = rowH.map((_, r) => 36 + rowH.slice(0, r).reduce((a, h) => a + h, 0));
  const width = colW * 2 + 20,
    height = 36 + rowH.reduce((a, h) => a + h, 0) + 28;
  const body = panels.map((p, i) => panel(p, summary[p.scenario.id] ?? {}, servers, 10 + (i % 2) * colW, rowY[Math.floor(i / 2)]!, colW - 20));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">wirechat benchmark (medians; whiskers: min–max over repetitions)</text>`,
    ...body,
    `<text x="10" y="${height - 8}" fill="#555">${esc(caption)}</text>`,
    `</svg>`,
    "",
  ].join("\n");
}
