/**
 * The scenarios and how one (scenario, server) pair is measured. Every run
 * counts lost messages; a run that loses anything, or whose server stops
 * answering, is marked not ok and fails the whole benchmark.
 */
import { readFileSync } from "node:fs";
import { RedisClient } from "bun";
import { PLACEMENT, startCluster, type RunningCluster } from "./cluster";
import { cpuSeconds, rssBytes } from "./proc";
import type { RunningServer, ServerSpec } from "./servers";
import { pinned, readLines, sleep, track, within } from "./spawn";

/**
 * One scenario: throughput (C client), latency (C client, open loop), idle memory,
 * the cluster (Redis + 2 wirechat nodes: throughput and latency) or a
 * connect storm.
 */
export type Scenario =
  | { id: string; kind: "throughput"; mode: "broadcast" | "direct"; n: number; warmup: number; duration: number }
  /** `cids`: every message carries a fresh cid, as the SDK sends (wirechat acks and remembers each); wirechat and raw Bun only. */
  | { id: string; kind: "latency"; rate: number; n: number; warmup: number; warmupRate?: number; duration: number; cids?: boolean }
  /**
   * The same latency run on one wirechat server with half the sockets on
   * `?batch=1` (wsload --mode latency --paired): both modes share every stall of
   * the machine, so their p99 ratio shows what coalescing adds.
   */
  | { id: string; kind: "latencyPaired"; rate: number; n: number; warmup: number; warmupRate?: number; duration: number }
  | { id: string; kind: "idle"; n: number }
  /**
   * Connections alternate between the two nodes (u<i> on node i % 2). senders
   * "node1": only node 1's connections send (broadcasts reach both nodes'
   * receivers; each DM goes to u<i+1>, on node 2); "both": every connection
   * sends, each DM to u<i+1>, on the other node.
   */
  | { id: string; kind: "cluster"; mode: "broadcast" | "direct"; senders: "node1" | "both"; n: number; warmup: number; duration: number }
  /** DM latency through the cluster: socket i on node i % 2 sends to i+1, on the other node. */
  | { id: string; kind: "clusterLatency"; rate: number; n: number; warmup: number; duration: number }
  /**
   * Throughput of `subject` and raw Bun, both servers up at once, measured in
   * strict turns (subject, raw Bun, subject, ...) with short windows: the
   * machine's speed drifts over tens of seconds, and a ratio of two windows
   * seconds apart sees less of it (bench/lib/interleaved.ts).
   */
  | {
      id: string;
      kind: "interleaved";
      measure: "throughput";
      mode: "broadcast" | "direct";
      n: number;
      subject: string;
      rounds: number;
      warmup: number;
      duration: number;
    }
  /**
   * DM p99 of `subject` and raw Bun the same way: both up, latency windows
   * in strict turns, each at `rate` after `warmup` s at that rate (the
   * discarded first pair after `firstWarmup` s: the servers' JIT).
   */
  | {
      id: string;
      kind: "interleaved";
      measure: "latency";
      mode: "direct";
      rate: number;
      n: number;
      subject: string;
      rounds: number;
      warmup: number;
      firstWarmup: number;
      duration: number;
    }
  /** n distinct users connect at once (at most 256 handshakes in flight); `requested` when n was capped by the descriptor limit. */
  | { id: string; kind: "storm"; n: number; requested: number };

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

/**
 * The largest storm the descriptor limit allows: the server holds every
 * connection (plus about 20 descriptors of its own) and so does the client,
 * and without CAP_SYS_RESOURCE nobody can raise the hard limit (`ulimit -Hn`:
 * 20,000 on the benchmark machine, where even root may not raise it).
 */
export function stormCap(): number {
  const r = Bun.spawnSync(["sh", "-c", "ulimit -Hn"]);
  const hard = r.stdout.toString().trim();
  return hard === "unlimited" || hard === "" ? Infinity : Number(hard) - 100;
}

