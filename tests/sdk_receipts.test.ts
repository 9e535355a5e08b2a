/**
 * Receipts, unread counts and typing through the SDK against a real server
 * (jwt mode, so direct-message history can be read back): bob's device
 * receives, alice hears `delivered`; bob reads, alice hears `read`; bob's
 * other device sees the same unread count fall; a reconnect without `since`
 * replays nothing already received; typing reaches the other side and is
 * never stored. Every wait is on an event, with a timeout.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { ChatClientError, createChatClient, type ChatClient, type ChatClientOptions, type MessageFrame } from "../src/sdk";
import { Signal, waitUntil, type TestServer } from "./helpers";
import { jwtFor, opened, Recorder, startAuthServer } from "./sdk_helpers";

let server: TestServer;
let clients: ChatClient[] = [];

// A server per test: each starts with an empty store, so a reconnect without `since` replays only what the test left.
beforeEach(() => {
  server = startAuthServer("jwt");
});
afterEach(async () => {
  for (const c of clients) c.close();
  clients = [];
  await server.stop();
});

/** The frames one client wrote to its sockets, parsed. */
type Sent = { type: string; id?: number };

/** Records what the SDK writes to its sockets; `until` awaits a condition on it. */
class SentFrames {
  readonly frames: Sent[] = [];
  readonly #changed = new Signal();

  /** A WebSocket class for the client's `WebSocket` option. */
  socketClass(): NonNullable<ChatClientOptions["WebSocket"]> {
    const self = this;
    return class extends WebSocket {
      override send(data: string) {
        self.frames.push(JSON.parse(data));
        self.#changed.notify();
        super.send(data);
      }
    };
  }

