/**
 * Turns run results into summaries, per-repetition ratios, the targets
 * check and the Markdown printed on stdout. Ratios are computed within each
 * repetition (same conditions, same minute) and then summarised, because
 * single runs on this machine can be off 2x (and p99 100x).
 */
import type { RunResult, Scenario } from "./scenarios";

/** Median with its range over repetitions. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Median, min and max of a list (NaN for an empty one). */
export function summarize(xs: number[]): Summary {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s.at(-1)!, n: s.length };
}

/** The baselines wirechat is compared with; wirechat-A2 gives the noise floor. */
export const BASELINES = ["wirechat-A2", "rawBun", "nodeWs", "socketIo", "idealC"] as const;

/** Per-server summary of one scenario. */
export interface ServerSummary {
  value: Summary;
  serverCpu?: Summary;
  clientBoundRuns: number;
  lost: number;
  failures: number;
}

/** value summaries per scenario and server. */
export function summarizeRuns(results: RunResult[], scenarioIds: string[], servers: string[]): Record<string, Record<string, ServerSummary>> {
  const out: Record<string, Record<string, ServerSummary>> = {};
  for (const sc of scenarioIds) {
    out[sc] = {};
    for (const sv of servers) {
      const rs = results.filter((r) => r.scenario === sc && r.server === sv);
      if (rs.length === 0) continue;
      const ok = rs.filter((r) => r.ok);
      const cpus = ok.flatMap((r) => (r.serverCpu === undefined ? [] : [r.serverCpu]));
      out[sc]![sv] = {
        value: summarize(ok.map((r) => r.value)),
        serverCpu: cpus.length ? summarize(cpus) : undefined,
        clientBoundRuns: ok.filter((r) => r.clientBound).length,
        lost: rs.reduce((a, r) => a + r.lost, 0),
        failures: rs.length - ok.length,
      };
    }
  }
  return out;
}

/** wirechat / baseline, computed per repetition, summarised per scenario. */
export function ratios(results: RunResult[], scenarioIds: string[]): Record<string, Record<string, Summary>> {
  const out: Record<string, Record<string, Summary>> = {};
  for (const sc of scenarioIds) {
    out[sc] = {};
    const reps = [...new Set(results.filter((r) => r.scenario === sc).map((r) => r.rep))];
    for (const b of BASELINES) {
      const xs: number[] = [];
      for (const rep of reps) {
        const w = results.find((r) => r.scenario === sc && r.rep === rep && r.server === "wirechat" && r.ok);
        const o = results.find((r) => r.scenario === sc && r.rep === rep && r.server === b && r.ok);
        if (w && o && o.value > 0) xs.push(w.value / o.value);
      }
      if (xs.length) out[sc]![b] = summarize(xs);
    }
  }
  return out;
}

/** A goal from the issue, on the median per-repetition ratio. */
export interface Target {
  label: string;
  scenario: string;
  baseline: string;
  op: ">=" | "<=";
  goal: number;
}

/** The targets (N=64 for throughput). */
export const TARGETS: Target[] = [
  { label: "broadcast N=64 vs raw Bun", scenario: "broadcast-N64", baseline: "rawBun", op: ">=", goal: 0.95 },
  { label: "direct N=64 vs raw Bun", scenario: "direct-N64", baseline: "rawBun", op: ">=", goal: 0.85 },
  { label: "broadcast N=64 vs Node ws", scenario: "broadcast-N64", baseline: "nodeWs", op: ">=", goal: 25 },
  { label: "direct N=64 vs Node ws", scenario: "direct-N64", baseline: "nodeWs", op: ">=", goal: 5 },
  { label: "broadcast N=64 vs Socket.IO", scenario: "broadcast-N64", baseline: "socketIo", op: ">=", goal: 25 },
  { label: "direct N=64 vs Socket.IO", scenario: "direct-N64", baseline: "socketIo", op: ">=", goal: 6 },
  { label: "DM p99 at 20,000/s vs raw Bun", scenario: "latency-20000", baseline: "rawBun", op: "<=", goal: 1.2 },
  { label: "idle memory/conn vs raw Bun", scenario: "idle-5000", baseline: "rawBun", op: "<=", goal: 1.3 },
];