/**
 * Whether a scenario runs against a server: the cluster is wirechat's alone;
 * the storm is wirechat against raw Bun; coalescing servers (`?batch=1` and
 * its raw Bun ceiling) run throughput at N=64 and N=1,000 and latency;
 * N=1,000 runs on wirechat and raw Bun in both modes only.
 */
export function runsOn(s: Scenario, spec: Pick<ServerSpec, "name" | "batched">, quick: boolean): boolean {
  const server = spec.name;
  if (s.kind === "cluster" || s.kind === "clusterLatency" || s.kind === "latencyPaired") return server === "wirechat";
  if (s.kind === "interleaved") return server === s.subject;
  if (s.kind === "latency" && s.cids) return server === "wirechat" || server === "rawBun";
  if (s.kind === "storm") return server === "wirechat" || server === "rawBun" || (!quick && server === "wirechat-A2");
  if (s.kind === "throughput" && s.n >= 1000) return spec.batched === true || server === "wirechat" || server === "rawBun";
  if (spec.batched) return s.kind === "latency" || (s.kind === "throughput" && s.n === 64);
  return true;
}

/** The scenario list for a full run or a --quick one. */
export function scenarios(quick: boolean): Scenario[] {
  const ns = quick ? [64] : [16, 64, 256];
  const tp = { warmup: quick ? 0.3 : 0.5, duration: quick ? 1 : 2 };
  const list: Scenario[] = [];
  for (const mode of ["broadcast", "direct"] as const) for (const n of ns) list.push({ id: `${mode}-N${n}`, kind: "throughput", mode, n, ...tp });
  // Coalescing pays most where one message has many receivers: a big room.
  if (!quick) for (const mode of ["broadcast", "direct"] as const) list.push({ id: `${mode}-N1000`, kind: "throughput", mode, n: 1000, ...tp });
  // p99 is the 1% tail: 4 s of samples (8,000 at 2,000/s) in full runs, so one stall moves it less.
  // Warm-up first: every server starts fresh, and its JIT compiles on the server's own pinned core,
  // preempting the event loop. JIT tiers up by how often code runs, not by time, so the warm-up is a
  // number of messages (6 s at 20,000/s, whatever the measured rate), not seconds at the measured rate.
  // Measured on wirechat at 20,000/s: its JIT threads took 4-10% of the core until about 130,000
  // messages and nothing after; with the earlier 2 s at the measured rate, a window at 2,000/s opened
  // after 4,000 messages and one at 20,000/s after 40,000, both while the JIT was still compiling.
  // Every server keeps up with 20,000/s (each is measured at that rate too), so none enters its window
  // with a backlog.
  const lat = { n: 64, ...(quick ? { warmup: 0.2 } : { warmup: 6, warmupRate: 20000 }), duration: quick ? 1 : 4 };
  for (const rate of quick ? [2000] : [2000, 20000]) list.push({ id: `latency-${rate}`, kind: "latency", rate, ...lat });
  // The SDK's traffic: a cid on every message, so wirechat acks each and remembers it for retries
  // (24 h, up to a million); the warm-up alone leaves 120,000 cids in the store's memory.
  if (!quick) list.push({ id: "latency-20000-cids", kind: "latency", rate: 20000, cids: true, ...lat });
  // Runs on separate servers differ by their stalls as much as by their code (the A/A twin's p99 moves
  // by a third): whether coalescing adds latency is measured with both kinds of receivers on one server.
  for (const rate of quick ? [2000] : [2000, 20000]) list.push({ id: `latency-${rate}-paired`, kind: "latencyPaired", rate, ...lat });
  // The targets' throughput comparisons again, in alternating short windows (bench/lib/interleaved.ts).
  const pairs: [mode: "broadcast" | "direct", subject: string][] = quick
    ? [["direct", "wirechat"]]
    : [
        ["broadcast", "wirechat"],
        ["direct", "wirechat"],
        ["broadcast", "wirechat-batch"],
        ["direct", "wirechat-batch"],
      ];
  for (const [mode, subject] of pairs)
    list.push({
      id: `interleaved-${mode}-N64-${subject}`,
      kind: "interleaved",
      measure: "throughput",
      mode,
      n: 64,
      subject,
      rounds: quick ? 1 : 4,
      warmup: 0.3,
      duration: 1,
    });
  // The 20,000/s p99 against raw Bun too: separate runs' p99 moves by a third with the machine's stalls.
  list.push({
    id: "interleaved-latency-20000-wirechat",
    kind: "interleaved",
    measure: "latency",
    mode: "direct",
    rate: 20000,
    n: 64,
    subject: "wirechat",
    rounds: quick ? 1 : 4,
    ...(quick ? { warmup: 0.5, firstWarmup: 2, duration: 1 } : { warmup: 1, firstWarmup: 6, duration: 2 }),
  });
  list.push({ id: `idle-${quick ? 1000 : 5000}`, kind: "idle", n: quick ? 1000 : 5000 });
  const cl = { n: 64, warmup: quick ? 0.3 : 0.5, duration: quick ? 1 : 2 };
  const clusterRuns: [mode: "broadcast" | "direct", senders: "node1" | "both"][] = quick
    ? [
        ["broadcast", "node1"],
        ["direct", "both"],
      ]
    : [
        ["broadcast", "node1"],
        ["broadcast", "both"],
        ["direct", "node1"],
        ["direct", "both"],
      ];
  for (const [mode, senders] of clusterRuns)
    list.push({ id: `cluster-${mode}-${senders === "node1" ? "1to2" : "mixed"}-N64`, kind: "cluster", mode, senders, ...cl });
  list.push({ id: "cluster-latency-2000", kind: "clusterLatency", rate: 2000, n: 64, warmup: quick ? 0.2 : 0.5, duration: quick ? 1 : 2 });
  const cap = stormCap();
  for (const requested of quick ? [1000, 5000] : [1000, 5000, 10000, 20000]) {
    const n = Math.min(requested, cap);
    list.push({ id: `storm-${n}`, kind: "storm", n, requested });
  }
  return list;
}

