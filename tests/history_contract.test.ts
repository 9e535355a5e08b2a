/**
 * The History contract: every implementation must pass this suite. SQLite
 * (a file and :memory:) and Redis (its own redis-server, a fresh key prefix
 * per test) run the same cases; `-t redis` or `-t sqlite` picks one.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { History, NewMessage, StoredMessage } from "../src/history/history";
import { createSqliteHistory } from "../src/history/history_sqlite";
import { createRedisHistory } from "../src/history/history_redis";
import { startRedis, type RedisServer } from "./redis_server";
import { tempDir } from "./tmp";

interface Impl {
  name: string;
  /** Opens an empty store; `reopen` opens the same storage again (to check durability). */
  open(): Promise<{ history: History; reopen?: () => Promise<History> }>;
}

let redis: RedisServer | undefined;
let prefixes = 0;

const implementations: Impl[] = [
  {
    name: "sqlite file",
    async open() {
      const path = `${tempDir()}/nested/dir/history.db`;
      return { history: createSqliteHistory(path), reopen: async () => createSqliteHistory(path) };
    },
  },
  {
    // Segments of 256 bytes: a new message log file every few messages, so appends, reads and pruning cross files.
    name: "sqlite file, small log segments",
    async open() {
      const path = `${tempDir()}/history.db`;
      return { history: createSqliteHistory(path, "normal", 256), reopen: async () => createSqliteHistory(path, "normal", 256) };
    },
  },
  { name: "sqlite :memory:", open: async () => ({ history: createSqliteHistory(":memory:") }) },
  {
    name: "redis",
    async open() {
      const opts = { url: redis!.url, prefix: `t${++prefixes}-${crypto.randomUUID()}:` };
      return { history: await createRedisHistory(opts), reopen: () => createRedisHistory(opts) };
    },
  },
];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** A new message; a fresh store gives the n-th one appended id n, and `at` = 1000 + n keeps that readable. */
let seq = 0;
const msg = (kind: NewMessage["kind"], from: string, to?: string, extra: Partial<NewMessage> = {}): NewMessage => {
  const n = ++seq;
  const m: NewMessage = { kind, from, text: `text ${n}`, at: 1_000 + n, ...extra };
  if (to !== undefined) m.to = to;
  return m;
};
const ids = (ms: StoredMessage[]) => ms.map((m) => m.id);

