/**
 * The SDK against the real server process (`bun run src/index.ts`) on a fixed
 * port and a SQLite file: it is killed with SIGTERM and started again on the
 * same port and file while a client keeps sending; and stopped (SIGSTOP) to
 * make an ack time out.
 */
import { afterEach, expect, test } from "bun:test";
import { createChatClient, type ChatClient, type MessageAck } from "../src/sdk";
import { spawnServer, type ServerProcess } from "./spawn";
import { freePort, opened, Recorder } from "./sdk_helpers";
import { tempDir } from "./tmp";

const procs: ServerProcess[] = [];
const clients: ChatClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const p of procs.splice(0)) {
    p.proc.kill("SIGCONT");
    p.proc.kill("SIGTERM");
    await p.proc.exited;
  }
});

async function start(env: Record<string, string>) {
  const p = await spawnServer(env);
  procs.push(p);
  return p;
}

async function stop(p: ServerProcess) {
  p.proc.kill("SIGTERM");
  await p.proc.exited;
  procs.splice(procs.indexOf(p), 1);
}

function client(url: string, username: string, rooms: string[] = [], ackTimeoutMs = 10_000) {
  const c = createChatClient({ url, username, rooms, ackTimeoutMs, backoff: { initialMs: 50, maxMs: 400 } });
  clients.push(c);
  return new Recorder(c);
}

test("a restart on the same port and DB loses and duplicates nothing while alice keeps sending", async () => {
  const env = { PORT: String(freePort()), DB_PATH: `${tempDir()}/chat.db` };
  const first = await start(env);
  const alice = client(first.http, "alice", ["ops"]);
  const bob = client(first.http, "bob", ["ops"]);
  await Promise.all([opened(alice), opened(bob)]);

  const acks: Promise<MessageAck>[] = [];
  const expected: string[] = [];
  const send = (n: number) => {
    for (let i = 0; i < n; i++) {
      const k = expected.length;
      const text = k % 5 === 4 ? `room-${k}` : k % 7 === 6 ? `dm-${k}` : `b-${k}`;
      expected.push(text);
      if (text.startsWith("room")) acks.push(alice.client.send.room("ops", text));
      else if (text.startsWith("dm")) acks.push(alice.client.send.direct("bob", text));
      else acks.push(alice.client.send.broadcast(text));
    }
  };

  send(30); // on the wire, some acked, some not, when the server goes down
  await stop(first);
  await alice.until(() => alice.client.status === "reconnecting", "alice reconnecting");
  await bob.until(() => bob.client.status === "reconnecting", "bob reconnecting");
  send(30); // queued while no server listens
  const second = await start(env);
  send(30); // queued or live, depending on how fast alice is back
  const done = await Promise.all(acks);

  const ids = done.map((a) => a.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect([...ids].sort((x, y) => x - y)).toEqual(ids); // acked in the order sent
  await bob.until(() => bob.texts().includes(expected.at(-1)!), "bob's last message", 10_000);
  const fromAlice = bob.messages.filter((m) => m.from === "alice");
  expect(fromAlice.map((m) => m.text)).toEqual(expected);
  expect(fromAlice.map((m) => m.id)).toEqual(ids);
  expect(bob.statuses).toEqual(["open", "reconnecting", "open"]);
  expect(bob.welcomes[1]!.resumed).toBe(true);

  // What the server stored, read from the restarted process: each text once.
  const stored = (await bob.client.history({ limit: 200 }))
    .filter((m) => m.from === "alice")
    .map((m) => m.text)
    .reverse();
  expect(stored).toEqual(expected.filter((t) => t.startsWith("b-")));
  const inRoom = (await bob.client.roomHistory("ops", { limit: 200 })).map((m) => m.text).reverse();
  expect(inRoom).toEqual(expected.filter((t) => t.startsWith("room-")));
  expect(second.port).toBe(first.port);
}, 30_000);

test("an ack that does not come in time rejects with `timeout`; a retry with its cid is not a duplicate", async () => {
  const srv = await start({ PORT: "0", DB_PATH: `${tempDir()}/chat.db` });
  const alice = client(srv.http, "alice", [], 400);
  const bob = client(srv.http, "bob");
  await Promise.all([opened(alice), opened(bob)]);

  srv.proc.kill("SIGSTOP"); // the socket stays open, nobody answers
  const started = Date.now();
  const err = await alice.client.send.broadcast("stalled").catch((e) => e);
  expect(err.code).toBe("timeout");
  expect(typeof err.cid).toBe("string");
  expect(Date.now() - started).toBeGreaterThanOrEqual(390);
  srv.proc.kill("SIGCONT");

  const ack = await alice.client.send.broadcast("stalled", { cid: err.cid });
  await alice.client.send.broadcast("marker");
  await bob.until(() => bob.texts().includes("marker"), "the marker");
  expect(bob.texts()).toEqual(["stalled", "marker"]);
  expect(bob.messages[0]!.id).toBe(ack.id);
}, 30_000);
