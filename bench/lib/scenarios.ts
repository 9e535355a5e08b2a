/**
 * The scenarios and how one (scenario, server) pair is measured. Every run
 * counts lost messages; a run that loses anything, or whose server stops
 * answering, is marked not ok and fails the whole benchmark.
 */
import { join } from "node:path";
import { cpuSeconds, rssBytes } from "./proc";
import type { RunningServer } from "./servers";
import { pinned, readLines, sleep, track, within } from "./spawn";

/** One scenario: throughput (C client), latency (Bun client) or idle memory. */
export type Scenario =
  | { id: string; kind: "throughput"; mode: "broadcast" | "direct"; n: number; warmup: number; duration: number }
  | { id: string; kind: "latency"; rate: number; n: number; warmup: number; duration: number }
  | { id: string; kind: "idle"; n: number };

/** What one (scenario, server, repetition) run measured. */
export interface RunResult {
  scenario: string;
  server: string;
  rep: number;
  ok: boolean;
  error: string | null;
  lost: number;
  /** The headline figure: deliveries/s, p99 ms, or bytes per idle connection. */
  value: number;
  /** Every other figure of the run. */
  metrics: Record<string, number>;
  /** Server CPU use over the measured window, 1 = one full core (throughput only). */
  serverCpu?: number;
  /** Throughput run whose server stayed under 95% CPU: the client or the loop limited it. */
  clientBound?: boolean;
}

/** The scenario list for a full run or a --quick one. */
export function scenarios(quick: boolean): Scenario[] {
  const ns = quick ? [64] : [16, 64, 256];
  const tp = { warmup: quick ? 0.3 : 0.5, duration: quick ? 1 : 2 };
  const list: Scenario[] = [];
  for (const mode of ["broadcast", "direct"] as const)
    for (const n of ns) list.push({ id: `${mode}-N${n}`, kind: "throughput", mode, n, ...tp });
  for (const rate of quick ? [2000] : [2000, 20000])
    list.push({ id: `latency-${rate}`, kind: "latency", rate, n: 64, warmup: quick ? 0.2 : 0.5, duration: quick ? 1 : 2 });
  list.push({ id: `idle-${quick ? 1000 : 5000}`, kind: "idle", n: quick ? 1000 : 5000 });
  return list;
}

/**
 * Closed-loop window per connection. It keeps about 1,024 messages in flight
 * whatever N is, i.e. ~130 KB queued per socket: enough to keep a batching
 * server (wirechat's group commit) busy, far below any backpressure limit.
 */
export function windowFor(mode: "broadcast" | "direct", n: number): number {
  return mode === "broadcast" ? Math.max(1, Math.floor(1024 / n)) : 64;
}

interface Ctx {
  root: string;
  wsload: string;
}

/** Runs a client process pinned to core 1 and collects its JSON lines. */
async function runClient(cmd: string[], limitMs: number, onEvent: (e: Record<string, unknown>) => void): Promise<{ result: Record<string, unknown> | null; stderr: string; code: number }> {
  const proc = track(Bun.spawn(pinned(1, cmd), { stdout: "pipe", stderr: "pipe", stdin: "ignore" }));
  let result: Record<string, unknown> | null = null;
  const lines = readLines(proc.stdout, (line) => {
    if (!line.startsWith("{")) return;
    const e = JSON.parse(line) as Record<string, unknown>;
    if (e.event === "result") result = e;
    onEvent(e);
  });
  const stderr = new Response(proc.stderr).text();
  try {
    await within(proc.exited, limitMs, `client ${cmd[0]}`);
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  }
  await lines;
  return { result, stderr: (await stderr).slice(0, 2000), code: proc.exitCode ?? -1 };
}

const num = (v: unknown) => (typeof v === "number" ? v : 0);

/** Measures one scenario against a started server. */
export async function runScenario(s: Scenario, server: RunningServer, rep: number, ctx: Ctx): Promise<RunResult> {
  const base = { scenario: s.id, server: server.spec.name, rep };
  const finish = (r: Omit<RunResult, "scenario" | "server" | "rep">): RunResult => {
    // A server that died mid-run did not answer, whatever the client saw.
    if (!server.alive()) return { ...base, ...r, ok: false, error: r.error ?? `${server.spec.name} exited during the run` };
    return { ...base, ...r };
  };
  try {
    if (s.kind === "throughput") return finish(await throughput(s, server, ctx));
    if (s.kind === "latency") return finish(await latency(s, server, ctx));
    return finish(await idle(s, server, ctx));
  } catch (err) {
    return { ...base, ok: false, error: (err as Error).message, lost: 0, value: 0, metrics: {} };
  }
}

type Measured = Omit<RunResult, "scenario" | "server" | "rep">;

