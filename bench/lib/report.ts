/**
 * Turns run results into summaries, per-repetition ratios, the targets
 * check and the Markdown printed on stdout. Ratios are computed within each
 * repetition (same conditions, same minute) and then summarised, because
 * single runs on this machine can be off 2x (and p99 100x).
 */
import { IDLE_SETTLE_MS, type RunResult, type Scenario } from "./scenarios";

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

/** Baselines of wirechat with `?batch=1`: raw Bun as it is, raw Bun coalescing the same way (the ceiling), and wirechat without batching. */
export const BATCH_BASELINES = ["rawBun", "rawBunBatch", "wirechat"] as const;

/** `subject` / baseline (wirechat by default), computed per repetition, summarised per scenario. */
export function ratios(
  results: RunResult[],
  scenarioIds: string[],
  subject = "wirechat",
  baselines: readonly string[] = BASELINES,
): Record<string, Record<string, Summary>> {
  const out: Record<string, Record<string, Summary>> = {};
  for (const sc of scenarioIds) {
    out[sc] = {};
    const reps = [...new Set(results.filter((r) => r.scenario === sc).map((r) => r.rep))];
    for (const b of baselines) {
      const xs: number[] = [];
      for (const rep of reps) {
        const w = results.find((r) => r.scenario === sc && r.rep === rep && r.server === subject && r.ok);
        const o = results.find((r) => r.scenario === sc && r.rep === rep && r.server === b && r.ok);
        if (w && o && o.value > 0) xs.push(w.value / o.value);
      }
      if (xs.length) out[sc]![b] = summarize(xs);
    }
  }
  return out;
}

/** A goal from an issue, on the median per-repetition ratio. */
export interface Target {
  label: string;
  scenario: string;
  baseline: string;
  op: ">=" | "<=";
  goal: number;
  /** Where the goal comes from: the original targets, or the issue that set it. */
  from?: string;
  /** Whose ratio it is: wirechat (default) or wirechat with `?batch=1`. */
  subject?: "wirechat" | "wirechat-batch";
}

/** The ratio targets (N=64 for throughput): the original ones, and issue 8's for wirechat with AUTH=jwt. */
export const TARGETS: Target[] = [
  { label: "broadcast N=64 vs raw Bun", scenario: "broadcast-N64", baseline: "rawBun", op: ">=", goal: 0.95 },
  { label: "broadcast N=64 vs raw Bun, AUTH=jwt", scenario: "broadcast-N64", baseline: "rawBun", op: ">=", goal: 0.85, from: "issue 8" },
  { label: "direct N=64 vs raw Bun", scenario: "direct-N64", baseline: "rawBun", op: ">=", goal: 0.85 },
  { label: "direct N=64 vs raw Bun, AUTH=jwt (durable store)", scenario: "direct-N64", baseline: "rawBun", op: ">=", goal: 0.5, from: "issue 8" },
  { label: "broadcast N=64 vs Node ws", scenario: "broadcast-N64", baseline: "nodeWs", op: ">=", goal: 25 },
  { label: "direct N=64 vs Node ws", scenario: "direct-N64", baseline: "nodeWs", op: ">=", goal: 5 },
  { label: "broadcast N=64 vs Socket.IO", scenario: "broadcast-N64", baseline: "socketIo", op: ">=", goal: 25 },
  { label: "direct N=64 vs Socket.IO", scenario: "direct-N64", baseline: "socketIo", op: ">=", goal: 6 },
  { label: "DM p99 at 20,000/s vs raw Bun", scenario: "latency-20000", baseline: "rawBun", op: "<=", goal: 1.2 },
  { label: "idle memory/conn vs raw Bun", scenario: "idle-5000", baseline: "rawBun", op: "<=", goal: 1.3 },
  // Issue 10: coalesced frames (`?batch=1`), the direct path, and no loss for clients without batching.
  {
    label: "?batch=1 broadcast N=64 vs raw Bun",
    scenario: "broadcast-N64",
    baseline: "rawBun",
    op: ">=",
    goal: 2.5,
    from: "issue 10",
    subject: "wirechat-batch",
  },
  { label: "?batch=1 direct N=64 vs raw Bun", scenario: "direct-N64", baseline: "rawBun", op: ">=", goal: 0.85, from: "issue 10", subject: "wirechat-batch" },
  {
    label: "?batch=1 DM p99 at 2,000/s vs without batching",
    scenario: "latency-2000",
    baseline: "wirechat",
    op: "<=",
    goal: 1,
    from: "issue 10",
    subject: "wirechat-batch",
  },
  { label: "DM p99 at 20,000/s vs raw Bun (within 1.5x)", scenario: "latency-20000", baseline: "rawBun", op: "<=", goal: 1.5, from: "issue 10" },
];