/**
 * Closed-loop window per connection. Broadcast keeps about 1,024 messages in
 * flight whatever N is, i.e. ~130 KB queued per socket: enough to keep a
 * batching server (wirechat's group commit) busy, far below any backpressure
 * limit. Direct keeps 64 per connection up to N=256 and 16,384 in all above.
 */
export function windowFor(mode: "broadcast" | "direct", n: number): number {
  return mode === "broadcast" ? Math.max(1, Math.floor(1024 / n)) : Math.min(64, Math.max(1, Math.floor(16384 / n)));
}

export interface Ctx {
  root: string;
  wsload: string;
}

/** Runs a client process pinned to core 1 (or `core`) and collects its JSON lines. */
async function runClient(
  cmd: string[],
  limitMs: number,
  onEvent: (e: Record<string, unknown>) => void,
  core = 1,
): Promise<{ result: Record<string, unknown> | null; stderr: string; code: number }> {
  const proc = track(Bun.spawn(pinned(core, cmd), { stdout: "pipe", stderr: "pipe", stdin: "ignore" }));
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
    if (s.kind === "latency" || s.kind === "latencyPaired") return finish(await latency(s, server, ctx));
    if (s.kind === "idle") return finish(await idle(s, server, ctx));
    if (s.kind === "storm") return finish(await storm(s, server, ctx));
    throw new Error(`${s.id} runs on a cluster or on two servers: runClusterScenario or runInterleaved`);
  } catch (err) {
    return { ...base, ok: false, error: (err as Error).message, lost: 0, value: 0, metrics: {} };
  }
}

export type Measured = Omit<RunResult, "scenario" | "server" | "rep">;

