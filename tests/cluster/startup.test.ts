/**
 * A node started while its Redis is unreachable must say so and exit
 * (src/index.ts: "cannot use REDIS_URL", exit 2), not hang without a word:
 * an orchestrator restarting it needs the exit, an operator the line.
 */
import { expect, test, setDefaultTimeout } from "bun:test";

setDefaultTimeout(30_000);

const ROOT = `${import.meta.dir}/../..`;

/** A port nobody listens on now. */
function closedPort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

test("a node whose REDIS_URL refuses connections exits with a message instead of hanging", async () => {
  const proc = Bun.spawn([process.execPath, "run", `${ROOT}/src/index.ts`], {
    cwd: ROOT,
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", REDIS_URL: `redis://127.0.0.1:${closedPort()}`, REDIS_PREFIX: "startup:" },
    stdout: "pipe",
    stderr: "pipe",
  });
  try {
    // A deadline for the exit: the server must not wait forever for a Redis that refuses.
    const exited = await Promise.race([proc.exited, new Promise<"hung">((r) => setTimeout(() => r("hung"), 15_000))]);
    if (exited === "hung") proc.kill("SIGKILL"); // so its pipes end and what it printed can be read
    const out = `${await new Response(proc.stdout).text()}${await new Response(proc.stderr).text()}`;
    expect({ exited, mentionsRedis: /redis/i.test(out) }).toEqual({ exited: 2, mentionsRedis: true });
  } finally {
    proc.kill("SIGKILL");
  }
});
