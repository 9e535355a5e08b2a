/**
 * Limits against floods: messages per user (MSG_RATE, MSG_BURST, and 4008 for
 * a client that keeps sending), connections per user and per address (with
 * and without TRUST_PROXY), concurrent replays of one user.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type Client, connect, isAck, isError, probe, upgrade, type UpgradeAnswer, WaitTimeout, waitUntil } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";
import type { ErrorFrame, HistoryBody } from "../../src/protocol";

setDefaultTimeout(20_000);

const clients: Client[] = [];
const join = async (url: string, headers?: Record<string, string>) => {
  const c = await connect(url, headers ? { headers } : undefined);
  clients.push(c);
  return c;
};
const alive = (s: ServerProcess, headers?: Record<string, string>) =>
  probe(`${s.ws}/ws/probe-${crypto.randomUUID().slice(0, 8)}`, headers ? { headers } : undefined);
/**
 * Connects until a connect is let in (a slot frees once the server handled a
 * close), at most `ms`; then returns the last refusal, for the caller to assert on.
 */
async function eventually101(url: string, headers: Record<string, string> = {}, ms = 5000): Promise<UpgradeAnswer> {
  let last: UpgradeAnswer | undefined;
  try {
    return await waitUntil(
      async () => {
        last = await upgrade(url, headers);
        return last.status === 101 && last;
      },
      "a connect is let in",
      { ms, pollMs: 0 }, // the next attempt at once, as a client would retry
    );
  } catch (err) {
    if (err instanceof WaitTimeout && last) return last;
    throw err;
  }
}
const rateLimitedBody = async (r: UpgradeAnswer) => {
  expect(r.status).toBe(429);
  expect(JSON.parse(r.body)).toMatchObject({ error: "rate_limited", message: expect.any(String) });
};

afterAll(() => {
  for (const c of clients) c.close();
});

describe("MSG_RATE=1 MSG_BURST=3", () => {
  let s: ServerProcess;
  beforeAll(async () => {
    s = await spawnServer({ MSG_RATE: "1", MSG_BURST: "3", DB_PATH: `${tempDir()}/rate.db` });
  });
  afterAll(async () => {
    await s?.stop();
  });

  test("the 4th message → error rate_limited with retryAfterMs and its cid; no ack, nothing stored", async () => {
    const alice = await join(`${s.ws}/ws/alice`);
    const bob = await join(`${s.ws}/ws/bob`);
    for (let i = 1; i <= 4; i++) alice.send({ type: "broadcast", text: `burst-${i}`, cid: `b${i}` });
    for (let i = 1; i <= 3; i++) await alice.next(isAck(`b${i}`));
    const e = await alice.next<ErrorFrame>(isError);
    expect(e).toMatchObject({ code: "rate_limited", cid: "b4", message: expect.any(String) });
    expect(e.retryAfterMs).toBeGreaterThan(0);
    // Another user is not limited by alice's budget; once alice has bob's
    // message, any ack of b4 would have come before it.
    bob.send({ type: "broadcast", text: "bob after", cid: "x" });
    await bob.next(isAck("x"));
    await alice.next((f) => f.type === "message" && f.text === "bob after");
    expect(alice.frames.filter(isAck("b4"))).toEqual([]);
    expect(bob.frames.filter((f) => f.type === "message" && f.text === "burst-4")).toEqual([]);
    const page = (await (await fetch(`${s.http}/history`)).json()) as HistoryBody;
    expect(page.messages.map((m) => m.text)).toContain("burst-3");
    expect(page.messages.map((m) => m.text)).not.toContain("burst-4");
    await alive(s);
  });

  test("the budget is per user: a second connection of the same user shares it", async () => {
    const c1 = await join(`${s.ws}/ws/carol`);
    const c2 = await join(`${s.ws}/ws/carol`);
    for (let i = 1; i <= 3; i++) c1.send({ type: "broadcast", text: `carol-${i}`, cid: `c${i}` });
    for (let i = 1; i <= 3; i++) await c1.next(isAck(`c${i}`));
    c2.send({ type: "direct", to: "bob", text: "carol-4", cid: "c4" });
    expect(await c2.next<ErrorFrame>(isError)).toMatchObject({ code: "rate_limited", cid: "c4" });
    await alive(s);
  });

  test("a client that keeps sending after rate_limited is closed with 4008", async () => {
    const flood = await join(`${s.ws}/ws/flood`);
    const other = await join(`${s.ws}/ws/calm`);
    let n = 0;
    const timer = setInterval(() => {
      if (flood.ws.readyState === WebSocket.OPEN) flood.send({ type: "broadcast", text: `flood-${n}`, cid: `f${n++}` });
    }, 50);
    try {
      await flood.next((f) => f.type === "error" && f.code === "rate_limited");
      expect((await flood.closedWith(30_000)).code).toBe(4008);
    } finally {
      clearInterval(timer);
    }
    expect(flood.frames.filter((f) => f.type === "error" && f.code !== "rate_limited")).toEqual([]);
    other.send({ type: "broadcast", text: "calm", cid: "calm" });
    await other.next(isAck("calm"));
    expect(other.closed).toBeUndefined();
    await alive(s);
  }, 45_000);
});

describe("MSG_RATE=0", () => {
  let s: ServerProcess;
  beforeAll(async () => {
    s = await spawnServer({ MSG_RATE: "0", DB_PATH: `${tempDir()}/rate-off.db` });
  });
  afterAll(async () => {
    await s?.stop();
  });

  test("no limit: 200 messages in one burst are all acked", async () => {
    const c = await join(`${s.ws}/ws/alice`);
    for (let i = 0; i < 200; i++) c.send({ type: "broadcast", text: `m${i}`, cid: `m${i}` });
    for (let i = 0; i < 200; i++) await c.next(isAck(`m${i}`));
    expect(c.frames.filter(isError)).toEqual([]);
    await alive(s);
  });
});