/** Flags both clients share: the Socket.IO dialect, and the token file for a server that checks identity. */
function clientFlags(server: RunningServer | { spec: ServerSpec }, args: string[]): void {
  if (server.spec.sio) args.push("--sio");
  if (server.spec.tokens) args.push("--tokens", server.spec.tokens);
  if (server.spec.query) args.push("--query", server.spec.query);
}

/**
 * Deliveries/s of one closed-loop run of the C client (wsload), with the
 * server's CPU over the measured window. `firstUser` > 0 names the
 * connections u<firstUser>.. (a later run against the same server).
 */
export async function throughput(s: Extract<Scenario, { kind: "throughput" }>, server: RunningServer, ctx: Ctx, firstUser = 0): Promise<Measured> {
  const args = [
    ctx.wsload,
    "--port",
    String(server.port),
    "--n",
    String(s.n),
    "--mode",
    s.mode,
    "--window",
    String(windowFor(s.mode, s.n)),
    "--warmup",
    String(s.warmup),
    "--duration",
    String(s.duration),
    "--drain",
    "5",
  ];
  if (firstUser > 0) args.push("--first-user", String(firstUser));
  clientFlags(server, args);
  let cpu0 = 0,
    t0 = 0,
    cpu1 = 0,
    t1 = 0;
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

/** What the latency client (wsload --mode latency --paired) reports per receiver mode. */
const PAIRED_METRICS = ["p50_batch_ms", "p99_batch_ms", "samples_batch", "p50_plain_ms", "p99_plain_ms", "samples_plain"];

/**
 * DM latency at a fixed rate; its value is the p99 in ms. Paired, the value
 * is the p99 of the `?batch=1` receivers ÷ the p99 of the others.
 * `firstUser` > 0 names the sockets u<firstUser>.. (a later run against the
 * same server).
 */
export async function latency(s: Extract<Scenario, { kind: "latency" | "latencyPaired" }>, server: RunningServer, ctx: Ctx, firstUser = 0): Promise<Measured> {
  const args = [
    ctx.wsload,
    "--mode",
    "latency",
    "--port",
    String(server.port),
    "--n",
    String(s.n),
    "--rate",
    String(s.rate),
    "--duration",
    String(s.duration),
    "--warmup",
    String(s.warmup),
    ...(s.warmupRate ? ["--warmup-rate", String(s.warmupRate)] : []),
    ...(s.kind === "latencyPaired" ? ["--paired"] : []),
    ...(s.kind === "latency" && s.cids ? ["--cids"] : []),
    ...(firstUser > 0 ? ["--first-user", String(firstUser)] : []),
    ...(server.spec.welcomes ? ["--ready-on-frame"] : []),
  ];
  clientFlags(server, args);
  const { result, stderr, code } = await runClient(args, 60_000, () => {});
  if (!result) return { ok: false, error: `latency client exited ${code} without a result: ${stderr}`, lost: 0, value: 0, metrics: {} };
  const lost = num(result.lost);
  const metrics: Record<string, number> = {};
  // p90 to p99.5 show where the tail begins (kept in latest.json, not in the tables).
  const keys = ["p50_ms", "p90_ms", "p95_ms", "p98_ms", "p99_ms", "p995_ms", "max_ms", "samples", "sent", "delivered", "expected", "achieved_rate"];
  if (s.kind === "latencyPaired") keys.push(...PAIRED_METRICS);
  for (const k of keys) metrics[k] = num(result[k]);
  let error = (result.error as string | null) ?? (code !== 0 ? `latency client exited ${code}` : null);
  if (s.kind !== "latencyPaired") return { ok: !error && lost === 0, error, lost, value: metrics.p99_ms!, metrics };
  if (!error && (!metrics.samples_batch || !metrics.samples_plain)) error = "a paired run without samples of both receiver modes";
  const value = metrics.p99_plain_ms! > 0 ? metrics.p99_batch_ms! / metrics.p99_plain_ms! : 0;
  return { ok: !error && lost === 0, error, lost, value, metrics };
}

/**
 * Starts `wsload --mode idle` (pinned to core 1), waits for its "ready" line
 * (every connection open and the server quiet for 0.5 s) and returns it, with
 * a stop() that kills the client. Any failure to get there is an error.
 */
async function holdConnections(
  args: string[],
  limitMs: number,
  what: string,
): Promise<{ ready: Record<string, unknown>; stop(): Promise<void>; holding(): boolean }> {
  const proc = track(Bun.spawn(pinned(1, args), { stdout: "pipe", stderr: "pipe", stdin: "ignore" }));
  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
  };
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
    await within(Promise.race([readyP, proc.exited]), limitMs, what);
  } catch (err) {
    await stop();
    throw err;
  }
  if (!ready) {
    const err = (final as Record<string, unknown> | null)?.error ?? (await new Response(proc.stderr).text());
    await stop();
    throw new Error(`${what}: the client failed: ${String(err)}`);
  }
  // The client exits as soon as any of its connections closes: still running means all are held.
  return { ready, stop, holding: () => proc.exitCode === null };
}

