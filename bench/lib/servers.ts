/**
 * The servers under test. Each scenario gets a fresh process (and wirechat a
 * fresh SQLite file), pinned to core 0, and is stopped afterwards; a server
 * is ready when it prints `... listening on http://127.0.0.1:<port>`.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pinned, readLines, track, within } from "./spawn";
import type { BenchAuth } from "./tokens";

/** A server the benchmark can start. */
export interface ServerSpec {
  /** Name in tables and JSON; "wirechat-A2" is the A/A twin of "wirechat". */
  name: string;
  /** Whether the C client must speak Socket.IO. */
  sio: boolean;
  /** Token file (line i: token of u<i>) whose tokens the clients must send; unset: no Authorization header. */
  tokens?: string;
  /** Sends a frame (wirechat's welcome) on open: a connect is complete when it arrives, not at the 101. */
  welcomes?: boolean;
  /** Appended by the clients to every connection's path: `?batch=1` asks wirechat for coalesced frames. */
  query?: string;
  /** Delivers coalesced frames (JSON arrays): measured on throughput and latency only. */
  batched?: boolean;
  /** The command, given a fresh scratch directory. */
  command(scratch: string): { cmd: string[]; env: Record<string, string> };
}

/** A running server. */
export interface RunningServer {
  spec: ServerSpec;
  pid: number;
  port: number;
  /** The output so far, for error messages. */
  log: string[];
  /** Whether the process is still running. */
  alive(): boolean;
  /** SIGTERM, then SIGKILL after 3 s; removes the scratch directory. */
  stop(): Promise<void>;
}

/** All servers, in the order they appear in reports. */
export function serverSpecs(root: string, wsserverBin: string, auth: BenchAuth): ServerSpec[] {
  const wirechat = (name: string, query?: string): ServerSpec => ({
    name,
    ...(query ? { query, batched: true } : {}),
    sio: false,
    tokens: auth.tokensFile,
    welcomes: true,
    // As users run it: src/index.ts with its default durable store, on a fresh
    // file, checking identity (AUTH=jwt: every connect verifies its token).
    // MSG_RATE=0: the per-user rate limit exists to stop one abusive user; the
    // benchmark's users send as fast as the server takes, so the limit would
    // measure itself. MAX_CONNECTIONS_PER_USER keeps its default (20): every
    // connection of every scenario is a distinct user u<i>.
    command: (scratch) => ({
      cmd: [process.execPath, "run", join(root, "src/index.ts")],
      env: { PORT: "0", HOST: "127.0.0.1", DB_PATH: join(scratch, "wirechat.db"), AUTH: "jwt", JWT_SECRET: auth.secret, MSG_RATE: "0" },
    }),
  });
  return [
    wirechat("wirechat"),
    wirechat("wirechat-A2"),
    // The same server; its clients connect with ?batch=1 and get one array per topic per commit batch.
    wirechat("wirechat-batch", "?batch=1"),
    { name: "rawBun", sio: false, command: () => ({ cmd: [process.execPath, "run", join(root, "bench/servers/raw_bun.ts")], env: { PORT: "0" } }) },
    {
      name: "rawBunBatch",
      sio: false,
      batched: true,
      command: () => ({ cmd: [process.execPath, "run", join(root, "bench/servers/raw_bun.ts")], env: { PORT: "0", BATCH: "1" } }),
    },
    { name: "nodeWs", sio: false, command: () => ({ cmd: ["node", join(root, "bench/servers/node_ws.mjs")], env: { PORT: "0" } }) },
    { name: "socketIo", sio: true, command: () => ({ cmd: ["node", join(root, "bench/servers/socketio.mjs")], env: { PORT: "0" } }) },
    { name: "idealC", sio: false, command: () => ({ cmd: [wsserverBin], env: { PORT: "0" } }) },
  ];
}

/** Fails loudly when wirechat's entry point is missing: a benchmark without it is not a result. */
export function assertWirechatPresent(root: string): void {
  const entry = join(root, "src/index.ts");
  if (!existsSync(entry)) throw new Error(`wirechat's entry point ${entry} does not exist: cannot benchmark wirechat`);
}

/**
 * Starts a server pinned to core 0 (or `opts.core`) and waits (15 s at most)
 * for its port. `opts.env` is added to the spec's environment (a cluster
 * node's REDIS_URL and REDIS_PREFIX).
 */
export async function startServer(spec: ServerSpec, root: string, opts: { core?: number; env?: Record<string, string> } = {}): Promise<RunningServer> {
  const scratch = mkdtempSync(join(tmpdir(), "wirechat-bench-"));
  const { cmd, env } = spec.command(scratch);
  const proc = track(
    Bun.spawn(pinned(opts.core ?? 0, cmd), {
      cwd: root,
      env: { ...process.env, ...env, ...opts.env },
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    }),
  );
  const log: string[] = [];
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const port = new Promise<number>((resolve, reject) => {
    const onLine = (line: string) => {
      if (log.length < 200) log.push(line);
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (m) resolve(Number(m[1]));
    };
    void readLines(proc.stdout, onLine);
    void readLines(proc.stderr, onLine);
    void proc.exited.then((code) => reject(new Error(`${spec.name} exited with code ${code} before listening:\n${log.join("\n")}`)));
  });
  const stop = async () => {
    if (!exited) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await proc.exited;
      clearTimeout(t);
    }
    rmSync(scratch, { recursive: true, force: true });
  };
  try {
    const p = await within(port, 15_000, `${spec.name} start`);
    return { spec, pid: proc.pid, port: p, log, alive: () => !exited, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
