/**
 * Facts read from /proc and from the tools themselves: a process's CPU time
 * and resident memory, and the machine and version facts stored with every
 * result so that numbers are never compared across different setups blindly.
 */
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on Linux). */
export const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** CPU seconds (user + system, all threads) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name may contain spaces; fields start after its ')'.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
}

/** Resident set size in bytes, from VmRSS in /proc/<pid>/status. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** The command's first output line, or "unavailable". */
function firstLine(cmd: string[]): string {
  try {
    const r = Bun.spawnSync(cmd);
    return (r.stdout.toString() || r.stderr.toString()).split("\n")[0]!.trim() || "unavailable";
  } catch {
    return "unavailable";
  }
}

function pkgVersion(root: string, name: string): string {
  const p = `${root}/node_modules/${name}/package.json`;
  return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as { version: string }).version : "missing";
}

/** Versions of everything that runs in the benchmark. */
export function versions(root: string): Record<string, string> {
  return {
    bun: Bun.version,
    node: firstLine(["node", "--version"]),
    ws: pkgVersion(root, "ws"),
    "socket.io": pkgVersion(root, "socket.io"),
    elysia: pkgVersion(root, "elysia"),
    cc: firstLine(["cc", "--version"]),
  };
}

/** Facts about the machine the numbers came from. */
export interface MachineFacts {
  nproc: number;
  cpuModel: string;
  memTotalGiB: number;
  kernel: string;
  ulimitNofile: string;
  loadavgAtEnd: string;
}

/** The machine the numbers came from. */
export function machine(): MachineFacts {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown";
  return {
    nproc: os.availableParallelism(),
    cpuModel: cpu.trim(),
    memTotalGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    ulimitNofile: firstLine(["sh", "-c", "ulimit -n"]),
    // Other work on the machine skews every figure: keep the evidence.
    loadavgAtEnd: readFileSync("/proc/loadavg", "utf8").trim(),
  };
}
