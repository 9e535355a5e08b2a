/**
 * Receipts, read markers, unread counts and typing, against a real server
 * with raw WebSocket clients: `received` moves the inbox cursor exactly and
 * tells the senders (`delivered`); `read` keeps a read marker per
 * conversation and tells the reader's devices and, for a direct
 * conversation, the other side's; the welcome counts what is unread; typing
 * is forwarded at most once per 2 s per sender and conversation and never
 * stored. Protocol: /work/issue9_contract.md, docs/protocol.md.
 */
import { describe, expect, test } from "bun:test";
import { Client, isAck, isError, isMessage, serverPerTest, settle, waitUntil, type TestServer } from "./helpers";
import { jwtFor, startAuthServer } from "./sdk_helpers";
import type {
  AckFrame,
  ErrorFrame,
  HistoryBody,
  MessageFrame,
  ReceiptFrame,
  SingleServerFrame as ServerFrame,
  TypingEvent,
  UnreadCount,
} from "../src/protocol";

const t = serverPerTest();
const { join, welcomeOf } = t;

const isReceipt = (f: ServerFrame): f is ReceiptFrame => f.type === "receipt";
const isTyping = (f: ServerFrame): f is TypingEvent => f.type === "typing";
const receipts = (c: Client) => c.frames.filter(isReceipt);
const typings = (c: Client) => c.frames.filter(isTyping);

/** Sends a message frame with a cid and resolves with its stored id. */
async function sent(c: Client, frame: Record<string, unknown>): Promise<number> {
  const cid = `c-${crypto.randomUUID()}`;
  c.send({ ...frame, cid });
  return (await c.next<AckFrame>(isAck(cid))).id!;
}
const dm = (c: Client, to: string, text: string) => sent(c, { type: "direct", to, text });

/** Until the server has handled the closes (its close handler ran), leaving `open` connections. */
const serverHandledCloses = (s: TestServer, open: number) =>
  waitUntil(
    () => s.app.decorator.hub.connections === open,
    () => `the server has ${open} connections (it has ${s.app.decorator.hub.connections})`,
  );

const byConversation = (u: UnreadCount[] | undefined) => [...(u ?? [])].sort((a, b) => (a.conversation < b.conversation ? -1 : 1));

describe('"received" frame and the inbox cursor', () => {
  test("moves the cursor exactly to the id: a reconnect without since replays only what came after it", async () => {
    const s = t.start(); // the default 2 s close grace: a v1 guess would stop short of it
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    const [d1, d2, d3] = [await dm(a, "bob", "one"), await dm(a, "bob", "two"), await dm(a, "bob", "three")];
    expect((await b.take<MessageFrame>(3, isMessage)).map((m) => m.id)).toEqual([d1, d2, d3]);
    b.send({ type: "received", id: d2 });
    // The delivered receipt is sent once the cursor moved.
    expect(await a.next<ReceiptFrame>(isReceipt)).toEqual({ type: "receipt", event: "delivered", id: d2, by: "bob" });
    expect(await s.history.cursor("bob")).toBe(d2);
    // A connection that sent `received` does not move the cursor on its clean close.
    b.close();
    await b.closedWith();
    await serverHandledCloses(s, 1);
    expect(await s.history.cursor("bob")).toBe(d2);
    const { c: again, w } = await welcomeOf("/ws/bob");
    expect(w.replay).toBe(1);
    expect((await again.next<MessageFrame>(isMessage)).id).toBe(d3);
  });

  test("after every message is received, a reconnect without since replays none of them", async () => {
    t.start();
    const a = await join("/ws/alice");
    const b1 = await join("/ws/bob");
    const ids = [await dm(a, "bob", "one"), await dm(a, "bob", "two")];
    await b1.take(2, isMessage);
    b1.send({ type: "received", id: ids[1]! });
    await a.next(isReceipt);
    // Another device, open at the same time: the cursor is the user's, not the connection's.
    const { c: b2, w } = await welcomeOf("/ws/bob");
    expect(w.replay).toBe(0);
    await settle(a, [a, b1, b2]);
    expect(b2.frames.filter(isMessage)).toEqual([]);
  });

  test("never moves the cursor back, nor past what this node delivered", async () => {
    const s = t.start();
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    const [d1, d2] = [await dm(a, "bob", "one"), await dm(a, "bob", "two")];
    await b.take(2, isMessage);
    b.send({ type: "received", id: d2 });
    await a.next(isReceipt);
    b.send({ type: "received", id: d1 });
    b.send({ type: "received", id: 1_000_000 });
    // A later received that moves nothing sends no receipt; wait on a read receipt that follows them (bob's work runs in order).
    b.send({ type: "read", id: d2 });
    expect(await a.next<ReceiptFrame>(isReceipt)).toMatchObject({ event: "read", id: d2 });
    expect(await s.history.cursor("bob")).toBe(d2);
    expect(s.history.lastId()).toBe(d2);
  });

  test("a v1 client that never sends received keeps the close behaviour: a clean close moves the cursor", async () => {
    const s = t.start({ closeGraceMs: 0 });
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    const d1 = await dm(a, "bob", "one");
    await b.next(isMessage);
    b.close();
    await b.closedWith();
    await serverHandledCloses(s, 1);
    expect(await s.history.cursor("bob")).toBe(d1);
    // Its senders get no delivered receipt: it never said what it processed.
    await settle(a, [a]);
    expect(receipts(a)).toEqual([]);
  });

  test("a client that sent received keeps its cursor where it said on a clean close, even with no grace", async () => {
    const s = t.start({ closeGraceMs: 0 });
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    const [d1, d2] = [await dm(a, "bob", "one"), await dm(a, "bob", "two")];
    await b.take(2, isMessage);
    b.send({ type: "received", id: d1 });
    await a.next(isReceipt);
    b.close();
    await b.closedWith();
    await serverHandledCloses(s, 1);
    expect(await s.history.cursor("bob")).toBe(d1);
    const { c, w } = await welcomeOf("/ws/bob");
    expect(w.replay).toBe(1);
    expect((await c.next<MessageFrame>(isMessage)).id).toBe(d2);
  });
});

