/** The "direct" frame: who receives a direct message, and its ack. */
import { beforeEach, describe, expect, test } from "bun:test";
import { isAck, isMessage, serverPerTest, settle } from "./helpers";
import type { AckFrame, MessageFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;
beforeEach(() => void t.start());

describe('"direct" frame', () => {
  test("reaches every tab of the target and of the sender, and nobody else", async () => {
    const a1 = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    const b1 = await join("/ws/bob");
    const b2 = await join("/ws/bob/");
    const c = await join("/ws/carol");
    a1.send({ type: "direct", to: "bob", text: "psst" });
    for (const x of [a1, a2, b1, b2]) {
      expect(await x.next<MessageFrame>(isMessage)).toMatchObject({ kind: "direct", from: "alice", to: "bob", text: "psst" });
    }
    await settle(a1, [a1, a2, b1, b2, c]);
    expect(c.frames.filter((f) => f.type === "message" && f.kind === "direct")).toEqual([]);
    for (const x of [a1, a2, b1, b2]) expect(x.frames.filter(isMessage)).toEqual([]);
  });

  test("to oneself arrives once per tab", async () => {
    const a1 = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    a1.send({ type: "direct", to: "alice", text: "note to self", cid: "n1" });
    await a1.next(isAck("n1"));
    for (const x of [a1, a2]) expect((await x.next<MessageFrame>(isMessage)).text).toBe("note to self");
    await settle(a1, [a1, a2]);
    for (const x of [a1, a2]) expect(x.frames.filter(isMessage)).toEqual([]);
  });

  test("to an offline user is acked with delivered:false and the server carries on", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "direct", to: "nobody", text: "are you there?", cid: "d1" });
    const ack = await a.next<AckFrame>(isAck("d1"));
    expect(ack.delivered).toBe(false);
    expect(ack.id).toBeGreaterThan(0);
    a.send({ type: "broadcast", text: "still alive", cid: "d2" });
    expect((await a.next<AckFrame>(isAck("d2"))).delivered).toBeUndefined();
    const health = await fetch(`${t.s.http}/health`);
    expect(health.status).toBe(200);
  });

  test("to an online user is acked without delivered", async () => {
    const a = await join("/ws/alice");
    await join("/ws/bob");
    a.send({ type: "direct", to: "bob", text: "hi", cid: "x" });
    const ack = await a.next<AckFrame>(isAck("x"));
    expect(ack).toEqual({ type: "ack", cid: "x", id: ack.id });
  });
});
