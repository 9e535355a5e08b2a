/** The SDK against a real in-process server: acks, errors, exact text, dedupe, resume with `since`. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { backoffDelay, ChatClientError, createChatClient, type ChatClient } from "../src/sdk";
import { startServer, type TestServer } from "./helpers";
import { opened, Recorder } from "./sdk_helpers";

let server: TestServer;
const clients: ChatClient[] = [];

beforeAll(() => {
  server = startServer();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.stop();
});

async function client(username: string, extra: { rooms?: string[]; since?: number } = {}) {
  const c = createChatClient({ url: server.http, username, ackTimeoutMs: 5000, ...extra });
  clients.push(c);
  const rec = new Recorder(c);
  await opened(rec);
  return { c, rec };
}

describe("sdk", () => {
  test("text arrives exactly as sent, live and from history", async () => {
    const { c: a } = await client("exact-a");
    const { rec: b } = await client("exact-b");
    const texts = ["123", "true", "2024-01-01T00:00:00Z", "null", "0012", " 1e3 ", '{"a":1}', "<b>x</b>"];
    for (const t of texts) await a.send.broadcast(t);
    await b.until(() => texts.every((t) => b.texts().includes(t)), "all texts");
    const got = b.messages.filter((m) => texts.includes(m.text));
    expect(got.map((m) => m.text)).toEqual(texts);
    for (const m of got) expect(typeof m.text).toBe("string");
    const page = await a.history({ limit: texts.length });
    expect(page.map((m) => m.text).reverse()).toEqual(texts);
  });

  test("acks: broadcast has an id, direct to an offline user is not delivered, join has no id", async () => {
    const { c } = await client("acks-a");
    const b = await c.send.broadcast("hello");
    expect(b).toEqual({ type: "ack", cid: b.cid, id: b.id });
    expect(b.id).toBeGreaterThan(0);
    const d = await c.send.direct("nobody-online", "are you there");
    expect(d.delivered).toBe(false);
    expect(d.id).toBe(b.id + 1);
    const j = await c.join("acks-room");
    expect(j).toEqual({ type: "ack", cid: j.cid });
    expect(c.rooms).toEqual(["acks-room"]);
  });

  test("direct and room messages reach the right users, narrowed on kind", async () => {
    const { c: a } = await client("dm-a");
    const { c: b, rec: rb } = await client("dm-b");
    const { rec: rc } = await client("dm-c", { rooms: ["dm-room"] });
    await b.join("dm-room");
    await a.send.direct("dm-b", "psst");
    await b.send.room("dm-room", "room hello");
    await rb.until(() => rb.texts("direct").includes("psst"), "the direct message");
    await rc.until(() => rc.texts("room").includes("room hello"), "the room message");
    const dm = rb.messages.find((m) => m.kind === "direct")!;
    if (dm.kind !== "direct") throw new Error("narrowing");
    expect([dm.from, dm.to]).toEqual(["dm-a", "dm-b"]);
    expect(rc.texts("direct")).not.toContain("psst");
  });

  test("an error frame rejects the send with the protocol's code", async () => {
    const { c } = await client("err-a");
    const notMember = await c.send.room("not-joined", "hi").catch((e) => e);
    expect(notMember).toBeInstanceOf(ChatClientError);
    expect(notMember.code).toBe("not_member");
    const badUser = await c.send.direct("no spaces allowed", "hi").catch((e) => e);
    expect(badUser.code).toBe("invalid_username");
    const badRoom = await c.join("bad room").catch((e) => e);
    expect(badRoom.code).toBe("invalid_room");
    expect(c.rooms).toEqual([]);
    expect(() => createChatClient({ url: server.http, username: "bad name" })).toThrow(ChatClientError);
  });

  test("the same cid twice is stored and delivered once", async () => {
    const { c: a } = await client("dup-a");
    const { rec: rb } = await client("dup-b");
    // Twice while pending: one frame, one answer.
    const [x, y] = await Promise.all([a.send.broadcast("once", { cid: "dup-1" }), a.send.broadcast("once", { cid: "dup-1" })]);
    expect(y).toEqual(x);
    // Again after the ack: the server answers with the first message's ack.
    const again = await a.send.broadcast("once", { cid: "dup-1" });
    expect(again.id).toBe(x.id);
    await a.send.broadcast("after-dup");
    await rb.until(() => rb.texts().includes("after-dup"), "the marker");
    expect(rb.texts().filter((t) => t === "once")).toHaveLength(1);
  });

  test("frames sent before the welcome wait and go out in order", async () => {
    const { rec: rb } = await client("queue-b");
    const a = createChatClient({ url: server.http, username: "queue-a" });
    clients.push(a);
    expect(a.status).toBe("connecting");
    const acks = await Promise.all(["q1", "q2", "q3"].map((t) => a.send.broadcast(t)));
    expect(acks.map((k) => k.id)).toEqual([acks[0]!.id, acks[0]!.id + 1, acks[0]!.id + 2]);
    await rb.until(() => rb.texts().includes("q3"), "q3");
    expect(rb.texts().filter((t) => t.startsWith("q"))).toEqual(["q1", "q2", "q3"]);
  });

  test("a new client with `since` and rooms gets exactly what it missed", async () => {
    const { c: a } = await client("since-a", { rooms: ["since-room"] });
    const { c: b1, rec: r1 } = await client("since-b", { rooms: ["since-room"] });
    await a.send.broadcast("seen-before");
    await r1.until(() => r1.texts().includes("seen-before"), "seen-before");
    const since = b1.lastId!;
    b1.close();
    await a.send.broadcast("missed-1");
    await a.send.room("since-room", "missed-2");
    await a.send.direct("since-b", "missed-3");
    const { rec: r2 } = await client("since-b", { rooms: ["since-room"], since });
    await r2.until(() => r2.texts().includes("missed-3"), "missed-3");
    expect(r2.texts()).toEqual(["missed-1", "missed-2", "missed-3"]);
    expect(r2.welcomes[0]!.resumed).toBe(true);
  });

  test("close() rejects what is pending and never reconnects", async () => {
    const c = createChatClient({ url: server.http, username: "closer" });
    const rec = new Recorder(c);
    const p = c.send.broadcast("never acked").catch((e) => e);
    c.close();
    const err = await p;
    expect(err.code).toBe("closed");
    expect(c.status).toBe("closed");
    expect(rec.statuses).toEqual(["closed"]);
    expect((await c.send.broadcast("late").catch((e) => e)).code).toBe("closed");
  });

  test("an open-mode server ignores a token, which travels in the subprotocols, not the URL", async () => {
    const made: { url: string; protocols?: string | string[] }[] = [];
    class Recording extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        made.push({ url, protocols });
      }
    }
    const c = createChatClient({ url: server.ws, username: "tokened", token: "abc", WebSocket: Recording });
    clients.push(c);
    await opened(new Recorder(c));
    expect(made).toEqual([{ url: `${server.ws}/ws/tokened?batch=1`, protocols: ["wirechat.v1", "bearer.abc"] }]);
  });

  test("a connection that drops in the middle of its inbox replay loses nothing", async () => {
    const { c: alice } = await client("inbox-sender");
    for (let i = 1; i <= 3; i++) await alice.send.direct("inbox-reader", `inbox ${i}`);
    // A real socket that the network "drops" right after the welcome, before
    // the replayed frames are read: the first connection only.
    const urls: string[] = [];
    class DroppedAfterWelcome extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        urls.push(url);
        if (urls.length > 1) return;
        this.addEventListener("message", (e) => {
          if (JSON.parse(String(e.data)).type === "welcome") this.close(4000, "dropped");
        });
      }
      override set onmessage(h: ((e: MessageEvent) => void) | null) {
        // Only the welcome gets through on the first connection.
        super.onmessage = h && ((e: MessageEvent) => (urls.length > 1 || JSON.parse(String(e.data)).type === "welcome" ? h(e) : undefined));
      }
      override get onmessage() {
        return super.onmessage;
      }
    }
    const bob = createChatClient({ url: server.http, username: "inbox-reader", WebSocket: DroppedAfterWelcome, backoff: { initialMs: 10, maxMs: 20 } });
    clients.push(bob);
    const rec = new Recorder(bob);
    const inbox = () => rec.messages.filter((m) => m.kind === "direct").map((m) => m.text);
    await rec.until(() => inbox().length >= 3, "the whole inbox after the reconnect");
    expect(inbox()).toEqual(["inbox 1", "inbox 2", "inbox 3"]);
    expect(urls.length).toBeGreaterThan(1);
    expect(urls[0]).not.toContain("since=");
  });

  test("more rooms than the server allows are refused at once, not by an endless reconnect", async () => {
    const many = Array.from({ length: 101 }, (_, i) => `r${i}`);
    expect(() => createChatClient({ url: server.http, username: "roomy", rooms: many })).toThrow("Too many rooms");
    const { c } = await client("roomy", { rooms: many.slice(0, 100) });
    const err = await c.join("r100").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChatClientError);
    expect((err as ChatClientError).code).toBe("invalid_room");
    expect(c.rooms.length).toBe(100);
  });

  test("backoff grows exponentially with jitter, capped", () => {
    expect(backoffDelay(0, { initialMs: 100 }, () => 0)).toBe(50);
    expect(backoffDelay(0, { initialMs: 100 }, () => 0.999)).toBe(100);
    expect(backoffDelay(3, { initialMs: 100 }, () => 0)).toBe(400);
    expect(backoffDelay(50, { initialMs: 100, maxMs: 2000 }, () => 0.999)).toBe(1999);
    expect(backoffDelay(50, { initialMs: 100, maxMs: 2000 }, () => 0)).toBe(1000);
  });
});
