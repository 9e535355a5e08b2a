/** Bad frames: each gets a short error frame, or the documented close code, never a crash. */
import { beforeEach, describe, expect, test } from "bun:test";
import { isAck, isError, serverPerTest } from "./helpers";
import type { AckFrame, ErrorFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;
beforeEach(() => void t.start());

describe("error frame", () => {
  const cases: [string, unknown, string][] = [
    ["broken JSON", "{not json", "bad_json"],
    ["JSON with trailing garbage", '{"type":"broadcast","text":"x"} tail', "bad_json"],
    ["unknown type", { type: "shout", text: "x", cid: "u" }, "invalid_frame"],
    ["no type", { text: "x" }, "invalid_frame"],
    ["empty text", { type: "broadcast", text: "", cid: "e" }, "invalid_frame"],
    ["text too long", { type: "broadcast", text: "x".repeat(4001) }, "invalid_frame"],
    ["text not a string", { type: "broadcast", text: 5 }, "invalid_frame"],
    ["direct without to", { type: "direct", text: "x" }, "invalid_frame"],
    ["direct to a bad username", { type: "direct", to: "bob!", text: "x", cid: "d" }, "invalid_username"],
    ["cid too long", { type: "broadcast", text: "x", cid: "c".repeat(65) }, "invalid_frame"],
    ["plain text too long", "y".repeat(4001), "invalid_frame"],
  ];
  for (const [name, frame, code] of cases) {
    test(`${name} gets ${code}, a short message, and the connection stays usable`, async () => {
      const a = await join("/ws/alice");
      a.send(frame);
      const e = await a.next<ErrorFrame>(isError);
      expect(e.code).toBe(code as ErrorFrame["code"]);
      expect(e.message.length).toBeLessThan(160);
      expect(e.message).not.toContain("schema");
      const cid = typeof frame === "object" && frame && "cid" in frame ? (frame as { cid: string }).cid : undefined;
      if (cid !== undefined) expect(e.cid).toBe(cid);
      else expect(e.cid).toBeUndefined();
      a.send({ type: "broadcast", text: "after", cid: "ok" });
      expect((await a.next<AckFrame>(isAck("ok"))).id).toBeGreaterThan(0);
    });
  }

  test("invalid_username names the bad username", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "direct", to: "bob!", text: "x" });
    expect((await a.next<ErrorFrame>(isError)).message).toStartWith('Cannot send to "bob!": invalid username');
  });

  test("a frame just under 64 KiB is answered, not closed", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "broadcast", text: "x".repeat(60 * 1024), cid: "big" });
    expect((await a.next<ErrorFrame>(isError)).code).toBe("invalid_frame");
  });
});

describe("close codes", () => {
  test("a binary frame closes with 1003", async () => {
    const a = await join("/ws/alice");
    a.ws.send(new Uint8Array([1, 2, 3]));
    expect((await a.closedWith()).code).toBe(1003);
  });

  test("a frame over 64 KiB closes with 1009", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "broadcast", text: "x".repeat(70 * 1024) });
    expect((await a.closedWith()).code).toBe(1009);
  });

  test("more than 20 bad frames in a minute close with 1008; 20 do not", async () => {
    const a = await join("/ws/alice");
    for (let i = 0; i < 20; i++) a.send("{bad");
    await a.take(20, isError);
    a.send({ type: "broadcast", text: "still here", cid: "s" });
    await a.next(isAck("s"));
    a.send("{bad");
    expect((await a.closedWith()).code).toBe(1008);
  });
});
