import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { Client, connect, isAck, isError, isMessage, startServer, type TestServer } from "./helpers";
import { createSqliteHistory } from "../src/history/history_sqlite";
import { tempDir } from "./tmp";
import type { AckFrame, ErrorFrame, HistoryBody, MessageFrame, WelcomeFrame } from "../src/protocol";

let s: TestServer | undefined;
const open: Client[] = [];
const join = async (path: string) => {
  const c = await connect(`${s!.ws}${path}`);
  open.push(c);
  return c;
};
/** Connects and returns the client together with its welcome frame. */
const welcomeOf = async (path: string) => {
  const c = new Client(`${s!.ws}${path}`);
  open.push(c);
  const w = await c.next<WelcomeFrame>((f) => f.type === "welcome");
  return { c, w };
};
const ids = (fs: { id: number }[]) => fs.map((f) => f.id);

afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await s?.stop();
  s = undefined;
});

describe("resume with since", () => {
  test("replays broadcasts, direct messages and rejoined rooms missed while away, then goes live", async () => {
    s = startServer();
    const a = await join("/ws/alice");
    const b = await join("/ws/bob?rooms=dev");
    b.send({ type: "broadcast", text: "before", cid: "b0" });
    const last = (await b.next<AckFrame>(isAck("b0"))).id!;
    b.close();
    await b.closedWith();
    a.send({ type: "join", room: "dev", cid: "j" });
    await a.next(isAck("j"));
    const sent: number[] = [];
    const frames = [
      { type: "broadcast", text: "missed broadcast" },
      { type: "direct", to: "bob", text: "missed direct" },
      { type: "direct", to: "carol", text: "not for bob" },
      { type: "room", room: "dev", text: "missed room" },
    ];
    for (const [i, f] of frames.entries()) {
      a.send({ ...f, cid: `m${i}` });
      sent.push((await a.next<AckFrame>(isAck(`m${i}`))).id!);
    }
    const { c, w } = await welcomeOf(`/ws/bob?since=${last}&rooms=dev`);
    expect(w).toMatchObject({ resumed: true, lastId: sent[3] });
    const replay = await c.take<MessageFrame>(3, isMessage);
    expect(replay.map((m) => m.text)).toEqual(["missed broadcast", "missed direct", "missed room"]);
    expect(ids(replay)).toEqual([sent[0]!, sent[1]!, sent[3]!]);
    a.send({ type: "room", room: "dev", text: "live", cid: "l" });
    expect((await c.next<MessageFrame>(isMessage)).text).toBe("live");
  });

  test("resumed is true with nothing to replay, and lastId names the newest id", async () => {
    s = startServer();
    const { w } = await welcomeOf("/ws/alice?since=0");
    expect(w).toMatchObject({ resumed: true, lastId: 0 });
  });

  test("no gap and no duplicate between the replay and the live stream while messages flow", async () => {
    s = startServer();
    const sender = await join("/ws/sender");
    const total = 600;
    let halfway: () => void = () => {};
    const started = new Promise<void>((resolve) => (halfway = resolve));
    const pump = (async () => {
      for (let i = 0; i < total; i++) {
        sender.send({ type: "broadcast", text: `n${i}`, cid: `c${i}` });
        if (i % 20 === 19) await sender.next(isAck(`c${i}`));
        if (i === 199) halfway();
      }
    })();
    // Join in the middle of the flow, resuming from the very start.
    await started;
    const { c } = await welcomeOf("/ws/late?since=0");
    await pump;
    const got = await c.take<MessageFrame>(total, (f) => f.type === "message" && f.from === "sender", 10_000);
    expect(got.map((m) => m.text)).toEqual(Array.from({ length: total }, (_, i) => `n${i}`));
    for (let i = 1; i < got.length; i++) expect(got[i]!.id).toBeGreaterThan(got[i - 1]!.id);
  });

  test("resumed is false after the history was pruned past since", async () => {
    s = startServer();
    const a = await join("/ws/alice");
    for (let i = 0; i < 10; i++) a.send({ type: "broadcast", text: `p${i}`, cid: `p${i}` });
    await a.next(isAck("p9"));
    expect(await s.history.prune(3, 0, 1000)).toBe(7);
    const { c, w } = await welcomeOf("/ws/bob?since=2");
    expect(w.resumed).toBe(false);
    expect((await c.take<MessageFrame>(3, isMessage)).map((m) => m.text)).toEqual(["p7", "p8", "p9"]);
    const ok = await welcomeOf("/ws/bob?since=8");
    expect(ok.w.resumed).toBe(true);
  });

  test("resumed is false past the replay limit, and the newest messages are replayed", async () => {
    s = startServer({ replayLimit: 5 });
    const a = await join("/ws/alice");
    for (let i = 0; i < 8; i++) a.send({ type: "broadcast", text: `r${i}`, cid: `r${i}` });
    await a.next(isAck("r7"));
    const { c, w } = await welcomeOf("/ws/bob?since=0");
    expect(w.resumed).toBe(false);
    expect((await c.take<MessageFrame>(5, isMessage)).map((m) => m.text)).toEqual(["r3", "r4", "r5", "r6", "r7"]);
  });
});

