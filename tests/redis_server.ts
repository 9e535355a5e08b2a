/**
 * A private `redis-server` for one test file: a free port on 127.0.0.1, its
 * own temp folder, no RDB snapshots; never the machine's shared Redis.
 */
import type { Subprocess } from "bun";
import { WaitTimeout, waitUntil } from "./helpers";
import { tempDir } from "./tmp";

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** Everything this server printed, all runs. */
  output(): string;
  /** SIGTERM, and waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, and waits for the exit: nothing is flushed. */
  kill(): Promise<void>;
  /** Starts it again on the same port and folder (stopping it first if it runs). */
  restart(): Promise<void>;
}

const running = new Set<Subprocess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/** A port nobody listens on now. */
function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** One PING over raw TCP: true on +PONG (not while Redis answers -LOADING). */
function ping(port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    let reply = "";
    const timer = setTimeout(() => done(false), ms);
    let sock: { end(): void } | undefined;
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true; // before end(): it runs `close` at once
      clearTimeout(timer);
      resolve(ok);
      sock?.end();
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (s) => void s.write("PING\r\n"),
        data: (_s, d) => {
          reply += d.toString();
          if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
        },
        error: () => done(false),
        connectError: () => done(false),
        close: () => done(false),
      },
    }).then(
      (s) => (settled ? s.end() : (sock = s)),
      () => done(false),
    );
  });
}

/** Starts `redis-server` (AOF with `appendfsync always` when `appendonly`) and waits until it answers PING. */
export async function startRedis(opts: { appendonly?: boolean; timeoutMs?: number } = {}): Promise<RedisServer> {
  const dir = tempDir();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let out = "";
  let proc: Subprocess<"ignore", "pipe", "pipe"> | undefined;
  let port = 0;

  const launch = async (): Promise<void> => {
    const args = ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--daemonize", "no"];
    args.push("--appendonly", opts.appendonly ? "yes" : "no");
    if (opts.appendonly) args.push("--appendfsync", "always");
    const p = Bun.spawn(args, { cwd: dir, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    proc = p;
    running.add(p);
    const dec = new TextDecoder();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) out += dec.decode(chunk, { stream: true });
    };
    void pump(p.stdout);
    void pump(p.stderr);
    let exited = false;
    void p.exited.then(() => ((exited = true), running.delete(p)));
    // Polling (a PING answer has no event): the next PING goes 20 ms after a refused one.
    try {
      await waitUntil(
        async () => {
          if (await ping(port, 500)) return true;
          if (exited) throw new Error(`redis-server on port ${port} exited with ${p.exitCode}:\n${out.slice(-2000)}`);
          return false;
        },
        `redis-server on port ${port} answers PING`,
        { ms: timeoutMs, pollMs: 20 },
      );
    } catch (err) {
      if (!(err instanceof WaitTimeout)) throw err;
      p.kill("SIGKILL");
      throw new Error(`redis-server on port ${port} did not answer PING in ${timeoutMs} ms:\n${out.slice(-2000)}`);
    }
  };

  const halt = async (signal: "SIGTERM" | "SIGKILL") => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill(signal);
    await p.exited;
  };

  // A port picked free can be taken before Redis binds it: try a few.
  for (let attempt = 0; ; attempt++) {
    port = freePort();
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3 || !/in use/i.test(out)) throw err;
    }
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    output: () => out,
    stop: () => halt("SIGTERM"),
    kill: () => halt("SIGKILL"),
    async restart() {
      await halt("SIGTERM");
      await launch();
    },
  };
}
