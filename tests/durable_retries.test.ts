/** Idempotent retries: the same sender and cid gets the first ack back, and nothing is stored or delivered twice. */
import { describe, expect, test } from "bun:test";
import { isAck, isMessage, serverPerTest } from "./helpers";
import type { AckFrame, HistoryBody, MessageFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;

describe("cid de-duplication", () => {
  test("a retry gets the first ack back, also within one commit batch; another sender's same cid is its own", async () => {
    t.start();
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
    const s = t.start();
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