/** One target's verdict: `measured` is the median (min–max) it is judged on. */
export interface TargetResult {
  label: string;
  op: ">=" | "<=";
  goal: number;
  /** The goal as printed, when its number alone would mislead (1/1.5). */
  goalText?: string;
  from: string;
  /** What `measured` is, when not a ratio wirechat ÷ baseline. */
  unit?: string;
  scenario?: string;
  baseline?: string;
  measuredScenario: string | null;
  measured: Summary | null;
  /** Same as `measured` for the ratio targets (kept for older readers of the JSON). */
  ratio?: Summary | null;
  status: "met" | "not met" | "not measured";
  note?: string;
}

/** Met, not met, or not measured (no median) for `op goal`. */
export const verdict = (op: ">=" | "<=", goal: number, s: Summary | null | undefined): TargetResult["status"] =>
  !s || !Number.isFinite(s.median) ? "not measured" : (op === ">=" ? s.median >= goal : s.median <= goal) ? "met" : "not met";

/** Most bytes per connect above PRESENCE_GLOBAL_MAX that still counts as O(1): a welcome with no list and no presence to everyone. */
export const STORM_BYTES_O1 = 1024;

/** Each target with its measured value and verdict: the ratio targets, then issue 11's cluster and connect-storm targets. */
export function checkTargets(
  plain: Record<string, Record<string, Summary>>,
  cluster: ClusterSummary = {},
  storm: StormSummary = { sizes: [], servers: {}, ratios: {}, marginal: {} },
  batched: Record<string, Record<string, Summary>> = {},
  paired: PairedSummary = {},
): TargetResult[] {
  const out: TargetResult[] = TARGETS.map((t) => {
    const r = t.subject === "wirechat-batch" ? batched : plain;
    // A quick run measures idle memory at fewer connections: use what exists.
    const sc = r[t.scenario] ? t.scenario : t.scenario.startsWith("idle-") ? Object.keys(r).find((k) => k.startsWith("idle-")) : undefined;
    const s = sc ? r[sc]?.[t.baseline] : undefined;
    return { ...t, from: t.from ?? "original", measuredScenario: s ? sc! : null, measured: s ?? null, ratio: s ?? null, status: verdict(t.op, t.goal, s) };
  });
  const p = paired["latency-2000-paired"];
  if (p)
    out.push({
      label: "?batch=1 DM p99 at 2,000/s vs without batching, both on one server at once (paired)",
      op: "<=",
      goal: 1,
      from: "issue 10",
      measuredScenario: p.batchVsPlain ? "latency-2000-paired" : null,
      measured: p.batchVsPlain,
      ratio: p.batchVsPlain,
      status: verdict("<=", 1, p.batchVsPlain),
      note: "half the receivers on ?batch=1: every stall hits both modes alike",
    });
  const ISSUE = "issue 11";
  // Cluster: the run whose senders are on both nodes is the one Redis carries most of.
  const accepted = cluster["cluster-direct-mixed-N64"];
  out.push({
    label: "cluster: accepted messages/s on one Redis (2 nodes, direct, senders on both)",
    op: ">=",
    goal: 50_000,
    from: ISSUE,
    unit: "messages/s",
    measuredScenario: accepted ? "cluster-direct-mixed-N64" : null,
    measured: accepted?.metrics.accepted_per_s ?? null,
    status: verdict(">=", 50_000, accepted?.metrics.accepted_per_s),
    note: "on this 2-core machine Redis shares its core with the client and the nodes share the other: see Redis CPU per message for what one Redis core carries",
  });
  const us = accepted?.metrics.redis_cpu_us_per_msg;
  out.push({
    label: "cluster: Redis CPU per accepted message (what 50,000/s on one Redis core allows)",
    op: "<=",
    goal: 20,
    from: ISSUE,
    unit: "µs",
    measuredScenario: us ? "cluster-direct-mixed-N64" : null,
    measured: us ?? null,
    status: verdict("<=", 20, us),
    note: us ? `one Redis core at this cost: ${Math.round(1e6 / us.median).toLocaleString("en-US")} messages/s` : undefined,
  });
  for (const [id, c] of Object.entries(cluster)) {
    if (!c.vsSingleNode) continue;
    out.push({
      label: `cluster: cross-node DM p99 at ${c.rate?.toLocaleString("en-US")}/s vs single node`,
      op: "<=",
      goal: 3,
      from: ISSUE,
      measuredScenario: id,
      measured: c.vsSingleNode,
      status: verdict("<=", 3, c.vsSingleNode),
    });
  }
  for (const size of storm.sizes) {
    const ratio = storm.ratios[size.id];
    out.push({
      label: `connect storm ${size.n.toLocaleString("en-US")} users: connects/s vs raw Bun (within 1.5x)`,
      op: ">=",
      goal: 1 / 1.5,
      goalText: "0.67 (1/1.5)",
      from: ISSUE,
      measuredScenario: ratio ? size.id : null,
      measured: ratio ?? null,
      ratio: ratio ?? null,
      status: verdict(">=", 1 / 1.5, ratio),
    });
  }
  // O(1) above PRESENCE_GLOBAL_MAX: each step up in users costs the same few hundred bytes per extra connect.
  const steps = storm.marginal.wirechat ?? [];
  if (steps.length) {
    const worst = steps.reduce((a, b) => (b.bytes.median > a.bytes.median ? b : a));
    const flat = Math.max(...steps.map((x) => x.bytes.median)) <= 1.25 * Math.min(...steps.map((x) => x.bytes.median));
    const status = worst.bytes.median <= STORM_BYTES_O1 && flat ? "met" : "not met";
    out.push({
      label: "connect storm: wirechat bytes per extra connect above 500 users (O(1): flat across steps, a welcome without a list)",
      op: "<=",
      goal: STORM_BYTES_O1,
      from: ISSUE,
      unit: "bytes",
      measuredScenario: `${worst.from}→${worst.to}`,
      measured: worst.bytes,
      status,
      note: steps.map((x) => `${x.from}→${x.to}: ${x.bytes.median.toFixed(0)} B`).join(", ") + (flat ? "" : " (not flat: grows with users)"),
    });
  }
  return out;
}

