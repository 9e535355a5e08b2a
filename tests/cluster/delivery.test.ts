/**
 * Cluster delivery (issue 11): one redis-server (no AOF) and three wirechat
 * nodes as child processes. Direct messages, broadcasts and rooms across
 * nodes; the same id and the same bytes for a message on every node; presence
 * merged once per user; a cid retried on another node; resume on another
 * node with `since` and `epoch`.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import type { AckFrame, MessageFrame } from "../../src/protocol";
import { Cluster, Device, Sender, device, diff, duplicates, isAck, isText, mentions, named, redisServer } from "./cluster";
import type { RedisServer } from "../redis_server";
import { connect, isAck as isAckOf, isMessage, waitUntil, type Client } from "../helpers";

// Longer than any wait inside a test, so a stuck wait fails with its own message.
setDefaultTimeout(30_000);

let redis: RedisServer;
let c: Cluster;
const devices: Device[] = [];
const on = async (node: number, user: string, rooms: string[] = [], opts: { since?: number } = {}) => {
  const d = await device(c.node(node), user, rooms, opts);
  devices.push(d);
  return d;
};

beforeAll(async () => {
  redis = await redisServer(false);
  c = await Cluster.start(redis);
});
afterAll(async () => {
  for (const d of devices) d.close();
  await c?.stop();
  await redis?.stop();
});

/** Polls `read` until it returns something `ok`; throws after `ms` with the last value. */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 10_000): Promise<T> {
  let last: T | undefined;
  const got = await waitUntil(
    async () => {
      last = await read();
      return ok(last) && { v: last };
    },
    () => `${what}; last: ${JSON.stringify(last)}`,
    { ms, pollMs: 20 },
  );
  return got.v;
}
const json = async (url: string) => (await fetch(url)).json();
/** Sends a broadcast marker from `from` and waits until each device got it: every earlier message has arrived too (one order everywhere). */
async function barrier(from: Device, everyone: Device[]): Promise<number> {
  const text = `marker-${crypto.randomUUID()}`;
  from.send({ type: "broadcast", text });
  let id = 0;
  for (const d of everyone) id = (await d.next<MessageFrame>(isText(text), `marker ${text}`)).id;
  return id;
}
const msgs = (d: Device, pred: (m: MessageFrame) => boolean) => d.messages.filter(pred);

