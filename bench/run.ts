/**
 * wirechat benchmark: `bun run bench` (full, ~10 minutes) or `bun run bench --quick`
 * (one short repetition, under 90 s; what CI runs).
 *
 * Compares wirechat (as users run it: src/index.ts with its durable store),
 * an A/A twin of it, raw Bun, Node ws, Socket.IO and an ideal C server, on
 * broadcast and direct throughput (C client), DM latency at fixed rates (Bun
 * client) and idle memory per connection. A fresh server per scenario, server
 * pinned to core 0 and client to core 1, repetitions with the server order
 * rotated. Then wirechat alone as a cluster (a private redis-server and two
 * nodes: accepted messages/s, cross-node deliveries, Redis CPU per message,
 * cross-node DM latency) and a connect storm of distinct users against raw
 * Bun. Exits non-zero if any message was lost or any server failed to
 * answer; timings never fail the run.
 *
 * Options: --quick, --reps N, --servers a,b (default: all), --scenarios
 * id,id (default: all of the run's), --no-pin.
 * Output: Markdown on stdout; bench/results/latest.json (full) or
 * bench/results/quick.json (--quick); docs/bench.svg (full runs only, so a
 * quick run never replaces the published chart).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { buildNative } from "./lib/native";
import { machine, versions } from "./lib/proc";
import { BATCH_BASELINES, checkTargets, clusterSummary, markdown, pairedSummary, ratios, stormSummary, summarizeRuns } from "./lib/report";
import { PLACEMENT } from "./lib/cluster";
import { hasRedis } from "./lib/redis";
import { INTERLEAVED_BASELINE, interleavedMarkdown, interleavedSummary, interleavedTargets, runInterleaved } from "./lib/interleaved";
import { runClusterScenario, runScenario, runsOn, scenarios, sourcesFor, windowFor, type RunResult } from "./lib/scenarios";
import { assertWirechatPresent, serverSpecs, startServer } from "./lib/servers";
import { disablePinning, killAll, pinning } from "./lib/spawn";
import { chart } from "./lib/svg";
import { makeBenchAuth } from "./lib/tokens";

const benchDir = import.meta.dir;
const root = dirname(benchDir);
const argv = Bun.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const option = (name: string) => {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  return argv[i]!.includes("=") ? argv[i]!.split("=")[1] : argv[i + 1];
};

const quick = flag("--quick");
const reps = Number(option("--reps") ?? (quick ? 1 : 3));
if (flag("--no-pin")) disablePinning();

let list = scenarios(quick);
const onlyScenarios = option("--scenarios")?.split(",");
if (onlyScenarios) {
  const unknown = onlyScenarios.filter((id) => !list.some((s) => s.id === id));
  if (unknown.length) throw new Error(`unknown scenario(s): ${unknown.join(", ")}; known: ${list.map((s) => s.id).join(", ")}`);
  list = list.filter((s) => onlyScenarios.includes(s.id));
}
const clusterKinds = new Set(["cluster", "clusterLatency"]);
if (list.some((s) => clusterKinds.has(s.kind)) && !hasRedis())
  throw new Error("redis-server is not installed: the cluster scenarios need it (apt-get install redis-server)");
// One token per connection of the largest scenario, signed with this run's own secret.
// An interleaved scenario takes new users for each run against its server (a warm-up run and `rounds`).
const auth = await makeBenchAuth(Math.max(...list.map((s) => (s.kind === "interleaved" ? (s.rounds + 1) * s.n : s.n))));
process.on("exit", () => {
  auth.dispose();
  // A run that ends on an error must not leave a server or a redis-server behind.
  killAll();
});

// An interrupted run must not leave servers or clients behind.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

const started = Date.now();
const loadAtStart = (await Bun.file("/proc/loadavg").text()).trim();
const log = (msg: string) => console.error(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${msg}`);

const bins = buildNative(benchDir);
const allSpecs = serverSpecs(root, bins.wsserver, auth);
let specs = allSpecs;
const only = option("--servers")?.split(",");
if (only) {
  const unknown = only.filter((n) => !specs.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown server(s): ${unknown.join(", ")}; known: ${specs.map((s) => s.name).join(", ")}`);
  specs = specs.filter((s) => only.includes(s.name));
}
if (specs.some((s) => s.name.startsWith("wirechat"))) assertWirechatPresent(root);
// A scenario no selected server runs (the cluster without wirechat) is left out.
list = list.filter((sc) => specs.some((spec) => runsOn(sc, spec, quick)));

const results: RunResult[] = [];
log(
  `${quick ? "quick" : "full"} run: ${reps} repetition(s), ${list.length} scenarios, servers ${specs.map((s) => s.name).join(", ")}; pinning ${pinning() ? "on (server core 0, client core 1)" : "off"}`,
);

for (let rep = 0; rep < reps; rep++) {
  // Rotate the server order each repetition so no server always runs first (cold) or last.
  const order = specs.map((_, i) => specs[(i + rep) % specs.length]!);
  for (const sc of list) {
    for (const spec of order) {
      if (!runsOn(sc, spec, quick)) continue;
      let r: RunResult;
      const ctx = { root, wsload: bins.wsload };
      if (sc.kind === "cluster" || sc.kind === "clusterLatency") {
        // Starts its own redis-server and two nodes of this spec, and stops them.
        r = await runClusterScenario(sc, spec, rep, ctx);
      } else if (sc.kind === "interleaved") {
        // Starts its subject and raw Bun side by side, whether or not --servers named raw Bun.
        r = await runInterleaved(sc, spec, allSpecs.find((x) => x.name === INTERLEAVED_BASELINE)!, rep, ctx);
      } else {
        try {
          const server = await startServer(spec, root);
          try {
            r = await runScenario(sc, server, rep, ctx);
          } finally {
            await server.stop();
          }
        } catch (err) {
          r = { scenario: sc.id, server: spec.name, rep, ok: false, error: (err as Error).message, lost: 0, value: 0, metrics: {} };
        }
      }
      results.push(r);
      const cpu = r.serverCpu === undefined ? "" : ` cpu ${(r.serverCpu * 100).toFixed(0)}%`;
      log(
        `rep ${rep + 1} ${sc.id.padEnd(24)} ${spec.name.padEnd(12)} ${r.ok ? "ok  " : "FAIL"} value ${r.value.toFixed(2)}${cpu} lost ${r.lost}${r.error ? ` error: ${r.error}` : ""}`,
      );
    }
  }
}

const ids = list.map((s) => s.id);
const names = specs.map((s) => s.name);
const summary = summarizeRuns(results, ids, names);
const ratioTable = ratios(results, ids);
const batchRatioTable = ratios(results, ids, "wirechat-batch", BATCH_BASELINES);
const cluster = clusterSummary(results, list);
const stormTable = stormSummary(results, list);
const paired = pairedSummary(results, list);
const interleaved = interleavedSummary(results, list);
const targets = [...checkTargets(ratioTable, cluster, stormTable, batchRatioTable, paired), ...interleavedTargets(interleaved)];
const failures = results.filter((r) => !r.ok);
const ver = versions(root);
const mach = { ...machine(), loadavgAtStart: loadAtStart };
const date = new Date().toISOString();
const header =
  `## wirechat benchmark (${quick ? "quick" : "full"}, ${reps} rep${reps > 1 ? "s" : ""}, ${date.slice(0, 10)})\n\n` +
  `Machine: ${mach.nproc} cores (${mach.cpuModel}), ${mach.memTotalGiB} GiB. bun ${ver.bun}, node ${ver.node}, ws ${ver.ws}, socket.io ${ver["socket.io"]}, ${ver.cc}. ` +
  `Pinning: ${pinning() ? "server core 0, client core 1" : "off"}. Load average at start: ${loadAtStart.split(" ").slice(0, 3).join(" ")} (anything else running skews the figures).`;
const clusterPlacement = pinning()
  ? `Placement: both nodes on core ${PLACEMENT.nodes[0]} (where the single node runs), redis-server and the load client on core ${PLACEMENT.redis}`
  : "Placement: not pinned";
console.log(
  markdown({
    scenarios: list,
    servers: names,
    summary,
    ratios: ratioTable,
    batchRatios: batchRatioTable,
    targets,
    failures,
    header,
    cluster,
    storm: stormTable,
    clusterPlacement,
    paired,
    sections: interleavedMarkdown(interleaved),
  }),
);

const resultsDir = join(benchDir, "results");
mkdirSync(resultsDir, { recursive: true });
// A partial run (some servers or scenarios) never replaces the published results.
const jsonPath = join(resultsDir, quick ? "quick.json" : only || onlyScenarios ? "partial.json" : "latest.json");
writeFileSync(
  jsonPath,
  `${JSON.stringify(
    {
      date,
      quick,
      repetitions: reps,
      pinning: pinning(),
      versions: ver,
      machine: mach,
      method: {
        throughputClient: "bench/native/wsload.c (closed loop, per-connection window)",
        windows: Object.fromEntries(
          list.flatMap((s) =>
            s.kind === "throughput"
              ? [[s.id, windowFor(s.mode, s.n)]]
              : s.kind === "cluster"
                ? [[s.id, windowFor(s.mode, s.senders === "node1" ? Math.ceil(s.n / 2) : s.n)]]
                : [],
          ),
        ),
        latencyClient:
          "bench/native/wsload.c --mode latency (C, open loop, 64 sockets; full runs warm up 6 s at 20,000/s, then measure 4 s at the rate; before 2026-11-27 the client was bench/latency.ts on Bun, whose own pauses were in every figure)",
        latencyCids:
          "latency-20000-cids: the same run with --cids, a fresh cid on every message as the SDK sends (wirechat acks each and remembers it for retries); wirechat and raw Bun only",
        interleaved:
          "interleaved-<mode>-N64-<subject>: the subject and raw Bun started side by side on the server core; the C client measures 1 s windows (0.3 s warm-up) on each in strict turns (subject, raw Bun, subject, ...); the first pair of each repetition is discarded; the ratio is per pair. interleaved-latency-20000-<subject>: the same turns with the latency client (a fresh process per window, new users each time), 20,000/s for a 1 s warm-up (6 s before the discarded first pair) and 2 s measured (quick runs: 0.5 s, 2 s and 1 s); the ratio is the subject's p99 ÷ raw Bun's",
        pairedLatency:
          "latency-<rate>-paired: one wirechat server, the latency client with --paired (sockets u<odd> on ?batch=1, u<even> without; each DM goes to the other mode); value = p99 of the ?batch=1 receivers ÷ p99 of the others",
        wirechatIdentity: "AUTH=jwt, MSG_RATE=0; every connection sends Authorization: Bearer <HS256 JWT, sub u<i>>",
        batched:
          "wirechat-batch: the same server, every connection on /ws/u<i>?batch=1 (one JSON array per topic and commit batch); rawBunBatch: bench/servers/raw_bun.ts with BATCH=1 (raw Bun sending one array per topic per event-loop turn); both clients count every message inside an array",
        clientBoundBelowCpu: 0.95,
        cluster: {
          what: 'a private redis-server (--save "" --appendonly no, fresh per scenario) and 2 wirechat nodes (src/index.ts, REDIS_URL, a fresh REDIS_PREFIX, AUTH=jwt, MSG_RATE=0); connection i on node i % 2',
          placement: pinning()
            ? `nodes on core ${PLACEMENT.nodes.join(" and ")}, redis-server on core ${PLACEMENT.redis}, client on core ${PLACEMENT.client}`
            : "not pinned",
          redisCpu: "utime+stime of redis-server from /proc/<pid>/stat over the measured window and its drain, divided by the messages accepted in it",
          redisCommandUsec:
            "INFO commandstats after CONFIG RESETSTAT at the window's start: wall µs inside EVALSHA (the append script) and XREAD (both nodes' log tails), per accepted message",
        },
        storm: {
          what: "n distinct users u0..u<n-1> connect at once (256 handshakes in flight); a connect is done at the 101 (raw Bun) or at the welcome frame (wirechat, which sends one); bytes = everything the server sent until it was quiet for 0.5 s; wirechat with its default PRESENCE_GLOBAL_MAX=500",
          sourceAddresses: Object.fromEntries(list.flatMap((s) => (s.kind === "storm" ? [[s.id, sourcesFor(s.n)]] : []))),
          cappedByNofile: list.some((s) => s.kind === "storm" && s.n < s.requested),
        },
      },
      scenarios: list,
      summary,
      ratios: ratioTable,
      batchRatios: batchRatioTable,
      cluster,
      storm: stormTable,
      paired,
      interleaved,
      targets,
      runs: results,
    },
    null,
    2,
  )}\n`,
);
log(`wrote ${jsonPath}`);
if (!quick && !only && !onlyScenarios) {
  const svgPath = join(root, "docs/bench.svg");
  mkdirSync(dirname(svgPath), { recursive: true });
  writeFileSync(
    svgPath,
    chart(
      list,
      summary,
      names,
      `${date.slice(0, 10)} · ${mach.nproc} cores · bun ${ver.bun} · node ${ver.node} · ${reps} repetitions · bench/results/latest.json`,
    ),
  );
  log(`wrote ${svgPath}`);
}

if (failures.length) {
  log(`FAILED: ${failures.length} run(s) lost messages or did not answer (see FAILURES above)`);
  process.exit(1);
}
log(`done in ${((Date.now() - started) / 1000).toFixed(0)}s: no message lost, every server answered`);