/** A paired latency scenario: per-mode figures (medians over repetitions) and the `?batch=1` ÷ plain p99 ratio per repetition. */
export interface PairedEntry {
  rate: number;
  runs: number;
  failures: number;
  metrics: Record<string, Summary>;
  /** p99 of the `?batch=1` receivers ÷ p99 of the others, same server, same window. */
  batchVsPlain: Summary | null;
}
export type PairedSummary = Record<string, PairedEntry>;

/** Summarises the paired latency scenarios (wirechat only). */
export function pairedSummary(results: RunResult[], scenarios: Scenario[]): PairedSummary {
  const out: PairedSummary = {};
  for (const s of scenarios) {
    if (s.kind !== "latencyPaired") continue;
    const rs = results.filter((r) => r.scenario === s.id && r.server === "wirechat");
    if (rs.length === 0) continue;
    const ok = rs.filter((r) => r.ok && r.value > 0);
    const keys = [...new Set(ok.flatMap((r) => Object.keys(r.metrics)))];
    out[s.id] = {
      rate: s.rate,
      runs: rs.length,
      failures: rs.length - ok.length,
      metrics: Object.fromEntries(keys.map((k) => [k, summarize(ok.map((r) => r.metrics[k]!))])),
      batchVsPlain: ok.length ? summarize(ok.map((r) => r.value)) : null,
    };
  }
  return out;
}

/** Figures of one cluster scenario (medians over repetitions), and for latency its ratio to the single node. */
export interface ClusterEntry {
  mode?: string;
  senders?: string;
  rate?: number;
  runs: number;
  failures: number;
  lost: number;
  metrics: Record<string, Summary>;
  /** Single-node wirechat p99 at the same rate, same repetition. */
  singleNodeP99?: Summary;
  /** Cluster p99 ÷ single-node p99, per repetition. */
  vsSingleNode?: Summary;
}
export type ClusterSummary = Record<string, ClusterEntry>;

