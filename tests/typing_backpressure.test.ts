/**
 * Typing frames are the first thing dropped for a connection that is behind
 * (issue 9): once a socket holds more than 16 KiB unsent, typing frames for it
 * are not sent at all, while its messages still are (until the 1 MiB limit).
 */
import { expect, test } from "bun:test";
import type { AckFrame } from "../src/protocol";
import { isAck, serverPerTest, upgrade } from "./helpers";

const t = serverPerTest();

test("Hub typing: a socket with more than 16 KiB unsent gets no typing frames, and stays open", async () => {
  const s = t.start();
  const hub = s.app.decorator.hub;
  // A reader that stops reading right after the upgrade: what is sent to it piles up.
  const held = await upgrade(`${s.ws}/ws/slow`, {}, { hold: true });
  expect(held.status).toBe(101);
  const alice = await t.join("/ws/alice");
  const text = "x".repeat(3900);
  let dropped = false;
  // Each round adds about 4 KB for `slow`, then a typer it has never heard from
  // (so the per-sender rate is not what drops it) types to it. The kernel's
  // buffers fill first; then Bun's own buffer grows past 16 KiB long before the
  // 1 MiB that closes the socket.
  for (let i = 0; i < 3000 && !dropped; i++) {
    alice.send({ type: "broadcast", text, cid: `b${i}` });
    await alice.next<AckFrame>(isAck(`b${i}`));
    const before = hub.stats.typingDropped;
    const typer = await t.join(`/ws/typer${i}`);
    typer.send({ type: "typing", to: "slow" });
    // The typing frame is handled in order with this one: its ack means the typing was forwarded or dropped.
    typer.send({ type: "join", room: "probe", cid: "j" });
    await typer.next(isAck("j"));
    typer.close();
    dropped = hub.stats.typingDropped > before;
  }
  expect(dropped).toBe(true);
  // The socket was not closed for it: messages still go to it until the 1 MiB limit.
  expect(hub.sockets.connectionsOf("slow")).toBe(1);
  expect(hub.stats.backpressureCloses).toBe(0);
  held.socket?.destroy();
}, 60_000);
