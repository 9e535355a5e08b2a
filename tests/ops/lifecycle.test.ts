/**
 * Readiness and draining (src/http/ops.ts `/ready`, src/index.ts `stop`):
 * `/ready` answers 200 while the node takes traffic, and 503 `unavailable`
 * while it drains after SIGTERM or while its store takes no writes (SQLite
 * locked by another process; in cluster mode, Redis down). A drain refuses
 * new WebSocket connects with 503 `unavailable`, and SHUTDOWN_TIMEOUT bounds
 * one that cannot finish.
 *
 * With SQLite a drain is over within one turn of the event loop (commits are
 * synchronous), and the listener closes with it: the 503 of a drain is only
 * observable from outside while a commit waits, which is the cluster case
 * below (Redis pausing writes, as it does during a failover). The in-process
 * case shows the same routes while the hub drains and the listener stays.
 */
import { Database } from "bun:sqlite";
import { RedisClient } from "bun";
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type Client, connect, isAck, startServer, upgrade, waitUntil } from "../helpers";
import { startRedis, type RedisServer } from "../redis_server";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";

setDefaultTimeout(30_000);

const ready = async (http: string) => {
  const r = await fetch(`${http}/ready`);
  return { status: r.status, body: (await r.json()) as { status?: string; error?: string; message?: string } };
};

/** `wirechat_frames_in_total` of a node: a frame it counted is in the committer's batch (or past it). */
async function framesIn(http: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const m = /^wirechat_frames_in_total (\d+)$/m.exec(text);
  if (!m) throw new Error("/metrics has no wirechat_frames_in_total");
  return Number(m[1]);
}