/** How long after the client reports every connection open the idle figure is read: the runtimes' own collections have run by then. */
export const IDLE_SETTLE_MS = 12_000;

async function idle(s: Extract<Scenario, { kind: "idle" }>, server: RunningServer, ctx: Ctx): Promise<Measured> {
  await sleep(1000); // let the fresh process settle before the baseline reading
  const before = rssBytes(server.pid);
  const args = [ctx.wsload, "--port", String(server.port), "--n", String(s.n), "--mode", "idle", "--hold", "120"];
  clientFlags(server, args);
  const held = await holdConnections(args, 90_000, `opening ${s.n} idle connections`);
  try {
    await sleep(1000);
    const early = rssBytes(server.pid);
    // The figure is what the idle connections hold: the connect path's garbage
    // is still in the RSS a second after the storm, and each runtime collects
    // it by itself within seconds of going idle (measured: wirechat 9.1 KB
    // per connection at 1-3 s, 5.1 KB from 10 s on; raw Bun 4.2 KB, then 3.5 KB).
    await sleep(IDLE_SETTLE_MS - 1000);
    const after = rssBytes(server.pid);
    // A reading with fewer connections open would flatter the server.
    if (!held.holding()) return { ok: false, error: "a connection closed before the idle reading", lost: 0, value: 0, metrics: {} };
    return {
      ok: true,
      error: null,
      lost: 0,
      value: (after - before) / s.n,
      metrics: {
        rssBeforeBytes: before,
        rssAfterBytes: after,
        rssAt1sBytes: early,
        perConnAt1sBytes: (early - before) / s.n,
        connections: num(held.ready.connected),
        connect_s: num(held.ready.connect_s),
      },
    };
  } finally {
    await held.stop();
  }
}

/** Loopback source addresses for n connections to one port: one per half of the ephemeral port range. */
export function sourcesFor(n: number): number {
  let range = 28232; // Linux's default 32768–60999
  try {
    const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (lo && hi && hi > lo) range = hi - lo + 1;
  } catch {
    // not Linux: keep the default
  }
  return Math.max(1, Math.ceil(n / (range / 2)));
}

/**
 * A connect storm: n distinct users u0..u<n-1> connect as fast as the client
 * opens them (256 handshakes in flight). Connected means the 101 for raw Bun,
 * the welcome frame for wirechat (the connect's own work, a JWT check and a
 * presence update, is done by then). Counts every byte the server sent until
 * it fell quiet, its CPU for the storm and its RSS with all n held.
 */
