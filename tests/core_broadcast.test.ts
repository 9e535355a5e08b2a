/** The "broadcast" frame, and plain text frames (a broadcast of that text). */
import { beforeEach, describe, expect, test } from "bun:test";
import { isMessage, serverPerTest } from "./helpers";
import type { MessageFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;
beforeEach(() => void t.start());

describe('"broadcast" frame', () => {
  test("reaches every connection, the sender's included", async () => {
    const [a, b, c] = [await join("/ws/alice"), await join("/ws/bob"), await join("/ws/carol")];
    a.send({ type: "broadcast", text: "hello all" });
    for (const x of [a, b, c]) {
      const m = await x.next<MessageFrame>(isMessage);
      expect(m).toMatchObject({ type: "message", kind: "broadcast", from: "alice", text: "hello all" });
      expect(m.to).toBeUndefined();
      expect(typeof m.at).toBe("number");
    }
  });

  test("its text arrives exactly as sent, also when it looks like JSON", async () => {
    const [a, b] = [await join("/ws/alice"), await join("/ws/bob")];
    for (const text of ["123", "true", "null", "2024-01-01T00:00:00.000Z", "<b>x</b>", "emoji 🎉 ünïcode"]) {
      a.send({ type: "broadcast", text });
      expect((await b.next<MessageFrame>(isMessage)).text).toBe(text);
    }
    expect(b.raw.some((r) => r.includes('"text":"123"'))).toBe(true);
  });
});

describe("plain text frame", () => {
  test("broadcasts exactly that text", async () => {
    const [a, b] = [await join("/ws/alice"), await join("/ws/bob")];
    for (const text of ["hello", "123", "[1]", "true", "2024-01-01T00:00:00Z", "  spaced  "]) {
      a.send(text);
      const m = await b.next<MessageFrame>(isMessage);
      expect(m.text).toBe(text);
      expect(m.kind).toBe("broadcast");
    }
  });
});
