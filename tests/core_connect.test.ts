/** Connecting and disconnecting: guests, refusals before the upgrade, and Hub.shutdown. */
import { beforeEach, describe, expect, test } from "bun:test";
import { Client, isMessage, serverPerTest } from "./helpers";
import type { MessageFrame, WelcomeFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;
beforeEach(() => void t.start());
const upgradeHeaders = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" };

describe("GET /ws (guest)", () => {
  test("joins as guest-<8 hex> and sends under that name", async () => {
    const g = t.track(new Client(`${t.s.ws}/ws`));
    const w = await g.next<WelcomeFrame>((f) => f.type === "welcome");
    expect(w.user).toMatch(/^guest-[0-9a-f]{8}$/);
    g.send({ type: "broadcast", text: "hi from a guest" });
    expect((await g.next<MessageFrame>(isMessage)).from).toBe(w.user);
  });
});

describe("GET /ws/:username refusals", () => {
  test("a bad username is refused with HTTP 400 and a JSON reason before the upgrade", async () => {
    for (const name of ["bo%21b", "a%20b", "x".repeat(65)]) {
      const r = await fetch(`${t.s.http}/ws/${name}`, { headers: upgradeHeaders });
      expect(r.status).toBe(400);
      const body = (await r.json()) as { error: string; message: string };
      expect(body.error).toBe("invalid_username");
      expect(body.message).toContain("Invalid username");
    }
  });

  test("a bad since or rooms query is refused with HTTP 400 before the upgrade", async () => {
    for (const [q, code] of [
      ["since=abc", "invalid_frame"],
      ["since=-1", "invalid_frame"],
      ["rooms=ok,bad%20room", "invalid_room"],
    ] as const) {
      for (const path of ["/ws/alice", "/ws"]) {
        const r = await fetch(`${t.s.http}${path}?${q}`, { headers: upgradeHeaders });
        expect(r.status).toBe(400);
        expect(((await r.json()) as { error: string }).error).toBe(code);
      }
    }
  });

  test("a WebSocket client sees the refusal as a failed connection", async () => {
    const c = t.track(new Client(`${t.s.ws}/ws/bad%20name`));
    await expect(c.ready(2000)).rejects.toThrow();
  });
});

describe("Hub.shutdown", () => {
  test("closes every socket with 1001", async () => {
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    void t.s.app.decorator.hub.shutdown();
    expect((await a.closedWith()).code).toBe(1001);
    expect((await b.closedWith()).code).toBe(1001);
  });
});
