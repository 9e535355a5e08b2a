import { expect, test } from "bun:test";
import { connect as tcp } from "node:net";
import { Client, connect, isAck, waitUntil } from "./helpers";
import { spawnServer } from "./spawn";
import { tempDir } from "./tmp";
import type { AckFrame, MessageFrame } from "../src/protocol";

/** `wirechat_frames_in_total`: a frame counted there has reached the hub (a message is in the committer's batch). */
async function framesIn(http: string): Promise<number> {
  const m = /^wirechat_frames_in_total (\d+)$/m.exec(await (await fetch(`${http}/metrics`)).text());
  if (!m) throw new Error("/metrics has no wirechat_frames_in_total");
  return Number(m[1]);
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`src/index.ts: ${signal} closes every socket with 1001 and exits 0`, async () => {
    const server = await spawnServer({ DB_PATH: `${tempDir()}/signal.db` });
    const a = await new Client(`${server.ws}/ws/alice`).ready();
    const b = await new Client(`${server.ws}/ws/bob`).ready();
    server.proc.kill(signal);
    expect((await a.closedWith()).code).toBe(1001);
    expect((await b.closedWith()).code).toBe(1001);
    expect(await server.proc.exited).toBe(0);
  });
}

test("src/index.ts: history survives a restart on the same DB_PATH", async () => {
  const db = `${tempDir()}/restart/chat.db`;
  let server = await spawnServer({ DB_PATH: db });
  const a = await new Client(`${server.ws}/ws/alice`).ready();
  a.send({ type: "broadcast", text: "remember me", cid: "r" });
  const ack = await a.next((f) => f.type === "ack");
  server.proc.kill("SIGTERM");
  await server.proc.exited;
  server = await spawnServer({ DB_PATH: db });
  try {
    const b = new Client(`${server.ws}/ws/bob?since=0`);
    const m = await b.next<MessageFrame>((f) => f.type === "message");
    expect(m).toMatchObject({ text: "remember me", id: (ack as { id: number }).id });
    b.close();
  } finally {
    server.proc.kill("SIGTERM");
    await server.proc.exited;
  }
});

test("src/index.ts: SIGTERM commits what the server received: every acked message is in the store after a restart, sockets close 1001, exit 0", async () => {
  const db = `${tempDir()}/drain/chat.db`;
  let server = await spawnServer({ DB_PATH: db, MSG_RATE: "0" });
  const acked = new Map<string, number>(); // cid → id
  const N = 200; // acks awaited before SIGTERM
  const M = 50; // sent right before SIGTERM, acks not awaited
  try {
    const alice = await connect(`${server.ws}/ws/alice`);
    const bob = await connect(`${server.ws}/ws/bob`);
    const ackOf = async (c: Client, cid: string) => acked.set(cid, (await c.next<AckFrame>(isAck(cid), 10_000)).id!);

    // N broadcasts and direct messages, every ack awaited.
    for (let i = 0; i < N; i++) {
      alice.send(i % 4 === 0 ? { type: "direct", to: "bob", text: `dm ${i}`, cid: `a${i}` } : { type: "broadcast", text: `b ${i}`, cid: `a${i}` });
    }
    for (let i = 0; i < N; i++) await ackOf(alice, `a${i}`);

    // M more right before SIGTERM, acks not awaited: only that the server received them.
    const base = await framesIn(server.http);
    for (let i = 0; i < M; i++) bob.send({ type: "broadcast", text: `last ${i}`, cid: `z${i}` });
    await waitUntil(async () => (await framesIn(server.http)) >= base + M, "the server received the last messages");
    server.proc.kill("SIGTERM");

    expect((await alice.closedWith()).code).toBe(1001);
    expect((await bob.closedWith()).code).toBe(1001);
    expect(await server.proc.exited).toBe(0);
    // Received before SIGTERM: committed and acked before the 1001 close.
    for (let i = 0; i < M; i++) await ackOf(bob, `z${i}`);
    expect(acked.size).toBe(N + M);
    expect(new Set(acked.values()).size).toBe(N + M);
  } finally {
    if (server.proc.exitCode === null) await server.stop();
  }

  server = await spawnServer({ DB_PATH: db, MSG_RATE: "0" });
  try {
    // bob replays everything he may see: every broadcast and the direct messages to him.
    const bob = new Client(`${server.ws}/ws/bob?since=0`);
    const want = new Set(acked.values());
    const seen = new Map<number, string>();
    await waitUntil(
      () => {
        for (const f of bob.frames.splice(0)) if (f.type === "message") seen.set(f.id, f.text);
        if (bob.closed) throw new Error(`closed ${bob.closed.code} while replaying`);
        return [...want].every((id) => seen.has(id));
      },
      () => `every acked id is replayed; missing: ${[...want].filter((id) => !seen.has(id)).slice(0, 10)}`,
      { signal: bob.changed, ms: 10_000 },
    );
    expect(seen.get(acked.get("a0")!)).toBe("dm 0");
    expect(seen.get(acked.get("a1")!)).toBe("b 1");
    expect(seen.get(acked.get(`z${M - 1}`)!)).toBe(`last ${M - 1}`);
    bob.close();
  } finally {
    expect(await server.stop()).toBe(0);
  }
}, 30_000);

test("src/index.ts: a request body still arriving is cut after half of SHUTDOWN_TIMEOUT: new connections are refused, exit 0 within the bound", async () => {
  const BOUND_MS = 1000;
  const server = await spawnServer({ DB_PATH: `${tempDir()}/bound/chat.db`, SHUTDOWN_TIMEOUT: `${BOUND_MS}ms` });
  // A slow upload: the headers of a POST, then part of its body. The server stops listening at once,
  // waits for requests in flight (Bun's server.stop()) for half the bound, then cuts this one.
  const slow = tcp({ host: "127.0.0.1", port: server.port });
  try {
    let answer = "";
    slow.on("data", (d) => (answer += d));
    slow.on("error", () => {});
    slow.write("POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
    // Bun answers 100 Continue once it has the request: it is in flight.
    await waitUntil(
      () => answer.startsWith("HTTP/1.1 100"),
      () => `the server answers 100 Continue; got ${JSON.stringify(answer)}`,
    );
    slow.write('{"username":"al');

    const t0 = performance.now();
    server.proc.kill("SIGTERM");
    await server.waitForOutput((o) => o.includes("shutting down: draining connections"));
    // Draining: a new request is refused (the listener is closed) or answered 503; never served.
    const during = await fetch(`${server.http}/ready`).then(
      (r) => r.status,
      () => "refused",
    );
    expect([503, "refused"]).toContain(during);
    const code = await server.proc.exited;
    const ms = performance.now() - t0;
    expect(code).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(BOUND_MS / 2 - 50);
    expect(server.output()).toContain("cutting HTTP requests still in flight");
    expect(server.output()).not.toContain("shutdown took too long");
  } finally {
    slow.destroy();
    if (server.proc.exitCode === null) await server.stop();
  }
});