async function storm(s: Extract<Scenario, { kind: "storm" }>, server: RunningServer, ctx: Ctx): Promise<Measured> {
  await sleep(500); // let the fresh process settle before the baseline reading (growth per connection is a side figure here)
  const before = rssBytes(server.pid);
  const cpu0 = cpuSeconds(server.pid);
  const sources = sourcesFor(s.n);
  const args = [
    ctx.wsload,
    "--port",
    String(server.port),
    "--n",
    String(s.n),
    "--mode",
    "idle",
    "--hold",
    "120",
    "--connect-timeout",
    "90",
    "--sources",
    String(sources),
  ];
  if (server.spec.welcomes) args.push("--ready-on-frame");
  clientFlags(server, args);
  const held = await holdConnections(args, 120_000, `a storm of ${s.n} connects`);
  try {
    const cpu1 = cpuSeconds(server.pid);
    const after = rssBytes(server.pid);
    const connectS = num(held.ready.connect_s);
    const rx = num(held.ready.rx_bytes);
    const connected = num(held.ready.connected);
    const metrics: Record<string, number> = {
      connections: connected,
      connect_s: connectS,
      quiet_s: num(held.ready.quiet_s),
      connects_per_s: connectS > 0 ? s.n / connectS : 0,
      rx_bytes: rx,
      bytes_per_connect: rx / s.n,
      rssBeforeBytes: before,
      rssAfterBytes: after,
      rssPerConnBytes: (after - before) / s.n,
      server_cpu_s: cpu1 - cpu0,
      server_cpu_us_per_connect: ((cpu1 - cpu0) * 1e6) / s.n,
      sources,
    };
    const error = connected === s.n ? null : `${connected} of ${s.n} connected`;
    return { ok: !error, error, lost: 0, value: metrics.connects_per_s!, metrics };
  } finally {
    await held.stop();
  }
}

/** Runs a cluster scenario on a fresh cluster (Redis + 2 nodes of `spec`). */
export async function runClusterScenario(
  s: Extract<Scenario, { kind: "cluster" | "clusterLatency" }>,
  spec: ServerSpec,
  rep: number,
  ctx: Ctx,
): Promise<RunResult> {
  const base = { scenario: s.id, server: spec.name, rep };
  let cluster: RunningCluster | undefined;
  try {
    cluster = await startCluster(spec, ctx.root);
    const m = s.kind === "cluster" ? await clusterThroughput(s, cluster, spec, ctx) : await clusterLatency(s, cluster, spec, ctx);
    const dead = cluster.dead();
    // A process that died mid-run did not answer, whatever the client saw.
    if (dead.length) return { ...base, ...m, ok: false, error: m.error ?? `${dead.join(", ")} exited during the run` };
    return { ...base, ...m };
  } catch (err) {
    return { ...base, ok: false, error: (err as Error).message, lost: 0, value: 0, metrics: {} };
  } finally {
    await cluster?.stop();
  }
}