describe("idempotent retries", () => {
  test("the same sender and cid gets the first ack back; nothing is stored or delivered twice", async () => {
    s = startServer();
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    a.send({ type: "direct", to: "bob", text: "once", cid: "same" });
    const first = await a.next<AckFrame>(isAck("same"));
    a.send({ type: "direct", to: "bob", text: "once", cid: "same" });
    const second = await a.next<AckFrame>(isAck("same"));
    expect(second).toEqual(first);
    // Also a retry that arrives in the same batch as the original.
    a.send({ type: "broadcast", text: "batch", cid: "twice" });
    a.send({ type: "broadcast", text: "batch", cid: "twice" });
    const [x, y] = await a.take<AckFrame>(2, isAck("twice"));
    expect(x).toEqual(y!);
    b.send({ type: "broadcast", text: "end", cid: "end" });
    await b.next(isAck("end"));
    const got = (await b.take<MessageFrame>(3, isMessage)).map((m) => m.text);
    expect(got).toEqual(["once", "batch", "end"]);
    const another = await join("/ws/carol");
    another.send({ type: "broadcast", text: "x", cid: "same" });
    expect((await another.next<AckFrame>(isAck("same"))).id).toBeGreaterThan(first.id!);
  });

  test("a retry after a reconnect is de-duplicated too", async () => {
    s = startServer();
    const a = await join("/ws/alice");
    a.send({ type: "broadcast", text: "r", cid: "k1" });
    const first = await a.next<AckFrame>(isAck("k1"));
    a.close();
    const a2 = await join("/ws/alice");
    a2.send({ type: "broadcast", text: "r", cid: "k1" });
    expect(await a2.next<AckFrame>(isAck("k1"))).toEqual(first);
    const page = (await (await fetch(`${s.http}/history`)).json()) as HistoryBody;
    expect(page.messages.filter((m) => m.text === "r")).toHaveLength(1);
  });
});

describe("offline inbox", () => {
  test("direct messages sent while offline arrive on the next connect, with recent broadcasts", async () => {
    s = startServer({ closeGraceMs: 0 });
    const a = await join("/ws/alice");
    a.send({ type: "broadcast", text: "context", cid: "b" });
    await a.next(isAck("b"));
    a.send({ type: "direct", to: "bob", text: "while you were out", cid: "d" });
    expect((await a.next<AckFrame>(isAck("d"))).delivered).toBe(false);
    const { c: b1 } = await welcomeOf("/ws/bob");
    expect((await b1.take<MessageFrame>(2, isMessage)).map((m) => m.text)).toEqual(["context", "while you were out"]);
    b1.close();
    await b1.closedWith();
    // A clean close moved bob's inbox cursor: the direct message is not replayed again.
    const { c: b2 } = await welcomeOf("/ws/bob");
    b2.send({ type: "broadcast", text: "marker", cid: "m" });
    await b2.next(isAck("m"));
    const replayed = (await b2.take<MessageFrame>(2, isMessage)).map((m) => m.text);
    expect(replayed).toEqual(["context", "marker"]);
  });

  test("direct messages committed within closeGraceMs of a clean close stay in the inbox", async () => {
    s = startServer({ closeGraceMs: 60_000 });
    const a = await join("/ws/alice");
    const b1 = await join("/ws/bob");
    a.send({ type: "direct", to: "bob", text: "just before you left", cid: "d" });
    await b1.next(isMessage);
    b1.close();
    await b1.closedWith();
    const { c: b2 } = await welcomeOf("/ws/bob");
    expect((await b2.next<MessageFrame>(isMessage)).text).toBe("just before you left");
  });
});

describe("offline inbox past the replay limit", () => {
  test("the newest direct messages are replayed and resumed is false", async () => {
    s = startServer({ replayLimit: 3 });
    const a = await join("/ws/alice");
    for (let i = 1; i <= 6; i++) a.send({ type: "direct", to: "bob", text: `dm${i}`, cid: `d${i}` });
    await a.next(isAck("d6"));
    const { c, w } = await welcomeOf("/ws/bob");
    expect(w.resumed).toBe(false);
    expect((await c.take<MessageFrame>(3, isMessage)).map((m) => m.text)).toEqual(["dm4", "dm5", "dm6"]);
  });
});