for (const impl of implementations) {
  describe(`History contract: ${impl.name}`, () => {
    let opened: History[] = [];
    const fresh = async () => {
      seq = 0;
      const o = await impl.open();
      opened.push(o.history);
      return o;
    };
    const reopen = async (o: { reopen?: () => Promise<History> }) => {
      const h = await o.reopen!();
      opened.push(h);
      return h;
    };
    /**
     * A case about reopening the same storage. A store in memory has nothing
     * to reopen (its data goes with it), so there it is skipped, and says so,
     * rather than passing without checking anything.
     */
    const reopenCase = (name: string, fn: () => Promise<void>) =>
      impl.name.includes(":memory:") ? test.skip(`${name} (not applicable: an in-memory store cannot be reopened)`, fn) : test(name, fn);
    afterEach(async () => {
      await Promise.all(opened.map((h) => h.close()));
      opened = [];
    });

    test("lastId is 0 when empty and follows append", async () => {
      const { history } = await fresh();
      expect(history.lastId()).toBe(0);
      expect(await history.newest()).toBe(0);
      await history.append([msg("broadcast", "a"), msg("broadcast", "a")]);
      expect(history.lastId()).toBe(2);
      expect(await history.newest()).toBe(2);
    });

    test("ids are assigned by the store, strictly increasing, in batch order", async () => {
      const { history } = await fresh();
      const seen: number[] = [];
      for (const size of [1, 3, 1, 5]) {
        const r = await history.append(Array.from({ length: size }, () => msg("broadcast", "a")));
        for (const a of r) seen.push(a.stored!.id);
      }
      expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
      expect(history.lastId()).toBe(10);
    });

    test("append stores every field exactly; undefined fields stay absent", async () => {
      const { history } = await fresh();
      const m: NewMessage = { kind: "direct", from: "alice", to: "bob", text: '123 "quoted" ünï ✓ \n', at: 42, cid: "c1" };
      const [r] = await history.append([m, { kind: "broadcast", from: "alice", text: "text 2", at: 1002 }]);
      // The frame every subscriber receives, byte for byte (both stores make the same bytes).
      const frame = JSON.stringify({ type: "message", id: 1, kind: "direct", from: "alice", to: "bob", text: m.text, at: 42 });
      expect(r).toEqual({ stored: { ...m, id: 1 }, frame });
      expect(await history.inbox("bob", 0, 100, 10)).toEqual([{ ...m, id: 1 }]);
      const b = await history.page(undefined, 100, 10);
      expect(b).toEqual([{ id: 2, kind: "broadcast", from: "alice", text: "text 2", at: 1002 }]);
      expect("to" in b[0]!).toBe(false);
      expect("cid" in b[0]!).toBe(false);
    });

    test("a retried cid is answered with the first id, also within one batch; nothing is stored twice", async () => {
      const { history } = await fresh();
      const now = Date.now();
      const first = await history.append([msg("direct", "alice", "bob", { cid: "k", at: now }), msg("room", "alice", "dev", { cid: "k", at: now })]);
      expect(first[0]).toEqual({ stored: expect.objectContaining({ id: 1, cid: "k" }), frame: expect.stringContaining('"id":1,') });
      expect(first[1]).toEqual({ duplicate: { id: 1, kind: "direct", to: "bob" } });
      const again = await history.append([msg("broadcast", "carol", undefined, { cid: "k", at: now }), msg("direct", "alice", "bob", { cid: "k", at: now })]);
      expect(again[0]).toEqual({ stored: expect.objectContaining({ id: 2, from: "carol" }), frame: expect.stringContaining('"id":2,') });
      expect(again[1]).toEqual({ duplicate: { id: 1, kind: "direct", to: "bob" } });
      expect(history.lastId()).toBe(2);
      expect(ids(await history.visible({ user: "bob", rooms: new Set(["dev"]) }, 0, 100, 100))).toEqual([1, 2]);
    });

    test("findByCid finds the sender's message within the window only", async () => {
      const { history } = await fresh();
      const now = Date.now();
      await history.append([
        msg("broadcast", "alice", undefined, { cid: "old", at: now - 25 * 3600_000 }),
        msg("direct", "alice", "bob", { cid: "x", at: now - 1000 }),
      ]);
      expect(await history.findByCid("alice", "x", now - 24 * 3600_000)).toEqual({ id: 2, kind: "direct", to: "bob" });
      expect(await history.findByCid("bob", "x", 0)).toBeUndefined();
      expect(await history.findByCid("alice", "y", 0)).toBeUndefined();
      expect(await history.findByCid("alice", "x", now)).toBeUndefined();
      expect(await history.findByCid("alice", "old", now - 24 * 3600_000)).toBeUndefined();
    });

    test("findByCid still answers after its message was pruned", async () => {
      const { history } = await fresh();
      const now = Date.now();
      await history.append([msg("broadcast", "alice", undefined, { cid: "k", at: now }), msg("broadcast", "alice", undefined, { at: now })]);
      expect(await history.prune(1, 0, 100)).toBe(1);
      expect(await history.findByCid("alice", "k", now - 1000)).toEqual({ id: 1, kind: "broadcast", to: undefined });
    });

    test("inbox with newest returns the newest direct messages", async () => {
      const { history } = await fresh();
      await history.append([msg("direct", "x", "bob"), msg("direct", "x", "bob"), msg("broadcast", "x"), msg("direct", "x", "bob")]);
      expect(ids(await history.inbox("bob", 0, 100, 2, true))).toEqual([2, 4]);
      expect(ids(await history.inbox("bob", 0, 100, 2))).toEqual([1, 2]);
      expect(ids(await history.inbox("bob", 0, 3, 2, true))).toEqual([1, 2]);
    });

    test("lookups skip pruned ids at once", async () => {
      const { history } = await fresh();
      await history.append(Array.from({ length: 6 }, (_, i) => (i % 2 ? msg("direct", "x", "bob") : msg("broadcast", "x"))));
      await history.prune(3, 0, 100);
      expect(ids(await history.inbox("bob", 0, 100, 10))).toEqual([4, 6]);
      expect(ids(await history.page(undefined, 100, 10))).toEqual([5]);
      expect(ids(await history.visible({ user: "bob", rooms: new Set() }, 0, 100, 10))).toEqual([4, 5, 6]);
    });

    reopenCase("findByCid still finds a cid after a reopen", async () => {
      const o = await fresh();
      await o.history.append([msg("room", "alice", "dev", { cid: "k", at: Date.now() })]);
      await o.history.close();
      const again = await reopen(o);
      expect((await again.findByCid("alice", "k", 0))?.id).toBe(1);
      expect(await again.append([msg("room", "alice", "dev", { cid: "k", at: Date.now() })])).toEqual([{ duplicate: { id: 1, kind: "room", to: "dev" } }]);
    });

    test("visible returns what the reader may see, in id order", async () => {
      const { history } = await fresh();
      await history.append([
        msg("broadcast", "x"),
        msg("direct", "x", "alice"),
        msg("direct", "alice", "y"),
        msg("direct", "x", "y"),
        msg("room", "x", "dev"),
        msg("room", "x", "ops"),
        msg("broadcast", "y"),
        msg("direct", "alice", "alice"),
      ]);
      const reader = { user: "alice", rooms: new Set(["dev"]) };
      expect(ids(await history.visible(reader, 0, 100, 100))).toEqual([1, 2, 3, 5, 7, 8]);
      expect(ids(await history.visible(reader, 2, 100, 100))).toEqual([3, 5, 7, 8]);
      expect(ids(await history.visible(reader, 0, 5, 100))).toEqual([1, 2, 3, 5]);
      expect(ids(await history.visible(reader, 0, 100, 2))).toEqual([1, 2]);
      expect(ids(await history.visible(reader, 0, 100, 2, true))).toEqual([7, 8]);
      expect(ids(await history.visible(reader, 1, 6, 2, true))).toEqual([3, 5]);
      expect(ids(await history.visible({ user: "z", rooms: new Set() }, 0, 100, 100))).toEqual([1, 7]);
    });

    test("visible merges its readers' indexes correctly for any limit (against a plain filter)", async () => {
      const { history } = await fresh();
      const users = ["u0", "u1", "u2", "u3"];
      const rooms = ["r0", "r1", "r2"];
      let r = 7;
      const rand = (n: number) => ((r = (r * 1103515245 + 12345) % 2 ** 31), r % n);
      const all: StoredMessage[] = [];
      for (let b = 0; b < 6; b++) {
        const batch = Array.from({ length: 20 }, () => {
          const k = rand(3);
          return k === 0
            ? msg("broadcast", users[rand(4)]!)
            : k === 1
              ? msg("direct", users[rand(4)]!, users[rand(4)]!)
              : msg("room", users[rand(4)]!, rooms[rand(3)]!);
        });
        for (const a of await history.append(batch)) all.push(a.stored!);
      }
      for (let t = 0; t < 40; t++) {
        const reader = { user: users[rand(4)]!, rooms: new Set(rooms.filter(() => rand(2) === 0)) };
        const after = rand(60);
        const upTo = after + rand(80);
        const limit = 1 + rand(30);
        const newest = rand(2) === 0;
        const may = (m: StoredMessage) =>
          m.kind === "broadcast" || (m.kind === "room" ? reader.rooms.has(m.to!) : m.to === reader.user || m.from === reader.user);
        const expected = all.filter((m) => m.id > after && m.id <= upTo && may(m));
        const want = newest ? expected.slice(-limit) : expected.slice(0, limit);
        expect(await history.visible(reader, after, upTo, limit, newest)).toEqual(want);
      }
    });

    test("inbox returns direct messages to the user with after < id <= upTo", async () => {
      const { history } = await fresh();
      await history.append([
        msg("direct", "x", "bob"),
        msg("direct", "bob", "x"),
        msg("room", "x", "bob"),
        msg("direct", "y", "bob"),
        msg("direct", "y", "bob"),
      ]);
      expect(ids(await history.inbox("bob", 0, 100, 10))).toEqual([1, 4, 5]);
      expect(ids(await history.inbox("bob", 1, 100, 10))).toEqual([4, 5]);
      expect(ids(await history.inbox("bob", 0, 4, 10))).toEqual([1, 4]);
      expect(ids(await history.inbox("bob", 0, 100, 1))).toEqual([1]);
    });

    test("conversation returns the direct messages between two users, both ways, newest first", async () => {
      const { history } = await fresh();
      await history.append([
        msg("direct", "alice", "bob"),
        msg("direct", "bob", "alice"),
        msg("direct", "alice", "carol"),
        msg("broadcast", "alice"),
        msg("direct", "carol", "bob"),
        msg("direct", "alice", "bob"),
      ]);
      expect(ids(await history.conversation("alice", "bob", Number.MAX_SAFE_INTEGER, 10))).toEqual([6, 2, 1]);
      expect(ids(await history.conversation("bob", "alice", 6, 10))).toEqual([2, 1]);
      expect(ids(await history.conversation("bob", "alice", Number.MAX_SAFE_INTEGER, 1))).toEqual([6]);
      expect(ids(await history.conversation("alice", "dave", Number.MAX_SAFE_INTEGER, 10))).toEqual([]);
      await history.append([msg("direct", "alice", "alice")]);
      expect(ids(await history.conversation("alice", "alice", Number.MAX_SAFE_INTEGER, 10))).toEqual([7]);
    });

    test("prunedInbox names the newest pruned direct message to each user", async () => {
      const { history } = await fresh();
      await history.append([
        msg("direct", "alice", "bob"),
        msg("direct", "alice", "carol"),
        msg("direct", "alice", "bob"),
        msg("broadcast", "alice"),
        msg("direct", "bob", "carol"),
      ]);
      expect(await history.prunedInbox("bob")).toBe(0);
      expect(await history.prune(2, 0, 1000)).toBe(3);
      expect(await history.prunedInbox("bob")).toBe(3);
      expect(await history.prunedInbox("carol")).toBe(2);
      expect(await history.prunedInbox("alice")).toBe(0);
    });

    test("page returns broadcasts or one room, newest first, before the id", async () => {
      const { history } = await fresh();
      await history.append([msg("broadcast", "x"), msg("room", "x", "dev"), msg("broadcast", "x"), msg("room", "x", "dev"), msg("broadcast", "x")]);
      expect(ids(await history.page(undefined, 100, 10))).toEqual([5, 3, 1]);
      expect(ids(await history.page(undefined, 5, 1))).toEqual([3]);
      expect(ids(await history.page("dev", 100, 10))).toEqual([4, 2]);
      expect(await history.page("ops", 100, 10)).toEqual([]);
    });

    test("cursor starts at 0 and never moves back", async () => {
      const { history } = await fresh();
      expect(await history.cursor("bob")).toBe(0);
      await history.setCursor("bob", 5);
      await history.setCursor("bob", 3);
      expect(await history.cursor("bob")).toBe(5);
      await Promise.all([history.setCursor("bob", 9), history.setCursor("bob", 7)]);
      expect(await history.cursor("bob")).toBe(9);
      expect(await history.cursor("alice")).toBe(0);
    });

    test("prune keeps the newest maxMessages and records prunedThrough", async () => {
      const { history } = await fresh();
      await history.append(Array.from({ length: 10 }, () => msg("broadcast", "x")));
      expect(await history.prune(4, 0, 100)).toBe(6);
      expect(await history.prunedThrough()).toBe(6);
      expect(ids(await history.page(undefined, 100, 100))).toEqual([10, 9, 8, 7]);
      expect(history.lastId()).toBe(10);
      expect(await history.prune(4, 0, 100)).toBe(0);
    });

    test("prune removes messages older than minAt, in steps of maxRows", async () => {
      const { history } = await fresh();
      await history.append(Array.from({ length: 10 }, () => msg("broadcast", "x")));
      // at = 1000 + id: everything with id < 8 is older than 1008.
      expect(await history.prune(1000, 1008, 3)).toBe(3);
      expect(await history.prune(1000, 1008, 3)).toBe(3);
      expect(await history.prune(1000, 1008, 3)).toBe(1);
      expect(await history.prune(1000, 1008, 3)).toBe(0);
      expect(await history.prunedThrough()).toBe(7);
      expect(ids(await history.page(undefined, 100, 100))).toEqual([10, 9, 8]);
    });

    test("lastId never goes back, even when everything is pruned; new ids continue after it", async () => {
      const { history } = await fresh();
      await history.append([msg("broadcast", "x"), msg("broadcast", "x")]);
      await history.prune(1, 10_000, 100);
      expect(history.lastId()).toBe(2);
      expect(await history.newest()).toBe(2);
      expect(await history.page(undefined, 100, 100)).toEqual([]);
      const [r] = await history.append([msg("broadcast", "x")]);
      expect(r!.stored!.id).toBe(3);
    });

    test("the epoch is new for every empty store", async () => {
      const o = await fresh();
      const other = await fresh();
      expect(o.history.epoch).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect(other.history.epoch).not.toBe(o.history.epoch);
      expect(await o.history.refreshEpoch()).toBe(o.history.epoch);
    });

    reopenCase("the epoch is stable across a reopen", async () => {
      const o = await fresh();
      await o.history.append([msg("broadcast", "x")]);
      const epoch = o.history.epoch;
      await o.history.close();
      const again = await reopen(o);
      expect(again.epoch).toBe(epoch);
      expect(await again.refreshEpoch()).toBe(epoch);
    });

    reopenCase("everything survives a reopen", async () => {
      const o = await fresh();
      await o.history.append([msg("direct", "a", "b", { cid: "k" }), msg("broadcast", "a"), msg("broadcast", "a")]);
      await o.history.setCursor("b", 1);
      await o.history.prune(1, 0, 100);
      await o.history.close();
      const again = await reopen(o);
      expect(again.lastId()).toBe(3);
      expect(await again.newest()).toBe(3);
      expect(await again.prunedThrough()).toBe(2);
      expect(await again.prunedInbox("b")).toBe(1);
      expect(await again.cursor("b")).toBe(1);
      expect(ids(await again.page(undefined, 100, 10))).toEqual([3]);
      const [r] = await again.append([msg("broadcast", "a")]);
      expect(r!.stored!.id).toBe(4);
    });
  });
}
