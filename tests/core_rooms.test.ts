/** The "join", "leave" and "room" frames: room membership is per connection. */
import { beforeEach, describe, expect, test } from "bun:test";
import { isAck, isError, isMessage, serverPerTest, settle } from "./helpers";
import type { AckFrame, ErrorFrame, MessageFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;
beforeEach(() => void t.start());

describe('"room" frame', () => {
  test("reaches member connections only, the sender's included", async () => {
    const a = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    const b = await join("/ws/bob");
    const c = await join("/ws/carol");
    a.send({ type: "join", room: "dev", cid: "j1" });
    expect(await a.next<AckFrame>(isAck("j1"))).toEqual({ type: "ack", cid: "j1" });
    b.send({ type: "join", room: "dev", cid: "j2" });
    await b.next(isAck("j2"));
    a.send({ type: "room", room: "dev", text: "standup", cid: "r1" });
    expect((await a.next<AckFrame>(isAck("r1"))).id).toBeGreaterThan(0);
    for (const x of [a, b]) expect(await x.next<MessageFrame>(isMessage)).toMatchObject({ kind: "room", to: "dev", from: "alice", text: "standup" });
    await settle(a, [a, a2, b, c]);
    // Membership is per connection: alice's other tab did not join.
    for (const x of [a2, c]) expect(x.frames.filter(isMessage)).toEqual([]);
  });

  test("from a non-member is refused with not_member", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "room", room: "dev", text: "hello?", cid: "r1" });
    expect(await a.next<ErrorFrame>(isError)).toMatchObject({ code: "not_member", cid: "r1" });
  });
});

describe('"leave" frame', () => {
  test("after it, room messages stop and sending is refused", async () => {
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    for (const x of [a, b]) x.send({ type: "join", room: "dev", cid: "j" });
    await a.next(isAck("j"));
    await b.next(isAck("j"));
    b.send({ type: "leave", room: "dev", cid: "l" });
    expect(await b.next<AckFrame>(isAck("l"))).toEqual({ type: "ack", cid: "l" });
    a.send({ type: "room", room: "dev", text: "anyone?" });
    await a.next(isMessage);
    await settle(a, [a, b]);
    expect(b.frames.filter(isMessage)).toEqual([]);
    b.send({ type: "room", room: "dev", text: "me", cid: "r" });
    expect((await b.next<ErrorFrame>(isError)).code).toBe("not_member");
  });
});

describe('"join" frame', () => {
  test("a bad room name is refused with invalid_room", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "join", room: "no spaces", cid: "j" });
    expect(await a.next<ErrorFrame>(isError)).toMatchObject({ code: "invalid_room", cid: "j" });
  });
});
