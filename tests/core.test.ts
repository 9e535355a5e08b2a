import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Client, connect, isAck, isError, isMessage, startServer, type TestServer } from "./helpers";
import type { AckFrame, ErrorFrame, MessageFrame, PresenceFrame, WelcomeFrame } from "../src/protocol";

let s: TestServer;
const open: Client[] = [];
const join = async (path: string) => {
  const c = await connect(`${s.ws}${path}`);
  open.push(c);
  return c;
};
const msg = (f: { type: string }) => f.type === "message";

beforeEach(() => {
  s = startServer();
});
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await s.stop();
});

/** Sends a marker broadcast from `c` and waits until every client got it: all earlier frames have arrived. */
async function settle(from: Client, everyone: Client[]) {
  const marker = `marker-${crypto.randomUUID()}`;
  from.send({ type: "broadcast", text: marker });
  for (const c of everyone) await c.next((f) => f.type === "message" && f.text === marker);
}

describe("broadcast", () => {
  test("broadcast reaches every connection, the sender's included", async () => {
    const [a, b, c] = [await join("/ws/alice"), await join("/ws/bob"), await join("/ws/carol")];
    a.send({ type: "broadcast", text: "hello all" });
    for (const x of [a, b, c]) {
      const m = await x.next<MessageFrame>(isMessage);
      expect(m).toMatchObject({ type: "message", kind: "broadcast", from: "alice", text: "hello all" });
      expect(m.to).toBeUndefined();
      expect(typeof m.at).toBe("number");
    }
  });

  test("plain text frames broadcast exactly that text", async () => {
    const [a, b] = [await join("/ws/alice"), await join("/ws/bob")];
    for (const text of ["hello", "123", "[1]", "true", "2024-01-01T00:00:00Z", "  spaced  "]) {
      a.send(text);
      const m = await b.next<MessageFrame>(isMessage);
      expect(m.text).toBe(text);
      expect(m.kind).toBe("broadcast");
    }
  });

  test("JSON text fields arrive exactly as sent", async () => {
    const [a, b] = [await join("/ws/alice"), await join("/ws/bob")];
    for (const text of ["123", "true", "null", "2024-01-01T00:00:00.000Z", "<b>x</b>", "emoji 🎉 ünïcode"]) {
      a.send({ type: "broadcast", text });
      expect((await b.next<MessageFrame>(isMessage)).text).toBe(text);
    }
    expect(b.raw.some((r) => r.includes('"text":"123"'))).toBe(true);
  });
});

describe("direct", () => {
  test("direct reaches every tab of the target and of the sender, and nobody else", async () => {
    const a1 = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    const b1 = await join("/ws/bob");
    const b2 = await join("/ws/bob/");
    const c = await join("/ws/carol");
    a1.send({ type: "direct", to: "bob", text: "psst" });
    for (const x of [a1, a2, b1, b2]) {
      expect(await x.next<MessageFrame>(isMessage)).toMatchObject({ kind: "direct", from: "alice", to: "bob", text: "psst" });
    }
    await settle(a1, [a1, a2, b1, b2, c]);
    expect(c.frames.filter((f) => f.type === "message" && f.kind === "direct")).toEqual([]);
    for (const x of [a1, a2, b1, b2]) expect(x.frames.filter((f) => f.type === "message")).toEqual([]);
  });

  test("direct to oneself arrives once per tab", async () => {
    const a1 = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    a1.send({ type: "direct", to: "alice", text: "note to self", cid: "n1" });
    await a1.next(isAck("n1"));
    for (const x of [a1, a2]) expect((await x.next<MessageFrame>(isMessage)).text).toBe("note to self");
    await settle(a1, [a1, a2]);
    for (const x of [a1, a2]) expect(x.frames.filter(msg)).toEqual([]);
  });

  test("direct to an offline user is acked with delivered:false and the server carries on", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "direct", to: "nobody", text: "are you there?", cid: "d1" });
    const ack = await a.next<AckFrame>(isAck("d1"));
    expect(ack.delivered).toBe(false);
    expect(ack.id).toBeGreaterThan(0);
    a.send({ type: "broadcast", text: "still alive", cid: "d2" });
    expect((await a.next<AckFrame>(isAck("d2"))).delivered).toBeUndefined();
    const health = await fetch(`${s.http}/health`);
    expect(health.status).toBe(200);
  });

  test("direct to an online user is acked without delivered", async () => {
    const a = await join("/ws/alice");
    await join("/ws/bob");
    a.send({ type: "direct", to: "bob", text: "hi", cid: "x" });
    const ack = await a.next<AckFrame>(isAck("x"));
    expect(ack).toEqual({ type: "ack", cid: "x", id: ack.id });
  });
});

