import { afterEach, expect, test } from "bun:test";
import { Client, connect, isAck, isMessage, startServer, type TestServer } from "./helpers";
import type { AckFrame, MessageFrame, WelcomeFrame } from "../src/protocol";

let s: TestServer;
afterEach(() => s.stop());

/** Reads a child's stdout line by line. */
async function* lines(stream: ReadableStream<Uint8Array>) {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
}

for (const batch of [false, true]) {
  const q = batch ? "?batch=1" : "";
  const and = batch ? "&batch=1" : "";
  test(`a consumer that stops reading is closed, others keep receiving, and it catches up with since${batch ? " (?batch=1: arrays)" : ""}`, async () => {
    s = startServer();
    const sender = await connect(`${s.ws}/ws/sender${q}`);
    const watcher = await connect(`${s.ws}/ws/watcher${q}`);
    sender.send({ type: "broadcast", text: "before", cid: "b" });
    const before = (await sender.next<AckFrame>(isAck("b"))).id!;

    const child = Bun.spawn(["node", `${import.meta.dir}/fixtures/slow_reader.mjs`, `${s.ws}/ws/slow${q}`], { stdout: "pipe", stderr: "inherit" });
    const out = lines(child.stdout);
    expect((await out.next()).value).toBe("ready");
    process.kill(child.pid, "SIGSTOP");
    try {
      // ~16 MB of traffic: more than the socket buffers and the 1 MiB backpressure limit.
      const text = "x".repeat(4000);
      const total = 4000;
      for (let i = 0; i < total; i++) {
        sender.send({ type: "broadcast", text, cid: `f${i}` });
        if (i % 200 === 199) await sender.next(isAck(`f${i}`), 10_000);
      }
      const seen = await watcher.take<MessageFrame>(total + 1, isMessage, 20_000);
      expect(seen.length).toBe(total + 1);
      expect(s.app.decorator.hub.connections).toBe(2);
    } finally {
      process.kill(child.pid, "SIGCONT");
    }
    const result = JSON.parse((await out.next()).value as string) as { closed: number; messages: number };
    // Bun cannot write a close frame to a full socket: the reader sees 1006.
    expect(result.closed).toBe(1006);
    expect(result.messages).toBeLessThan(4001);
    await child.exited;
    // Nothing was dropped silently: the backpressure Bun reported was counted.
    const metrics = await (await fetch(`${s.http}/metrics`)).text();
    expect(Number(/wirechat_backpressured_publishes_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
    // Bun's 1006 looks like a vanished peer's; the hub tells them apart.
    expect(Number(/wirechat_backpressure_closes_total (\d+)/.exec(metrics)?.[1])).toBe(1);

    // It reconnects with since and gets everything after `before`, in order.
    const again = new Client(`${s.ws}/ws/slow?since=${before}${and}`);
    const w = await again.next<WelcomeFrame>((f) => f.type === "welcome");
    expect(w.resumed).toBe(true);
    const caught = await again.take<MessageFrame>(4000, isMessage, 20_000);
    for (let i = 1; i < caught.length; i++) expect(caught[i]!.id).toBe(caught[i - 1]!.id + 1);
    expect(caught[0]!.id).toBe(before + 1);
    for (const c of [sender, watcher, again]) c.close();
    if (batch) expect(again.raw.some((r) => r.startsWith("["))).toBe(true);
  }, 60_000);
}
