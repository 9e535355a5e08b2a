/** The classic tutorial's frame, {message, to_user}: its clients work unchanged. */
import { beforeEach, describe, expect, test } from "bun:test";
import { isError, isMessage, serverPerTest } from "./helpers";
import type { ErrorFrame, MessageFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;
beforeEach(() => void t.start());

describe("tutorial frame {message, to_user}", () => {
  test("the tutorial's flow: alice sends {message, to_user} and bob receives it", async () => {
    const a = await join("/ws/alice/");
    const b = await join("/ws/bob/");
    a.send(JSON.stringify({ message: "hi", to_user: "bob" }));
    expect(await b.next<MessageFrame>(isMessage)).toMatchObject({ kind: "direct", from: "alice", to: "bob", text: "hi" });
  });

  test("{message} alone, or with an empty or null to_user, is a broadcast", async () => {
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    for (const frame of [{ message: "one" }, { message: "two", to_user: "" }, { message: "three", to_user: null }]) {
      a.send(frame);
      expect(await b.next<MessageFrame>(isMessage)).toMatchObject({ kind: "broadcast", text: frame.message });
    }
  });

  test("a direct message to a bad username is refused with invalid_username", async () => {
    const a = await join("/ws/alice");
    a.send({ message: "x", to_user: "bob!" });
    const e = await a.next<ErrorFrame>(isError);
    expect(e.code).toBe("invalid_username");
    expect(e.message).toContain('"bob!"');
  });
});
