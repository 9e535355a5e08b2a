/**
 * Throughput ratios measured in alternating short windows. On the benchmark
 * machine the same server's deliveries/s drift by a third over minutes (the
 * A/A twin, run tens of seconds from wirechat, reads 0.67-1.43), and a
 * scenario's servers run one after another. Here the subject and raw Bun are
 * both up at once (both on the server core; the idle one uses none of it)
 * and the client measures them in strict turns (subject, raw Bun, subject,
 * ...), so each ratio compares two windows seconds apart and every window
 * follows one of the other server. Measured: in the order subject, raw Bun,
 * raw Bun, subject, a wirechat window right after its own last one read
 * 593k-618k/s and one after raw Bun's 845k-853k/s (the last window's
 * collections and log syncs ran into it); waiting for both servers to be
 * idle before each window instead let the allocator give memory back, to
 * be faulted in again inside the window.
 *
 * The DM p99 at a fixed rate is measured the same way (`measure: "latency"`):
 * the C latency client (wsload --mode latency), started afresh for each window, sends at the rate
 * for a warm-up and then the measured seconds; the ratio is the subject's
 * p99 ÷ raw Bun's, so below 1 is better there.
 */
import type { RunningServer, ServerSpec } from "./servers";
import { startServer } from "./servers";
import { type Ctx, latency, type RunResult, type Scenario, throughput } from "./scenarios";
import { fmtRange, fmtRate, type Summary, summarize, TARGETS, type TargetResult, verdict } from "./report";

type Interleaved = Extract<Scenario, { kind: "interleaved" }>;

/** The server every interleaved ratio divides by. */
export const INTERLEAVED_BASELINE = "rawBun";

/**
 * One repetition: a window each unmeasured (the JIT's first compile), then
 * `rounds` pairs of windows. The value is the median of the rounds' ratios;
 * metrics hold each round's figures (`ratio_<r>`, `subject_<r>`, `baseline_<r>`:
 * deliveries/s, or p99 ms).
 */
export async function runInterleaved(s: Interleaved, subject: ServerSpec, baseline: ServerSpec, rep: number, ctx: Ctx): Promise<RunResult> {
  const base = { scenario: s.id, server: subject.name, rep };
  /** One window on `server`, its users from u<firstUser>; the discarded first pair (latency) warms up longer. */
  const measure = (server: RunningServer, firstUser: number, discarded: boolean) =>
    s.measure === "latency"
      ? latency({ id: s.id, kind: "latency", rate: s.rate, n: s.n, warmup: discarded ? s.firstWarmup : s.warmup, duration: s.duration }, server, ctx, firstUser)
      : throughput({ id: s.id, kind: "throughput", mode: s.mode, n: s.n, warmup: s.warmup, duration: s.duration }, server, ctx, firstUser);
  let lost = 0;
  const started = await Promise.allSettled([startServer(subject, ctx.root), startServer(baseline, ctx.root)]);
  const servers = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  try {
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]];
    const metrics: Record<string, number> = {};
    const ratios: number[] = [];
    // Each run against a server takes users it has not seen: wirechat would replay a returning user's stored messages.
    const runs = new Map<string, number>();
    for (let round = -1; round < s.rounds; round++) {
      const got = new Map<string, number>();
      for (const server of [a, b]) {
        const k = runs.get(server.spec.name) ?? 0;
        runs.set(server.spec.name, k + 1);
        const m = await measure(server, k * s.n, round < 0);
        lost += m.lost;
        if (!server.alive()) return { ...base, ...m, ok: false, lost, error: m.error ?? `${server.spec.name} exited during the run` };
        if (!m.ok) return { ...base, ...m, ok: false, lost, error: m.error ?? `${server.spec.name}: ${m.lost} messages lost` };
        got.set(server.spec.name, m.value);
      }
      if (round < 0) continue;
      const x = got.get(subject.name)!;
      const y = got.get(baseline.name)!;
      metrics[`subject_${round}`] = x;
      metrics[`baseline_${round}`] = y;
      if (y > 0) ratios.push((metrics[`ratio_${round}`] = x / y));
    }
    const value = summarize(ratios).median;
    return { ...base, ok: Number.isFinite(value), error: Number.isFinite(value) ? null : "no round measured both servers", lost, value, metrics };
  } catch (err) {
    return { ...base, ok: false, error: (err as Error).message, lost, value: 0, metrics: {} };
  } finally {
    await Promise.all(servers.map((x) => x.stop()));
  }
}

