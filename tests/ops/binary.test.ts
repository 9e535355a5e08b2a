/**
 * The compiled binary (`bun run compile`): compiled once into a temporary
 * folder, then run from a folder with no sources in it, as it is deployed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { bundlePage } from "../../src/web/page";
import { connect, isAck, Signal, WaitTimeout, waitUntil } from "../helpers";
import { tempDir } from "../tmp";

const ROOT = `${import.meta.dir}/../..`;
const ADMIN_TOKEN = "binary-test-admin-token";

let dir: string;
let bin: string;
let server: Binary;

/** A running binary: its port, everything it printed, and a way to await a line. */
interface Binary {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  http: string;
  ws: string;
  output(): string;
  waitFor(match: (out: string) => boolean, ms?: number): Promise<string>;
}

/** Starts the binary in `cwd` and awaits its listening line (never a sleep: it awaits what the binary prints). */
async function startBinary(cwd: string, env: Record<string, string>, ms = 15_000): Promise<Binary> {
  const base = { ...process.env };
  delete base.LOG_LEVEL; // the test's own .env check below relies on it being unset
  const proc = Bun.spawn([bin], { cwd, env: { ...base, HOST: "127.0.0.1", PORT: "0", ...env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let out = "";
  const printed = new Signal(); // on every chunk printed and on the exit
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      out += dec.decode(chunk, { stream: true });
      printed.notify();
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  let exited = false;
  void proc.exited.then(() => {
    exited = true;
    printed.notify();
  });
  const waitFor = async (match: (out: string) => boolean, wait = 5000) => {
    try {
      return await waitUntil(
        () => {
          if (match(out)) return out;
          if (exited) throw new Error(`the binary exited (${proc.exitCode}); it printed:\n${out}`);
          return undefined;
        },
        "the binary prints what was expected",
        { ms: wait, signal: printed },
      );
    } catch (err) {
      throw err instanceof WaitTimeout ? new Error(`the binary did not print what was expected in ${wait} ms; it printed:\n${out}`) : err;
    }
  };
  try {
    await waitFor((o) => /listening on http:\/\/[^:]+:\d+/.test(o), ms);
  } catch (err) {
    proc.kill();
    throw err;
  }
  const port = Number(/listening on http:\/\/[^:]+:(\d+)/.exec(out)![1]);
  return { proc, port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}`, output: () => out, waitFor };
}

/** Runs the binary with arguments to completion. */
async function run(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn([bin, ...args], { cwd: dir, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

beforeAll(async () => {
  dir = tempDir();
  bin = `${dir}/wirechat`;
  const compile = Bun.spawn([process.execPath, "run", "scripts/compile.ts", "--outfile", bin], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(compile.stdout).text(), new Response(compile.stderr).text(), compile.exited]);
  if (code !== 0) throw new Error(`bun run compile failed (${code}):\n${stdout}\n${stderr}`);
  // Runs where there is no source to fall back on, and where a .env would stop it if it were read.
  await Bun.write(`${dir}/run/.env`, "LOG_LEVEL=not-a-level\n");
  server = await startBinary(`${dir}/run`, { DB_PATH: `${dir}/data/wirechat.db`, MSG_RATE: "0", ADMIN_TOKEN });
}, 180_000);

afterAll(async () => {
  server?.proc.kill("SIGKILL");
  await server?.proc.exited;
});

test("it logs JSON lines; the listening line says where", () => {
  const lines = server.output().trim().split("\n");
  for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
  const listening = lines.map((l) => JSON.parse(l)).find((l) => String(l.msg).includes("listening on"));
  expect(listening).toMatchObject({ level: "info", msg: `wirechat listening on http://127.0.0.1:${server.port}` });
});

test("GET /health", async () => {
  const r = await fetch(`${server.http}/health`);
  expect(r.status).toBe(200);
  expect(await r.json()).toMatchObject({ status: "ok" });
});

test("GET /, /app.js, /app.css and the icon: the page embedded at compile time, the same as bundled from source", async () => {
  const page = await bundlePage();
  const html = await fetch(`${server.http}/`);
  expect(html.status).toBe(200);
  expect(html.headers.get("content-type")).toStartWith("text/html");
  expect(html.headers.get("content-security-policy")).toContain("script-src 'self'");
  expect(await html.text()).toBe(page.html);
  const js = await fetch(`${server.http}/app.js`);
  expect(js.status).toBe(200);
  expect(js.headers.get("content-type")).toStartWith("text/javascript");
  expect(await js.text()).toBe(page.js);
  const css = await fetch(`${server.http}/app.css`);
  expect(css.status).toBe(200);
  expect(await css.text()).toBe(page.css);
  expect((await fetch(`${server.http}/favicon.svg`)).status).toBe(200);
});

test("a WebSocket round trip: a broadcast is acked and received, a direct message reaches its user", async () => {
  const alice = await connect(`${server.ws}/ws/alice`);
  const bob = await connect(`${server.ws}/ws/bob`);
  try {
    alice.send({ type: "broadcast", text: "hello from the binary", cid: "b1" });
    const ack = await alice.next(isAck("b1"));
    const got = await bob.next((f) => f.type === "message" && f.text === "hello from the binary");
    expect(got).toMatchObject({ kind: "broadcast", from: "alice", id: (ack as { id: number }).id });
    alice.send({ type: "direct", to: "bob", text: "psst", cid: "d1" });
    await alice.next(isAck("d1"));
    expect(await bob.next((f) => f.type === "message" && f.text === "psst")).toMatchObject({ kind: "direct", from: "alice", to: "bob" });
  } finally {
    alice.close();
    bob.close();
  }
});

test("the WAL checkpointer (a worker thread) runs inside the binary", async () => {
  const db = Bun.file(`${dir}/data/wirechat.db`);
  const before = db.size;
  const alice = await connect(`${server.ws}/ws/alice`);
  try {
    for (let i = 0; i < 200; i++) alice.send({ type: "broadcast", text: `fill ${i} ${"x".repeat(200)}`, cid: `f${i}` });
    await alice.next(isAck("f199"));
  } finally {
    alice.close();
  }
  // Only a checkpoint moves pages from the WAL into the main file (the server's own connection never does; every second).
  const path = `${dir}/data/wirechat.db`;
  await waitUntil(
    () => Bun.file(path).size > before,
    () => `a checkpoint grows the main file (it stayed at ${before} bytes)`,
    { ms: 10_000, pollMs: 50 },
  );
}, 15_000);

test("the admin page is embedded too", async () => {
  for (const path of ["/admin", "/admin/app.js", "/admin/app.css"]) {
    const r = await fetch(`${server.http}${path}`);
    expect({ path, status: r.status }).toEqual({ path, status: 200 });
  }
});

test("wirechat healthcheck: 0 when the server answers, 1 when it does not", async () => {
  expect((await run(["healthcheck"], { PORT: String(server.port), HOST: "0.0.0.0" })).code).toBe(0);
  expect((await run(["healthcheck", "/ready"], { PORT: String(server.port), HOST: "127.0.0.1" })).code).toBe(0);
  const down = await run(["healthcheck"], { PORT: "1", HOST: "127.0.0.1" });
  expect(down.code).toBe(1);
  expect(down.stderr).toContain("healthcheck:");
});

test("wirechat backup, version, and an unknown command", async () => {
  const b = await run(["backup", `${dir}/copy.db`], { DB_PATH: `${dir}/data/wirechat.db` });
  expect(b.code).toBe(0);
  expect(b.stdout).toMatch(/backup: wrote .*copy\.db .*: \d+ messages/);
  expect((await run(["version"])).stdout).toMatch(/^wirechat \d+\.\d+\.\d+/);
  const bad = await run(["serve-me"]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("unknown command");
});

test("SIGTERM drains and exits 0", async () => {
  server.proc.kill("SIGTERM");
  expect(await server.proc.exited).toBe(0);
  expect(server.output()).toContain('"msg":"stopped"');
});
