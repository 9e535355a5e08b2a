/**
 * Presence when a node or Redis only seemed dead (issue 11: "a user is online
 * while any of their connections is open on any node"). A node frozen past
 * PRESENCE_TTL (SIGSTOP) is rightly taken offline, but once it runs again its
 * users, whose sockets never closed, must be online again on every node. The
 * same after Redis was away longer than PRESENCE_TTL: nobody's heartbeat
 * could be written, and when Redis is back every connected user must be
 * online everywhere.
 */
import { afterAll, afterEach, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { RedisClient } from "bun";
import { Cluster, Device, named, redisServer } from "./cluster";
import { redisKeys } from "../../src/cluster/redis";
import type { RedisServer } from "../redis_server";
import { waitUntil } from "../helpers";

// Longer than any wait inside a test, so a stuck wait fails with its own message.
setDefaultTimeout(30_000);

// Long enough that a loaded machine (the whole suite on 2 cores) never misses a beat by accident.
const TTL_MS = 3000;
let redis: RedisServer;
let c: Cluster | undefined;
const devices: Device[] = [];
/** Set while a test has Redis stopped: the next test gets it back even if this one failed. */
let redisDown = false;

beforeAll(async () => {
  redis = await redisServer(true);
});
afterEach(async () => {
  for (const d of devices.splice(0)) d.close();
  await c?.stop(); // SIGKILL ends a stopped process too
  c = undefined;
  if (redisDown) await redis.restart();
  redisDown = false;
});
afterAll(async () => {
  await redis?.stop();
});

/** Polls every node's GET /users/online until each lists exactly `users`; throws with the last answers after `ms`. */
async function everyNodeLists(cl: Cluster, users: string[], ms: number): Promise<void> {
  const want = JSON.stringify([...users].sort());
  let last: string[] = [];
  await waitUntil(
    async () => {
      last = await Promise.all(cl.alive().map(async (n) => JSON.stringify(((await (await fetch(`${n.http}/users/online`)).json()).users as string[]).sort())));
      return last.every((l) => l === want);
    },
    () => `every node lists ${want}; nodes list ${last.join(" / ")}`,
    { ms, pollMs: 50 },
  );
}

async function threeUsers(cl: Cluster): Promise<Device[]> {
  const ds: Device[] = [];
  for (const n of [0, 1, 2]) {
    const d = new Device(`p${n}`);
    devices.push(d);
    await d.connect(cl.node(n));
    ds.push(d);
  }
  await everyNodeLists(cl, ["p0", "p1", "p2"], 5000);
  return ds;
}

test("a node frozen past PRESENCE_TTL is taken offline, and its users come back online everywhere once it runs again", async () => {
  c = await Cluster.start(redis, { env: { PRESENCE_TTL: `${TTL_MS}ms` } });
  const cl = c;
  const [p0, p1, p2] = await threeUsers(cl);
  cl.node(1).proc.kill("SIGSTOP");
  try {
    // The others take it for dead: p1 leaves (for p0 or p2 or both; that both do is node_kill.test.ts's business).
    const left = (d: Device) => d.presence.some((f) => f.event === "leave" && named(f).includes("p1"));
    await p0!.until(() => left(p0!) || left(p2!), "p1's leave", 10 * TTL_MS);
  } finally {
    cl.node(1).proc.kill("SIGCONT");
  }
  // p1's socket never closed: once its node runs again, p1 is online everywhere again.
  for (const d of [p0!, p2!]) {
    await d.until(() => (d.presence.filter((f) => named(f).includes("p1")).at(-1)?.event ?? "join") === "join", "p1's join again", 5 * TTL_MS);
  }
  await everyNodeLists(cl, ["p0", "p1", "p2"], 5 * TTL_MS);
  expect(p1!.closes).toEqual([]);
}, 30_000);

test("Redis away longer than PRESENCE_TTL: when it is back, every connected user is online on every node, and nobody was told of a leave", async () => {
  c = await Cluster.start(redis, { env: { PRESENCE_TTL: `${TTL_MS}ms` } });
  const cl = c;
  const ds = await threeUsers(cl);
  redisDown = true;
  await redis.stop();
  // The fault itself lasts 2.5 TTLs (its length is the fault, nothing is awaited by it): every
  // heartbeat in Redis is older than the TTL when it comes back.
  await new Promise((r) => setTimeout(r, 2.5 * TTL_MS));
  const back = Date.now();
  await redis.restart();
  redisDown = false;
  // Wait until every node has beaten twice since (the first beat is where a live node could be
  // taken for dead): read the heartbeats in Redis.
  const r = new RedisClient(redis.url);
  try {
    const key = redisKeys(cl.prefix).nodes;
    let first: Map<string, number> | undefined;
    let pairs: [string, number][] = [];
    await waitUntil(
      async () => {
        const flat = (await r.send("ZRANGE", [key, "0", "-1", "WITHSCORES"])) as unknown;
        pairs =
          Array.isArray(flat) && Array.isArray(flat[0])
            ? (flat as [string, string][]).map(([n, s]) => [n, Number(s)])
            : Array.from({ length: (flat as string[]).length / 2 }, (_, i) => [(flat as string[])[2 * i]!, Number((flat as string[])[2 * i + 1])]);
        const beats = new Map(pairs.filter(([, s]) => s >= back));
        if (!first && beats.size >= 3) first = beats;
        else if (first && [...first].every(([n, s]) => (beats.get(n) ?? 0) > s)) return true;
        return false;
      },
      () => `the nodes beat twice after Redis came back: ${JSON.stringify(pairs)}`,
      { ms: 10 * TTL_MS, pollMs: 50 },
    );
  } finally {
    r.close();
  }
  await everyNodeLists(cl, ["p0", "p1", "p2"], 5 * TTL_MS);
  for (const d of ds) expect({ user: d.user, leaves: d.presence.filter((f) => f.event === "leave") }).toEqual({ user: d.user, leaves: [] });
  for (const d of ds) expect(d.closes).toEqual([]);
}, 30_000);
