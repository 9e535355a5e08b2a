/** "ack" frames and message ids. */
import { beforeEach, describe, expect, test } from "bun:test";
import { isAck, isMessage, serverPerTest, settle } from "./helpers";
import type { AckFrame, MessageFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;
beforeEach(() => void t.start());

describe('"ack" frame', () => {
  test("goes to the sending connection only, and ids strictly increase", async () => {
    const a1 = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) a1.send({ type: "broadcast", text: `m${i}`, cid: `c${i}` });
    for (let i = 0; i < 20; i++) ids.push((await a1.next<AckFrame>(isAck(`c${i}`))).id!);
    for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
    const seen = (await a2.take<MessageFrame>(20, isMessage)).map((m) => m.id);
    expect(seen).toEqual(ids);
    await settle(a1, [a1, a2]);
    expect(a2.frames.filter((f) => f.type === "ack")).toEqual([]);
  });

  test("is not sent for a frame without a cid", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "broadcast", text: "quiet" });
    await a.next(isMessage);
    a.send({ type: "broadcast", text: "marker", cid: "m" });
    await a.next(isAck("m"));
    expect(a.frames.filter((f) => f.type === "ack")).toEqual([]);
  });
});
