/**
 * Redis goes away mid-stream (issue 11): redis-server with `appendonly yes
 * --appendfsync always` and three nodes, while senders on every node send
 * with cids (resending a cid refused with store_failed). Restarted cleanly
 * (SIGTERM) or killed (SIGKILL) and started again on its AOF: delivery
 * resumes with no gap, every acked message reaches every device exactly once
 * and in id order (devices either stay connected or are closed with 1013 and
 * resume with `since`), nothing acked is lost, and the epoch is unchanged.
 */
import { afterAll, afterEach, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { Cluster, Device, Sender, diff, duplicates, keepConnected, redisServer } from "./cluster";
import type { RedisServer } from "../redis_server";

// Longer than any wait inside a test, so a stuck wait fails with its own message.
setDefaultTimeout(30_000);

let redis: RedisServer;
let c: Cluster | undefined;
const devices: Device[] = [];
const stops: (() => void)[] = [];
/** Set while a test has Redis stopped: the next test gets it back even if this one failed. */
let redisDown = false;

beforeAll(async () => {
  redis = await redisServer(true);
});
afterEach(async () => {
  for (const s of stops.splice(0)) s();
  for (const d of devices.splice(0)) d.close();
  await c?.stop();
  c = undefined;
  if (redisDown) await redis.restart();
  redisDown = false;
});
afterAll(async () => {
  await redis?.stop();
});

async function flow(how: "restart" | "kill") {
  c = await Cluster.start(redis);
  const cl = c;
  const open = async (node: number, user: string) => {
    const d = new Device(user);
    devices.push(d);
    await d.connect(cl.node(node), { since: 0 });
    // Closed (1013 when the node lost messages, 1011 when it could not read the store): resume on the same node.
    stops.push(keepConnected(d, () => cl.node(node)));
    return d;
  };
  const receivers: Device[] = [];
  for (const u of ["r0", "r1"]) for (const n of [0, 1, 2]) receivers.push(await open(n, u));
  const senderDevices = [await open(0, "s0"), await open(1, "s1"), await open(2, "s2")];
  const epoch = senderDevices[0]!.epoch;
  // Far more than get acked while Redis shuts down: no sender may finish before it is gone.
  const PER = 1500;
  const STOP_AT = 100;
  const sends = senderDevices.map(
    (d, k) =>
      new Sender(d, PER, (i) => (i % 5 === 4 ? { type: "direct", to: `r${i % 2}`, text: `k${k}-${i}` } : { type: "broadcast", text: `k${k}-${i}` }), 10),
  );
  for (const s of sends) s.pump();
  const acked = () => sends.reduce((n, s) => n + s.acked.size, 0);
  await senderDevices[0]!.until(() => sends.some((s) => s.acked.size >= STOP_AT), `${STOP_AT} acks of one sender before Redis goes`, 20_000);
  expect(acked()).toBeLessThan(3 * PER); // mid-stream
  redisDown = true;
  if (how === "restart")
    await redis.stop(); // SIGTERM: Redis writes its AOF and exits
  else await redis.kill(); // SIGKILL: nothing more is written
  // Every ack received by now was answered by Redis before it went.
  const ackedBefore = sends.flatMap((s) => s.ids());
  // Mid-stream: every sender is refused (store_failed) while Redis is away, and resends.
  for (const s of sends) await s.d.until(() => s.storeFailures > 0 || s.done, "a store_failed while Redis is away", 20_000);
  expect(sends.every((s) => !s.done)).toBe(true);
  await redis.restart(); // on the same port and folder, from its AOF
  redisDown = false;
  for (const s of sends) await s.d.until(() => s.done, "every message acked", 30_000);
  const all = sends.flatMap((s, k) => [...s.acked].map(([cid, id]) => ({ id, i: Number(cid.slice(1)), k })));
  expect(duplicates(all.map((m) => m.id))).toEqual([]);
  // A cid sent again (after store_failed or on another node after a reconnect) always got its first id.
  for (const s of sends) expect(s.conflictingAcks()).toEqual([]);
  const visibleTo = (user: string) => all.filter((m) => m.i % 5 !== 4 || `r${m.i % 2}` === user || `s${m.k}` === user).map((m) => m.id);
  const everyone = [...receivers, ...senderDevices];
  for (const d of everyone) {
    const want = new Set(visibleTo(d.user));
    await d.until(() => d.ids().filter((id) => want.has(id)).length >= want.size, `${want.size} messages`, 30_000);
  }
  for (const d of everyone) {
    const ids = d.ids();
    expect({ device: d.name, dup: duplicates(ids), ...diff(ids, visibleTo(d.user)) }).toEqual({ device: d.name, dup: [], missing: [], extra: [] });
    for (let i = 1; i < ids.length; i++) if (ids[i]! <= ids[i - 1]!) throw new Error(`${d.name}: id ${ids[i]} after ${ids[i - 1]}`);
    // Either it stayed connected, or it was closed with 1013 (missed messages) or 1011 (store unreadable) and resumed.
    expect({ device: d.name, closes: d.closes.filter((code) => code !== 1013 && code !== 1011) }).toEqual({ device: d.name, closes: [] });
    expect(d.welcomes.slice(1).every((w) => w.resumed && w.epoch === epoch)).toBe(true);
  }
  // Nothing acked was lost: a fresh device replays every acked message from the store, on the same epoch.
  const fresh = new Device("r0");
  devices.push(fresh);
  const w = await fresh.connect(cl.node(1), { since: 0 });
  expect(w.epoch).toBe(epoch!);
  expect(w.resumed).toBe(true);
  const want = visibleTo("r0");
  await fresh.until(() => fresh.ids().length >= want.length, "the full replay", 20_000);
  expect(diff(fresh.ids(), want)).toEqual({ missing: [], extra: [] });
  expect(
    diff(
      fresh.ids(),
      ackedBefore.filter((id) => want.includes(id)),
    ).missing,
  ).toEqual([]);
  const failures = sends.reduce((n, s) => n + s.storeFailures, 0);
  const closes = everyone.reduce((n, d) => n + d.closes.length, 0);
  console.log(`redis ${how}: ${ackedBefore.length} acked before, ${all.length} in all, ${failures} store_failed (resent), ${closes} closes`);
}

test("restart redis-server (SIGTERM, AOF) mid-stream: delivery resumes with no gap, every acked message exactly once", async () => {
  await flow("restart");
}, 90_000);

test("SIGKILL redis-server with appendfsync always mid-stream: after a restart on its AOF nothing acked is lost", async () => {
  await flow("kill");
}, 90_000);