  async until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    await waitUntil(cond, () => `${what}; sent: ${JSON.stringify(this.frames.slice(-5))}`, { ms, signal: this.#changed });
  }
}

async function client(username: string, extra: Partial<ChatClientOptions> = {}) {
  const c = createChatClient({ url: server.http, username, token: await jwtFor(username), ackTimeoutMs: 5000, ...extra });
  clients.push(c);
  const rec = new Recorder(c);
  await opened(rec);
  return { c, rec };
}

/** A page of history read with `user`'s token, raw. */
async function historyOf(path: string, user: string): Promise<{ messages: MessageFrame[]; readId?: number }> {
  const res = await fetch(`${server.http}${path}`, { headers: { authorization: `Bearer ${await jwtFor(user)}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as { messages: MessageFrame[]; readId?: number };
}

describe("receipts and unread counts", () => {
  test("delivered, read on one device, the other device's count falls to 0, a reconnect without since replays nothing", async () => {
    const { c: alice, rec: ra } = await client("alice");
    const { c: bob1, rec: rb1 } = await client("bob");
    const { rec: rb2 } = await client("bob");

    const ack = await alice.send.direct("bob", "are you there?");
    // Bob's devices receive it live, and count it unread.
    for (const rb of [rb1, rb2]) {
      await rb.until(() => rb.messages.some((m) => m.id === ack.id), "the direct message on each of bob's devices");
      expect(rb.messages.find((m) => m.id === ack.id)!.replayed).toBe(false);
      await rb.until(() => rb.unreadOf("@alice") === 1, "one unread from alice");
    }
    expect(rb2.client.unread).toEqual([{ conversation: "@alice", count: 1, lastId: ack.id }]);

    // Alice hears that bob received it (the devices' batched `received`).
    await ra.until(() => ra.receipts.some((r) => r.event === "delivered" && r.id === ack.id), "the delivered receipt");
    expect(ra.receipts.find((r) => r.event === "delivered")).toEqual({ type: "receipt", event: "delivered", id: ack.id, by: "bob" });
    expect(alice.unread).toEqual([]); // her own message is not unread to her

    // Bob reads on his first device: alice hears it, his second device's count falls to 0.
    bob1.markRead(ack.id);
    expect(rb1.unreadOf("@alice")).toBe(0); // at once, on the device that read
    await ra.until(() => ra.receipts.some((r) => r.event === "read"), "the read receipt");
    expect(ra.receipts.find((r) => r.event === "read")).toEqual({ type: "receipt", event: "read", id: ack.id, by: "bob", conversation: "@bob" });
    await rb2.until(() => rb2.unreadOf("@alice") === 0, "the unread count on bob's second device falling to 0");
    expect(rb2.unread.at(-1)).toEqual({ conversation: "@alice", count: 0, lastId: ack.id });
    expect(rb2.receipts.at(-1)).toEqual({ type: "receipt", event: "read", id: ack.id, by: "bob", conversation: "@alice" });
    expect(rb2.client.readMarker("@alice")).toBe(ack.id);

    // Both of bob's devices go; a new one without `since` gets nothing again.
    for (const c of clients.slice(1)) c.close();
    const { rec: rb3 } = await client("bob");
    const w = rb3.welcomes[0]!;
    expect(w.replay).toBe(0);
    expect(w.unread).toEqual([]);
    expect(rb3.messages).toEqual([]);
    expect(rb3.client.unread).toEqual([]);
  });

  test("replayed messages say so, are counted once, and reading part of them leaves the rest unread", async () => {
    const { c: alice, rec: ra } = await client("alice");
    const ids: number[] = [];
    for (const text of ["one", "two", "three"]) ids.push((await alice.send.direct("bob", text)).id);

    const { c: bob, rec: rb } = await client("bob");
    expect(rb.welcomes[0]!.unread).toEqual([{ conversation: "@alice", count: 3, lastId: ids[2]! }]);
    await rb.until(() => rb.messages.length === 3, "the three replayed messages");
    expect(rb.messages.map((m) => [m.text, m.replayed])).toEqual([
      ["one", true],
      ["two", true],
      ["three", true],
    ]);
    expect(rb.unreadOf("@alice")).toBe(3); // the welcome's count, not added to by the replay
    // The replay ended: the `received` that follows it makes alice's messages delivered.
    await ra.until(() => ra.receipts.some((r) => r.event === "delivered" && r.id === ids[2]), "delivered up to the newest");

    bob.markRead(ids[1]!);
    expect(rb.unreadOf("@alice")).toBe(1);
    await ra.until(() => ra.receipts.some((r) => r.event === "read" && r.id === ids[1]), "read up to the second");

    // A live one after the replay counts, and says it is live.
    const live = await alice.send.direct("bob", "four");
    await rb.until(() => rb.unreadOf("@alice") === 2, "the live message counted");
    expect(rb.messages.at(-1)).toMatchObject({ id: live.id, text: "four", replayed: false });

    // The history page says where bob's marker is, and a new device takes it.
    const page = await historyOf("/users/alice/history", "bob");
    expect(page.readId).toBe(ids[1]!);
    const { c: bob2, rec: rb2 } = await client("bob", { since: live.id });
    expect(rb2.welcomes[0]!.unread).toEqual([{ conversation: "@alice", count: 2, lastId: live.id }]);
    await bob2.userHistory("alice");
    expect(bob2.readMarker("@alice")).toBe(ids[1]!);

    bob.markRead(live.id);
    await rb2.until(() => rb2.unreadOf("@alice") === 0, "all read on the new device too");
    expect(() => bob.markRead(0)).toThrow(ChatClientError);
  });

  test("received is batched: one frame per second or per 50 messages, not one per message", async () => {
    const sent = new SentFrames();
    const { c: alice } = await client("alice");
    const { rec: rb } = await client("bob", { WebSocket: sent.socketClass() });
    const acks = await Promise.all(Array.from({ length: 120 }, (_, i) => alice.send.direct("bob", `burst ${i}`)));
    const newest = Math.max(...acks.map((a) => a.id));
    await rb.until(() => rb.messages.length === 120, "the burst");
    const reports = () => sent.frames.filter((f) => f.type === "received");
    await sent.until(() => reports().at(-1)?.id === newest, "a received frame up to the newest");
    // 120 messages: 2 frames for the 50s, at most 2 for the time-based rest.
    expect(reports().length).toBeLessThanOrEqual(4);
    const got = reports().map((f) => f.id!);
    expect(got).toEqual([...got].sort((a, b) => a - b));
  });
});

describe("typing", () => {
  test("reaches the other side, throttled to one per 2 s, never to oneself, and is never stored", async () => {
    const { c: alice, rec: ra } = await client("alice", { rooms: ["dev"] });
    const { c: bob, rec: rb } = await client("bob", { rooms: ["dev"] });

    expect(alice.typing("bob")).toBe(true);
    expect(alice.typing("bob")).toBe(false); // within 2 s: not sent
    await rb.until(() => rb.typing.length === 1, "bob hears alice typing");
    expect(rb.typing[0]).toEqual({ type: "typing", from: "alice", to: "bob" });

    expect(bob.typing({ room: "dev" })).toBe(true);
    await ra.until(() => ra.typing.length === 1, "alice hears bob typing in dev");
    expect(ra.typing[0]).toEqual({ type: "typing", from: "bob", room: "dev" });
    // The server sends room typing to the typer's own devices too; the SDK drops it.
    // A room message after it arrives after it on the same socket: then bob has seen none of his own.
    const after = await bob.send.room("dev", "after the indicator");
    await rb.until(() => rb.messages.some((m) => m.id === after.id), "the room message after typing");
    expect(rb.typing.filter((t) => t.from === "bob")).toEqual([]);

    expect(alice.typing({ room: "not-joined" })).toBe(false);
    expect(() => alice.typing("bad name")).toThrow(ChatClientError);

    // Nothing of it in any history: everyone's, the room's, the direct conversation's, a replay.
    const dm = await alice.send.direct("bob", "a real message");
    for (const [path, user] of [
      ["/history", "alice"],
      ["/rooms/dev/history", "alice"],
      ["/users/bob/history", "alice"],
      ["/users/alice/history", "bob"],
    ] as const) {
      const page = await historyOf(path, user);
      for (const m of page.messages) expect(m.type).toBe("message");
      expect(JSON.stringify(page)).not.toContain(`"typing"`);
    }
    expect((await alice.userHistory("bob")).map((m) => m.text)).toEqual(["a real message"]);
    await rb.until(() => rb.messages.some((m) => m.id === dm.id), "the direct message");
    const { rec: late } = await client("carol", { since: 0, rooms: ["dev"] });
    await late.until(() => late.messages.some((m) => m.text === "after the indicator"), "carol's replay");
    expect(late.typing).toEqual([]);
    expect(ra.errors).toEqual([]);
    expect(rb.errors).toEqual([]);
  });
});
