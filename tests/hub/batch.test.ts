import { afterEach, expect, test } from "bun:test";
import { Client, connect, isAck, isMessage, startServer, type TestServer } from "../helpers";
import type { MessageFrame } from "../../src/protocol";

let s: TestServer | undefined;
const open: Client[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await s?.stop();
  s = undefined;
});
const join = async (path: string) => {
  const c = await connect(`${s!.ws}${path}`);
  open.push(c);
  return c;
};

test("?batch=1: one commit batch of one topic arrives as one array frame, in id order", async () => {
  s = startServer();
  const b = await join("/ws/bob?batch=1");
  const plain = await join("/ws/carol");
  const a = await join("/ws/alice");
  const before = b.raw.length;
  // Sent in one turn: one group commit.
  for (let i = 0; i < 20; i++) a.send({ type: "broadcast", text: `m${i}`, cid: `c${i}` });
  await a.next(isAck("c19"));
  const got = await b.take<MessageFrame>(20, isMessage);
  expect(got.map((m) => m.text)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
  const arrays = b.raw.slice(before).filter((r) => r.startsWith("["));
  expect(arrays.length).toBeGreaterThan(0);
  expect(arrays.length).toBeLessThan(20);
  // A connection without ?batch=1 gets one frame per message, as in v1.
  await plain.take(20, isMessage);
  expect(plain.raw.filter((r) => r.startsWith("["))).toEqual([]);
  // A batch with one message for the topic: the frame itself, as without batching.
  const mark = b.raw.length;
  a.send({ type: "broadcast", text: "alone", cid: "alone" });
  await a.next(isAck("alone"));
  expect((await b.next<MessageFrame>(isMessage)).text).toBe("alone");
  expect(b.raw.slice(mark).filter((r) => r.includes('"alone"'))).toEqual([expect.stringMatching(/^\{"type":"message"/)]);
});

test("?batch=1: a connection in several topics gets every id in order across its arrays", async () => {
  s = startServer();
  const b = await join("/ws/bob?batch=1&rooms=dev");
  const a = await join("/ws/alice?rooms=dev");
  const kinds = ["broadcast", "room", "direct", "broadcast", "room", "room", "direct", "broadcast"];
  for (let round = 0; round < 5; round++) {
    for (const [i, k] of kinds.entries()) {
      const cid = `${round}-${i}`;
      if (k === "broadcast") a.send({ type: "broadcast", text: cid, cid });
      else if (k === "room") a.send({ type: "room", room: "dev", text: cid, cid });
      else a.send({ type: "direct", to: "bob", text: cid, cid });
    }
  }
  await a.next(isAck("4-7"));
  const got = await b.take<MessageFrame>(kinds.length * 5, isMessage);
  for (let i = 1; i < got.length; i++) expect(got[i]!.id).toBeGreaterThan(got[i - 1]!.id);
});

test("?batch=1: direct messages of one batch to several users arrive as one array per user, not one per message", async () => {
  s = startServer();
  const to = ["b1", "b2", "b3"];
  const rs = await Promise.all(to.map((u) => join(`/ws/${u}?batch=1`)));
  const a = await join("/ws/alice?batch=1");
  const firstRaw = rs.map((r) => r.raw.length);
  const aBefore = a.raw.length;
  // Round-robin in one turn: the topics change with every message, the run must not.
  for (let i = 0; i < 30; i++) a.send({ type: "direct", to: to[i % 3]!, text: `d${i}`, cid: `d${i}` });
  await a.next(isAck("d29"));
  for (const [k, r] of rs.entries()) {
    const got = await r.take<MessageFrame>(10, isMessage);
    expect(got.map((m) => m.text)).toEqual(Array.from({ length: 10 }, (_, j) => `d${j * 3 + k}`));
    const arrays = r.raw.slice(firstRaw[k]).filter((x) => x.startsWith("["));
    // One per commit batch (one, or a few when the sends straddle turns), never one per message.
    expect(arrays.length).toBeLessThan(10);
  }
  const echoes = await a.take<MessageFrame>(30, isMessage);
  for (let i = 1; i < echoes.length; i++) expect(echoes[i]!.id).toBeGreaterThan(echoes[i - 1]!.id);
  expect(a.raw.slice(aBefore).filter((x) => x.startsWith("[") && x.includes('"type":"message"')).length).toBeLessThan(30);
});

test("?batch=1: a replay comes in arrays, and batch must be 0 or 1", async () => {
  s = startServer();
  const a = await join("/ws/alice");
  for (let i = 0; i < 30; i++) a.send({ type: "broadcast", text: `r${i}`, cid: `r${i}` });
  await a.next(isAck("r29"));
  const b = new Client(`${s.ws}/ws/bob?batch=1&since=0`);
  open.push(b);
  await b.ready();
  expect((await b.take<MessageFrame>(30, isMessage)).map((m) => m.text)).toEqual(Array.from({ length: 30 }, (_, i) => `r${i}`));
  expect(b.raw.filter((r) => r.startsWith("[")).length).toBeLessThan(30);
  const bad = await fetch(`${s.http}/ws/bob?batch=2`, {
    headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" },
  });
  expect(bad.status).toBe(400);
});