describe('"receipt" frame, event "delivered"', () => {
  test("goes to every device of each sender, once, with the newest of that sender's messages covered", async () => {
    t.start();
    const a1 = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    const c = await join("/ws/carol");
    const b = await join("/ws/bob");
    const x = await join("/ws/xavier");
    await dm(a1, "bob", "a-one");
    const a2nd = await dm(a1, "bob", "a-two");
    const c1 = await dm(c, "bob", "c-one");
    await sent(x, { type: "broadcast", text: "not a direct message" });
    const last = await dm(x, "carol", "not to bob");
    await b.take(3, (f) => f.type === "message" && f.to === "bob");
    b.send({ type: "received", id: last });
    for (const d of [a1, a2]) expect(await d.next<ReceiptFrame>(isReceipt)).toEqual({ type: "receipt", event: "delivered", id: a2nd, by: "bob" });
    expect(await c.next<ReceiptFrame>(isReceipt)).toEqual({ type: "receipt", event: "delivered", id: c1, by: "bob" });
    // A read by bob follows on the same ordered path: once alice has it, nothing else about the received is on its way.
    b.send({ type: "read", id: a2nd });
    for (const d of [a1, a2]) await d.next((f) => isReceipt(f) && f.event === "read");
    await settle(x, [a1, a2, b, c, x]);
    for (const d of [a1, a2, c, x]) expect(receipts(d)).toEqual([]);
    expect(receipts(b).filter((r) => r.event === "delivered")).toEqual([]);
  });

  test("a received that covers no new direct message sends none", async () => {
    t.start();
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    const d1 = await dm(a, "bob", "one");
    await b.next(isMessage);
    b.send({ type: "received", id: d1 });
    await a.next(isReceipt);
    const bc = await sent(a, { type: "broadcast", text: "for everyone" });
    await b.next(isMessage);
    b.send({ type: "received", id: bc });
    b.send({ type: "read", id: d1 });
    expect(await a.next<ReceiptFrame>(isReceipt)).toMatchObject({ event: "read", id: d1 });
    expect(receipts(a)).toEqual([]);
  });
});