describe("across nodes", () => {
  test("a direct message from node 1 reaches every device of the recipient on nodes 2 and 3 and the sender's other devices, with one id and the same bytes", async () => {
    const alice1 = await on(0, "alice");
    const alice3 = await on(2, "alice");
    const carol = await on(0, "carol");
    const dave = await on(1, "dave");
    const bob2 = await on(1, "bob");
    const bob3 = await on(2, "bob");
    // Node 1 knows bob is online (presence merged across nodes): the ack will not say delivered:false.
    await alice1.next(mentions("bob"), "bob's join");
    alice1.send({ type: "direct", to: "bob", text: "hi bob", cid: "d1" });
    const ack = await alice1.next<AckFrame>(isAck("d1"));
    expect(ack).toEqual({ type: "ack", cid: "d1", id: ack.id });
    const got = await Promise.all([bob2, bob3, alice1, alice3].map((d) => d.next<MessageFrame>(isText("hi bob"))));
    for (const m of got) expect(m).toMatchObject({ type: "message", id: ack.id, kind: "direct", from: "alice", to: "bob", text: "hi bob" });
    const raw = bob2.rawById.get(ack.id!);
    for (const d of [bob3, alice1, alice3]) expect(d.rawById.get(ack.id!)).toBe(raw!);
    // Nobody else: a later broadcast arrives at the bystanders (on the sender's node and another) without it.
    await barrier(alice1, [carol, dave, bob2, bob3, alice1, alice3]);
    for (const d of [carol, dave]) expect(msgs(d, (m) => m.id === ack.id)).toEqual([]);
    // Each device got it exactly once.
    for (const d of [bob2, bob3, alice1, alice3]) expect(msgs(d, (m) => m.id === ack.id).length).toBe(1);
  });

  test("a direct message to a user offline everywhere waits in the inbox and arrives on whichever node they connect to", async () => {
    const hank = await on(0, "hank");
    hank.send({ type: "direct", to: "ivy", text: "for later", cid: "l1" });
    const ack = await hank.next<AckFrame>(isAck("l1"));
    expect(ack).toEqual({ type: "ack", cid: "l1", id: ack.id, delivered: false });
    const ivy = await on(2, "ivy");
    const m = await ivy.next<MessageFrame>(isText("for later"));
    expect(m).toMatchObject({ id: ack.id, kind: "direct", from: "hank", to: "ivy" });
  });

  test("broadcast and rooms across nodes", async () => {
    const b1 = await on(0, "bea");
    const b2 = await on(1, "ben");
    const b3 = await on(2, "bo");
    b2.send({ type: "broadcast", text: "to all", cid: "b" });
    const ack = await b2.next<AckFrame>(isAck("b"));
    for (const d of [b1, b2, b3]) expect(await d.next<MessageFrame>(isText("to all"))).toMatchObject({ id: ack.id, kind: "broadcast", from: "ben" });
    expect(new Set([b1, b2, b3].map((d) => d.rawById.get(ack.id!))).size).toBe(1);

    const m1 = await on(0, "mia", ["dev"]);
    const x2 = await on(1, "xav");
    const m3 = await on(2, "max");
    m3.send({ type: "join", room: "dev", cid: "j" });
    await m3.next(isAck("j"));
    // Room presence across nodes: mia (node 1) hears max (node 3) come into dev.
    const p = await m1.next((f) => mentions("max")(f) && f.type === "presence" && f.room === "dev", "max's room join");
    expect(p).toMatchObject({ type: "presence", room: "dev", event: "join" });
    for (const node of [0, 1, 2]) {
      await eventually(
        () => json(`${c.node(node).http}/rooms/dev/online`),
        (r) => JSON.stringify(r.users.sort()) === '["max","mia"]',
        `node ${node} lists dev's members`,
      );
    }
    m3.send({ type: "room", room: "dev", text: "dev only", cid: "r" });
    const rack = await m3.next<AckFrame>(isAck("r"));
    for (const d of [m1, m3]) expect(await d.next<MessageFrame>(isText("dev only"))).toMatchObject({ id: rack.id, kind: "room", from: "max", to: "dev" });
    x2.send({ type: "room", room: "dev", text: "not mine", cid: "nm" });
    expect(await x2.next((f) => f.type === "error" && f.cid === "nm")).toMatchObject({ code: "not_member" });
    await barrier(b2, [m1, x2, m3, b1, b3]);
    for (const d of [x2, b1, b2, b3]) expect(msgs(d, (m) => m.id === rack.id)).toEqual([]);
    for (const d of [m1, m3]) expect(msgs(d, (m) => m.id === rack.id).length).toBe(1);
    // max leaves dev on node 3: mia hears it on node 1.
    m3.send({ type: "leave", room: "dev", cid: "lv" });
    await m3.next(isAck("lv"));
    expect(await m1.next((f) => f.type === "presence" && f.room === "dev" && named(f).includes("max"))).toEqual({
      type: "presence",
      room: "dev",
      event: "leave",
      user: "max",
    });
  });

  test("ids are one sequence and one order: every node delivers the same ids, in the same order, with the same bytes", async () => {
    const receivers = [await on(0, "r1"), await on(1, "r2"), await on(2, "r3")];
    const senders = [await on(0, "s1"), await on(1, "s2"), await on(2, "s3")];
    const PER = 40;
    const sends = senders.map((d, k) => new Sender(d, PER, (i) => ({ type: "broadcast", text: `seq-${k}-${i}` }), 8));
    for (const s of sends) s.pump();
    for (const s of sends) await s.d.until(() => s.done, "all acked", 20_000);
    const acked = sends.flatMap((s) => s.ids());
    expect(duplicates(acked)).toEqual([]);
    const ofRun = (d: Device) => d.messages.filter((m) => m.text.startsWith("seq-")).map((m) => m.id);
    for (const d of receivers) await d.until(() => ofRun(d).length >= acked.length, `${acked.length} messages`, 20_000);
    const first = ofRun(receivers[0]!);
    expect(diff(first, acked)).toEqual({ missing: [], extra: [] });
    for (let i = 1; i < first.length; i++) expect(first[i]!).toBeGreaterThan(first[i - 1]!);
    for (const d of receivers) {
      expect(ofRun(d)).toEqual(first);
      for (const id of first) expect(d.rawById.get(id)).toBe(receivers[0]!.rawById.get(id)!);
    }
    // Each sender's messages got increasing ids in the order it sent them.
    for (const s of sends) {
      const ids = Array.from({ length: PER }, (_, i) => s.acked.get(`c${i}`)!);
      for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
    }
  }, 60_000);

  test("?batch=1 across nodes: direct messages of one batch to several users arrive as arrays per user, not one frame per message", async () => {
    const to = ["bb1", "bb2", "bb3"];
    const clients: Client[] = [];
    try {
      const rs = await Promise.all(to.map((u) => connect(`${c.node(1).ws}/ws/${u}?batch=1`)));
      clients.push(...rs);
      const a = await connect(`${c.node(0).ws}/ws/batcher`);
      clients.push(a);
      const marks = rs.map((r) => r.raw.length);
      // Round-robin in one turn: the recipients change with every message, the run on the other node must not.
      for (let i = 0; i < 30; i++) a.send({ type: "direct", to: to[i % 3]!, text: `x${i}`, cid: `x${i}` });
      await a.next(isAckOf("x29"));
      for (const [k, r] of rs.entries()) {
        // Broadcasts of the other tests may still be arriving: direct messages only.
        const got = await r.take<MessageFrame>(10, (f) => isMessage(f) && f.kind === "direct");
        expect(got.map((m) => m.text)).toEqual(Array.from({ length: 10 }, (_, j) => `x${j * 3 + k}`));
        // Fewer frames than messages: the node's log reads hand the fan-out whole runs.
        expect(r.raw.slice(marks[k]).filter((x) => x.includes('"kind":"direct"')).length).toBeLessThan(10);
      }
    } finally {
      for (const cl of clients) cl.close();
    }
  });
});

