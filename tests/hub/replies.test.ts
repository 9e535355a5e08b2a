/**
 * Replies.ack on a real Bun server and real sockets: which way an ack takes
 * (the user's topic or a send of its own) and that it always arrives.
 */
import { afterEach, expect, test } from "bun:test";
import type { Server, ServerWebSocket } from "bun";
import { Connection } from "../../src/hub/connection";
import { SocketRegistry } from "../../src/hub/registry";
import { Replies } from "../../src/hub/replies";
import { newHubStats } from "../../src/hub/types";
import { waitUntil } from "../helpers";

interface Setup {
  /** Filed in the registry as a socket of "ann". */
  registered: boolean;
  /** Subscribed to the topic "user:ann". */
  subscribed: boolean;
  /** Marked live (its replay done). */
  live: boolean;
  /** Connected with `?batch=1`: its topics are the `batch:` ones. */
  batch?: boolean;
}

let server: Server<unknown> | undefined;
afterEach(() => {
  server?.stop(true);
  server = undefined;
});

/** A server whose sockets are set up as `setups` says, in connect order, and a client for each that keeps what it receives. */
async function start(setups: Setup[]) {
  const registry = new SocketRegistry();
  const sockets: ServerWebSocket<Connection>[] = [];
  let next = 0;
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req, srv) => (srv.upgrade(req, { data: {} }) ? undefined : new Response("upgrade", { status: 426 })),
    websocket: {
      open(ws) {
        const setup = setups[next++]!;
        const conn = new Connection({} as never, "ann", [], "127.0.0.1", setup.batch);
        conn.live = setup.live;
        (ws as ServerWebSocket<unknown>).data = conn;
        if (setup.subscribed) ws.subscribe(conn.topic("user:ann"));
        if (setup.registered) registry.add(ws as ServerWebSocket<Connection>, conn, false);
        sockets.push(ws as ServerWebSocket<Connection>);
      },
      message() {},
      // As the hub does on close: the socket leaves the registry.
      close(ws) {
        const conn = (ws as ServerWebSocket<unknown>).data as Connection;
        if (setups[sockets.indexOf(ws as ServerWebSocket<Connection>)]!.registered) registry.remove(ws as ServerWebSocket<Connection>, conn);
      },
    },
  });
  const got: string[][] = [];
  const clients: WebSocket[] = [];
  for (let i = 0; i < setups.length; i++) {
    const frames: string[] = [];
    got.push(frames);
    const c = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    clients.push(c);
    c.onmessage = (e) => frames.push(String(e.data));
    await new Promise((resolve, reject) => {
      c.onopen = resolve;
      c.onerror = reject;
    });
    await waitUntil(() => sockets.length === i + 1, "the server opened the socket");
  }
  const stats = newHubStats();
  const replies = new Replies(stats, {} as never, registry, () => {});
  replies.server = server;
  return { sockets, got, replies, stats, registry, clients };
}

const only = { registered: true, subscribed: true, live: true };
/** Subscribed to ann's topic but not filed: it receives what is published there, never what is sent to another socket. */
const listener = { registered: false, subscribed: true, live: true };

for (const batch of [false, true]) {
  test(`Replies.ack: a user's only live socket here gets it through the user's topic${batch ? " (its batch: variant with ?batch=1)" : ""}`, async () => {
    const { sockets, got, replies, stats } = await start([
      { ...only, batch },
      { ...listener, batch },
    ]);
    expect(replies.ack(sockets[0]!, '{"type":"ack","cid":"a"}')).toBeGreaterThan(0);
    await waitUntil(() => got[0]!.length === 1 && got[1]!.length === 1, "both sockets in the topic got the ack");
    expect(stats.framesOut).toBe(1);
  });
}

test("Replies.ack: a sender that closed gets nothing, and its user's next socket never its ack", async () => {
  const { sockets, got, replies, registry, clients } = await start([only, { ...only }]);
  clients[0]!.close();
  await waitUntil(() => registry.connectionsOf("ann") === 1, "the server saw the close");
  // The old socket's ack (its message was stored after it closed): the user's one socket now is another.
  expect(replies.ack(sockets[0]!, '{"type":"ack","cid":"old"}')).toBe(0);
  sockets[1]!.send("marker");
  await waitUntil(() => got[1]!.length === 1, "the marker arrived");
  expect(got[1]).toEqual(["marker"]);
});

test("Replies.ack: with a second socket of the user filed here, a send of its own to the sender only", async () => {
  const { sockets, got, replies } = await start([only, { ...only }, listener]);
  replies.ack(sockets[0]!, '{"type":"ack","cid":"b"}');
  // Sent after the ack, on the listener's own socket: once it is there, the ack would be too.
  sockets[2]!.send("marker");
  await waitUntil(() => got[2]!.length === 1, "the marker arrived");
  await waitUntil(() => got[0]!.length === 1, "the sender got its ack");
  expect(got[0]).toEqual(['{"type":"ack","cid":"b"}']);
  expect(got[1]).toEqual([]);
  expect(got[2]).toEqual(["marker"]);
});

test("Replies.ack: a socket still replaying (not live) gets a send of its own", async () => {
  const { sockets, got, replies } = await start([{ ...only, live: false }, listener]);
  replies.ack(sockets[0]!, '{"type":"ack","cid":"c"}');
  sockets[1]!.send("marker");
  await waitUntil(() => got[0]!.length === 1 && got[1]!.length === 1, "both got a frame");
  expect(got[0]).toEqual(['{"type":"ack","cid":"c"}']);
  expect(got[1]).toEqual(["marker"]);
});

test("Replies.ack: a live socket missing from its topic still gets the ack, by send", async () => {
  const { sockets, got, replies, stats } = await start([{ ...only, subscribed: false }]);
  replies.ack(sockets[0]!, '{"type":"ack","cid":"d"}');
  await waitUntil(() => got[0]!.length === 1, "the ack arrived");
  expect(stats.framesOut).toBe(1);
  expect(stats.droppedSends).toBe(0);
});