describe('"read" frame and "receipt" frame, event "read"', () => {
  test("a direct message's read goes to every device of the sender and of the reader, each with the conversation as it sees it", async () => {
    t.start();
    const a1 = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    const b1 = await join("/ws/bob");
    const b2 = await join("/ws/bob");
    const c = await join("/ws/carol");
    const id = await dm(a1, "bob", "read me");
    await b1.next(isMessage);
    b1.send({ type: "read", id });
    for (const d of [a1, a2]) expect(await d.next<ReceiptFrame>(isReceipt)).toEqual({ type: "receipt", event: "read", id, by: "bob", conversation: "@bob" });
    for (const d of [b1, b2]) expect(await d.next<ReceiptFrame>(isReceipt)).toEqual({ type: "receipt", event: "read", id, by: "bob", conversation: "@alice" });
    await settle(c, [a1, a2, b1, b2, c]);
    for (const d of [a1, a2, b1, b2, c]) expect(receipts(d)).toEqual([]);
  });

  test("a read marker never moves back: reading an older id sends nothing", async () => {
    const s = t.start();
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    const [d1, d2, d3] = [await dm(a, "bob", "one"), await dm(a, "bob", "two"), await dm(a, "bob", "three")];
    b.send({ type: "read", id: d2 });
    expect(await a.next<ReceiptFrame>(isReceipt)).toMatchObject({ event: "read", id: d2 });
    b.send({ type: "read", id: d1 });
    b.send({ type: "read", id: d3 });
    expect(await a.next<ReceiptFrame>(isReceipt)).toMatchObject({ event: "read", id: d3 });
    expect(receipts(a)).toEqual([]);
    expect((await s.history.reads("bob"))["@alice"]).toBe(d3);
  });

  test("reading the same id again sends no second receipt (else a client could send the other side's devices one per frame)", async () => {
    t.start();
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    const [d1, d2] = [await dm(a, "bob", "one"), await dm(a, "bob", "two")];
    b.send({ type: "read", id: d1 });
    expect(await a.next<ReceiptFrame>(isReceipt)).toMatchObject({ event: "read", id: d1 });
    for (let i = 0; i < 5; i++) b.send({ type: "read", id: d1 });
    b.send({ type: "read", id: d2 });
    expect(await a.next<ReceiptFrame>(isReceipt)).toMatchObject({ event: "read", id: d2 });
    expect(receipts(a)).toEqual([]);
  });

  test("the sender reading their own direct conversation tells the other side too", async () => {
    t.start();
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    const id = await dm(b, "alice", "from bob");
    const mine = await dm(a, "bob", "from alice, newer");
    a.send({ type: "read", id: mine });
    expect(await a.next<ReceiptFrame>(isReceipt)).toEqual({ type: "receipt", event: "read", id: mine, by: "alice", conversation: "@bob" });
    expect(await b.next<ReceiptFrame>(isReceipt)).toEqual({ type: "receipt", event: "read", id: mine, by: "alice", conversation: "@alice" });
    expect(mine).toBeGreaterThan(id);
  });

  test("a room's read state goes to the reader's devices only: it is never announced to the room", async () => {
    t.start();
    const a = await join("/ws/alice?rooms=dev");
    const c = await join("/ws/carol?rooms=dev");
    const b1 = await join("/ws/bob?rooms=dev");
    const b2 = await join("/ws/bob");
    const r = await sent(a, { type: "room", room: "dev", text: "in the room" });
    const bc = await sent(a, { type: "broadcast", text: "to everyone" });
    const d = await dm(a, "bob", "direct");
    b1.send({ type: "read", id: r });
    b1.send({ type: "read", id: bc });
    // A direct read after them: its receipt reaches alice after anything the room or broadcast reads would have sent her.
    b1.send({ type: "read", id: d });
    expect(await a.next<ReceiptFrame>(isReceipt)).toEqual({ type: "receipt", event: "read", id: d, by: "bob", conversation: "@bob" });
    for (const dev of [b1, b2]) {
      expect(await dev.take<ReceiptFrame>(3, isReceipt)).toEqual([
        { type: "receipt", event: "read", id: r, by: "bob", conversation: "#dev" },
        { type: "receipt", event: "read", id: bc, by: "bob", conversation: "*" },
        { type: "receipt", event: "read", id: d, by: "bob", conversation: "@alice" },
      ]);
    }
    await settle(c, [a, b1, b2, c]);
    for (const dev of [a, c]) expect(receipts(dev)).toEqual([]);
  });

  test("a read of an id the user cannot see is refused with invalid_frame, and the connection stays usable", async () => {
    const s = t.start();
    const a = await join("/ws/alice?rooms=secret");
    const b = await join("/ws/bob");
    const theirs = await dm(a, "carol", "not for bob");
    const room = await sent(a, { type: "room", room: "secret", text: "bob is not in this room" });
    for (const id of [theirs, room, 999_999]) {
      b.send({ type: "read", id });
      const e = await b.next<ErrorFrame>(isError);
      expect(e.code).toBe("invalid_frame");
      expect(e.cid).toBeUndefined();
      expect(e.message.length).toBeLessThan(160);
    }
    expect(await s.history.reads("bob")).toEqual({});
    await settle(b, [a, b]);
    expect(receipts(a)).toEqual([]);
    expect(receipts(b)).toEqual([]);
  });
});