describe("tutorial forms", () => {
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

  test("a tutorial direct message to a bad username is refused", async () => {
    const a = await join("/ws/alice");
    a.send({ message: "x", to_user: "bob!" });
    const e = await a.next<ErrorFrame>(isError);
    expect(e.code).toBe("invalid_username");
    expect(e.message).toContain('"bob!"');
  });
});

describe("rooms", () => {
  test("a room message reaches member connections only, the sender's included", async () => {
    const a = await join("/ws/alice");
    const a2 = await join("/ws/alice");
    const b = await join("/ws/bob");
    const c = await join("/ws/carol");
    a.send({ type: "join", room: "dev", cid: "j1" });
    expect(await a.next<AckFrame>(isAck("j1"))).toEqual({ type: "ack", cid: "j1" });
    b.send({ type: "join", room: "dev", cid: "j2" });
    await b.next(isAck("j2"));
    a.send({ type: "room", room: "dev", text: "standup", cid: "r1" });
    expect((await a.next<AckFrame>(isAck("r1"))).id).toBeGreaterThan(0);
    for (const x of [a, b]) expect(await x.next<MessageFrame>(isMessage)).toMatchObject({ kind: "room", to: "dev", from: "alice", text: "standup" });
    await settle(a, [a, a2, b, c]);
    // Membership is per connection: alice's other tab did not join.
    for (const x of [a2, c]) expect(x.frames.filter(msg)).toEqual([]);
  });

  test("a room message from a non-member is refused with not_member", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "room", room: "dev", text: "hello?", cid: "r1" });
    expect(await a.next<ErrorFrame>(isError)).toMatchObject({ code: "not_member", cid: "r1" });
  });

  test("after leave, room messages stop and sending is refused", async () => {
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    for (const x of [a, b]) x.send({ type: "join", room: "dev", cid: "j" });
    await a.next(isAck("j"));
    await b.next(isAck("j"));
    b.send({ type: "leave", room: "dev", cid: "l" });
    expect(await b.next<AckFrame>(isAck("l"))).toEqual({ type: "ack", cid: "l" });
    a.send({ type: "room", room: "dev", text: "anyone?" });
    await a.next(isMessage);
    await settle(a, [a, b]);
    expect(b.frames.filter(msg)).toEqual([]);
    b.send({ type: "room", room: "dev", text: "me", cid: "r" });
    expect((await b.next<ErrorFrame>(isError)).code).toBe("not_member");
  });

  test("a bad room name is refused with invalid_room", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "join", room: "no spaces", cid: "j" });
    expect(await a.next<ErrorFrame>(isError)).toMatchObject({ code: "invalid_room", cid: "j" });
  });
});

describe("presence", () => {
  test("welcome lists the distinct users online", async () => {
    await join("/ws/alice");
    await join("/ws/alice");
    const b = new Client(`${s.ws}/ws/bob`);
    open.push(b);
    const w = await b.next<WelcomeFrame>((f) => f.type === "welcome");
    expect(w.user).toBe("bob");
    expect(w.online?.sort()).toEqual(["alice", "bob"]);
    expect(w.onlineCount).toBe(2);
  });

  test("presence join and leave are sent once per user, not per tab", async () => {
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
    const r = await (await fetch(`${s.http}/users/online`)).json();
    expect(r).toEqual({ users: ["watcher"], count: 1 });
  });
});

