/**
 * The offline inbox of a client that never sends `received` (v1, the
 * tutorial's): direct messages wait for the next connect; a clean close
 * moves the user's inbox cursor (minus closeGraceMs), a server shutdown does
 * not. (Clients that send `received`: tests/receipts.test.ts.)
 */
import { describe, expect, test } from "bun:test";
import { isAck, isMessage, serverPerTest, waitUntil, type TestServer } from "./helpers";
import type { AckFrame, MessageFrame } from "../src/protocol";

const t = serverPerTest();
const { join, welcomeOf } = t;

/**
 * Until the server has handled the closes (its close handler ran), leaving
 * `open` connections: a cursor write that handler makes is done by then
 * (the SQLite store writes synchronously).
 */
const serverHandledCloses = (s: TestServer, open: number) =>
  waitUntil(
    () => s.app.decorator.hub.connections === open,
    () => `the server has ${open} connections (it has ${s.app.decorator.hub.connections})`,
  );

describe("inbox cursor (clean close)", () => {
  test("direct messages sent while offline arrive on the next connect, with recent broadcasts, and only once", async () => {
    t.start({ closeGraceMs: 0 });
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
    t.start({ closeGraceMs: 60_000 });
    const a = await join("/ws/alice");
    const b1 = await join("/ws/bob");
    a.send({ type: "direct", to: "bob", text: "just before you left", cid: "d" });
    await b1.next(isMessage);
    b1.close();
    await b1.closedWith();
    const { c: b2 } = await welcomeOf("/ws/bob");
    expect((await b2.next<MessageFrame>(isMessage)).text).toBe("just before you left");
  });

  test("past the replay limit the newest direct messages are replayed and resumed is false", async () => {
    t.start({ replayLimit: 3 });
    const a = await join("/ws/alice");
    for (let i = 1; i <= 6; i++) a.send({ type: "direct", to: "bob", text: `dm${i}`, cid: `d${i}` });
    await a.next(isAck("d6"));
    const { c, w } = await welcomeOf("/ws/bob");
    expect(w.resumed).toBe(false);
    expect((await c.take<MessageFrame>(3, isMessage)).map((m) => m.text)).toEqual(["dm4", "dm5", "dm6"]);
  });
});

describe("Hub.shutdown and the inbox cursor", () => {
  /** alice sends bob a direct message that bob receives live; no grace, so a clean close would move bob's cursor to it. */
  async function bobReceivedOne() {
    const s = t.start({ closeGraceMs: 0 });
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    a.send({ type: "direct", to: "bob", text: "x", cid: "x" });
    const id = (await a.next<AckFrame>(isAck("x"))).id!;
    await b.next(isMessage);
    return { s, a, b, id };
  }

  test("control: bob's own clean close moves his cursor to what he received, once the server handled the close", async () => {
    const { s, b, id } = await bobReceivedOne();
    b.close();
    await b.closedWith();
    await serverHandledCloses(s, 1);
    expect(await s.history.cursor("bob")).toBe(id);
  });

  test("a server shutdown does not move inbox cursors", async () => {
    const { s, a, b } = await bobReceivedOne();
    await s.app.decorator.hub.shutdown();
    expect((await b.closedWith()).code).toBe(1001);
    await a.closedWith();
    await serverHandledCloses(s, 0);
    expect(await s.history.cursor("bob")).toBe(0);
  });
});
