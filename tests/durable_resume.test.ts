/** Resuming with ?since=N: the replay of what was missed, then live, with no gap and no duplicate. */
import { describe, expect, test } from "bun:test";
import { Client, isAck, isMessage, serverPerTest } from "./helpers";
import type { AckFrame, MessageFrame } from "../src/protocol";

const t = serverPerTest();
const { join, welcomeOf } = t;
const ids = (fs: { id: number }[]) => fs.map((f) => f.id);

describe("?since= resume", () => {
  test("replays broadcasts, direct messages and rejoined rooms missed while away, then goes live", async () => {
    t.start();
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
    t.start();
    const { w } = await welcomeOf("/ws/alice?since=0");
    expect(w).toMatchObject({ resumed: true, lastId: 0 });
  });

  test("no gap and no duplicate between the replay and the live stream while messages flow", async () => {
    t.start();
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
    const s = t.start();
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
    t.start({ replayLimit: 5 });
    const a = await join("/ws/alice");
    for (let i = 0; i < 8; i++) a.send({ type: "broadcast", text: `r${i}`, cid: `r${i}` });
    await a.next(isAck("r7"));
    const { c, w } = await welcomeOf("/ws/bob?since=0");
    expect(w.resumed).toBe(false);
    expect((await c.take<MessageFrame>(5, isMessage)).map((m) => m.text)).toEqual(["r3", "r4", "r5", "r6", "r7"]);
  });

  test("a replay larger than the socket buffers pauses, resumes on drain and catches up with what came meanwhile", async () => {
    const s = t.start();
    const a = await join("/ws/alice");
    const big = "y".repeat(3900);
    const before = 3000;
    for (let i = 0; i < before; i++) {
      a.send({ type: "broadcast", text: `${i}:${big}`, cid: `b${i}` });
      if (i % 200 === 199) await a.next(isAck(`b${i}`));
    }
    const reader = t.track(new Client(`${s.ws}/ws/reader?since=0`));
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
