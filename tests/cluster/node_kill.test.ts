/**
 * A node dies (issue 11): redis-server with AOF and three nodes; one node is
 * killed with SIGKILL while messages flow. Its clients resume on the other
 * nodes with `since`; every acked message reaches every device exactly once
 * and in id order; the dead node's users go offline for everyone within 2x
 * PRESENCE_TTL, and a user still connected elsewhere does not.
 */
import { afterAll, afterEach, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { Cluster, Device, Sender, diff, duplicates, keepConnected, named, redisServer } from "./cluster";
import type { RedisServer } from "../redis_server";

// Longer than any wait inside a test, so a stuck wait fails with its own message.
setDefaultTimeout(30_000);

const TTL_MS = 2000;
let redis: RedisServer;
let c: Cluster | undefined;
const devices: Device[] = [];
const stops: (() => void)[] = [];

beforeAll(async () => {
  redis = await redisServer(true);
});
afterEach(async () => {
  for (const s of stops.splice(0)) s();
  for (const d of devices.splice(0)) d.close();
  await c?.stop();
  c = undefined;
});
afterAll(async () => {
  await redis?.stop();
});

/** Where a device whose node went resumes: the running nodes, round robin from `home`'s next. */
const picker = (home: number) => (attempt: number) => {
  const alive = c!.alive();
  return alive.length === 0 ? undefined : alive[(home + 1 + attempt) % alive.length];
};

test("SIGKILL a node while messages flow: its clients resume elsewhere; every acked message arrives exactly once, in id order", async () => {
  c = await Cluster.start(redis, { env: { PRESENCE_TTL: `${TTL_MS}ms` } });
  const cl = c;
  const open = async (node: number, user: string) => {
    const d = new Device(user);
    devices.push(d);
    await d.connect(cl.node(node), { since: 0 });
    stops.push(keepConnected(d, picker(node)));
    return d;
  };
  // Receivers r0..r2 each with a device on every node; a sender on every node.
  const receivers: Device[] = [];
  for (const u of ["r0", "r1", "r2"]) for (const n of [0, 1, 2]) receivers.push(await open(n, u));
  const senderDevices = [await open(0, "s0"), await open(1, "s1"), await open(2, "s2")];
  const PER = 150;
  const sends = senderDevices.map(
    (d, k) =>
      new Sender(d, PER, (i) => (i % 4 === 3 ? { type: "direct", to: `r${i % 3}`, text: `k${k}-${i}` } : { type: "broadcast", text: `k${k}-${i}` }), 10),
  );
  for (const s of sends) s.pump();
  const acked = () => sends.reduce((n, s) => n + s.acked.size, 0);
  await senderDevices[0]!.until(() => acked() >= PER, `${PER} acks before the kill`, 20_000);
  const ackedAtKill = acked();
  await cl.kill(1);
  expect(ackedAtKill).toBeLessThan(3 * PER); // it happened mid-stream

  for (const s of sends) await s.d.until(() => s.done, `all ${PER} acked`, 30_000);
  // What each user may see: every broadcast, and the directs to or from them.
  const all = sends.flatMap((s) => [...s.acked].map(([cid, id]) => ({ id, i: Number(cid.slice(1)), k: sends.indexOf(s) })));
  expect(duplicates(all.map((m) => m.id))).toEqual([]);
  // A cid sent again (after store_failed or on another node after a reconnect) always got its first id.
  for (const s of sends) expect(s.conflictingAcks()).toEqual([]);
  const visibleTo = (user: string) => all.filter((m) => m.i % 4 !== 3 || `r${m.i % 3}` === user || `s${m.k}` === user).map((m) => m.id);
  const everyone = [...receivers, ...senderDevices];
  for (const d of everyone) {
    const want = visibleTo(d.user);
    await d.until(() => d.ids().filter((id) => want.includes(id)).length >= want.length, `${want.length} messages`, 30_000);
  }
  for (const d of everyone) {
    const want = visibleTo(d.user);
    const ids = d.ids();
    expect({ device: d.name, dup: duplicates(ids) }).toEqual({ device: d.name, dup: [] });
    expect({ device: d.name, ...diff(ids, want) }).toEqual({ device: d.name, missing: [], extra: [] });
    // Replay then live, across reconnects: always in id order.
    for (let i = 1; i < ids.length; i++) if (ids[i]! <= ids[i - 1]!) throw new Error(`${d.name}: id ${ids[i]} after ${ids[i - 1]}`);
  }
  // The killed node's clients did resume (they saw the connection drop).
  const movedDevices = [...receivers.filter((_, i) => i % 3 === 1), senderDevices[1]!];
  for (const d of movedDevices) {
    expect(d.closes.length).toBeGreaterThanOrEqual(1);
    expect(d.welcomes.length).toBeGreaterThanOrEqual(2);
    expect(d.welcomes.slice(1).every((w) => w.resumed)).toBe(true);
  }

  // A node started again catches up from the store: a fresh device there replays every message.
  await cl.startNode(1);
  const fresh = new Device("r0");
  devices.push(fresh);
  await fresh.connect(cl.node(1), { since: 0 });
  const want = visibleTo("r0");
  await fresh.until(() => fresh.ids().length >= want.length, "the full replay", 20_000);
  expect(diff(fresh.ids(), want)).toEqual({ missing: [], extra: [] });
  expect(duplicates(fresh.ids())).toEqual([]);
}, 90_000);

test("a node that dies takes its users offline within 2x PRESENCE_TTL, on every surviving node; a user also on another node stays online", async () => {
  c = await Cluster.start(redis, { env: { PRESENCE_TTL: `${TTL_MS}ms` } });
  const cl = c;
  const at = async (node: number, user: string) => {
    const d = new Device(user);
    devices.push(d);
    await d.connect(cl.node(node));
    return d;
  };
  // Watchers on the two nodes that survive; ghost only on the node that dies; ghost2 on it and on node 3.
  const watchers = [await at(0, "w0"), await at(2, "w2")];
  await at(1, "ghost");
  await at(1, "ghost2");
  await at(2, "ghost2");
  for (const w of watchers)
    for (const u of ["ghost", "ghost2"]) await w.until(() => w.presence.some((f) => f.event === "join" && named(f).includes(u)), `${u}'s join`);
  const killedAt = Date.now();
  await cl.kill(1);
  // The deadline is the documented bound: PRESENCE_TTL plus one heartbeat, under 2x PRESENCE_TTL.
  const left = () => Math.max(0, 2 * TTL_MS - (Date.now() - killedAt));
  await Promise.all(
    watchers.map((w) =>
      w.until(() => w.presence.some((f) => f.event === "leave" && named(f).includes("ghost")), "ghost's leave (within 2x PRESENCE_TTL of the kill)", left()),
    ),
  );
  for (const w of watchers) expect(w.presence.filter((f) => f.event === "leave" && named(f).includes("ghost2"))).toEqual([]);
  for (const node of [0, 2]) {
    const r = await (await fetch(`${cl.node(node).http}/users/online`)).json();
    expect({ node, users: r.users.sort() }).toEqual({ node, users: ["ghost2", "w0", "w2"] });
  }
}, 30_000);
