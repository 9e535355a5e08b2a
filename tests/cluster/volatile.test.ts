/**
 * Receipts and typing across nodes (issues 9 and 11): they travel on the
 * broker's volatile stream, never through the store, and reach every device
 * of the user they are for, on whichever node it is.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import type { AckFrame, MessageFrame, ReceiptFrame, SingleServerFrame as ServerFrame, TypingEvent } from "../../src/protocol";
import { Cluster, redisServer } from "./cluster";
import type { RedisServer } from "../redis_server";
import { connect, isAck, isMessage, waitUntil, type Client } from "../helpers";

setDefaultTimeout(30_000);

let redis: RedisServer;
let c: Cluster;
const clients: Client[] = [];
const on = async (i: number, user: string) => {
  const cl = await connect(`${c.node(i).ws}/ws/${user}`);
  clients.push(cl);
  return cl;
};
const isReceipt = (f: ServerFrame): f is ReceiptFrame => f.type === "receipt";
const isTyping = (f: ServerFrame): f is TypingEvent => f.type === "typing";

beforeAll(async () => {
  redis = await redisServer(false);
  c = await Cluster.start(redis, { nodes: 2 });
});
afterAll(async () => {
  for (const cl of clients) cl.close();
  await c?.stop();
  await redis?.stop();
});

describe("receipts and typing across nodes", () => {
  test("delivered and read reach the sender on another node; read reaches the reader's device on the sender's node", async () => {
    const alice = await on(0, "alice");
    const bob1 = await on(1, "bob");
    const bob0 = await on(0, "bob");
    alice.send({ type: "direct", to: "bob", text: "across", cid: "d1" });
    const id = (await alice.next<AckFrame>(isAck("d1"))).id!;
    for (const b of [bob0, bob1]) expect((await b.next<MessageFrame>(isMessage)).id).toBe(id);

    bob1.send({ type: "received", id });
    expect(await alice.next<ReceiptFrame>(isReceipt)).toEqual({ type: "receipt", event: "delivered", id, by: "bob" });

    bob1.send({ type: "read", id });
    expect(await alice.next<ReceiptFrame>(isReceipt)).toEqual({ type: "receipt", event: "read", id, by: "bob", conversation: "@bob" });
    // bob's device on node 0 learns that he read it on node 1: unread is the same everywhere.
    expect(await bob0.next<ReceiptFrame>((f) => isReceipt(f) && f.event === "read")).toEqual({
      type: "receipt",
      event: "read",
      id,
      by: "bob",
      conversation: "@alice",
    });
  });

  test("typing reaches every device of the recipient on both nodes, and is never replayed", async () => {
    const carol = await on(1, "carol");
    const dan0 = await on(0, "dan");
    const dan1 = await on(1, "dan");
    carol.send({ type: "typing", to: "dan" });
    for (const d of [dan0, dan1]) expect(await d.next<TypingEvent>(isTyping)).toEqual({ type: "typing", from: "carol", to: "dan" });
    // A fresh device resuming from the start gets messages only: typing was never stored.
    carol.send({ type: "direct", to: "dan", text: "after typing", cid: "t1" });
    const id = (await carol.next<AckFrame>(isAck("t1"))).id!;
    const late = await connect(`${c.node(0).ws}/ws/dan?since=0`);
    clients.push(late);
    expect((await late.next<MessageFrame>((f) => isMessage(f) && f.id === id)).text).toBe("after typing");
    expect(late.frames.filter(isTyping)).toEqual([]);
  });

  test("/metrics of a node shows the cluster's delivery lag and Redis round trip once messages crossed", async () => {
    const sam = await on(0, "sam");
    const tom = await on(1, "tom");
    sam.send({ type: "direct", to: "tom", text: "measured", cid: "m1" });
    await sam.next(isAck("m1"));
    await tom.next(isMessage);
    const count = (text: string, name: string) => Number(new RegExp(`^wirechat_${name}_count (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    const scrape = async () => (await fetch(`${c.node(1).http}/metrics`)).text();
    expect(count(await scrape(), "cluster_delivery_lag_seconds")).toBeGreaterThan(0);
    // The round trip is a PING every 5 s.
    await waitUntil(async () => count(await scrape(), "redis_roundtrip_seconds") > 0, "node 1 measured a Redis round trip", { ms: 12_000, pollMs: 200 });
    // Nothing was missed, so no node told its sockets to resume.
    expect(/^wirechat_resyncs_total (\d+)$/m.exec(await scrape())?.[1]).toBe("0");
  });
});