describe("presence merged across nodes", () => {
  test("a user connected on two nodes is one join, and leaves only when the last connection anywhere closes", async () => {
    const w1 = await on(0, "watch1");
    const w2 = await on(1, "watch2");
    const [dan2, dan3] = await Promise.all([on(1, "dan"), on(2, "dan")]);
    // Barriers: a later join on each of dan's nodes; every change of those nodes before it has reached the watchers.
    const mk2 = await on(1, "mk2");
    const mk3 = await on(2, "mk3");
    for (const w of [w1, w2])
      for (const u of ["mk2", "mk3"]) await w.until(() => w.presence.some((f) => f.event === "join" && named(f).includes(u)), `${u}'s join`);
    for (const w of [w1, w2]) {
      const about = w.presence.filter((f) => named(f).includes("dan"));
      expect(about.map((f) => f.event)).toEqual(["join"]);
    }
    for (const node of [0, 1, 2]) {
      const r = await eventually(
        () => json(`${c.node(node).http}/users/online`),
        (r) => r.users.includes("dan"),
        `node ${node} lists dan`,
      );
      expect(r.users.filter((u: string) => u === "dan").length).toBe(1);
      expect(r.count).toBe(new Set(r.users).size);
    }
    dan2.close();
    mk2.close(); // after dan's close on the same node
    for (const w of [w1, w2]) await w.until(() => w.presence.some((f) => f.event === "leave" && named(f).includes("mk2")), "mk2's leave");
    for (const w of [w1, w2]) expect(w.presence.filter((f) => named(f).includes("dan")).map((f) => f.event)).toEqual(["join"]);
    dan3.close();
    for (const w of [w1, w2]) {
      await w.until(() => w.presence.some((f) => f.event === "leave" && named(f).includes("dan")), "dan's leave");
      expect(w.presence.filter((f) => named(f).includes("dan")).map((f) => f.event)).toEqual(["join", "leave"]);
    }
    void mk3;
  }, 30_000);
});