describe("MAX_CONNECTIONS_PER_USER=2", () => {
  let s: ServerProcess;
  beforeAll(async () => {
    s = await spawnServer({ MAX_CONNECTIONS_PER_USER: "2", DB_PATH: `${tempDir()}/per-user.db` });
  });
  afterAll(async () => {
    await s?.stop();
  });

  test("the third connect of a user → 429 rate_limited; other users connect; a closed one frees a slot", async () => {
    const a1 = await join(`${s.ws}/ws/alice`);
    await join(`${s.ws}/ws/alice`);
    await rateLimitedBody(await upgrade(`${s.ws}/ws/alice`));
    await rateLimitedBody(await upgrade(`${s.ws}/ws/alice/`));
    await join(`${s.ws}/ws/bob`);
    a1.close();
    await a1.closedWith();
    expect((await eventually101(`${s.ws}/ws/alice`)).status).toBe(101);
    await alive(s);
  });
});

describe("MAX_CONNECTIONS_PER_IP=2", () => {
  let direct: ServerProcess;
  let proxied: ServerProcess;
  beforeAll(async () => {
    [direct, proxied] = await Promise.all([
      spawnServer({ MAX_CONNECTIONS_PER_IP: "2", DB_PATH: `${tempDir()}/per-ip.db` }),
      spawnServer({ MAX_CONNECTIONS_PER_IP: "2", TRUST_PROXY: "1", DB_PATH: `${tempDir()}/per-ip-proxy.db` }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([direct?.stop(), proxied?.stop()]);
  });

  test("the third connect from one address → 429; X-Forwarded-For is ignored without TRUST_PROXY", async () => {
    const a = await join(`${direct.ws}/ws/alice`, { "X-Forwarded-For": "10.0.0.1" });
    const b = await join(`${direct.ws}/ws/bob`, { "X-Forwarded-For": "10.0.0.2" });
    await rateLimitedBody(await upgrade(`${direct.ws}/ws/carol`));
    await rateLimitedBody(await upgrade(`${direct.ws}/ws/carol`, { "X-Forwarded-For": "10.0.0.3" }));
    expect((await fetch(`${direct.http}/users/online`)).status).toBe(200);
    a.close();
    b.close();
    await Promise.all([a.closedWith(), b.closedWith()]);
    expect((await eventually101(`${direct.ws}/ws/carol`)).status).toBe(101);
    await alive(direct);
  });

  test("TRUST_PROXY=1: the X-Forwarded-For address (last hop) counts instead", async () => {
    await join(`${proxied.ws}/ws/alice`, { "X-Forwarded-For": "10.0.0.1" });
    await join(`${proxied.ws}/ws/bob`, { "X-Forwarded-For": "10.0.0.1" });
    await rateLimitedBody(await upgrade(`${proxied.ws}/ws/carol`, { "X-Forwarded-For": "10.0.0.1" }));
    // A client cannot escape by prepending addresses: the proxy appends the real one.
    await rateLimitedBody(await upgrade(`${proxied.ws}/ws/carol`, { "X-Forwarded-For": "6.6.6.6, 10.0.0.1" }));
    expect((await upgrade(`${proxied.ws}/ws/carol`, { "X-Forwarded-For": "10.0.0.2" })).status).toBe(101);
    expect((await upgrade(`${proxied.ws}/ws/dave`, { "X-Forwarded-For": "10.0.0.1, 10.0.0.3" })).status).toBe(101);
    await alive(proxied, { "X-Forwarded-For": "10.0.0.4" });
  });
});

describe("concurrent replays of one user", () => {
  let s: ServerProcess;
  beforeAll(async () => {
    s = await spawnServer({ MSG_RATE: "0", DB_PATH: `${tempDir()}/replays.db` });
  });
  afterAll(async () => {
    await s?.stop();
  });

  test("many ?since=0 connects of one user with a large history: some → 429 rate_limited, the server keeps answering", async () => {
    const seeder = await join(`${s.ws}/ws/seeder`);
    const big = "z".repeat(3900);
    const total = 4000;
    for (let i = 0; i < total; i++) {
      seeder.send(i % 500 === 499 ? { type: "broadcast", text: `${i}:${big}`, cid: `s${i}` } : { type: "broadcast", text: `${i}:${big}` });
      if (i % 500 === 499) await seeder.next(isAck(`s${i}`), 15_000);
    }
    expect(seeder.frames.filter(isError)).toEqual([]);
    seeder.close();
    // Readers that never read: each replay meets backpressure and stays in progress.
    const answers = await Promise.all(Array.from({ length: 10 }, () => upgrade(`${s.ws}/ws/reader?since=0`, {}, { hold: true, ms: 10_000 })));
    try {
      const statuses = answers.map((r) => r.status);
      expect(statuses.every((x) => x === 101 || x === 429)).toBe(true);
      expect(statuses.filter((x) => x === 101).length).toBeGreaterThanOrEqual(1);
      expect(statuses.filter((x) => x === 429).length).toBeGreaterThanOrEqual(1);
      for (const r of answers.filter((x) => x.status === 429)) await rateLimitedBody(r);
      await alive(s);
      const health = await fetch(`${s.http}/health`);
      expect(health.status).toBe(200);
    } finally {
      for (const r of answers) r.socket.destroy();
    }
    await alive(s);
    expect(s.proc.exitCode).toBeNull();
  }, 60_000);
});
