/**
 * A device resumes on a node whose delivery is behind what the device
 * already has (its old node was ahead): it must get nothing twice. Two
 * nodes in this process on one private redis-server; node B's broker talks
 * to Redis through a TCP relay the test can hold, so B's log tail is held
 * back for as long as the test says, with everything else real.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { createRedisBroker } from "../../src/broker/broker_redis";
import { createRedisHistory } from "../../src/history/history_redis";
import { consoleLogger } from "../../src/log";
import { Client, connect, isAck, isMessage, startServer, type TestServer } from "../helpers";
import { startRedis, type RedisServer } from "../redis_server";
import type { MessageFrame, WelcomeFrame } from "../../src/protocol";

/** A TCP relay to `port` whose replies (Redis to client) are held while `held` is set, then sent in order. */
function relay(port: number) {
  type Side = { peer?: Socket<Side>; queue: Uint8Array[] };
  const pairs = new Set<Socket<Side>>();
  let held = false;
  const flush = (s: Socket<Side>) => {
    for (const chunk of s.data.queue.splice(0)) s.data.peer?.write(chunk);
  };
  const listener: TCPSocketListener<Side> = Bun.listen<Side>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      async open(client) {
        client.data = { queue: [] };
        const upstream = await Bun.connect<Side>({
          hostname: "127.0.0.1",
          port,
          data: { peer: client, queue: [] },
          socket: {
            // Redis to the node: held back while `held`.
            data(s, chunk) {
              s.data.queue.push(new Uint8Array(chunk));
              if (!held) flush(s);
            },
            close() {
              client.end();
            },
          },
        });
        pairs.add(upstream);
        client.data.peer = upstream;
        flush(client);
      },
      data(client, chunk) {
        client.data.queue.push(new Uint8Array(chunk));
        if (client.data.peer) flush(client);
      },
      close(client) {
        client.data.peer?.end();
      },
    },
  });
  return {
    url: `redis://127.0.0.1:${listener.port}`,
    hold() {
      held = true;
    },
    release() {
      held = false;
      for (const s of pairs) flush(s);
    },
    stop() {
      listener.stop(true);
      for (const s of pairs) s.end();
    },
  };
}

let redis: RedisServer;
const stops: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});
afterAll(async () => {
  await redis?.stop();
});

/** A node on the shared Redis; its broker reaches Redis at `brokerUrl`. */
async function node(prefix: string, brokerUrl = redis.url): Promise<TestServer> {
  const history = await createRedisHistory({ url: redis.url, prefix });
  const broker = await createRedisBroker({ url: brokerUrl, prefix, log: consoleLogger });
  const s = startServer({ history, broker });
  await s.app.decorator.hub.ready;
  stops.push(async () => {
    await s.stop();
    await broker.close();
  });
  return s;
}

const ids = (c: Client) => c.frames.filter(isMessage).map((f) => (f as MessageFrame).id);

for (const batch of [false, true]) {
  test(`streamReplay with since past the node's delivery${batch ? " (?batch=1)" : ""}: waits for delivery to reach since, then sends only what is newer, once`, async () => {
    const prefix = `behind${batch ? "b" : "u"}:`;
    const r = relay(redis.port);
    stops.push(() => r.stop());
    const a = await node(prefix);
    const b = await node(prefix, r.url);
    const q = batch ? "?batch=1" : "";

    // B's log tail is held: what A's users send now reaches A's sockets, not B's.
    r.hold();
    const sender = await connect(`${a.ws}/ws/sam${q}`);
    const device = await connect(`${a.ws}/ws/rita${q}`);
    stops.push(() => (sender.close(), device.close()));
    for (let i = 0; i < 5; i++) sender.send({ type: "broadcast", text: `m${i}`, cid: `c${i}` });
    const acks = await sender.take(5, (f) => f.type === "ack");
    const last = Math.max(...acks.map((f) => (f.type === "ack" ? f.id! : 0)));
    await device.take(5, isMessage);
    expect(b.app.decorator.hub.deps.broker.deliveredThrough()).toBeLessThan(last);

    // The device moves to B with everything through `last`, while B has delivered less.
    device.close();
    const moved = new Client(`${b.ws}/ws/rita${q}${q ? "&" : "?"}since=${last}`);
    stops.push(() => moved.close());
    const w = await moved.next<WelcomeFrame>((f) => f.type === "welcome");
    expect(w.resumed).toBe(true);
    expect(w.lastId).toBe(last);
    expect(w.replay).toBe(0);

    // One more message, then B's tail is let go: it delivers all six ids to its sockets.
    sender.send({ type: "broadcast", text: "after", cid: "c-after" });
    const after = (await sender.next(isAck("c-after"))) as { id: number };
    r.release();
    await moved.next((f) => f.type === "message" && f.text === "after");
    expect(ids(moved)).toEqual([]); // "after" was taken; nothing else arrived before it
    expect(after.id).toBeGreaterThan(last);
    // A marker after it: still nothing from before `last` came late.
    sender.send({ type: "broadcast", text: "marker", cid: "c-marker" });
    await moved.next((f) => f.type === "message" && f.text === "marker");
    expect(ids(moved)).toEqual([]);
  });
}
