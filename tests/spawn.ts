/** Runs the real server (`bun run src/index.ts`) as a child process. */
import type { Subprocess } from "bun";
import { Signal, WaitTimeout, waitUntil } from "./helpers";

export interface ServerProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  http: string;
  ws: string;
  /** Everything the server printed so far. */
  output(): string;
  /** Resolves with the output once `match` holds for it (awaits what the server prints; throws after `ms`). */
  waitForOutput(match: (out: string) => boolean, ms?: number): Promise<string>;
  /** SIGTERM, then awaits the exit; returns the exit code. */
  stop(): Promise<number>;
}

const ROOT = `${import.meta.dir}/..`;

/** Starts the server with `env` on top of the test's environment and waits for its listening line. */
export async function spawnServer(env: Record<string, string>, ms = 15_000): Promise<ServerProcess> {
  // process.execPath: the Bun running the tests, also when it is not on PATH.
  const proc = Bun.spawn([process.execPath, "run", `${ROOT}/src/index.ts`], {
    cwd: ROOT,
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const printed = new Signal(); // on every chunk printed
  let seen: (port: number) => void = () => {};
  const listening = new Promise<number>((resolve) => (seen = resolve));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      out += dec.decode(chunk, { stream: true });
      printed.notify();
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(out);
      if (m) seen(Number(m[1]));
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  let timer: Timer | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`server did not start in ${ms} ms:\n${out}`)), ms);
    void proc.exited.then((code) => reject(new Error(`server exited with ${code} before listening:\n${out}`)));
  });
  failed.catch(() => {}); // it also rejects when the server exits later, by then unobserved
  try {
    const port = await Promise.race([listening, failed]);
    const waitForOutput = async (match: (out: string) => boolean, wait = 5000) => {
      try {
        return await waitUntil(() => match(out) && out, "the server prints what was expected", { ms: wait, signal: printed });
      } catch (err) {
        throw err instanceof WaitTimeout ? new Error(`the server did not print what was expected in ${wait} ms; it printed:\n${out}`) : err;
      }
    };
    const stop = async () => {
      proc.kill("SIGTERM");
      return await proc.exited;
    };
    return { proc, port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}`, output: () => out, waitForOutput, stop };
  } catch (err) {
    proc.kill();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
