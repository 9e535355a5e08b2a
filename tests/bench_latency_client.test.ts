/**
 * The benchmark's latency client (bench/native/wsload.c --mode latency)
 * against a real wirechat server: every message it sends arrives twice and
 * is counted, its texts are 16 characters whatever the uptime, the messages
 * sent after the warm-up are the samples, and --paired splits them by the
 * receiver's mode. Counts and texts only, never timings.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { buildNative } from "../bench/lib/native";
import { startServer, type TestServer } from "./helpers";

let server: TestServer;
/** A server that takes 20 messages a second per user: the client's messages come back refused. */
let limited: TestServer;
let wsload: string;

beforeAll(() => {
  wsload = buildNative(join(import.meta.dir, "../bench")).wsload;
  server = startServer();
  limited = startServer({ msgRate: 20, msgBurst: 20 });
});
afterAll(async () => {
  await server.stop();
  await limited.stop();
});

const RATE = 2000;
/** The warm-up runs at twice the rate: the achieved rate must be the measured window's alone. */
const WARMUP_RATE = 4000;
const WARMUP = 0.2;
const DURATION = 0.5;

/** Runs the client to its end and returns its exit code and result line. */
async function run(port: number, firstUser: number, flags: string[]): Promise<{ code: number; r: Record<string, number | string | null> }> {
  const args = [wsload, "--mode", "latency", "--port", String(port), "--n", "8", "--rate", String(RATE), "--warmup-rate", String(WARMUP_RATE)];
  args.push("--warmup", String(WARMUP), "--duration", String(DURATION), "--drain", "2", "--ready-on-frame", "--first-user", String(firstUser), ...flags);
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const line = out.split("\n").find((l) => l.includes('"event":"result"'));
  if (!line) throw new Error(`wsload exited ${code} without a result: ${err}`);
  return { code, r: JSON.parse(line) };
}

/** A run that must succeed. */
async function latency(firstUser: number, ...flags: string[]): Promise<Record<string, number | string | null>> {
  const { code, r } = await run(server.port, firstUser, flags);
  expect(r.error).toBeNull();
  expect(code).toBe(0);
  return r;
}

/** What every run must show: nothing lost, each message twice, the measured window's messages timed. */
function expectComplete(r: Record<string, number | string | null>): void {
  expect(r.error).toBeNull();
  expect(r.lost).toBe(0);
  // The schedule sends every message it has, to its last; each reaches its target and comes back to its sender.
  expect(r.sent).toBe(Math.round(WARMUP_RATE * WARMUP + RATE * DURATION));
  expect(r.delivered).toBe((r.sent as number) * 2);
  expect(r.expected).toBe(r.delivered);
  // Timed: those sent after the warm-up (a late turn may stamp a few warm-up ones after it), once each, at the receiver.
  expect(r.samples as number).toBeGreaterThanOrEqual(RATE * DURATION - 1);
  expect(r.samples as number).toBeLessThan(RATE * DURATION + WARMUP_RATE * WARMUP * 0.5);
  // The achieved rate counts the measured window's sends only: with nothing lost, the samples over its length.
  expect(r.achieved_rate).toBe((r.samples as number) / DURATION);
  expect(r.p50_ms as number).toBeGreaterThan(0);
  expect(r.p99_ms as number).toBeGreaterThanOrEqual(r.p50_ms as number);
  expect(r.max_ms as number).toBeGreaterThanOrEqual(r.p99_ms as number);
}

test("wsload --mode latency: every DM arrives twice, the measured ones are timed once", async () => {
  expectComplete(await latency(0));
});

test("wsload --mode latency: every text is 16 characters, its sender and send time, whatever the machine's uptime", async () => {
  await latency(400);
  // u400 sends to u401: its texts are in u401's inbox as the server stored them.
  const stored = await server.history.inbox("u401", 0, Number.MAX_SAFE_INTEGER, 10_000);
  expect(stored.length).toBe(Math.round((WARMUP_RATE * WARMUP + RATE * DURATION) / 8));
  for (const m of stored) {
    expect(m.from).toBe("u400");
    expect(m.text).toMatch(/^#0400 \d{8}\.\d$/);
  }
  // Send times since the client started, in order: the first after the connects, the last within the run.
  const times = stored.map((m) => Number(m.text.slice(6)));
  expect(times).toEqual([...times].sort((a, b) => a - b));
  expect(times.at(-1)!).toBeLessThan(60e6);
});

test("wsload --mode latency --cids: wirechat acks each cid, acks are not counted as deliveries", async () => {
  expectComplete(await latency(100, "--cids"));
});

test("wsload --mode latency --paired: the samples split by receiver mode, both modes timed", async () => {
  const r = await latency(200, "--paired");
  expectComplete(r);
  expect(r.samples_batch as number).toBeGreaterThan(0);
  expect(r.samples_plain as number).toBeGreaterThan(0);
  expect((r.samples_batch as number) + (r.samples_plain as number)).toBe(r.samples as number);
});

test("wsload --mode latency: a refused message fails the run with the server's error frame, as valid JSON", async () => {
  const { code, r } = await run(limited.port, 300, []);
  expect(code).toBe(1);
  expect(String(r.error)).toContain('the server answered with {"type":"error","code":"rate_limited"');
});