describe("cids and resume across nodes", () => {
  test("a cid retried on another node gets the same id, and is stored and delivered once", async () => {
    const seer = await on(0, "seer");
    const e1 = await on(0, "erin");
    const e2 = await on(1, "erin");
    const e3 = await on(2, "erin");
    e1.send({ type: "broadcast", text: "once", cid: "same" });
    const first = await e1.next<AckFrame>(isAck("same"));
    e2.send({ type: "broadcast", text: "once", cid: "same" });
    expect(await e2.next<AckFrame>(isAck("same"))).toEqual({ type: "ack", cid: "same", id: first.id });
    // Two nodes at once with one cid: one id.
    e2.send({ type: "direct", to: "seer", text: "race", cid: "race" });
    e3.send({ type: "direct", to: "seer", text: "race", cid: "race" });
    const [r2, r3] = [await e2.next<AckFrame>(isAck("race")), await e3.next<AckFrame>(isAck("race"))];
    expect(r2.id).toBe(r3.id!);
    await barrier(e3, [seer, e1, e2, e3]);
    expect(msgs(seer, (m) => m.text === "once").map((m) => m.id)).toEqual([first.id!]);
    expect(msgs(seer, (m) => m.text === "race").map((m) => m.id)).toEqual([r2.id!]);
    for (const d of [e1, e2, e3]) expect(msgs(d, (m) => m.text === "race").length).toBe(1);
  });

  test("resume on a different node with since and epoch gets exactly what was missed, then live", async () => {
    const frank = await on(0, "frank", ["ops"]);
    const gina = await on(1, "gina", ["ops", "other"]);
    const node2 = await on(2, "ivan");
    await barrier(gina, [frank, gina, node2]);
    const { since, epoch } = frank;
    frank.close();
    const before = frank.messages.length;
    const expected: number[] = [];
    const send = async (frame: Record<string, unknown>, visible: boolean) => {
      const cid = crypto.randomUUID();
      gina.send({ ...frame, cid });
      const a = await gina.next<AckFrame>(isAck(cid));
      if (visible) expected.push(a.id!);
    };
    for (let i = 0; i < 3; i++) await send({ type: "broadcast", text: `missed-b${i}` }, true);
    for (let i = 0; i < 3; i++) await send({ type: "direct", to: "frank", text: `missed-d${i}` }, true);
    await send({ type: "direct", to: "hal", text: "not for frank" }, false);
    for (let i = 0; i < 2; i++) await send({ type: "room", room: "ops", text: `missed-r${i}` }, true);
    await send({ type: "room", room: "other", text: "not frank's room" }, false);
    await send({ type: "broadcast", text: "missed-last" }, true);
    // An ack on node 1 does not mean node 2 has read the message from the log yet: the replay counts what node 2 delivered.
    await node2.until(() => node2.messages.some((m) => m.text === "missed-last"), "node 2 delivered the last message");

    const w = await frank.connect(c.node(2), { since: since!, epoch: epoch! });
    expect(w).toMatchObject({ type: "welcome", user: "frank", resumed: true, replay: expected.length, epoch });
    await frank.until(() => frank.messages.length >= before + expected.length, "the replay");
    expect(frank.messages.slice(before).map((m) => m.id)).toEqual(expected);
    // Then live, from a third node.
    const ack = await (async () => {
      const h = await on(0, "hal");
      h.send({ type: "direct", to: "frank", text: "live now", cid: "live" });
      return h.next<AckFrame>(isAck("live"));
    })();
    expect(await frank.next<MessageFrame>(isText("live now"))).toMatchObject({ id: ack.id });
    expect(duplicates(frank.ids())).toEqual([]);

    // Every node names the same epoch; another epoch is never taken as a resume.
    for (const node of [0, 1, 2]) {
      const d = new Device("epochs");
      devices.push(d);
      expect((await d.connect(c.node(node))).epoch).toBe(epoch!);
      d.close();
    }
    const other = new Device("frank", ["ops"]);
    devices.push(other);
    expect(await other.connect(c.node(1), { since: since!, epoch: "not-this-store" })).toMatchObject({ resumed: false });
  });

  test("cluster mode keeps nothing in SQLite (DB_PATH unused)", () => {
    expect(c.sqliteUntouched()).toBe(true);
  });
});

describe("presence above PRESENCE_GLOBAL_MAX across nodes", () => {
  test("the welcome counts users on every node; a watch on node 1 hears a user on node 3 come and go; others hear nothing", async () => {
    const small = await Cluster.start(redis, { env: { PRESENCE_GLOBAL_MAX: "2" } });
    const mine: Device[] = [];
    const at = async (node: number, user: string) => {
      const d = await device(small.node(node), user);
      mine.push(d);
      return d;
    };
    try {
      const o0 = await at(0, "o0");
      const o1 = await at(1, "o1");
      await at(2, "o2");
      await eventually(
        () => json(`${small.node(1).http}/users/online`),
        (r) => r.count === 3,
        "node 2 counts 3 users",
      );
      const late = await at(1, "late");
      expect("online" in late.lastWelcome()).toBe(false);
      expect(late.lastWelcome().onlineCount).toBe(4);

      o0.send({ type: "watch", users: ["x", "o2"], cid: "w" });
      expect(await o0.next<AckFrame>(isAck("w"))).toEqual({ type: "ack", cid: "w", online: ["o2"] });
      o1.send({ type: "watch", users: ["marker"], cid: "m" });
      await o1.next(isAck("m"));
      const x = await at(2, "x");
      expect(await o0.next(mentions("x"))).toEqual({ type: "presence", event: "join", user: "x" });
      await at(2, "marker"); // after x's join on the same node: o1 hears the marker, and nothing of x before it
      expect(await o1.next(mentions("marker"))).toEqual({ type: "presence", event: "join", user: "marker" });
      x.close();
      expect(await o0.next(mentions("x"))).toEqual({ type: "presence", event: "leave", user: "x" });
      for (const d of mine)
        if (d !== o0) expect({ user: d.user, about: d.presence.filter((f) => named(f).includes("x")) }).toEqual({ user: d.user, about: [] });
    } finally {
      for (const d of mine) d.close();
      await small.stop();
    }
  });
});
