/**
 * What only the Redis history has to show: several nodes on one store, the
 * data layout other nodes and the broker read, and Redis restarting (empty,
 * or killed with an append-only file). Each test starts its own redis-server.
 */
import { afterEach, expect, test } from "bun:test";
import type { NewMessage, StoredMessage } from "../src/history/history";
import { createRedisHistory, type RedisHistory } from "../src/history/history_redis";
import { keysOf, topicsOf } from "../src/hub/routing";
import { toFrame } from "../src/history/frame";
import { encode } from "../src/protocol";
import { startRedis, type RedisServer } from "./redis_server";

const servers: RedisServer[] = [];
const opened: RedisHistory[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((h) => h.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
const server = async (appendonly = false) => {
  const s = await startRedis({ appendonly });
  servers.push(s);
  return s;
};
const open = async (s: RedisServer, prefix = "wc:") => {
  const h = await createRedisHistory({ url: s.url, prefix });
  opened.push(h);
  return h;
};
const say = (from: string, text: string, extra: Partial<NewMessage> = {}): NewMessage => ({ kind: "broadcast", from, text, at: Date.now(), ...extra });
/** Every message `user` may see (every message when all are broadcasts or from `user`). */
const everything = (h: RedisHistory, user = "nobody") => h.visible({ user, rooms: new Set() }, 0, Infinity, 1_000_000);
/** Rejects after `ms`: a test waits for nothing without a bound. */
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref?.())]);

test("two nodes appending at once never share an id, and each sees the other's messages", async () => {
  const s = await server();
  const [a, b] = [await open(s), await open(s)];
  expect(b.epoch).toBe(a.epoch);
  const calls: Promise<{ node: string; stored: StoredMessage[] }>[] = [];
  for (let i = 0; i < 60; i++) {
    for (const [node, h] of [
      ["a", a],
      ["b", b],
    ] as const) {
      const batch = Array.from({ length: 1 + (i % 4) }, (_, j) => say(node, `${node} ${i}.${j}`));
      calls.push(h.append(batch).then((r) => ({ node, stored: r.map((x) => x.stored!) })));
    }
  }
  const results = await within(Promise.all(calls), 10_000, "appends");
  const all = results.flatMap((r) => r.stored);
  const ids = all.map((m) => m.id).sort((x, y) => x - y);
  expect(ids).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
  for (const r of results) for (let i = 1; i < r.stored.length; i++) expect(r.stored[i]!.id).toBe(r.stored[i - 1]!.id + 1);
  const byId = [...all].sort((x, y) => x.id - y.id);
  expect(await everything(a)).toEqual(byId);
  expect(await everything(b)).toEqual(byId);
  expect(await a.newest()).toBe(all.length);
  expect(await b.newest()).toBe(all.length);
  const own = (node: string) => Math.max(...results.filter((r) => r.node === node).flatMap((r) => r.stored.map((m) => m.id)));
  expect(a.lastId()).toBe(own("a"));
  expect(b.lastId()).toBe(own("b"));
}, 20_000);

test("a cid retried through the other node gets the first id, also when both send it at once", async () => {
  const s = await server();
  const [a, b] = [await open(s), await open(s)];
  const [first] = await a.append([say("alice", "hi", { kind: "direct", to: "bob", cid: "c1" })]);
  const [retry] = await b.append([say("alice", "hi", { kind: "direct", to: "bob", cid: "c1" })]);
  expect(retry).toEqual({ duplicate: { id: first!.stored!.id, kind: "direct", to: "bob" } });
  expect(await b.findByCid("alice", "c1", 0)).toEqual({ id: first!.stored!.id, kind: "direct", to: "bob" });
  const [x, y] = await Promise.all([a.append([say("carol", "once", { cid: "c2" })]), b.append([say("carol", "once", { cid: "c2" })])]);
  const stored = [x[0]!, y[0]!].filter((r) => r.stored);
  expect(stored.length).toBe(1);
  expect([x[0]!, y[0]!].find((r) => r.duplicate)?.duplicate?.id).toBe(stored[0]!.stored!.id);
  expect((await everything(a, "alice")).map((m) => m.text)).toEqual(["hi", "once"]);
  expect((await everything(a)).map((m) => m.text)).toEqual(["once"]);
});

test("the data layout: frames as clients receive them, cids, the indexes of keysOf, the log", async () => {
  const s = await server();
  const h = await open(s, "lay:");
  const batch: NewMessage[] = [
    say("alice", 'to bob ✓ "q"', { kind: "direct", to: "bob", cid: "k1" }),
    say("alice", "self", { kind: "direct", to: "alice" }),
    say("bob", "dev", { kind: "room", to: "dev" }),
    say("carol", "all"),
  ];
  const stored = (await h.append(batch)).map((r) => r.stored!);
  const r = h.redis;
  for (const m of stored) {
    expect(await r.send("HGET", ["lay:m", String(m.id)])).toBe(encode(toFrame(m)));
    for (const key of keysOf(m)) expect(await r.send("ZSCORE", [`lay:ix:${key}`, String(m.id)])).toBe(m.id);
  }
  const indexes = ((await r.send("KEYS", ["lay:ix:*"])) as string[]).sort();
  expect(indexes).toEqual([...new Set(stored.flatMap((m) => keysOf(m)))].map((k) => `lay:ix:${k}`).sort());
  expect(await r.send("HGETALL", ["lay:c"])).toEqual({ "1": "k1" });
  const log = (await r.send("XRANGE", ["lay:log", "-", "+"])) as [string, string[]][];
  expect(log).toEqual(stored.map((m) => [`${m.id}-0`, ["f", encode(toFrame(m)), "k", topicsOf(m).join("\n"), "a", String(m.at)]]));
  expect(Number(await r.send("GET", ["lay:id"]))).toBe(4);
});