/** Wall-clock µs Redis spent in each command so far (INFO commandstats), by command name. */
async function commandUsec(stats: RedisClient): Promise<Record<string, number>> {
  const text = String(await stats.send("INFO", ["commandstats"]));
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=\d+,usec=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

async function clusterThroughput(s: Extract<Scenario, { kind: "cluster" }>, cluster: RunningCluster, spec: ServerSpec, ctx: Ctx): Promise<Measured> {
  const senders = s.senders === "node1" ? Math.ceil(s.n / 2) : s.n;
  const args = [
    ctx.wsload,
    "--ports",
    cluster.ports.join(","),
    "--n",
    String(s.n),
    "--mode",
    s.mode,
    "--window",
    String(windowFor(s.mode, senders)),
    "--warmup",
    String(s.warmup),
    "--duration",
    String(s.duration),
    "--drain",
    "5",
    "--ready-on-frame",
  ];
  if (s.senders === "node1") args.push("--senders-on", "0");
  clientFlags({ spec }, args);
  const pids = [cluster.redis.pid, ...cluster.nodes.map((n) => n.pid)];
  const stats = new RedisClient(cluster.redis.url);
  await stats.connect();
  try {
    let c0: number[] = [],
      c1: number[] = [],
      t0 = 0,
      t1 = 0;
    let reset: Promise<unknown> = Promise.resolve();
    const { result, stderr, code } = await runClient(
      args,
      120_000,
      (e) => {
        // CPU of Redis and both nodes exactly around the measured window and its drain.
        if (e.event === "measure_start") {
          c0 = pids.map(cpuSeconds);
          t0 = performance.now();
          reset = stats.send("CONFIG", ["RESETSTAT"]);
        }
        if (e.event === "result" && t0) (c1 = pids.map(cpuSeconds)), (t1 = performance.now());
      },
      PLACEMENT.client,
    );
    await reset;
    const usec = t0 ? await commandUsec(stats) : {};
    if (!result) return { ok: false, error: `wsload exited ${code} without a result: ${stderr}`, lost: 0, value: 0, metrics: {} };
    const lost = num(result.lost) + num(result.warmup_lost);
    const sent = num(result.sent);
    const wall = (t1 - t0) / 1000;
    const used = c1.length ? c1.map((c, i) => c - c0[i]!) : pids.map(() => 0);
    const perMsg = (sec: number) => (sent > 0 ? (sec * 1e6) / sent : 0);
    const metrics: Record<string, number> = {
      accepted_per_s: num(result.messages_per_s),
      deliveries_per_s: num(result.deliveries_per_s),
      cross_deliveries_per_s: num(result.cross_deliveries_per_s),
      sent,
      delivered: num(result.delivered),
      expected: num(result.expected),
      cross_delivered: num(result.cross_delivered),
      elapsed_s: num(result.elapsed_s),
      window: num(result.window),
      senders: num(result.senders),
      connect_s: num(result.connect_s),
      redis_cpu: wall > 0 ? used[0]! / wall : 0,
      node1_cpu: wall > 0 ? used[1]! / wall : 0,
      node2_cpu: wall > 0 ? used[2]! / wall : 0,
      redis_cpu_us_per_msg: perMsg(used[0]!),
      nodes_cpu_us_per_msg: perMsg(used[1]! + used[2]!),
      redis_script_us_per_msg: perMsg(((usec.evalsha ?? 0) + (usec.eval ?? 0)) / 1e6),
      redis_xread_us_per_msg: perMsg((usec.xread ?? 0) / 1e6),
    };
    const error = (result.error as string | null) ?? (code !== 0 ? `wsload exited ${code}` : null);
    return { ok: !error && lost === 0, error, lost, value: metrics.accepted_per_s!, metrics };
  } finally {
    stats.close();
  }
}

async function clusterLatency(s: Extract<Scenario, { kind: "clusterLatency" }>, cluster: RunningCluster, spec: ServerSpec, ctx: Ctx): Promise<Measured> {
  const args = [
    ctx.wsload,
    "--mode",
    "latency",
    "--ports",
    cluster.ports.join(","),
    "--n",
    String(s.n),
    "--rate",
    String(s.rate),
    "--duration",
    String(s.duration),
    "--warmup",
    String(s.warmup),
    "--ready-on-frame",
  ];
  clientFlags({ spec }, args);
  const { result, stderr, code } = await runClient(args, 60_000, () => {}, PLACEMENT.client);
  if (!result) return { ok: false, error: `latency client exited ${code} without a result: ${stderr}`, lost: 0, value: 0, metrics: {} };
  const lost = num(result.lost);
  const metrics: Record<string, number> = {};
  for (const k of ["p50_ms", "p99_ms", "max_ms", "samples", "sent", "delivered", "expected", "achieved_rate"]) metrics[k] = num(result[k]);
  const error = (result.error as string | null) ?? (code !== 0 ? `latency client exited ${code}` : null);
  return { ok: !error && lost === 0, error, lost, value: metrics.p99_ms!, metrics };
}
