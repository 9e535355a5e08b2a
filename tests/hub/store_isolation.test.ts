import { afterEach, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { connect, isAck, isError, isMessage, startServer, type Client, type TestServer } from "../helpers";
import type { History } from "../../src/history/history";
import { createSqliteHistory, messageLogDir } from "../../src/history/history_sqlite";
import type { Logger } from "../../src/log";
import { chattr, tempDir } from "../tmp";
import type { AckFrame, ErrorFrame, MessageFrame, WelcomeFrame } from "../../src/protocol";

let s: TestServer | undefined;
const open: Client[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await s?.stop();
  s = undefined;
});
const join = async (url: string) => {
  const c = await connect(url);
  open.push(c);
  return c;
};

/** A logger that keeps its lines, so a test can count them. */
const recording = () => {
  const lines: string[] = [];
  const line = (level: string) => (msg: string, fields?: object) => lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  const log: Logger = { info: line("info"), warn: line("warn"), error: line("error") };
  return { lines, log };
};

/**
 * The real SQLite history, except that a batch holding a message with this
 * text fails whole with nothing stored, as a constraint on one row fails its
 * transaction. The message log has no failure of one message, but a store
 * may (a Redis script error, a row rule): the committer must isolate it.
 * `sync`: the store appends synchronously (`appendNow`, as the SQLite store
 * does); otherwise it only has the promise (as the Redis store).
 */
function refusing(history: History, text: string, sync: boolean): History {
  const poisoned = (batch: readonly { text: string }[]) => batch.some((m) => m.text === text);
  return {
    ...history,
    append: (batch) => (poisoned(batch) ? Promise.reject(new Error(`poisoned row: ${text}`)) : history.append(batch)),
    appendNow: sync
      ? (batch) => {
          if (poisoned(batch)) throw new Error(`poisoned row: ${text}`);
          return history.appendNow!(batch);
        }
      : undefined,
  };
}

for (const sync of [true, false]) {
  test(`Hub.flush: one message the store refuses fails alone; the rest of its batch is stored and delivered (${sync ? "appendNow" : "append only"})`, async () => {
    const path = `${tempDir()}/poison.db`;
    const history = refusing(createSqliteHistory(path), "poison", sync);
    const { lines, log } = recording();
    s = startServer({ history, log });
    const a = await join(`${s.ws}/ws/alice`);
    const b = await join(`${s.ws}/ws/bob`);
    // Sent back to back: they land in one group-commit batch.
    a.send({ type: "broadcast", text: "before", cid: "1" });
    b.send({ type: "broadcast", text: "poison", cid: "2" });
    a.send({ type: "broadcast", text: "after", cid: "3" });
    expect((await a.next<AckFrame>(isAck("1"))).id).toBeGreaterThan(0);
    expect((await a.next<AckFrame>(isAck("3"))).id).toBeGreaterThan(0);
    expect(await b.next<ErrorFrame>(isError)).toMatchObject({ code: "store_failed", cid: "2" });
    const texts = (await b.take<MessageFrame>(2, isMessage)).map((m) => m.text);
    expect(texts).toEqual(["before", "after"]);
    expect((await history.page(undefined, Number.MAX_SAFE_INTEGER, 10)).map((m) => m.text)).toEqual(["after", "before"]);
    // One short line for the failed batch, no stack trace.
    const errors = lines.filter((l) => l.startsWith("error "));
    expect(errors.length).toBe(1);
    expect(errors[0]).toContain("poisoned row");
    expect(errors[0]).not.toContain("\n");
  });
}

test("Hub store failures: repeated failures are rate-limited in the log", async () => {
  const path = `${tempDir()}/refusing.db`;
  const history = createSqliteHistory(path);
  const { lines, log } = recording();
  s = startServer({ history, log });
  const a = await join(`${s.ws}/ws/alice`);
  a.send({ type: "broadcast", text: "first", cid: "first" });
  await a.next(isAck("first"));
  // The message log's file made immutable: every write is refused (EPERM), as by a failing disk.
  const segment = `${messageLogDir(path)}/${readdirSync(messageLogDir(path)).find((n) => n.endsWith(".jsonl"))}`;
  chattr("+i", segment);
  try {
    for (let i = 0; i < 20; i++) {
      a.send({ type: "broadcast", text: `m${i}`, cid: `c${i}` });
      expect(await a.next<ErrorFrame>(isError)).toMatchObject({ code: "store_failed", cid: `c${i}` });
    }
  } finally {
    chattr("-i", segment);
  }
  expect(lines.filter((l) => l.startsWith("error ")).length).toBe(1);
  // The server still answers.
  const probe = await join(`${s.ws}/ws/probe`);
  expect(probe.closed).toBeUndefined();
});

test("planReplay: an inbox replay after pruning removed undelivered direct messages says resumed:false", async () => {
  s = startServer();
  const a = await join(`${s.ws}/ws/alice`);
  for (let i = 0; i < 5; i++) a.send({ type: "direct", to: "carol", text: `d${i}`, cid: `d${i}` });
  for (let i = 0; i < 5; i++) a.send({ type: "broadcast", text: `b${i}`, cid: `b${i}` });
  await a.next(isAck("b4"));
  // Keeps the 5 broadcasts: every direct message to carol is gone before she read it.
  expect(await s.history.prune(5, 0, 1000)).toBe(5);
  const c = new (await import("../helpers")).Client(`${s.ws}/ws/carol`);
  open.push(c);
  const w = await c.next<WelcomeFrame>((f) => f.type === "welcome");
  expect(w.resumed).toBe(false);
  // dave had no direct messages pruned: his inbox replay is complete.
  const d = new (await import("../helpers")).Client(`${s.ws}/ws/dave`);
  open.push(d);
  expect((await d.next<WelcomeFrame>((f) => f.type === "welcome")).resumed).toBe(true);
});