/** Per interleaved scenario: the ratio of every round of every repetition, and each side's figures. */
export interface InterleavedEntry {
  /** Deliveries/s (higher is better) or the DM p99 in ms at `rate` (lower is better). */
  measure: "throughput" | "latency";
  mode: "broadcast" | "direct";
  n: number;
  /** Messages/s of a latency scenario. */
  rate?: number;
  subject: string;
  runs: number;
  failures: number;
  ratio: Summary | null;
  /** The subject's figure per window: deliveries/s, or p99 ms. */
  subjectFigure: Summary | null;
  baselineFigure: Summary | null;
}

export function interleavedSummary(results: RunResult[], scenarios: Scenario[]): Record<string, InterleavedEntry> {
  const out: Record<string, InterleavedEntry> = {};
  for (const s of scenarios) {
    if (s.kind !== "interleaved") continue;
    const rs = results.filter((r) => r.scenario === s.id);
    if (!rs.length) continue;
    const ok = rs.filter((r) => r.ok);
    const all = (prefix: string) => ok.flatMap((r) => Object.entries(r.metrics).flatMap(([k, v]) => (k.startsWith(prefix) ? [v] : [])));
    const some = (xs: number[]) => (xs.length ? summarize(xs) : null);
    out[s.id] = {
      measure: s.measure,
      mode: s.mode,
      n: s.n,
      ...(s.measure === "latency" ? { rate: s.rate } : {}),
      subject: s.subject,
      runs: rs.length,
      failures: rs.length - ok.length,
      ratio: some(all("ratio_")),
      subjectFigure: some(all("subject_")),
      baselineFigure: some(all("baseline_")),
    };
  }
  return out;
}

const pairs = (n: number) => `${n} pair${n === 1 ? "" : "s"}`;

/**
 * The targets against raw Bun (TARGETS), judged again on the interleaved
 * ratios of the same scenario (mode and N, or latency rate) and subject:
 * the median over every pair of every repetition.
 */
export function interleavedTargets(summary: Record<string, InterleavedEntry>): TargetResult[] {
  return TARGETS.flatMap((t) => {
    if (t.baseline !== INTERLEAVED_BASELINE) return [];
    const subject = t.subject ?? "wirechat";
    const scenarioOf = (x: InterleavedEntry) => (x.measure === "latency" ? `latency-${x.rate}` : `${x.mode}-N${x.n}`);
    const e = Object.entries(summary).find(([, x]) => scenarioOf(x) === t.scenario && x.subject === subject);
    if (!e) return [];
    const [id, x] = e;
    return [
      {
        ...t,
        label: `${t.label}, interleaved ${pairs(x.ratio?.n ?? 0)} of windows`,
        from: t.from ?? "original",
        scenario: id,
        measuredScenario: x.ratio ? id : null,
        measured: x.ratio,
        ratio: x.ratio,
        status: verdict(t.op, t.goal, x.ratio),
      } satisfies TargetResult,
    ];
  });
}

/** The Markdown section of the interleaved scenarios. */
export function interleavedMarkdown(summary: Record<string, InterleavedEntry>): string[] {
  const rows = Object.entries(summary);
  if (!rows.length) return [];
  const out = [
    "",
    "### Interleaved: the subject and raw Bun in alternating windows (median, min–max over every pair)",
    "",
    "Both servers up at once; the client (the C client in its load mode for throughput, in its latency mode for p99) measures the subject, then raw Bun, in strict turns, so a ratio compares windows seconds apart. Each repetition starts both servers fresh and discards its first pair. Throughput: deliveries/s, higher is better; latency: DM p99, lower is better.",
    "",
    "| scenario | subject | raw Bun | subject ÷ raw Bun, per pair |",
    "|---|---|---|---|",
  ];
  for (const [id, x] of rows) {
    const fmt = x.measure === "latency" ? (v: number) => `${v.toFixed(2)} ms` : fmtRate;
    out.push(
      `| ${id}${x.failures ? ` (FAILED ×${x.failures})` : ""} | ${fmtRange(x.subjectFigure, fmt)} | ${fmtRange(x.baselineFigure, fmt)} | ${fmtRange(x.ratio, (v) => v.toFixed(2))} |`,
    );
  }
  return out;
}
