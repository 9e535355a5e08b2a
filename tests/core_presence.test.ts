/** Who is online: the welcome's `online` and `onlineCount`, and "presence" frames, per user not per tab. */
import { beforeEach, describe, expect, test } from "bun:test";
import { Client, serverPerTest, settle } from "./helpers";
import type { PresenceFrame, WelcomeFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;
beforeEach(() => void t.start());

describe("welcome online", () => {
  test("lists the distinct users online", async () => {
    await join("/ws/alice");
    await join("/ws/alice");
    const b = t.track(new Client(`${t.s.ws}/ws/bob`));
    const w = await b.next<WelcomeFrame>((f) => f.type === "welcome");
    expect(w.user).toBe("bob");
    expect(w.online?.sort()).toEqual(["alice", "bob"]);
    expect(w.onlineCount).toBe(2);
  });
});

describe('"presence" frame', () => {
  test("join and leave are sent once per user, not per tab", async () => {
    const watcher = await join("/ws/watcher");
    expect(await watcher.next<PresenceFrame>((f) => f.type === "presence")).toEqual({ type: "presence", event: "join", user: "watcher" });
    const a1 = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    expect(await watcher.next<PresenceFrame>((f) => f.type === "presence")).toEqual({ type: "presence", event: "join", user: "alice" });
    a1.close();
    await a1.closedWith();
    await settle(watcher, [watcher, a2]);
    expect(watcher.frames.filter((f) => f.type === "presence")).toEqual([]);
    a2.close();
    expect(await watcher.next<PresenceFrame>((f) => f.type === "presence")).toEqual({ type: "presence", event: "leave", user: "alice" });
    const r = await (await fetch(`${t.s.http}/users/online`)).json();
    expect(r).toEqual({ users: ["watcher"], count: 1 });
  });
});
