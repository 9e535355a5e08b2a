/**
 * Fanout keeps each topic's subscriber count between subscription changes:
 * the hub reports every subscribe, unsubscribe and close (topicsChanged), so
 * frames out stay exact and a ?batch=1 device that arrives later is still
 * reached. Real server, real sockets; the broker's own counts (fan-out only,
 * not the hub's acks and welcomes).
 */
import { expect, test } from "bun:test";
import { type Client, isAck, isMessage, serverPerTest, waitUntil } from "../helpers";
import { createLocalBroker } from "../../src/broker/broker_local";
import type { Broker } from "../../src/broker/broker";
import { batchTopic, Fanout } from "../../src/broker/fanout";

const t = serverPerTest();
const { join } = t;
const isPresence = (event: string, room: string, user: string) => (f: { type: string; event?: string; room?: string; user?: string; users?: string[] }) =>
  f.type === "presence" && f.event === event && f.room === room && (f.user === user || f.users?.includes(user) === true);

test("Fanout counts: frames out follow devices that connect, close, join and leave", async () => {
  const broker: Broker = createLocalBroker();
  // No presence to everyone: connects publish nothing that lands between the measurements.
  const s = t.start({ broker, presenceGlobalMax: 0 });
  const framesOut = () => broker.counts.framesOut;
  const alice1 = await join("/ws/alice");
  const bob = await join("/ws/bob");
  /** Frames the fan-out counted for one message from bob, once every receiver has it. */
  const sendAndCount = async (frame: Record<string, string>, receivers: Client[]) => {
    const before = framesOut();
    bob.send(frame);
    for (const c of receivers) await c.next((f) => isMessage(f) && f.text === frame.text);
    return framesOut() - before;
  };

  // bob's echo and alice's one device.
  expect(await sendAndCount({ type: "direct", to: "alice", text: "d1" }, [alice1, bob])).toBe(2);
  // A second device of alice's: the counts read before it came are stale.
  const alice2 = await join("/ws/alice");
  expect(await sendAndCount({ type: "direct", to: "alice", text: "d2" }, [alice1, alice2, bob])).toBe(3);
  // A third, batching: the first batching socket on the node, reached at once.
  const alice3 = await join("/ws/alice?batch=1");
  expect(await sendAndCount({ type: "direct", to: "alice", text: "d3" }, [alice1, alice2, alice3, bob])).toBe(4);
  // One closes while others of alice's stay in the same topic.
  alice2.close();
  await waitUntil(
    () => s.app.decorator.hub.connections === 3,
    () => "the server has handled the close",
  );
  expect(await sendAndCount({ type: "direct", to: "alice", text: "d4" }, [alice1, alice3, bob])).toBe(3);

  // Rooms: both join (each join's presence frame reaches the room before counting starts).
  alice1.send({ type: "join", room: "r", cid: "j1" });
  await alice1.next(isAck("j1"));
  await alice1.next(isPresence("join", "r", "alice"));
  bob.send({ type: "join", room: "r", cid: "j2" });
  await bob.next(isAck("j2"));
  await alice1.next(isPresence("join", "r", "bob"));
  await bob.next(isPresence("join", "r", "bob"));
  expect(await sendAndCount({ type: "room", room: "r", text: "r1" }, [alice1, bob])).toBe(2);
  alice1.send({ type: "leave", room: "r", cid: "l1" });
  await alice1.next(isAck("l1"));
  await bob.next(isPresence("leave", "r", "alice"));
  expect(await sendAndCount({ type: "room", room: "r", text: "r2" }, [bob])).toBe(1);
});

test("Fanout.event: reaches a batching socket that is in the topic's batch variant but not yet in batch:all", async () => {
  const fanout = new Fanout();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req, srv) => (srv.upgrade(req) ? undefined : new Response("upgrade only", { status: 400 })),
    websocket: {
      // As a ?batch=1 socket that sent `watch` during its replay: watching, not yet live.
      open(ws) {
        ws.subscribe(batchTopic("watch:carol"));
        fanout.topicsChanged();
        ws.send("ready");
      },
      message() {},
    },
  });
  fanout.server = server;
  const got: string[] = [];
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  ws.onmessage = (e) => got.push(String(e.data));
  try {
    await waitUntil(
      () => got.includes("ready"),
      () => "the socket opened",
    );
    const presence = '{"type":"presence","event":"join","user":"carol"}';
    fanout.event("watch:carol", presence);
    await waitUntil(
      () => got.includes(presence),
      () => `the presence frame arrived (got ${JSON.stringify(got)})`,
    );
    expect(fanout.framesOut).toBe(1);
  } finally {
    ws.close();
    server.stop(true);
  }
});

test("Fanout.messages: a batch of one reaches each topic in both modes before the next topic (recipient before echo)", async () => {
  const fanout = new Fanout();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req, srv) => (srv.upgrade(req, { data: new URL(req.url).searchParams.get("sub") }) ? undefined : new Response("upgrade only", { status: 400 })),
    websocket: {
      data: {} as string | null,
      open(ws) {
        for (const topic of (ws.data ?? "").split(",")) ws.subscribe(topic);
        fanout.topicsChanged();
        ws.send("ready");
      },
      message() {},
    },
  });
  // The real server, with each publish's topic written down on its way through.
  const published: string[] = [];
  fanout.server = new Proxy(server, {
    get(target, key) {
      if (key === "publish")
        return (topic: string, data: string, compress?: boolean) => {
          published.push(topic);
          return target.publish(topic, data, compress);
        };
      const v = Reflect.get(target, key);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  // A plain sender (alice) and a batching recipient (bob), as the SDK and the tutorial's page side by side.
  const sockets = ["all,user:alice", `${batchTopic("all")},${batchTopic("user:bob")}`].map((sub) => {
    const got: string[] = [];
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/?sub=${encodeURIComponent(sub)}`);
    ws.onmessage = (e) => got.push(String(e.data));
    return { ws, got };
  });
  try {
    for (const s of sockets)
      await waitUntil(
        () => s.got.includes("ready"),
        () => "the socket opened",
      );
    const frame = '{"type":"message","id":"1","from":"alice","to":"bob","text":"hi"}';
    fanout.messages([frame], [["user:bob", "user:alice"]]);
    expect(published).toEqual(["user:bob", batchTopic("user:bob"), "user:alice", batchTopic("user:alice")]);
    for (const s of sockets)
      await waitUntil(
        () => s.got.includes(frame),
        () => `the message arrived (got ${JSON.stringify(s.got)})`,
      );
    // bob batching gets the frame itself (a batch of one), alice her echo.
    expect(fanout.framesOut).toBe(2);
  } finally {
    for (const s of sockets) s.ws.close();
    server.stop(true);
  }
});