/** Summarises every metric of the cluster scenarios; cluster latency is divided by the single node's p99 of the same repetition. */
export function clusterSummary(results: RunResult[], scenarios: Scenario[]): ClusterSummary {
  const out: ClusterSummary = {};
  for (const s of scenarios) {
    if (s.kind !== "cluster" && s.kind !== "clusterLatency") continue;
    const rs = results.filter((r) => r.scenario === s.id && r.server === "wirechat");
    if (rs.length === 0) continue;
    const ok = rs.filter((r) => r.ok);
    const keys = [...new Set(ok.flatMap((r) => Object.keys(r.metrics)))];
    const e: ClusterEntry = {
      runs: rs.length,
      failures: rs.length - ok.length,
      lost: rs.reduce((a, r) => a + r.lost, 0),
      metrics: Object.fromEntries(keys.map((k) => [k, summarize(ok.map((r) => r.metrics[k]!))])),
    };
    if (s.kind === "cluster") (e.mode = s.mode), (e.senders = s.senders);
    else {
      e.rate = s.rate;
      const single = results.filter((r) => r.scenario === `latency-${s.rate}` && r.server === "wirechat" && r.ok);
      if (single.length) e.singleNodeP99 = summarize(single.map((r) => r.value));
      const xs: number[] = [];
      for (const c of ok) {
        const one = single.find((r) => r.rep === c.rep);
        if (one && one.value > 0) xs.push(c.value / one.value);
      }
      if (xs.length) e.vsSingleNode = summarize(xs);
    }
    out[s.id] = e;
  }
  return out;
}

/** The connect storm: per size and server, its figures; wirechat ÷ raw Bun connects/s; bytes per extra connect between sizes. */
export interface StormSummary {
  sizes: { id: string; n: number; requested: number }[];
  /** storm id → server → metric → summary. */
  servers: Record<string, Record<string, Record<string, Summary>>>;
  /** storm id → wirechat ÷ raw Bun connects/s, per repetition. */
  ratios: Record<string, Summary>;
  /** server → (rx bytes at the larger size − at the smaller) ÷ the extra users, per repetition, for consecutive sizes. */
  marginal: Record<string, { from: number; to: number; bytes: Summary }[]>;
}

export function stormSummary(results: RunResult[], scenarios: Scenario[]): StormSummary {
  const sizes = scenarios.flatMap((s) => (s.kind === "storm" ? [{ id: s.id, n: s.n, requested: s.requested }] : []));
  const out: StormSummary = { sizes, servers: {}, ratios: {}, marginal: {} };
  const names = [...new Set(results.filter((r) => sizes.some((z) => z.id === r.scenario)).map((r) => r.server))];
  for (const z of sizes) {
    out.servers[z.id] = {};
    for (const sv of names) {
      const ok = results.filter((r) => r.scenario === z.id && r.server === sv && r.ok);
      if (!ok.length) continue;
      const keys = [...new Set(ok.flatMap((r) => Object.keys(r.metrics)))];
      out.servers[z.id]![sv] = Object.fromEntries(keys.map((k) => [k, summarize(ok.map((r) => r.metrics[k]!))]));
    }
    const xs: number[] = [];
    for (const w of results.filter((r) => r.scenario === z.id && r.server === "wirechat" && r.ok)) {
      const b = results.find((r) => r.scenario === z.id && r.server === "rawBun" && r.rep === w.rep && r.ok);
      if (b && b.value > 0) xs.push(w.value / b.value);
    }
    if (xs.length) out.ratios[z.id] = summarize(xs);
  }
  for (const sv of names) {
    const steps: { from: number; to: number; bytes: Summary }[] = [];
    for (let i = 1; i < sizes.length; i++) {
      const a = sizes[i - 1]!,
        b = sizes[i]!;
      if (b.n <= a.n) continue;
      const xs: number[] = [];
      for (const rb of results.filter((r) => r.scenario === b.id && r.server === sv && r.ok)) {
        const ra = results.find((r) => r.scenario === a.id && r.server === sv && r.rep === rb.rep && r.ok);
        if (ra) xs.push((rb.metrics.rx_bytes! - ra.metrics.rx_bytes!) / (b.n - a.n));
      }
      if (xs.length) steps.push({ from: a.n, to: b.n, bytes: summarize(xs) });
    }
    out.marginal[sv] = steps;
  }
  return out;
}

