/**
 * This checkout against another revision, in alternating windows:
 *
 *   bun bench/compare.ts <rev> [--server wirechat|wirechat-batch] [--modes direct,broadcast,latency] [--reps 2]
 *
 * Checks <rev> out into a temporary git worktree (using this checkout's
 * node_modules), starts both as the benchmark starts wirechat, side by side
 * on the server core, and measures them in strict turns with the C client
 * (bench/lib/interleaved.ts: 1 s windows, N=64, four pairs per repetition
 * after a discarded one); `latency` is the DM p99 at 20,000/s, measured the
 * same way with the latency client (lower is better). Prints this checkout ÷ <rev> per pair and their
 * median: a change measured against the code before it in the same
 * minutes, where two full runs an hour apart disagree by a third.
 */
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { runInterleaved } from "./lib/interleaved";
import { buildNative } from "./lib/native";
import { summarize } from "./lib/report";
import { scenarios } from "./lib/scenarios";
import { serverSpecs } from "./lib/servers";
import { killAll } from "./lib/spawn";
import { type BenchAuth, makeBenchAuth } from "./lib/tokens";

const { values: a, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  allowPositionals: true,
  options: {
    server: { type: "string", default: "wirechat" },
    modes: { type: "string", default: "direct,broadcast" },
    reps: { type: "string", default: "2" },
  },
});
const rev = positionals[0];
const modes = a.modes.split(",");
const reps = Number(a.reps);
if (!rev || !["wirechat", "wirechat-batch"].includes(a.server) || modes.some((m) => m !== "direct" && m !== "broadcast" && m !== "latency") || !(reps >= 1)) {
  console.error("usage: bun bench/compare.ts <rev> [--server wirechat|wirechat-batch] [--modes direct,broadcast,latency] [--reps 2]");
  process.exit(2);
}

const root = dirname(import.meta.dir);
const git = (...args: string[]) => {
  const r = Bun.spawnSync(["git", "-C", root, ...args], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString().trim();
};
const commit = git("rev-parse", "--verify", `${rev}^{commit}`);
const scratch = mkdtempSync(join(tmpdir(), "wirechat-compare-"));
const other = join(scratch, "tree");
const rounds = 4;
/** The full run's interleaved scenario for `mode`: its windows, rate and warm-ups, whichever server is compared. */
function fullRun(mode: string) {
  const id = mode === "latency" ? "interleaved-latency-20000-wirechat" : `interleaved-${mode}-N64-wirechat`;
  const s = scenarios(false).find((x) => x.id === id);
  if (s?.kind !== "interleaved") throw new Error(`the full run has no scenario ${id}`);
  return s;
}
let auth: BenchAuth | undefined;
let cleaned = false;
/** Stops every server, removes the worktree and its folder; runs once, and never hides the run's own error. */
const cleanup = () => {
  if (cleaned) return;
  cleaned = true;
  killAll();
  auth?.dispose();
  rmSync(scratch, { recursive: true, force: true });
  // The folder is gone: prune drops the worktree's entry under .git/worktrees.
  Bun.spawnSync(["git", "-C", root, "worktree", "prune"]);
};
for (const [sig, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const)
  process.on(sig, () => {
    cleanup();
    process.exit(code);
  });

try {
  git("worktree", "add", "--detach", other, commit);
  // The other revision runs on this checkout's packages (and, as every server here, with this checkout as its working directory).
  symlinkSync(join(root, "node_modules"), join(other, "node_modules"));
  auth = await makeBenchAuth((rounds + 1) * 64);
  const bins = buildNative(import.meta.dir);
  const subject = serverSpecs(root, bins.wsserver, auth).find((s) => s.name === a.server)!;
  const before = { ...serverSpecs(other, bins.wsserver, auth).find((s) => s.name === a.server)!, name: `${a.server}@${commit.slice(0, 7)}` };
  let failed = false;
  for (const mode of modes as ("direct" | "broadcast" | "latency")[]) {
    const ratios: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const s = { ...fullRun(mode), id: `compare-${mode}-N64`, subject: a.server, rounds };
      const r = await runInterleaved(s, subject, before, rep, { root, wsload: bins.wsload });
      if (!r.ok) {
        failed = true;
        console.log(`${mode} rep ${rep + 1}: FAILED: ${r.error} (lost ${r.lost})`);
        continue;
      }
      for (const [k, v] of Object.entries(r.metrics)) if (k.startsWith("ratio_")) ratios.push(v);
    }
    const sum = summarize(ratios);
    if (sum.n === 0) {
      console.log(`${a.server} ${mode} N=64: no pair measured`);
      continue;
    }
    console.log(
      `${a.server} ${mode === "latency" ? "DM p99 at 20,000/s" : mode} N=64, this checkout ÷ ${commit.slice(0, 7)}: median ${sum.median.toFixed(3)} (${sum.min.toFixed(2)}–${sum.max.toFixed(2)}) over ${sum.n} pairs: ${ratios.map((x) => x.toFixed(2)).join(" ")}`,
    );
  }
  process.exitCode = failed ? 1 : 0;
} finally {
  cleanup();
}
