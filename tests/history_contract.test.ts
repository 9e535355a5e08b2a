/** The History contract: every implementation must pass this suite. */
import { afterEach, describe, expect, test } from "bun:test";
import type { History, StoredMessage } from "../src/history/history";
import { createSqliteHistory } from "../src/history/history_sqlite";
import { tempDir } from "./tmp";

interface Impl {
  name: string;
  /** Opens a store; `reopen` opens the same storage again (to check durability). */
  open(): { history: History; reopen?: () => History };
}

const implementations: Impl[] = [
  {
    name: "sqlite file",
    open() {
      const path = `${tempDir()}/nested/dir/history.db`;
      return { history: createSqliteHistory(path), reopen: () => createSqliteHistory(path) };
    },
  },
  { name: "sqlite :memory:", open: () => ({ history: createSqliteHistory(":memory:") }) },
];

const msg = (id: number, kind: StoredMessage["kind"], from: string, to?: string, extra: Partial<StoredMessage> = {}): StoredMessage => ({
  id, kind, from, to, text: `text ${id}`, at: 1_000 + id, ...extra,
});

for (const impl of implementations) {
  describe(`History contract: ${impl.name}`, () => {
    let opened: History[] = [];
    const fresh = () => {
      const o = impl.open();
      opened.push(o.history);
      return o;
    };
    afterEach(() => {
      for (const h of opened) h.close();
      opened = [];
    });

    test("lastId is 0 when empty and follows append", () => {
      const { history } = fresh();
      expect(history.lastId()).toBe(0);
      history.append([msg(1, "broadcast", "a"), msg(2, "broadcast", "a")]);
      expect(history.lastId()).toBe(2);
    });

    test("append stores every field exactly; undefined fields stay absent", () => {
      const { history } = fresh();
      const m = { id: 1, kind: "direct" as const, from: "alice", to: "bob", text: "123", at: 42, cid: "c1" };
      history.append([m, msg(2, "broadcast", "alice")]);
      expect(history.inbox("bob", 0, 10)).toEqual([m]);
      const b = history.page(undefined, 100, 10);
      expect(b).toEqual([{ id: 2, kind: "broadcast", from: "alice", text: "text 2", at: 1002 }]);
      expect("to" in b[0]!).toBe(false);
      expect("cid" in b[0]!).toBe(false);
    });

    test("append is all or nothing", () => {
      const { history } = fresh();
      history.append([msg(1, "broadcast", "a")]);
      expect(() => history.append([msg(2, "broadcast", "a"), msg(1, "broadcast", "a")])).toThrow();
      expect(history.lastId()).toBe(1);
      expect(history.page(undefined, 100, 10).map((m) => m.id)).toEqual([1]);
    });

    test("findByCid finds the sender's message within the window only", () => {
      const { history } = fresh();
      const now = Date.now();
      history.append([
        msg(1, "broadcast", "alice", undefined, { cid: "old", at: now - 25 * 3600_000 }),
        msg(2, "direct", "alice", "bob", { cid: "x", at: now - 1000 }),
      ]);
      expect(history.findByCid("alice", "x", now - 24 * 3600_000)).toEqual({ id: 2, kind: "direct", to: "bob" });
      expect(history.findByCid("bob", "x", 0)).toBeUndefined();
      expect(history.findByCid("alice", "y", 0)).toBeUndefined();
      expect(history.findByCid("alice", "x", now)).toBeUndefined();
      expect(history.findByCid("alice", "old", now - 24 * 3600_000)).toBeUndefined();
    });

    test("findByCid still answers after its message was pruned", () => {
      const { history } = fresh();
      const now = Date.now();
      history.append([msg(1, "broadcast", "alice", undefined, { cid: "k", at: now }), msg(2, "broadcast", "alice", undefined, { at: now })]);
      expect(history.prune(1, 0, 100)).toBe(1);
      expect(history.findByCid("alice", "k", now - 1000)).toEqual({ id: 1, kind: "broadcast", to: undefined });
    });

    test("inbox with newest returns the newest direct messages", () => {
      const { history } = fresh();
      history.append([msg(1, "direct", "x", "bob"), msg(2, "direct", "x", "bob"), msg(3, "broadcast", "x"), msg(4, "direct", "x", "bob")]);
      expect(history.inbox("bob", 0, 2, true).map((m) => m.id)).toEqual([2, 4]);
      expect(history.inbox("bob", 0, 2).map((m) => m.id)).toEqual([1, 2]);
    });

    test("lookups skip pruned ids at once", () => {
      const { history } = fresh();
      history.append(Array.from({ length: 6 }, (_, i) => msg(i + 1, i % 2 ? "direct" : "broadcast", "x", i % 2 ? "bob" : undefined)));
      history.prune(3, 0, 100);
      expect(history.inbox("bob", 0, 10).map((m) => m.id)).toEqual([4, 6]);
      expect(history.page(undefined, 100, 10).map((m) => m.id)).toEqual([5]);
      expect(history.visible({ user: "bob", rooms: new Set() }, 0, 100, 10).map((m) => m.id)).toEqual([4, 5, 6]);
    });

    test("findByCid still finds a cid after a reopen", () => {
      const o = fresh();
      if (!o.reopen) return void expect(impl.name).toContain(":memory:");
      o.history.append([msg(1, "room", "alice", "dev", { cid: "k", at: Date.now() })]);
      o.history.close();
      const again = o.reopen();
      opened.push(again);
      expect(again.findByCid("alice", "k", 0)?.id).toBe(1);
    });

    test("visible returns what the reader may see, in id order", () => {
      const { history } = fresh();
      history.append([
        msg(1, "broadcast", "x"),
        msg(2, "direct", "x", "alice"),
        msg(3, "direct", "alice", "y"),
        msg(4, "direct", "x", "y"),
        msg(5, "room", "x", "dev"),
        msg(6, "room", "x", "ops"),
        msg(7, "broadcast", "y"),
      ]);
      const reader = { user: "alice", rooms: new Set(["dev"]) };
      expect(history.visible(reader, 0, 100, 100).map((m) => m.id)).toEqual([1, 2, 3, 5, 7]);
      expect(history.visible(reader, 2, 100, 100).map((m) => m.id)).toEqual([3, 5, 7]);
      expect(history.visible(reader, 0, 5, 100).map((m) => m.id)).toEqual([1, 2, 3, 5]);
      expect(history.visible(reader, 0, 100, 2).map((m) => m.id)).toEqual([1, 2]);
      expect(history.visible(reader, 0, 100, 2, true).map((m) => m.id)).toEqual([5, 7]);
      expect(history.visible({ user: "z", rooms: new Set() }, 0, 100, 100).map((m) => m.id)).toEqual([1, 7]);
    });

    test("inbox returns direct messages to the user after the id", () => {
      const { history } = fresh();
      history.append([msg(1, "direct", "x", "bob"), msg(2, "direct", "bob", "x"), msg(3, "room", "x", "bob"), msg(4, "direct", "y", "bob")]);
      expect(history.inbox("bob", 0, 10).map((m) => m.id)).toEqual([1, 4]);
      expect(history.inbox("bob", 1, 10).map((m) => m.id)).toEqual([4]);
      expect(history.inbox("bob", 0, 1).map((m) => m.id)).toEqual([1]);
    });

    test("conversation returns the direct messages between two users, both ways, newest first", () => {
      const { history } = fresh();
      history.append([
        msg(1, "direct", "alice", "bob"), msg(2, "direct", "bob", "alice"), msg(3, "direct", "alice", "carol"),
        msg(4, "broadcast", "alice"), msg(5, "direct", "carol", "bob"), msg(6, "direct", "alice", "bob"),
      ]);
      const ids = (ms: StoredMessage[]) => ms.map((m) => m.id);
      expect(ids(history.conversation("alice", "bob", Number.MAX_SAFE_INTEGER, 10))).toEqual([6, 2, 1]);
      expect(ids(history.conversation("bob", "alice", 6, 10))).toEqual([2, 1]);
      expect(ids(history.conversation("bob", "alice", Number.MAX_SAFE_INTEGER, 1))).toEqual([6]);
      expect(ids(history.conversation("alice", "dave", Number.MAX_SAFE_INTEGER, 10))).toEqual([]);
      history.append([msg(7, "direct", "alice", "alice")]);
      expect(ids(history.conversation("alice", "alice", Number.MAX_SAFE_INTEGER, 10))).toEqual([7]);
    });

    test("prunedInbox names the newest pruned direct message to each user", () => {
      const { history } = fresh();
      history.append([msg(1, "direct", "alice", "bob"), msg(2, "direct", "alice", "carol"), msg(3, "direct", "alice", "bob"), msg(4, "broadcast", "alice"), msg(5, "direct", "bob", "carol")]);
      expect(history.prunedInbox("bob")).toBe(0);
      expect(history.prune(2, 0, 1000)).toBe(3);
      expect(history.prunedInbox("bob")).toBe(3);
      expect(history.prunedInbox("carol")).toBe(2);
      expect(history.prunedInbox("alice")).toBe(0);
    });

    test("page returns broadcasts or one room, newest first, before the id", () => {
      const { history } = fresh();
      history.append([msg(1, "broadcast", "x"), msg(2, "room", "x", "dev"), msg(3, "broadcast", "x"), msg(4, "room", "x", "dev"), msg(5, "broadcast", "x")]);
      expect(history.page(undefined, 100, 10).map((m) => m.id)).toEqual([5, 3, 1]);
      expect(history.page(undefined, 5, 1).map((m) => m.id)).toEqual([3]);
      expect(history.page("dev", 100, 10).map((m) => m.id)).toEqual([4, 2]);
      expect(history.page("ops", 100, 10)).toEqual([]);
    });

    test("cursor starts at 0 and never moves back", () => {
      const { history } = fresh();
      expect(history.cursor("bob")).toBe(0);
      history.setCursor("bob", 5);
      history.setCursor("bob", 3);
      expect(history.cursor("bob")).toBe(5);
      expect(history.cursor("alice")).toBe(0);
    });

    test("prune keeps the newest maxMessages and records prunedThrough", () => {
      const { history } = fresh();
      history.append(Array.from({ length: 10 }, (_, i) => msg(i + 1, "broadcast", "x")));
      expect(history.prune(4, 0, 100)).toBe(6);
      expect(history.prunedThrough()).toBe(6);
      expect(history.page(undefined, 100, 100).map((m) => m.id)).toEqual([10, 9, 8, 7]);
      expect(history.lastId()).toBe(10);
      expect(history.prune(4, 0, 100)).toBe(0);
    });

    test("prune removes messages older than minAt, in steps of maxRows", () => {
      const { history } = fresh();
      history.append(Array.from({ length: 10 }, (_, i) => msg(i + 1, "broadcast", "x")));
      // at = 1000 + id: everything with id < 8 is older than 1008.
      expect(history.prune(1000, 1008, 3)).toBe(3);
      expect(history.prune(1000, 1008, 3)).toBe(3);
      expect(history.prune(1000, 1008, 3)).toBe(1);
      expect(history.prune(1000, 1008, 3)).toBe(0);
      expect(history.prunedThrough()).toBe(7);
      expect(history.page(undefined, 100, 100).map((m) => m.id)).toEqual([10, 9, 8]);
    });

    test("lastId never goes back, even when everything is pruned", () => {
      const { history } = fresh();
      history.append([msg(1, "broadcast", "x"), msg(2, "broadcast", "x")]);
      history.prune(1, 10_000, 100);
      expect(history.lastId()).toBe(2);
      expect(history.page(undefined, 100, 100)).toEqual([]);
    });

    test("everything survives a reopen", () => {
      const o = fresh();
      if (!o.reopen) return void expect(impl.name).toContain(":memory:");
      o.history.append([msg(1, "direct", "a", "b", { cid: "k" }), msg(2, "broadcast", "a"), msg(3, "broadcast", "a")]);
      o.history.setCursor("b", 1);
      o.history.prune(1, 0, 100);
      o.history.close();
      const again = o.reopen();
      opened.push(again);
      expect(again.lastId()).toBe(3);
      expect(again.prunedThrough()).toBe(2);
      expect(again.cursor("b")).toBe(1);
      expect(again.page(undefined, 100, 10).map((m) => m.id)).toEqual([3]);
    });
  });
}