describe("shutdown and the inbox", () => {
  test("a server shutdown does not move inbox cursors", async () => {
    s = startServer();
    const a = await join("/ws/alice");
    await join("/ws/bob");
    a.send({ type: "direct", to: "bob", text: "x", cid: "x" });
    await a.next(isAck("x"));
    await s.app.decorator.hub.shutdown();
    await a.closedWith();
    expect(await s.history.cursor("bob")).toBe(0);
  });
});

describe("HTTP history", () => {
  test("GET /history pages broadcasts newest first; /rooms/:room/history one room", async () => {
    s = startServer();
    const a = await join("/ws/alice?rooms=dev");
    for (let i = 0; i < 5; i++) a.send({ type: "broadcast", text: `h${i}`, cid: `h${i}` });
    a.send({ type: "room", room: "dev", text: "in dev", cid: "r" });
    a.send({ type: "direct", to: "bob", text: "secret", cid: "d" });
    await a.next(isAck("d"));
    const all = (await (await fetch(`${s.http}/history`)).json()) as HistoryBody;
    expect(all.messages.map((m) => m.text)).toEqual(["h4", "h3", "h2", "h1", "h0"]);
    const page = (await (await fetch(`${s.http}/history?before=${all.messages[1]!.id}&limit=2`)).json()) as HistoryBody;
    expect(page.messages.map((m) => m.text)).toEqual(["h2", "h1"]);
    const room = (await (await fetch(`${s.http}/rooms/dev/history`)).json()) as HistoryBody;
    expect(room.messages).toEqual([expect.objectContaining({ kind: "room", to: "dev", text: "in dev" })]);
    for (const q of ["limit=0", "limit=201", "before=x"]) expect((await fetch(`${s.http}/history?${q}`)).status).toBe(400);
    expect((await fetch(`${s.http}/rooms/bad%20room/history`)).status).toBe(400);
  });
});

describe("store failures", () => {
  test("a locked database answers store_failed without an ack, and the server keeps running", async () => {
    const path = `${tempDir()}/locked.db`;
    s = startServer({ history: createSqliteHistory(path) });
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    const locker = new Database(path);
    locker.run("PRAGMA busy_timeout = 0");
    locker.run("BEGIN IMMEDIATE");
    locker.run("INSERT INTO meta (key, value) VALUES ('lock', 1)");
    a.send({ type: "broadcast", text: "doomed", cid: "x" });
    const e = await a.next<ErrorFrame>(isError, 10_000);
    expect(e).toMatchObject({ code: "store_failed", cid: "x" });
    locker.run("ROLLBACK");
    locker.close();
    a.send({ type: "broadcast", text: "doomed", cid: "x" });
    const ack = await a.next<AckFrame>(isAck("x"));
    expect(ack.id).toBeGreaterThan(0);
    expect((await b.next<MessageFrame>(isMessage)).text).toBe("doomed");
    expect(a.frames.filter((f) => f.type === "ack")).toEqual([]);
  });
});

describe("replay under backpressure", () => {
  test("a replay larger than the socket buffers pauses, resumes on drain and catches up with what came meanwhile", async () => {
    s = startServer();
    const a = await join("/ws/alice");
    const big = "y".repeat(3900);
    const before = 3000;
    for (let i = 0; i < before; i++) {
      a.send({ type: "broadcast", text: `${i}:${big}`, cid: `b${i}` });
      if (i % 200 === 199) await a.next(isAck(`b${i}`));
    }
    const reader = new Client(`${s.ws}/ws/reader?since=0`);
    open.push(reader);
    await reader.next((f) => f.type === "welcome");
    // Keep sending while the replay is still being written.
    const after = 200;
    for (let i = 0; i < after; i++) a.send({ type: "broadcast", text: `late ${i}`, cid: `l${i}` });
    const got = await reader.take<MessageFrame>(before + after, isMessage, 30_000);
    const texts = got.map((m) => m.text.split(":")[0]);
    expect(texts.slice(0, before)).toEqual(Array.from({ length: before }, (_, i) => String(i)));
    expect(texts.slice(before, before + after)).toEqual(Array.from({ length: after }, (_, i) => `late ${i}`));
    for (let i = 1; i < got.length; i++) expect(got[i]!.id).toBe(got[i - 1]!.id + 1);
    expect(s.app.decorator.hub.stats.replayPauses).toBeGreaterThan(0);
  }, 60_000);
});