describe("acks and ids", () => {
  test("acks go to the sending connection only, ids strictly increase", async () => {
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

  test("no ack without a cid", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "broadcast", text: "quiet" });
    await a.next(isMessage);
    a.send({ type: "broadcast", text: "marker", cid: "m" });
    await a.next(isAck("m"));
    expect(a.frames.filter((f) => f.type === "ack")).toEqual([]);
  });
});

describe("guests", () => {
  test("/ws joins as guest-<8 hex>", async () => {
    const g = new Client(`${s.ws}/ws`);
    open.push(g);
    const w = await g.next<WelcomeFrame>((f) => f.type === "welcome");
    expect(w.user).toMatch(/^guest-[0-9a-f]{8}$/);
    g.send({ type: "broadcast", text: "hi from a guest" });
    expect((await g.next<MessageFrame>(isMessage)).from).toBe(w.user);
  });
});

describe("bad input", () => {
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

  test("the error message names the bad username", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "direct", to: "bob!", text: "x" });
    expect((await a.next<ErrorFrame>(isError)).message).toStartWith('Cannot send to "bob!": invalid username');
  });

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

  test("a frame just under 64 KiB is answered, not closed", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "broadcast", text: "x".repeat(60 * 1024), cid: "big" });
    expect((await a.next<ErrorFrame>(isError)).code).toBe("invalid_frame");
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

describe("HTTP", () => {
  test("a bad username is refused with HTTP 400 and a JSON reason before the upgrade", async () => {
    for (const name of ["bo%21b", "a%20b", "x".repeat(65)]) {
      const r = await fetch(`${s.http}/ws/${name}`, {
        headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" },
      });
      expect(r.status).toBe(400);
      const body = (await r.json()) as { error: string; message: string };
      expect(body.error).toBe("invalid_username");
      expect(body.message).toContain("Invalid username");
    }
  });

  test("a bad since or rooms query is refused with HTTP 400 before the upgrade", async () => {
    const headers = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" };
    for (const [q, code] of [["since=abc", "invalid_frame"], ["since=-1", "invalid_frame"], ["rooms=ok,bad%20room", "invalid_room"]] as const) {
      for (const path of ["/ws/alice", "/ws"]) {
        const r = await fetch(`${s.http}${path}?${q}`, { headers });
        expect(r.status).toBe(400);
        expect(((await r.json()) as { error: string }).error).toBe(code);
      }
    }
  });

  test("a WebSocket client sees the refusal as a failed connection", async () => {
    const c = new Client(`${s.ws}/ws/bad%20name`);
    await expect(c.ready(2000)).rejects.toThrow();
  });

  test("GET /health answers 200 with a small JSON body", async () => {
    const r = await fetch(`${s.http}/health`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: "ok", connections: 0 });
  });

  test("GET /users/online lists online users once each", async () => {
    await join("/ws/alice");
    await join("/ws/alice");
    await join("/ws/bob");
    const r = (await (await fetch(`${s.http}/users/online`)).json()) as { users: string[] };
    expect(r.users.sort()).toEqual(["alice", "bob"]);
  });

  test("GET /metrics counts accepted messages", async () => {
    const a = await join("/ws/alice");
    a.send({ type: "broadcast", text: "x", cid: "1" });
    await a.next(isAck("1"));
    const text = await (await fetch(`${s.http}/metrics`)).text();
    expect(text).toContain('wirechat_messages_accepted_total{kind="broadcast"} 1\n');
    expect(text).toContain("wirechat_connections 1\n");
  });
});

describe("shutdown", () => {
  test("hub.shutdown closes every socket with 1001", async () => {
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    s.app.decorator.hub.shutdown();
    expect((await a.closedWith()).code).toBe(1001);
    expect((await b.closedWith()).code).toBe(1001);
  });
});
