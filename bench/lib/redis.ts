/**
 * A private redis-server for the cluster scenarios: a free port on
 * 127.0.0.1, its own scratch folder, nothing persisted (`--save ""
 * --appendonly no`: the benchmark measures the cluster's path, not the
 * disk), pinned like the servers. Never the machine's shared Redis on 6379.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pinned, readLines, track, within } from "./spawn";

/** A running redis-server. */
export interface BenchRedis {
  pid: number;
  port: number;
  url: string;
  /** What it printed, for error messages. */
  log: string[];
  alive(): boolean;
  /** SIGTERM, then SIGKILL after 3 s; removes its folder. */
  stop(): Promise<void>;
}

/** A port nobody listens on now (6379 never: it is the machine's shared Redis). */
function freePort(): number {
  for (;;) {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = l.port;
    l.stop(true);
    if (port !== 6379) return port;
  }
}

/** Whether redis-server is installed. */
export function hasRedis(): boolean {
  return Bun.spawnSync(["sh", "-c", "command -v redis-server"]).exitCode === 0;
}

/** Starts redis-server pinned to `core` (undefined: not pinned) and waits for it to accept connections. */
export async function startRedis(core: number | undefined): Promise<BenchRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = freePort();
    const dir = mkdtempSync(join(tmpdir(), "wirechat-bench-redis-"));
    const cmd = [
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
      "--protected-mode",
      "yes",
    ];
    const proc = track(Bun.spawn(core === undefined ? cmd : pinned(core, cmd), { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" }));
    const log: string[] = [];
    let exited = false;
    void proc.exited.then(() => (exited = true));
    const ready = new Promise<void>((resolve, reject) => {
      const onLine = (line: string) => {
        if (log.length < 100) log.push(line);
        if (/Ready to accept connections/.test(line)) resolve();
      };
      void readLines(proc.stdout, onLine);
      void readLines(proc.stderr, onLine);
      void proc.exited.then((code) => reject(new Error(`redis-server exited with code ${code}:\n${log.join("\n")}`)));
    });
    const stop = async () => {
      if (!exited) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
        await proc.exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      await within(ready, 10_000, "redis-server start");
      return { pid: proc.pid, port, url: `redis://127.0.0.1:${port}`, log, alive: () => !exited, stop };
    } catch (err) {
      await stop();
      // A port picked free can be taken before Redis binds it: try another.
      if (attempt < 3 && log.some((l) => /in use/i.test(l))) continue;
      throw err;
    }
  }
}