describe("/ready on SQLite", () => {
  let server: ServerProcess;
  let db: string;
  beforeAll(async () => {
    db = `${tempDir()}/ready/wirechat.db`;
    server = await spawnServer({ DB_PATH: db });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  test("/ready: 200 {status: ready} while the server runs", async () => {
    expect(await ready(server.http)).toEqual({ status: 200, body: { status: "ready" } });
  });

  test("/ready: 503 unavailable while another process holds the database's write lock, 200 again once it lets go", async () => {
    const locker = new Database(db);
    try {
      locker.run("BEGIN IMMEDIATE");
      const locked = await ready(server.http);
      expect(locked.status).toBe(503);
      expect(locked.body).toEqual({ error: "unavailable", message: expect.stringContaining("does not take writes") });
      expect(locked.body.message).toContain("locked");
      // Liveness is not readiness: the process still answers /health.
      expect((await fetch(`${server.http}/health`)).status).toBe(200);
      locker.run("ROLLBACK");
    } finally {
      if (locker.inTransaction) locker.run("ROLLBACK");
      locker.close();
    }
    expect(await ready(server.http)).toEqual({ status: 200, body: { status: "ready" } });
  });
});

describe("/ready while the hub drains (in process)", () => {
  test("/ready: 503 unavailable while draining; a new WebSocket connect is refused with 503 unavailable; open sockets close with 1001", async () => {
    const s = startServer();
    try {
      const alice = await connect(`${s.ws}/ws/alice`);
      expect((await ready(s.http)).status).toBe(200);
      await s.app.decorator.hub.shutdown();
      expect(s.app.decorator.hub.draining).toBe(true);
      expect((await alice.closedWith()).code).toBe(1001);

      const r = await ready(s.http);
      expect(r).toEqual({ status: 503, body: { error: "unavailable", message: expect.stringContaining("Shutting down") } });
      const refused = await upgrade(`${s.ws}/ws/bob`);
      expect(refused.status).toBe(503);
      expect(JSON.parse(refused.body)).toEqual({ error: "unavailable", message: expect.stringContaining("shutting down"), retryAfterMs: 1000 });
      expect(refused.headers["retry-after"]).toBe("1");
      expect((await fetch(`${s.http}/health`)).status).toBe(200);
    } finally {
      await s.stop();
    }
  });
});

const REDIS = Bun.which("redis-server");

describe.skipIf(!REDIS)(`/ready and draining in cluster mode (REDIS_URL)${REDIS ? "" : " — skipped: redis-server is not on PATH"}`, () => {
  let redis: RedisServer;
  let server: ServerProcess | undefined;
  let admin: RedisClient | undefined;
  const clients: Client[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    // Writes paused by a test are let go, and Redis is back up, whatever the test did.
    if (!(await ping())) await redis.restart();
    await admin?.send("CLIENT", ["UNPAUSE"]).catch(() => {});
    admin?.close();
    admin = undefined;
    for (const c of clients.splice(0)) c.close();
    if (server && server.proc.exitCode === null && server.proc.signalCode === null) await server.stop();
    server = undefined;
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function ping(): Promise<boolean> {
    const c = new RedisClient(redis.url, { autoReconnect: false, connectionTimeout: 1000 });
    try {
      return (await c.send("PING", [])) === "PONG";
    } catch {
      return false;
    } finally {
      c.close();
    }
  }

  const node = (env: Record<string, string> = {}) =>
    spawnServer({
      REDIS_URL: redis.url,
      REDIS_PREFIX: `t${crypto.randomUUID().slice(0, 8)}:`,
      // Cluster mode never creates it: a path nobody uses.
      DB_PATH: `${tempDir()}/unused/unused.db`,
      MSG_RATE: "0",
      ...env,
    });

  /** A Redis connection of the test's own, to pause and resume writes as a failover would. */
  async function adminClient(): Promise<RedisClient> {
    admin = new RedisClient(redis.url);
    await admin.connect();
    return admin;
  }

  test("/ready: 200 in cluster mode, 503 unavailable while Redis is down, 200 again once it is back", async () => {
    server = await node();
    const s = server;
    expect(await ready(s.http)).toEqual({ status: 200, body: { status: "ready" } });

    await redis.kill();
    const down = await waitUntil(async () => {
      const r = await ready(s.http);
      return r.status === 503 && r;
    }, "/ready answers 503 with Redis down");
    expect(down.body).toEqual({ error: "unavailable", message: expect.stringContaining("does not take writes") });
    expect((await fetch(`${s.http}/health`)).status).toBe(200);

    await redis.restart();
    await waitUntil(async () => (await ready(s.http)).status === 200, "/ready answers 200 with Redis back");
    expect(await ready(s.http)).toEqual({ status: 200, body: { status: "ready" } });
  });

  /** alice connected to `s`, Redis pausing writes, and her broadcast received by the server: its commit waits on Redis. */
  async function pendingWhileRedisPauses(s: ServerProcess, text: string, cid: string) {
    const alice = await connect(`${s.ws}/ws/alice`);
    clients.push(alice);
    const before = await framesIn(s.http);
    const redisAdmin = await adminClient();
    expect(await redisAdmin.send("CLIENT", ["PAUSE", "60000", "WRITE"])).toBe("OK");
    alice.send({ type: "broadcast", text, cid });
    // Counted: the message is in the committer's batch, which the drain must commit.
    await waitUntil(async () => (await framesIn(s.http)) > before, "the server received the message");
    return { alice, redisAdmin };
  }

  test("SIGTERM while a commit waits on Redis: /ready 503 and WebSocket connects refused with 503 unavailable until the drain ends; then the message is acked, sockets close 1001, exit 0", async () => {
    server = await node();
    const s = server;
    const { alice, redisAdmin } = await pendingWhileRedisPauses(s, "pending at SIGTERM", "p1");

    s.proc.kill("SIGTERM");
    await s.waitForOutput((o) => o.includes("shutting down: draining connections"));
    const r = await ready(s.http);
    expect(r).toEqual({ status: 503, body: { error: "unavailable", message: expect.stringContaining("Shutting down") } });
    const refused = await upgrade(`${s.ws}/ws/bob`);
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ error: "unavailable" });
    expect(alice.closed).toBeUndefined();
    expect(s.proc.exitCode).toBeNull();

    expect(await redisAdmin.send("CLIENT", ["UNPAUSE"])).toBe("OK");
    const ack = await alice.next(isAck("p1"), 10_000);
    expect(ack).toMatchObject({ type: "ack", cid: "p1", id: expect.any(Number) });
    expect((await alice.closedWith(10_000)).code).toBe(1001);
    expect(await s.proc.exited).toBe(0);
  });

  test("SHUTDOWN_TIMEOUT: a drain whose commit never returns (Redis pausing writes) ends with exit 1 within the bound", async () => {
    const BOUND_MS = 1000;
    server = await node({ SHUTDOWN_TIMEOUT: `${BOUND_MS}ms` });
    const s = server;
    const { alice } = await pendingWhileRedisPauses(s, "stuck", "s1");

    const t0 = performance.now();
    s.proc.kill("SIGTERM");
    const code = await s.proc.exited;
    const ms = performance.now() - t0;
    expect(code).toBe(1);
    expect(ms).toBeGreaterThanOrEqual(BOUND_MS - 50);
    // The bound plus room for a busy machine (2 shared cores), far below the 60 s pause.
    expect(ms).toBeLessThan(BOUND_MS + 3000);
    expect(s.output()).toContain("shutdown took too long; exiting anyway");
    expect(alice.frames.some(isAck("s1"))).toBe(false);
  });
});