/** Flags both clients share: the Socket.IO dialect, and the token file for a server that checks identity. */
function clientFlags(server: RunningServer, args: string[]): void {
  if (server.spec.sio) args.push("--sio");
  if (server.spec.tokens) args.push("--tokens", server.spec.tokens);
}

async function throughput(s: Extract<Scenario, { kind: "throughput" }>, server: RunningServer, ctx: Ctx): Promise<Measured> {
  const args = [ctx.wsload, "--port", String(server.port), "--n", String(s.n), "--mode", s.mode,
    "--window", String(windowFor(s.mode, s.n)), "--warmup", String(s.warmup), "--duration", String(s.duration), "--drain", "5"];
  clientFlags(server, args);
  let cpu0 = 0, t0 = 0, cpu1 = 0, t1 = 0;
  const { result, stderr, code } = await runClient(args, 120_000, (e) => {
    // Sample the server's CPU exactly around the measured window.
    if (e.event === "measure_start") (cpu0 = cpuSeconds(server.pid)), (t0 = performance.now());
    if (e.event === "result" && t0) (cpu1 = cpuSeconds(server.pid)), (t1 = performance.now());
  });
  if (!result) return { ok: false, error: `wsload exited ${code} without a result: ${stderr}`, lost: 0, value: 0, metrics: {} };
  const lost = num(result.lost) + num(result.warmup_lost);
  const serverCpu = t1 > t0 ? (cpu1 - cpu0) / ((t1 - t0) / 1000) : 0;
  const value = num(result.deliveries_per_s);
  const metrics: Record<string, number> = {};
  for (const k of ["sent", "delivered", "expected", "elapsed_s", "messages_per_s", "window", "connect_s"]) metrics[k] = num(result[k]);
  const error = (result.error as string | null) ?? (code !== 0 ? `wsload exited ${code}` : null);
  return { ok: !error && lost === 0, error, lost, value, metrics, serverCpu, clientBound: serverCpu < 0.95 };
}

async function latency(s: Extract<Scenario, { kind: "latency" }>, server: RunningServer, ctx: Ctx): Promise<Measured> {
  const args = [process.execPath, join(ctx.root, "bench/latency.ts"), "--port", String(server.port), "--n", String(s.n),
    "--rate", String(s.rate), "--duration", String(s.duration), "--warmup", String(s.warmup)];
  clientFlags(server, args);
  const { result, stderr, code } = await runClient(args, 60_000, () => {});
  if (!result) return { ok: false, error: `latency client exited ${code} without a result: ${stderr}`, lost: 0, value: 0, metrics: {} };
  const lost = num(result.lost);
  const metrics: Record<string, number> = {};
  for (const k of ["p50_ms", "p99_ms", "max_ms", "samples", "sent", "delivered", "expected", "achieved_rate"]) metrics[k] = num(result[k]);
  const error = (result.error as string | null) ?? (code !== 0 ? `latency client exited ${code}` : null);
  return { ok: !error && lost === 0, error, lost, value: metrics.p99_ms!, metrics };
}

async function idle(s: Extract<Scenario, { kind: "idle" }>, server: RunningServer, ctx: Ctx): Promise<Measured> {
  await sleep(1000); // let the fresh process settle before the baseline reading
  const before = rssBytes(server.pid);
  const args = [ctx.wsload, "--port", String(server.port), "--n", String(s.n), "--mode", "idle", "--hold", "120"];
  clientFlags(server, args);
  const proc = track(Bun.spawn(pinned(1, args), { stdout: "pipe", stderr: "pipe", stdin: "ignore" }));
  let ready: Record<string, unknown> | null = null;
  let final: Record<string, unknown> | null = null;
  const readyP = new Promise<void>((resolve) => {
    void readLines(proc.stdout, (line) => {
      if (!line.startsWith("{")) return;
      const e = JSON.parse(line) as Record<string, unknown>;
      if (e.event === "ready") (ready = e), resolve();
      if (e.event === "result") (final = e), resolve();
    });
  });
  try {
    await within(Promise.race([readyP, proc.exited]), 90_000, `opening ${s.n} idle connections`);
    if (!ready) {
      const err = (final as Record<string, unknown> | null)?.error ?? (await new Response(proc.stderr).text());
      return { ok: false, error: `idle client failed: ${String(err)}`, lost: 0, value: 0, metrics: {} };
    }
    await sleep(1000);
    const after = rssBytes(server.pid);
    const perConn = (after - before) / s.n;
    return {
      ok: true, error: null, lost: 0, value: perConn,
      metrics: { rssBeforeBytes: before, rssAfterBytes: after, connections: num((ready as Record<string, unknown>).connected), connect_s: num((ready as Record<string, unknown>).connect_s) },
    };
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}