describe("welcome unread", () => {
  test("counts per conversation the messages from others after the read marker, with the newest id; reads lower them", async () => {
    t.start();
    const a = await join("/ws/alice?rooms=dev");
    const c = await join("/ws/carol");
    const b0 = await join("/ws/bob?rooms=dev");
    const mine = await dm(b0, "alice", "bob's own message");
    b0.close();
    const a1 = await dm(a, "bob", "a1");
    const a2 = await dm(a, "bob", "a2");
    const a3 = await dm(a, "bob", "a3");
    const c1 = await dm(c, "bob", "c1");
    const r1 = await sent(a, { type: "room", room: "dev", text: "r1" });
    const r2 = await sent(a, { type: "room", room: "dev", text: "r2" });
    const bc = await sent(c, { type: "broadcast", text: "b1" });
    expect(mine).toBeLessThan(a1);

    const first = await welcomeOf("/ws/bob?rooms=dev");
    expect(byConversation(first.w.unread)).toEqual(
      byConversation([
        { conversation: "@alice", count: 3, lastId: a3 },
        { conversation: "@carol", count: 1, lastId: c1 },
        { conversation: "#dev", count: 2, lastId: r2 },
        { conversation: "*", count: 1, lastId: bc },
      ]),
    );
    // A room this connection is not in is not counted.
    const noRooms = await welcomeOf("/ws/bob");
    expect(byConversation(noRooms.w.unread).map((u) => u.conversation)).toEqual(["*", "@alice", "@carol"].sort());

    const b = first.c;
    for (const id of [a2, r1, c1, bc]) b.send({ type: "read", id });
    await b.take(4, isReceipt);
    const after = await welcomeOf("/ws/bob?rooms=dev");
    expect(byConversation(after.w.unread)).toEqual(
      byConversation([
        { conversation: "@alice", count: 1, lastId: a3 },
        { conversation: "#dev", count: 1, lastId: r2 },
      ]),
    );
    b.send({ type: "read", id: a3 });
    b.send({ type: "read", id: r2 });
    await b.take(2, isReceipt);
    expect((await welcomeOf("/ws/bob?rooms=dev")).w.unread ?? []).toEqual([]);
  });

  test("the user's own messages are not unread to them, in a direct conversation, a room or everyone", async () => {
    t.start();
    const b0 = await join("/ws/bob?rooms=dev");
    await dm(b0, "alice", "mine, direct");
    await dm(b0, "bob", "mine, to myself");
    await sent(b0, { type: "room", room: "dev", text: "mine, in the room" });
    await sent(b0, { type: "broadcast", text: "mine, to everyone" });
    const { w } = await welcomeOf("/ws/bob?rooms=dev");
    expect(w.unread ?? []).toEqual([]);
  });
});