/** Human-readable figure for a scenario's headline value. */
export function fmtValue(s: Scenario, v: number): string {
  if (!Number.isFinite(v)) return "—";
  if (s.kind === "latency" || s.kind === "clusterLatency") return `${v.toFixed(2)} ms`;
  if (s.kind === "latencyPaired") return `${v.toFixed(2)}x`;
  if (s.kind === "idle") return `${(v / 1024).toFixed(1)} KiB`;
  return fmtRate(v);
}

/** Deliveries per second, as the tables print them. */
export const fmtRate = (v: number) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M/s` : `${(v / 1e3).toFixed(0)}k/s`);

const fmtRatio = (s: Summary) => `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;

/** A figure with its unit, for the cluster and storm tables. */
const fmtNum = (v: number, digits = 0) =>
  Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "—";
/** A summary as median (min–max), or the median alone from one value. */
export const fmtRange = (x: Summary | null | undefined, f: (v: number) => string) =>
  x?.n ? (x.n > 1 ? `${f(x.median)} (${f(x.min)}–${f(x.max)})` : f(x.median)) : "—";
const fmtBytes = (v: number) =>
  !Number.isFinite(v) ? "—" : v >= 2 ** 20 ? `${(v / 2 ** 20).toFixed(1)} MiB` : v >= 10 * 1024 ? `${(v / 1024).toFixed(1)} KiB` : `${v.toFixed(0)} B`;
const fmtGoal = (t: TargetResult) => `${t.op} ${t.goalText ?? fmtNum(t.goal, t.goal < 10 && !Number.isInteger(t.goal) ? 2 : 0)}${t.unit ? ` ${t.unit}` : ""}`;
const fmtMeasured = (t: TargetResult) => {
  if (!t.measured) return "—";
  if (!t.unit) return fmtRatio(t.measured);
  const f = t.unit === "messages/s" ? (v: number) => fmtNum(v) : t.unit === "µs" ? (v: number) => fmtNum(v, 1) : (v: number) => fmtNum(v);
  return `${fmtRange(t.measured, f)} ${t.unit}`;
};