test("Redis restarted empty: the old node's append rejects with code EPOCH, storing nothing; a new open has another epoch", async () => {
  const s = await server();
  const h = await open(s);
  const before = h.epoch;
  await h.append([say("a", "before")]);
  await s.restart(); // no AOF, no snapshot: it comes back empty
  const err = await within(h.append([say("a", "lost"), say("a", "lost too")]), 10_000, "append after restart").catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect((err as { code?: string }).code).toBe("EPOCH");
  expect(await h.newest()).toBe(0);
  const fresh = await open(s);
  expect(fresh.epoch).not.toBe(before);
  // The old node follows the new data set: same epoch, ids start again.
  expect(h.epoch).toBe(fresh.epoch);
  expect(h.lastId()).toBe(0);
  const [r] = await h.append([say("a", "after")]);
  expect(r!.stored!.id).toBe(1);
  expect((await everything(fresh)).map((m) => m.text)).toEqual(["after"]);
}, 20_000);

test("an append against another data set's epoch stores nothing", async () => {
  const s = await server();
  const h = await open(s);
  await h.append([say("a", "one")]);
  await h.redis.send("SET", ["wc:epoch", "another"]);
  const err = await h.append([say("a", "two"), say("a", "three", { cid: "c" })]).catch((e: unknown) => e);
  expect((err as { code?: string }).code).toBe("EPOCH");
  expect(h.epoch).toBe("another");
  expect(await h.newest()).toBe(1);
  expect(await h.findByCid("a", "c", 0)).toBeUndefined();
  expect(await h.redis.send("XLEN", ["wc:log"])).toBe(1);
});

test("scripts come back after SCRIPT FLUSH (NOSCRIPT is answered by loading them again)", async () => {
  const s = await server();
  const h = await open(s);
  await h.append([say("a", "one")]);
  await h.redis.send("SCRIPT", ["FLUSH"]);
  const [r] = await h.append([say("a", "two")]);
  expect(r!.stored!.id).toBe(2);
  await h.redis.send("SCRIPT", ["FLUSH"]);
  await h.setCursor("a", 2);
  expect(await h.cursor("a")).toBe(2);
});

test("two nodes pruning at once remove each message once", async () => {
  const s = await server();
  const [a, b] = [await open(s), await open(s)];
  for (let i = 0; i < 10; i++) await a.append(Array.from({ length: 50 }, (_, j) => say("x", `${i}.${j}`, { kind: "direct", to: `u${j % 3}` })));
  let removed = 0;
  for (;;) {
    const [x, y] = await Promise.all([a.prune(100, 0, 37), b.prune(100, 0, 37)]);
    removed += x + y;
    if (x + y === 0) break;
  }
  expect(removed).toBe(400);
  expect(await a.prunedThrough()).toBe(400);
  expect(await a.redis.send("HLEN", ["wc:m"])).toBe(100);
  expect((await everything(b, "x")).map((m) => m.id)).toEqual(Array.from({ length: 100 }, (_, i) => 401 + i));
  // Message 50i + j + 1 goes to u(j % 3): 400 (j = 49) to u1, 399 (j = 48) to u0, 398 to u2.
  expect(await a.prunedInbox("u1")).toBe(400);
  expect(await a.prunedInbox("u0")).toBe(399);
  expect(await a.prunedInbox("u2")).toBe(398);
});

test("with appendonly yes, a SIGKILLed and restarted Redis keeps every acknowledged append", async () => {
  const s = await server(true);
  const h = await open(s);
  expect(await h.redis.send("CONFIG", ["GET", "append*"])).toMatchObject({ appendonly: "yes", appendfsync: "always" });
  const epoch = h.epoch;
  const acked: StoredMessage[] = [];
  let stop = false;
  let killed: () => void = () => {};
  const enough = new Promise<void>((resolve) => (killed = resolve));
  const writer = async (w: number) => {
    for (let i = 0; !stop; i++) {
      try {
        const r = await h.append([say(`w${w}`, `w${w} ${i}`), say(`w${w}`, `w${w} ${i}b`)]);
        for (const x of r) acked.push(x.stored!);
        if (acked.length >= 400) killed();
      } catch {
        // the connection broke under this append: not acknowledged, may or may not be stored
      }
    }
  };
  const writers = Promise.all([0, 1, 2, 3].map(writer));
  await within(enough, 10_000, "400 acked appends");
  await s.kill();
  stop = true;
  await s.restart();
  await within(writers, 15_000, "writers to finish after the restart");
  const again = await open(s);
  expect(again.epoch).toBe(epoch);
  const kept = await everything(again);
  const keptById = new Map(kept.map((m) => [m.id, m]));
  for (const m of acked) expect(keptById.get(m.id)).toEqual(m);
  // Nothing was applied twice (a command replayed on reconnect would show as a repeated text).
  expect(new Set(kept.map((m) => m.text)).size).toBe(kept.length);
  expect(await again.newest()).toBeGreaterThanOrEqual(Math.max(...acked.map((m) => m.id)));
}, 40_000);

test("while Redis is down a call rejects at once and nothing is queued; once it is back the same node goes on", async () => {
  const s = await server(true);
  const h = await open(s);
  await h.append([say("a", "one")]);
  await s.stop();
  const err = await within(h.append([say("a", "while down")]), 5_000, "append while down").catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect(await within(h.newest(), 5_000, "newest while down").catch(() => "rejected")).toBe("rejected");
  await s.restart();
  const [r] = await within(h.append([say("a", "two")]), 5_000, "append after restart");
  expect(r!.stored!.id).toBe(2);
  expect((await everything(h)).map((m) => m.text)).toEqual(["one", "two"]);
}, 20_000);