describe('"typing" frame', () => {
  test("a direct typing reaches every device of the recipient once per 2 s, not the sender's other devices", async () => {
    t.start();
    const a1 = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    const b1 = await join("/ws/bob");
    const b2 = await join("/ws/bob");
    const c = await join("/ws/carol");
    for (let i = 0; i < 3; i++) a1.send({ type: "typing", to: "bob" });
    // The limit is per sender, not per connection.
    a2.send({ type: "typing", to: "bob" });
    // Another conversation has its own limit.
    a1.send({ type: "typing", to: "carol" });
    for (const d of [b1, b2]) expect(await d.next<TypingEvent>(isTyping)).toEqual({ type: "typing", from: "alice", to: "bob" });
    expect(await c.next<TypingEvent>(isTyping)).toEqual({ type: "typing", from: "alice", to: "carol" });
    // Markers from both of alice's connections: each follows that connection's typing frames.
    await settle(a1, [a1, a2, b1, b2, c]);
    await settle(a2, [a1, a2, b1, b2, c]);
    for (const d of [a1, a2, b1, b2, c]) expect(typings(d)).toEqual([]);
    // No ack, no error: typing has no id and no cid.
    for (const d of [a1, a2]) expect(d.frames.filter((f) => f.type === "ack" || f.type === "error")).toEqual([]);
  });

  test("the next typing is forwarded once 2 s have passed since the last forwarded one, not before", async () => {
    t.start();
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    a.send({ type: "typing", to: "bob" });
    await b.next(isTyping);
    const first = Date.now();
    let sentFrames = 0;
    await waitUntil(
      () => {
        if (b.frames.some(isTyping)) return true;
        a.send({ type: "typing", to: "bob" });
        sentFrames++;
        return undefined;
      },
      "a second typing frame is forwarded",
      { ms: 5000, pollMs: 100 },
    );
    const elapsed = Date.now() - first;
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(3500);
    expect(sentFrames).toBeGreaterThan(10);
    expect(b.frames.filter(isTyping)).toHaveLength(1);
  });

  test("a room typing reaches the room's members, the sender's devices included; a non-member is refused with not_member", async () => {
    t.start();
    const a = await join("/ws/alice?rooms=dev");
    const b = await join("/ws/bob?rooms=dev");
    const c = await join("/ws/carol");
    a.send({ type: "typing", room: "dev" });
    for (const d of [a, b]) expect(await d.next<TypingEvent>(isTyping)).toEqual({ type: "typing", from: "alice", room: "dev" });
    c.send({ type: "typing", room: "dev" });
    expect((await c.next<ErrorFrame>(isError)).code).toBe("not_member");
    await settle(a, [a, b, c]);
    for (const d of [a, b, c]) expect(typings(d)).toEqual([]);
  });

  test("is never stored: no id, nothing in history, nothing replayed", async () => {
    const s = t.start();
    const a = await join("/ws/alice?rooms=dev");
    await join("/ws/bob?rooms=dev");
    a.send({ type: "typing", to: "bob" });
    a.send({ type: "typing", room: "dev" });
    a.send({ type: "typing", to: "nobody-online" });
    await a.next(isTyping);
    expect(s.history.lastId()).toBe(0);
    expect(((await (await fetch(`${s.http}/history`)).json()) as HistoryBody).messages).toEqual([]);
    expect(((await (await fetch(`${s.http}/rooms/dev/history`)).json()) as HistoryBody).messages).toEqual([]);
    const { c, w } = await welcomeOf("/ws/bob?since=0&rooms=dev");
    expect(w).toMatchObject({ lastId: 0, replay: 0, resumed: true });
    await settle(a, [c]);
    expect(typings(c)).toEqual([]);
  });
});

describe("readId in history pages (jwt mode)", () => {
  test("GET /users/:name/history and GET /rooms/:room/history say where the caller's read marker is", async () => {
    const s = startAuthServer("jwt");
    const clients: Client[] = [];
    try {
      const [ta, tb] = [await jwtFor("alice"), await jwtFor("bob")];
      const as = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } });
      const connect = async (path: string, token: string) => {
        const c = new Client(`${s.ws}${path}`, as(token));
        clients.push(c);
        return c.ready();
      };
      const a = await connect("/ws/alice?rooms=dev", ta);
      const b = await connect("/ws/bob?rooms=dev", tb);
      const d1 = await dm(a, "bob", "one");
      await dm(a, "bob", "two");
      const r1 = await sent(a, { type: "room", room: "dev", text: "room one" });
      await sent(a, { type: "room", room: "dev", text: "room two" });
      const page = async (path: string, token: string) => (await (await fetch(`${s.http}${path}`, as(token))).json()) as HistoryBody;
      // Nothing read yet: 0.
      expect((await page("/users/alice/history", tb)).readId).toBe(0);
      expect((await page("/rooms/dev/history", tb)).readId).toBe(0);
      b.send({ type: "read", id: d1 });
      b.send({ type: "read", id: r1 });
      await b.take(2, isReceipt);
      const direct = await page("/users/alice/history", tb);
      expect(direct.messages.map((m) => m.text)).toEqual(["two", "one"]);
      expect(direct.readId).toBe(d1);
      expect((await page("/rooms/dev/history", tb)).readId).toBe(r1);
      // Each caller sees their own marker: alice has read nothing of either.
      expect((await page("/users/bob/history", ta)).readId).toBe(0);
      expect((await page("/rooms/dev/history", ta)).readId).toBe(0);
    } finally {
      for (const c of clients) c.close();
      await s.stop();
    }
  });

  test("open mode: a room's history carries no readId (no caller is known)", async () => {
    const s = t.start();
    const a = await join("/ws/alice?rooms=dev");
    const r = await sent(a, { type: "room", room: "dev", text: "x" });
    a.send({ type: "read", id: r });
    await a.next(isReceipt);
    const body = (await (await fetch(`${s.http}/rooms/dev/history`)).json()) as HistoryBody;
    expect(body.messages).toHaveLength(1);
    expect(body.readId).toBeUndefined();
  });
});
