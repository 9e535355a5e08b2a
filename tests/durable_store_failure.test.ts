/**
 * A store that fails (here: the message log's file made immutable, so every
 * write to it is refused with EPERM, as a full or failing disk refuses it)
 * answers store_failed, logs one line, and the server keeps running. A
 * database locked by another process does not stop messages at all.
 */
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { readdirSync } from "node:fs";
import { isAck, isError, isMessage, recordingLogger, serverPerTest } from "./helpers";
import { createSqliteHistory, messageLogDir } from "../src/history/history_sqlite";
import { chattr, tempDir } from "./tmp";
import type { AckFrame, ErrorFrame, MessageFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;

describe("store_failed", () => {
  test("a message log that refuses writes answers store_failed without an ack, logs one line, and the server keeps running", async () => {
    const path = `${tempDir()}/refusing.db`;
    const log = recordingLogger();
    t.start({ history: createSqliteHistory(path), log });
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    a.send({ type: "broadcast", text: "first", cid: "f" });
    await a.next<AckFrame>(isAck("f"));
    await b.next<MessageFrame>(isMessage);
    const [segment] = readdirSync(messageLogDir(path)).filter((n) => n.endsWith(".jsonl"));
    const file = `${messageLogDir(path)}/${segment}`;
    chattr("+i", file);
    try {
      a.send({ type: "broadcast", text: "doomed", cid: "x" });
      const e = await a.next<ErrorFrame>(isError, 10_000);
      expect(e).toMatchObject({ code: "store_failed", cid: "x" });
    } finally {
      chattr("-i", file);
    }
    a.send({ type: "broadcast", text: "doomed", cid: "x" });
    const ack = await a.next<AckFrame>(isAck("x"));
    expect(ack.id).toBeGreaterThan(0);
    expect((await b.next<MessageFrame>(isMessage)).text).toBe("doomed");
    expect(a.frames.filter((f) => f.type === "ack")).toEqual([]);
    // The expected EPERM is one error line, kept here instead of printed, without a stack trace.
    expect(log.lines).toEqual([
      { level: "error", msg: expect.any(String), fields: expect.objectContaining({ kind: "store", error: expect.stringContaining("EPERM") }) },
    ]);
    expect(log.lines[0]!.msg).not.toContain("\n");
    expect(String(log.lines[0]!.fields!.error)).not.toContain("\n    at ");
  }, 15_000);
});

test("a database locked by another process does not stop messages: they go to the message log", async () => {
  const path = `${tempDir()}/locked.db`;
  t.start({ history: createSqliteHistory(path) });
  const a = await join("/ws/alice");
  const b = await join("/ws/bob");
  const locker = new Database(path);
  locker.run("BEGIN IMMEDIATE");
  locker.run("INSERT INTO meta (key, value) VALUES ('lock', 1)");
  try {
    a.send({ type: "broadcast", text: "still here", cid: "y" });
    expect((await a.next<AckFrame>(isAck("y"))).id).toBeGreaterThan(0);
    expect((await b.next<MessageFrame>(isMessage)).text).toBe("still here");
  } finally {
    locker.run("ROLLBACK");
    locker.close();
  }
});

test("createSqliteHistory appendNow: after a refused write, the next batch gets only its own messages, with the next ids", async () => {
  const path = `${tempDir()}/scratch.db`;
  const h = createSqliteHistory(path);
  try {
    const msg = (text: string, cid?: string) => ({ kind: "direct" as const, from: "alice", to: "bob", text, at: Date.now(), cid });
    const [first] = h.appendNow!([msg("first")]);
    const firstId = first!.stored!.id;
    const [segment] = readdirSync(messageLogDir(path)).filter((n) => n.endsWith(".jsonl"));
    const file = `${messageLogDir(path)}/${segment}`;
    chattr("+i", file);
    try {
      expect(() => h.appendNow!([msg("doomed 1", "d1"), msg("doomed 2", "d2")])).toThrow();
    } finally {
      chattr("-i", file);
    }
    // The lists appendNow keeps between calls hold nothing of the failed batch.
    const next = h.appendNow!([msg("next", "d1")]);
    expect(next.length).toBe(1);
    expect(next[0]!.duplicate).toBeUndefined();
    expect(next[0]!.stored).toMatchObject({ id: firstId + 1, text: "next", cid: "d1" });
    expect((await h.get([firstId + 1, firstId + 2])).map((m) => m.text)).toEqual(["next"]);
  } finally {
    await h.close();
  }
});