/** Each target with its measured ratio and verdict. */
export function checkTargets(r: Record<string, Record<string, Summary>>) {
  return TARGETS.map((t) => {
    // A quick run measures idle memory at fewer connections: use what exists.
    const sc = r[t.scenario] ? t.scenario : t.scenario.startsWith("idle-") ? Object.keys(r).find((k) => k.startsWith("idle-")) : undefined;
    const s = sc ? r[sc]?.[t.baseline] : undefined;
    const status = !s ? "not measured" : (t.op === ">=" ? s.median >= t.goal : s.median <= t.goal) ? "met" : "not met";
    return { ...t, measuredScenario: s ? sc : null, ratio: s ?? null, status };
  });
}

/** Human-readable figure for a scenario's headline value. */
export function fmtValue(s: Scenario, v: number): string {
  if (!Number.isFinite(v)) return "—";
  if (s.kind === "latency") return `${v.toFixed(2)} ms`;
  if (s.kind === "idle") return `${(v / 1024).toFixed(1)} KiB`;
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)}M/s` : `${(v / 1e3).toFixed(0)}k/s`;
}

const fmtRatio = (s: Summary) => `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;

/** The Markdown report: per-scenario figures, ratios, targets, failures. */
export function markdown(opts: {
  scenarios: Scenario[];
  servers: string[];
  summary: Record<string, Record<string, ServerSummary>>;
  ratios: Record<string, Record<string, Summary>>;
  targets: ReturnType<typeof checkTargets>;
  failures: RunResult[];
  header: string;
}): string {
  const out: string[] = [opts.header, ""];
  out.push("### Figures (median, min–max over repetitions)", "");
  out.push("Throughput: deliveries/s (C client). Latency: DM p99 (Bun client, 64 sockets). Idle: RSS growth per connection.", "");
  out.push(`| scenario | ${opts.servers.join(" | ")} |`, `|---|${opts.servers.map(() => "---").join("|")}|`);
  for (const s of opts.scenarios) {
    const cells = opts.servers.map((sv) => {
      const x = opts.summary[s.id]?.[sv];
      if (!x) return "—";
      if (x.failures) return `FAILED (${x.failures})`;
      let cell = `${fmtValue(s, x.value.median)} (${fmtValue(s, x.value.min)}–${fmtValue(s, x.value.max)})`;
      if (x.serverCpu) cell += ` cpu ${(x.serverCpu.median * 100).toFixed(0)}%`;
      if (x.clientBoundRuns) cell += ` ⚠client-bound×${x.clientBoundRuns}`;
      return cell;
    });
    out.push(`| ${s.id} | ${cells.join(" | ")} |`);
  }
  out.push("", "### wirechat ÷ baseline, per repetition (median, min–max)", "");
  out.push("Throughput: higher is better for wirechat. Latency p99 and idle memory: lower is better. wirechat-A2 is the A/A noise floor (ideal 1.00).", "");
  out.push(`| scenario | ${BASELINES.join(" | ")} |`, `|---|${BASELINES.map(() => "---").join("|")}|`);
  for (const s of opts.scenarios) {
    out.push(`| ${s.id} | ${BASELINES.map((b) => (opts.ratios[s.id]?.[b] ? fmtRatio(opts.ratios[s.id]![b]!) : "—")).join(" | ")} |`);
  }
  out.push("", "### Targets", "", "| target | goal | measured | status |", "|---|---|---|---|");
  for (const t of opts.targets) {
    out.push(`| ${t.label} | ${t.op} ${t.goal} | ${t.ratio ? fmtRatio(t.ratio) : "—"} | ${t.status} |`);
  }
  if (opts.failures.length) {
    out.push("", "### FAILURES", "");
    for (const f of opts.failures) out.push(`- ${f.scenario} / ${f.server} / rep ${f.rep}: lost ${f.lost}; ${f.error ?? "messages lost"}`);
  }
  return out.join("\n");
}
