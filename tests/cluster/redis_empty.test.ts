/**
 * Redis restarted EMPTY (issue 11): redis-server without AOF (and no RDB), so
 * a restart loses every message. The nodes must notice: connected clients are
 * closed with 1013, the welcome carries a new epoch (the same on every node),
 * and a client resuming with the old `since` and `epoch` gets
 * `resumed:false`, never a silent gap; afterwards delivery works on the new
 * data set.
 */
import { afterAll, afterEach, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import type { AckFrame, MessageFrame } from "../../src/protocol";
import { Cluster, Device, diff, duplicates, isAck, isText, redisServer } from "./cluster";
import type { RedisServer } from "../redis_server";

// Longer than any wait inside a test, so a stuck wait fails with its own message.
setDefaultTimeout(30_000);

let redis: RedisServer;
let c: Cluster | undefined;
const devices: Device[] = [];

beforeAll(async () => {
  redis = await redisServer(false);
});
afterEach(async () => {
  for (const d of devices.splice(0)) d.close();
  await c?.stop();
  c = undefined;
});
afterAll(async () => {
  await redis?.stop();
});

test("Redis restarted empty: 1013, a new epoch on every node, resumed:false for the old since+epoch, then delivery on the new data set", async () => {
  c = await Cluster.start(redis);
  const cl = c;
  const at = async (node: number, user: string, since?: number) => {
    const d = new Device(user);
    devices.push(d);
    await d.connect(cl.node(node), since === undefined ? {} : { since });
    return d;
  };
  const ds = [await at(0, "u0", 0), await at(1, "u1", 0), await at(2, "u2", 0)];
  const late = await at(1, "late", 0);
  const oldEpoch = ds[0]!.epoch!;
  for (const d of ds) expect(d.epoch).toBe(oldEpoch);

  // 30 messages before the restart; everyone has them.
  const ids: number[] = [];
  for (let i = 0; i < 30; i++) {
    const from = ds[i % 3]!;
    from.send({ type: "broadcast", text: `old-${i}`, cid: `o${i}` });
    ids.push((await from.next<AckFrame>(isAck(`o${i}`))).id!);
  }
  for (const d of [...ds, late]) await d.until(() => d.ids().length >= 30, "the 30 old messages");
  const K = Math.max(...ids);
  expect(late.since).toBe(K);
  late.close(); // offline while Redis restarts

  await redis.restart(); // SIGTERM; no AOF, no RDB: it comes back empty

  // Every node notices the store started over and closes its sockets with 1013.
  for (const d of ds) await d.until(() => d.closes.length > 0, "the close after Redis lost its data", 15_000);
  for (const d of ds) expect({ user: d.user, closes: d.closes }).toEqual({ user: d.user, closes: [1013] });

  // Resuming with the old since and epoch, on another node: a new epoch and resumed:false.
  const welcomes = await Promise.all(ds.map((d, i) => d.connect(cl.node((i + 1) % 3), { since: K, epoch: oldEpoch })));
  const newEpoch = welcomes[0]!.epoch;
  expect(newEpoch).not.toBe(oldEpoch);
  for (const w of welcomes) expect(w).toMatchObject({ type: "welcome", epoch: newEpoch, resumed: false });
  // The same epoch on every node, for a fresh connect too.
  for (const node of [0, 1, 2]) expect((await at(node, "fresh")).epoch).toBe(newEpoch);

  // The since is also above the new store's newest id: without an epoch too, that is resumed:false.
  const noEpoch = new Device("u0");
  devices.push(noEpoch);
  expect(await noEpoch.connect(cl.node(2), { since: K, epoch: null })).toMatchObject({ resumed: false, epoch: newEpoch });
  noEpoch.close();

  // New messages on the new data set: ids start again, and reach every device once.
  const fresh: number[] = [];
  for (let i = 0; i < 40; i++) {
    const from = ds[i % 3]!;
    const cid = `n${i}`;
    from.send({ type: "broadcast", text: `new-${i}`, cid });
    // A node may learn of the new epoch only from a refused append: the sender is told store_failed and sends again.
    for (;;) {
      const f = await from.next((x) => (x.type === "ack" || x.type === "error") && x.cid === cid, `ack of ${cid}`);
      if (f.type === "ack") {
        fresh.push(f.id!);
        break;
      }
      expect(f).toMatchObject({ type: "error", code: "store_failed" });
      from.send({ type: "broadcast", text: `new-${i}`, cid });
    }
  }
  expect(Math.min(...fresh)).toBeLessThanOrEqual(K); // the ids started over: an old since would hide these
  expect(Math.max(...fresh)).toBeGreaterThan(K); // and now the new store's newest is above the old since
  for (const d of ds) await d.until(() => d.messages.filter((m) => m.text.startsWith("new-")).length >= 40, "the 40 new messages");
  for (const d of ds) {
    const got = d.messages.filter((m) => m.text.startsWith("new-")).map((m) => m.id);
    expect({ user: d.user, dup: duplicates(got), ...diff(got, fresh) }).toEqual({ user: d.user, dup: [], missing: [], extra: [] });
  }

  // The device that was offline comes back with the old since+epoch while the new store's ids have passed
  // it: only the epoch tells, and it must: resumed:false, and the replay is that of a connect without since.
  const back = await late.connect(cl.node(0), { since: K, epoch: oldEpoch });
  expect(back).toMatchObject({ epoch: newEpoch, resumed: false });
  expect(back.lastId).toBeGreaterThan(K);
  await late.until(() => late.messages.length >= 30 + back.replay, "the replay");
  const replayed = late.messages.slice(30);
  expect(replayed.length).toBe(back.replay);
  expect(replayed.every((m: MessageFrame) => m.text.startsWith("new-"))).toBe(true);

  // And resuming on the new epoch works again, on another node.
  const u1 = ds[1]!;
  const since = u1.since!;
  u1.close();
  ds[0]!.send({ type: "broadcast", text: "after", cid: "after" });
  const afterId = (await ds[0]!.next<AckFrame>(isAck("after"))).id!;
  const w = await u1.connect(cl.node(2), { since, epoch: newEpoch });
  expect(w).toMatchObject({ resumed: true, epoch: newEpoch, replay: 1 });
  expect(await u1.next<MessageFrame>(isText("after"))).toMatchObject({ id: afterId });
}, 60_000);
