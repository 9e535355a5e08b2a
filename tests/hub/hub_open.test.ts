/**
 * Hub.open with a token that expired between the upgrade and the open: the
 * socket is closed at once and nothing of it stays filed (registry, rooms,
 * replay count, presence). The store, broker and presence are the real local
 * ones; the socket is a stand-in, because Bun makes a ServerWebSocket only
 * for a real upgrade and no client can time its token's expiry to fall
 * between the gate and the open. Like Bun's, its close() runs the close
 * handler synchronously, inside the call.
 */
import { afterEach, expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import { createLocalBroker } from "../../src/broker/broker_local";
import { createSqliteHistory } from "../../src/history/history_sqlite";
import type { History } from "../../src/history/history";
import type { Connection } from "../../src/hub/connection";
import { Hub } from "../../src/hub/hub";
import { createLocalPresence } from "../../src/presence/presence_local";

const stopped: (() => unknown)[] = [];
afterEach(async () => {
  for (const stop of stopped.splice(0)) await stop();
});

/** A hub on the real local parts, started like createApp starts it. */
async function startHub(): Promise<{ hub: Hub; presence: ReturnType<typeof createLocalPresence>; history: History }> {
  const history = createSqliteHistory(":memory:");
  const broker = createLocalBroker();
  const presence = createLocalPresence();
  const hub = new Hub({ history, broker, presence, replayLimit: 100 });
  await hub.ready;
  stopped.push(() => history.close());
  return { hub, presence, history };
}

/** A socket stand-in that records what is sent and, like Bun, calls the hub's close handler inside close(). */
function standIn(hub: Hub) {
  const sent: string[] = [];
  const closes: number[] = [];
  const ws = {
    data: undefined as unknown as Connection,
    readyState: 1,
    send(data: string) {
      sent.push(data);
      return data.length;
    },
    close(code: number) {
      if (ws.readyState !== 1) return;
      ws.readyState = 3;
      closes.push(code);
      hub.close(ws as unknown as ServerWebSocket<Connection>, ws.data, code);
    },
    subscribe() {},
    unsubscribe() {},
    getBufferedAmount: () => 0,
  };
  return { ws, sent, closes };
}

/** Opens a stand-in socket for "ann" in room "dev", resuming (`since`), her token valid until `validUntil`. */
function openAnn(hub: Hub, validUntil: number) {
  const s = standIn(hub);
  hub.open(s.ws as unknown as ServerWebSocket<unknown>, { user: "ann", rooms: ["dev"], since: 0, ip: "10.0.0.1", identity: { user: "ann", validUntil } });
  return s;
}

test("Hub.open: a token already expired closes with 4001 and leaves nothing filed", async () => {
  const { hub, presence } = await startHub();
  const s = openAnn(hub, Date.now() - 1);
  expect(s.closes).toEqual([4001]);
  expect(hub.connections).toBe(0);
  expect(hub.sockets.connectionsOf("ann")).toBe(0);
  expect(hub.sockets.connectionsFrom("10.0.0.1")).toBe(0);
  expect(hub.sockets.replaysOf("ann")).toBe(0);
  expect(hub.sockets.roomSockets()).toEqual([]);
  expect(presence.isOnline("ann")).toBe(false);
  expect(hub.stats.opened).toBe(1);
  expect(hub.stats.closed).toBe(1);
});

test("Hub.open: a valid token is filed, welcomed, and its close undoes the filing", async () => {
  const { hub, presence } = await startHub();
  const s = openAnn(hub, Date.now() + 60_000);
  expect(s.closes).toEqual([]);
  expect(hub.sockets.connectionsOf("ann")).toBe(1);
  expect(hub.sockets.roomSockets()).toEqual([["dev", 1]]);
  expect(presence.isOnline("ann")).toBe(true);
  const deadline = Date.now() + 5_000;
  while (s.sent.length === 0 && Date.now() < deadline) await Bun.sleep(1);
  expect(JSON.parse(s.sent[0]!).type).toBe("welcome");
  s.ws.close(1000);
  expect(hub.connections).toBe(0);
  expect(hub.sockets.replaysOf("ann")).toBe(0);
  expect(hub.sockets.roomSockets()).toEqual([]);
  expect(presence.isOnline("ann")).toBe(false);
});
