/** Process helpers: CPU pinning, line-by-line output and bounded waits. */

const hasTaskset = Bun.spawnSync(["sh", "-c", "command -v taskset"]).exitCode === 0;
let pinEnabled = hasTaskset;

/** Whether processes are being pinned (taskset exists and --no-pin was not given). */
export function pinning(): boolean {
  return pinEnabled;
}

/** Turns pinning off (e.g. for --no-pin). */
export function disablePinning(): void {
  pinEnabled = false;
}

/**
 * Prefixes a command with `taskset -c <core>` when pinning is on. taskset
 * execs the command, so the spawned pid is the server's own pid, which is
 * what /proc CPU and RSS readings need.
 */
export function pinned(core: number, cmd: string[]): string[] {
  return pinEnabled ? ["taskset", "-c", String(core), ...cmd] : cmd;
}

/** Calls onLine for each complete line of a stream until it ends. */
export async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      onLine(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
  }
  if (rest) onLine(rest);
}

/** Resolves after ms milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Rejects with `what timed out` if p has not settled within ms. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const live = new Set<{ kill(signal?: number | NodeJS.Signals): void; exited: Promise<number> }>();

/** Remembers a child so that killAll can end it if the benchmark is interrupted. */
export function track<P extends { kill(signal?: number | NodeJS.Signals): void; exited: Promise<number> }>(proc: P): P {
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
  return proc;
}

/** Kills every child still running (on SIGINT/SIGTERM of the benchmark). */
export function killAll(): void {
  for (const p of live) p.kill("SIGKILL");
}
