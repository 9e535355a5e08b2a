/** "ack" frames and message ids. */
import { beforeEach, describe, expect, test } from "bun:test";
import { createApp } from "../src/app";
import { createSqliteHistory } from "../src/history/history_sqlite";
import { isAck, isMessage, serverPerTest, settle } from "./helpers";
import type { AckFrame, MessageFrame, SingleServerFrame } from "../src/protocol";

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

  test("reaches a user's only connection ahead of its own copy, with and without ?batch=1, and the sender alone once a second device joins", async () => {
    const bob = await join("/ws/bob");
    for (const [path, c1, c2, c3] of [
      ["/ws/alice", "p1", "p2", "p3"],
      ["/ws/alice?batch=1", "b1", "b2", "b3"],
    ] as const) {
      const a1 = await join(path);
      a1.send({ type: "direct", to: "bob", text: "one", cid: c1 });
      const ack = await a1.next<AckFrame>(isAck(c1));
      await a1.next((f) => isMessage(f) && f.id === ack.id);
      // In arrival order, arrays unpacked: the ack came first.
      const arrived: SingleServerFrame[] = a1.raw.flatMap((r) => [JSON.parse(r)].flat());
      const at = (match: (f: SingleServerFrame) => boolean) => arrived.findIndex(match);
      expect(at(isAck(c1))).toBeGreaterThanOrEqual(0);
      expect(at(isAck(c1))).toBeLessThan(at((f) => isMessage(f) && f.id === ack.id));
      const a2 = await join(path);
      a1.send({ type: "direct", to: "bob", text: "two", cid: c2 });
      await a1.next(isAck(c2));
      await a2.next((f) => isMessage(f) && f.text === "two");
      a2.ws.close();
      a1.send({ type: "direct", to: "bob", text: "three", cid: c3 });
      await a1.next(isAck(c3));
      await bob.take(3, isMessage);
      expect(a2.raw.filter((r) => r.includes('"ack"'))).toEqual([]);
      a1.ws.close();
    }
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

describe("Hub.attached", () => {
  test("is false for an app that does not listen, and true once createApp's app listens: acks may then take the user's topic", async () => {
    const history = createSqliteHistory(":memory:");
    const { hub } = createApp({ history }).decorator;
    try {
      expect(hub.attached).toBe(false);
    } finally {
      await hub.shutdown();
      await history.close();
    }
    expect(t.s.app.decorator.hub.attached).toBe(true);
  });
});