/** The Markdown report: per-scenario figures, ratios, the cluster, the connect storm, targets, failures. */
export function markdown(opts: {
  scenarios: Scenario[];
  servers: string[];
  summary: Record<string, Record<string, ServerSummary>>;
  ratios: Record<string, Record<string, Summary>>;
  /** wirechat with `?batch=1` ÷ its baselines. */
  batchRatios?: Record<string, Record<string, Summary>>;
  targets: TargetResult[];
  failures: RunResult[];
  header: string;
  cluster?: ClusterSummary;
  storm?: StormSummary;
  /** Where the cluster's processes ran, for its table's caption. */
  clusterPlacement?: string;
  paired?: PairedSummary;
  /** Further sections (Markdown lines), printed before the targets. */
  sections?: string[];
}): string {
  const out: string[] = [opts.header, ""];
  // The cluster and the storm have tables of their own.
  const single = opts.scenarios.filter((s) => s.kind === "throughput" || s.kind === "latency" || s.kind === "idle");
  out.push("### Figures (median, min–max over repetitions)", "");
  out.push(
    `Throughput: deliveries/s (C client). Latency: DM p99 (the C client in latency mode, open loop, 64 sockets). Idle: RSS growth per connection ${IDLE_SETTLE_MS / 1000} s after every connection is open, once each runtime's own collections have run (one second after: \`perConnAt1sBytes\` in the JSON).`,
    "",
  );
  out.push(`| scenario | ${opts.servers.join(" | ")} |`, `|---|${opts.servers.map(() => "---").join("|")}|`);
  for (const s of single) {
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
  for (const s of single) {
    out.push(`| ${s.id} | ${BASELINES.map((b) => (opts.ratios[s.id]?.[b] ? fmtRatio(opts.ratios[s.id]![b]!) : "—")).join(" | ")} |`);
  }
  const br = opts.batchRatios ?? {};
  const batchedRows = single.filter((s) => Object.keys(br[s.id] ?? {}).length > 0);
  if (batchedRows.length) {
    out.push("", "### wirechat-batch (`?batch=1`) ÷ baseline, per repetition (median, min–max)", "");
    out.push(
      "wirechat-batch is the same server as wirechat; its clients connect with `?batch=1` and get one JSON array per topic and commit batch. rawBun sends one frame per message; rawBunBatch is raw Bun sending one array per topic per event-loop turn (the ceiling of this design); wirechat is wirechat without `?batch=1`. Every message inside an array is counted.",
      "",
    );
    out.push(`| scenario | ${BATCH_BASELINES.join(" | ")} |`, `|---|${BATCH_BASELINES.map(() => "---").join("|")}|`);
    for (const s of batchedRows) out.push(`| ${s.id} | ${BATCH_BASELINES.map((b) => (br[s.id]?.[b] ? fmtRatio(br[s.id]![b]!) : "—")).join(" | ")} |`);
  }

  const pr = Object.entries(opts.paired ?? {});
  if (pr.length) {
    out.push("", "### `?batch=1` and plain receivers on one server at once (median, min–max)", "");
    out.push(
      "wirechat alone; odd-numbered sockets connect with `?batch=1`, so every DM goes from one mode to the other and both modes share each stall of the machine and the server. Each commit batch's plain frames go out before its arrays, so the batched side waits for them.",
      "",
    );
    out.push("| scenario | plain p50 | batch p50 | plain p99 | batch p99 | batch ÷ plain p99, per repetition |", "|---|---|---|---|---|---|");
    const ms = (v: number) => `${v.toFixed(2)} ms`;
    for (const [id, e] of pr) {
      const m = e.metrics;
      out.push(
        `| ${id}${e.failures ? ` (FAILED ×${e.failures})` : ""} | ${fmtRange(m.p50_plain_ms, ms)} | ${fmtRange(m.p50_batch_ms, ms)} | ${fmtRange(m.p99_plain_ms, ms)} | ${fmtRange(m.p99_batch_ms, ms)} | ${e.batchVsPlain ? fmtRatio(e.batchVsPlain) : "—"} |`,
      );
    }
  }

  const cl = opts.cluster ?? {};
  const tp = Object.entries(cl).filter(([, c]) => c.mode);
  if (Object.keys(cl).length) {
    out.push("", "### Cluster: one redis-server and 2 wirechat nodes (median, min–max)", "");
    out.push(
      `64 connections, u<i> on node i % 2. 1to2: only node 1's connections send (a DM goes to u<i+1>, on node 2; a broadcast reaches all 64); mixed: all send, every DM crosses nodes. Accepted: messages stored per second. Cross-node: deliveries whose receiver is on the other node than its sender. CPU µs per accepted message from /proc over the window and its drain; script and XREAD µs from Redis's INFO commandstats (wall time inside the command).${opts.clusterPlacement ? ` ${opts.clusterPlacement}.` : ""}`,
      "",
    );
    if (tp.length) {
      out.push(
        "| scenario | accepted msg/s | deliveries/s | cross-node deliveries/s | Redis CPU | Redis CPU µs/msg | script µs/msg | XREAD µs/msg | nodes CPU µs/msg (both) | node 1, node 2 CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
      );
      for (const [id, c] of tp) {
        if (c.failures && c.failures === c.runs) {
          out.push(`| ${id} | FAILED (${c.failures}) | | | | | | | | |`);
          continue;
        }
        const m = c.metrics;
        const pct = (v: number) => `${(v * 100).toFixed(0)}%`;
        out.push(
          `| ${id}${c.failures ? ` (FAILED ×${c.failures})` : ""} | ${fmtRange(m.accepted_per_s, (v) => fmtNum(v))} | ${fmtRange(m.deliveries_per_s, (v) => fmtNum(v))} | ${fmtRange(m.cross_deliveries_per_s, (v) => fmtNum(v))} | ${fmtRange(m.redis_cpu, pct)} | ${fmtRange(m.redis_cpu_us_per_msg, (v) => fmtNum(v, 1))} | ${fmtRange(m.redis_script_us_per_msg, (v) => fmtNum(v, 1))} | ${fmtRange(m.redis_xread_us_per_msg, (v) => fmtNum(v, 1))} | ${fmtRange(m.nodes_cpu_us_per_msg, (v) => fmtNum(v, 1))} | ${m.node1_cpu ? pct(m.node1_cpu.median) : "—"}, ${m.node2_cpu ? pct(m.node2_cpu.median) : "—"} |`,
        );
      }
    }
    const lat = Object.entries(cl).filter(([, c]) => c.rate);
    if (lat.length) {
      out.push("", "| scenario | cluster p50 | cluster p99 | single node p99 (same rate) | cluster ÷ single node p99 |", "|---|---|---|---|---|");
      for (const [id, c] of lat) {
        const ms = (v: number) => `${v.toFixed(2)} ms`;
        out.push(
          `| ${id}${c.failures ? ` (FAILED ×${c.failures})` : ""} | ${fmtRange(c.metrics.p50_ms, ms)} | ${fmtRange(c.metrics.p99_ms, ms)} | ${fmtRange(c.singleNodeP99, ms)} | ${c.vsSingleNode ? fmtRatio(c.vsSingleNode) : "—"} |`,
        );
      }
    }
  }

  const st = opts.storm;
  if (st?.sizes.length) {
    out.push("", "### Connect storm: distinct users connecting at once, single node (median, min–max)", "");
    out.push(
      "256 handshakes in flight. A connect is done at the 101 (raw Bun) or at the welcome frame (wirechat). Bytes: everything the server sent until it was quiet for 0.5 s, per connect. RSS: the server holding every connection. wirechat with its default PRESENCE_GLOBAL_MAX=500.",
      "",
    );
    const servers = [...new Set(st.sizes.flatMap((z) => Object.keys(st.servers[z.id] ?? {})))];
    out.push(
      "| users | server | connects/s | bytes sent per connect | server CPU µs per connect | RSS after | RSS growth per connection | wirechat ÷ raw Bun connects/s |",
      "|---|---|---|---|---|---|---|---|",
    );
    for (const z of st.sizes) {
      for (const sv of servers) {
        const m = st.servers[z.id]?.[sv];
        const label = `${z.n.toLocaleString("en-US")}${z.n < z.requested ? ` (of ${z.requested.toLocaleString("en-US")}: descriptor limit)` : ""}`;
        if (!m) {
          out.push(`| ${label} | ${sv} | FAILED | | | | | |`);
          continue;
        }
        out.push(
          `| ${label} | ${sv} | ${fmtRange(m.connects_per_s, (v) => fmtNum(v))} | ${fmtRange(m.bytes_per_connect, fmtBytes)} | ${fmtRange(m.server_cpu_us_per_connect, (v) => fmtNum(v))} | ${fmtRange(m.rssAfterBytes, fmtBytes)} | ${fmtRange(m.rssPerConnBytes, fmtBytes)} | ${sv === "wirechat" && st.ratios[z.id] ? fmtRatio(st.ratios[z.id]!) : ""} |`,
        );
      }
    }
    const steps = Object.entries(st.marginal).filter(([, xs]) => xs.length);
    if (steps.length) {
      out.push("", "Bytes per extra connect between sizes ((bytes at the larger − at the smaller) ÷ extra users; O(1) when flat):", "");
      for (const [sv, xs] of steps)
        out.push(`- ${sv}: ${xs.map((x) => `${x.from.toLocaleString("en-US")}→${x.to.toLocaleString("en-US")}: ${fmtRange(x.bytes, fmtBytes)}`).join("; ")}`);
    }
  }

  out.push(...(opts.sections ?? []));
  out.push("", "### Targets", "", "| target | from | goal | measured | status |", "|---|---|---|---|---|");
  for (const t of opts.targets) {
    out.push(`| ${t.label} | ${t.from} | ${fmtGoal(t)} | ${fmtMeasured(t)} | ${t.status}${t.note ? ` (${t.note})` : ""} |`);
  }
  if (opts.failures.length) {
    out.push("", "### FAILURES", "");
    for (const f of opts.failures) out.push(`- ${f.scenario} / ${f.server} / rep ${f.rep}: lost ${f.lost}; ${f.error ?? "messages lost"}`);
  }
  return out.join("\n");
}
