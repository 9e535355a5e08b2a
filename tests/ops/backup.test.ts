/**
 * `bun run backup`: a copy of the database made while the server runs and
 * takes messages, from which a fresh server starts with every message acked
 * before the backup, and the same epoch; a restore given a new epoch; and in
 * AUTH=accounts mode the accounts and the direct messages (an account made
 * before the backup logs in with its password only, the recipient gets every
 * direct message acked before it, and nothing written after it exists).
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { Client, connect, isAck, waitUntil } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";
import { createSqliteHistory } from "../../src/history/history_sqlite";
import type { MessageFrame, TokenBody, WelcomeFrame } from "../../src/protocol";

const ROOT = `${import.meta.dir}/../..`;

type Frame = { type: string; id?: number; cid?: string; epoch?: string; text?: string };

/** Runs scripts/backup.ts as its own process, as an operator would. */
async function runBackup(target: string, dbPath: string) {
  const p = Bun.spawn([process.execPath, "run", "scripts/backup.ts", target], {
    cwd: ROOT,
    env: { ...process.env, DB_PATH: dbPath, REDIS_URL: "" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

/** Copies the backup `target` to `path`, as an operator restores it, and starts a server on the copy. */
async function restore(target: string, path: string, env: Record<string, string>): Promise<ServerProcess> {
  await Bun.write(path, Bun.file(target));
  return spawnServer({ ...env, DB_PATH: path });
}

/** Every message of GET `path` (a history route), oldest first, paging back from the newest. */
async function allOf<F extends { id?: number } = Frame>(http: string, path: string, init?: RequestInit): Promise<F[]> {
  const out: F[] = [];
  let before = "";
  for (;;) {
    const r = await fetch(`${http}${path}?limit=200${before}`, init);
    expect(r.status).toBe(200);
    const { messages } = (await r.json()) as { messages: F[] };
    out.push(...messages);
    if (messages.length < 200) return out.reverse();
    before = `&before=${messages.at(-1)!.id}`;
  }
}

/** Sends `frames` and resolves with the ack id of each, by cid. */
async function sendAll(c: Client, frames: { type: string; cid: string; [k: string]: unknown }[]): Promise<Map<string, number>> {
  for (const f of frames) c.send(f);
  const ids = new Map<string, number>();
  for (const f of frames) ids.set(f.cid, ((await c.next(isAck(f.cid), 10_000)) as Frame).id!);
  return ids;
}

test("a backup taken while the server takes messages restores every message acked before it, with the same epoch (or a new one on request)", async () => {
  const dir = tempDir();
  const db = `${dir}/live/wirechat.db`;
  const target = `${dir}/backups/wirechat-1.db`;
  await Bun.write(`${dir}/backups/.keep`, "");

  const server = await spawnServer({ DB_PATH: db, MSG_RATE: "0" });
  let epoch: string;
  const before = new Map<string, number>(); // cid → id, acked before the backup started
  const during: number[] = []; // ids acked while the backup ran
  try {
    const alice = new Client(`${server.ws}/ws/alice?rooms=ops`);
    epoch = ((await alice.next((f) => f.type === "welcome")) as Frame).epoch!;
    expect(epoch).toMatch(/^[0-9a-f]+$/);

    // N messages, broadcasts and room messages, every one acked.
    const N = 600;
    const frames = Array.from({ length: N }, (_, i) =>
      i % 3 === 0
        ? { type: "room", room: "ops", text: `room ${i}`, cid: `m${i}` }
        : { type: "broadcast", text: `broadcast ${i} ${"x".repeat(80)}`, cid: `m${i}` },
    );
    for (const [cid, id] of await sendAll(alice, frames)) before.set(cid, id);

    // A writer that keeps sending, one message per ack, for as long as the backup runs.
    const bob = await connect(`${server.ws}/ws/bob`);
    let writing = true;
    let firstAck = () => {};
    const writerStarted = new Promise<void>((resolve) => (firstAck = resolve));
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        bob.send({ type: "broadcast", text: `during ${i}`, cid: `w${i}` });
        during.push(((await bob.next(isAck(`w${i}`), 10_000)) as Frame).id!);
        firstAck();
      }
    })();
    await writerStarted;
    const b = await runBackup(target, db);
    writing = false;
    await writer;
    expect(b.stderr).toBe("");
    expect(b.code).toBe(0);
    expect(b.stdout).toMatch(/^backup: wrote .*wirechat-1\.db .*: \d+ messages \(newest id \d+\), \d+ bytes/);

    // The server kept going: the writer was acked throughout, and a new message still is.
    expect(during.length).toBeGreaterThan(0);
    const after = await sendAll(alice, [{ type: "broadcast", text: "after the backup", cid: "after" }]);
    expect(after.get("after")!).toBeGreaterThan(Math.max(...before.values(), ...during));

    // A backup never replaces a file.
    const bytes = await Bun.file(target).bytes();
    const again = await runBackup(target, db);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("exists");
    expect(await Bun.file(target).bytes()).toEqual(bytes);
    alice.close();
    bob.close();
  } finally {
    expect(await server.stop()).toBe(0);
  }

  // Restore: a fresh server on a copy of the backup.
  const fresh = await restore(target, `${dir}/restored/wirechat.db`, { MSG_RATE: "0" });
  try {
    const c = new Client(`${fresh.ws}/ws/carol`);
    expect(((await c.next((f) => f.type === "welcome")) as Frame).epoch).toBe(epoch);
    c.close();

    const broadcasts = await allOf(fresh.http, "/history");
    const room = await allOf(fresh.http, "/rooms/ops/history");
    const restoredIds = new Set([...broadcasts, ...room].map((m) => m.id!));
    const missing = [...before].filter(([, id]) => !restoredIds.has(id));
    expect(missing).toEqual([]);
    const texts = new Map([...broadcasts, ...room].map((m) => [m.id!, m.text]));
    expect(texts.get(before.get("m3")!)).toBe("room 3");
    expect(texts.get(before.get("m1")!)).toBe(`broadcast 1 ${"x".repeat(80)}`);

    // One snapshot: what the writer got acked during the backup is in it up to some id, and nothing after it.
    const newest = Math.max(...restoredIds);
    for (const id of during) expect({ id, restored: restoredIds.has(id) }).toEqual({ id, restored: id <= newest });
    expect(restoredIds.has(newest)).toBe(true);
  } finally {
    expect(await fresh.stop()).toBe(0);
  }

  // Restore with a new epoch (docs/operations.md): the server makes one, and a resume of the old epoch is refused.
  const renewed = `${dir}/renewed/wirechat.db`;
  await Bun.write(renewed, Bun.file(target));
  const edit = new Database(renewed);
  edit.run("DELETE FROM secrets WHERE key = 'epoch'");
  edit.close();
  const third = await spawnServer({ DB_PATH: renewed, MSG_RATE: "0" });
  try {
    const newest = Math.max(...before.values(), ...during);
    const c = new Client(`${third.ws}/ws/alice?since=${newest}&epoch=${epoch}`);
    const welcome = (await c.next((f) => f.type === "welcome")) as Frame & { resumed: boolean };
    expect(welcome.epoch).not.toBe(epoch);
    expect(welcome.resumed).toBe(false);
    c.close();
  } finally {
    expect(await third.stop()).toBe(0);
  }
}, 60_000);

test("bun run backup refuses what it cannot do, with one line", async () => {
  const dir = tempDir();
  const missing = await runBackup(`${dir}/x.db`, `${dir}/none.db`);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toBe(`backup: no database at DB_PATH=${dir}/none.db\n`);
  expect(await Bun.file(`${dir}/x.db`).exists()).toBe(false);

  const memory = await runBackup(`${dir}/x.db`, ":memory:");
  expect(memory.code).toBe(1);
  expect(memory.stderr).toContain(":memory:");

  const usage = Bun.spawn([process.execPath, "run", "scripts/backup.ts"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  expect(await usage.exited).toBe(2);
  expect(await new Response(usage.stderr).text()).toStartWith("usage: bun run backup <target-file>");
});

// TRUST_PROXY=1 and a new X-Forwarded-For address per request keep the per-address login limits out of the way.
const ENV = { AUTH: "accounts", TRUST_PROXY: "1", MSG_RATE: "0" };
const byte = () => Math.floor(Math.random() * 254) + 1;
const post = (s: ServerProcess, path: string, body: unknown) =>
  fetch(`${s.http}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "X-Forwarded-For": `10.${byte()}.${byte()}.${byte()}` },
    body: JSON.stringify(body),
  });
const passwordOf = (user: string) => `password of ${user} 1`;
const register = async (s: ServerProcess, user: string) =>
  expect((await post(s, "/auth/register", { username: user, password: passwordOf(user) })).status).toBe(201);
const login = (s: ServerProcess, user: string, password = passwordOf(user)) => post(s, "/auth/login", { username: user, password });
async function tokenOf(s: ServerProcess, user: string): Promise<string> {
  const r = await login(s, user);
  expect(r.status).toBe(200);
  return ((await r.json()) as TokenBody).token;
}
const bearer = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } });

/** The caller's whole direct conversation with `other`, oldest first. */
const conversation = (s: ServerProcess, token: string, other: string) => allOf<MessageFrame>(s.http, `/users/${other}/history`, bearer(token));

test("bun run backup (AUTH=accounts): the restored file keeps the accounts and the direct messages acked before the backup, and nothing after it", async () => {
  const dir = tempDir();
  const db = `${dir}/live/wirechat.db`;
  const target = `${dir}/backups/wirechat-accounts.db`;
  await Bun.write(`${dir}/backups/.keep`, "");

  const server = await spawnServer({ ...ENV, DB_PATH: db });
  const N = 250; // direct messages to bob: more than one page of 200
  const dms = new Map<string, number>(); // cid → id, direct messages acked before the backup
  let broadcastId: number;
  let afterId: number;
  try {
    for (const user of ["alice", "bob"]) await register(server, user);
    const alice = await connect(`${server.ws}/ws`, bearer(await tokenOf(server, "alice")));
    const bob = await connect(`${server.ws}/ws`, bearer(await tokenOf(server, "bob")));

    // Both ways, so the conversation has each side; one broadcast, which is no direct message.
    const toBob = Array.from({ length: N }, (_, i) => ({ type: "direct", to: "bob", text: `to bob ${i}`, cid: `ab${i}` }));
    for (const [cid, id] of await sendAll(alice, toBob)) dms.set(cid, id);
    for (const [cid, id] of await sendAll(bob, [{ type: "direct", to: "alice", text: "to alice", cid: "ba" }])) dms.set(cid, id);
    broadcastId = (await sendAll(alice, [{ type: "broadcast", text: "for everyone", cid: "b" }])).get("b")!;

    const b = await runBackup(target, db);
    expect(b.stderr).toBe("");
    expect(b.code).toBe(0);

    // After the backup: a new account and a direct message, which the copy must not have.
    await register(server, "dave");
    expect((await login(server, "dave")).status).toBe(200);
    afterId = (await sendAll(alice, [{ type: "direct", to: "bob", text: "after the backup", cid: "late" }])).get("late")!;
    alice.close();
    bob.close();
  } finally {
    expect(await server.stop()).toBe(0);
  }

  const fresh = await restore(target, `${dir}/restored/wirechat.db`, ENV);
  try {
    // The accounts: made before the backup, they log in with their password and only with it; dave (after) does not exist.
    expect((await login(fresh, "alice", "not the password 1")).status).toBe(401);
    expect((await login(fresh, "dave")).status).toBe(401);
    const bobToken = await tokenOf(fresh, "bob");
    const aliceToken = await tokenOf(fresh, "alice");

    // The conversation over HTTP, read by each side: every direct message acked before the backup, in order, and nothing after it.
    const want = [...dms.values()].sort((x, y) => x - y);
    for (const [token, other] of [
      [bobToken, "alice"],
      [aliceToken, "bob"],
    ] as const) {
      const messages = await conversation(fresh, token, other);
      expect(messages.map((m) => m.id)).toEqual(want);
    }
    const byId = new Map((await conversation(fresh, bobToken, "alice")).map((m) => [m.id, m]));
    expect(byId.get(dms.get("ab0")!)).toMatchObject({ from: "alice", to: "bob", text: "to bob 0" });
    expect(byId.get(dms.get("ba")!)).toMatchObject({ from: "bob", to: "alice", text: "to alice" });

    // bob's inbox over a connect with since=0: the direct messages to him and the broadcast, up to the backup.
    const inbox = new Client(`${fresh.ws}/ws?since=0`, bearer(bobToken));
    try {
      const toBob = [...dms].filter(([cid]) => cid.startsWith("ab")).map(([, id]) => id);
      const seen = new Map<number, MessageFrame>();
      // The welcome says how many frames the replay has: wait for all of them, so that an absent id is really absent.
      const { replay } = await inbox.next<WelcomeFrame>((f) => f.type === "welcome", 10_000);
      await waitUntil(
        () => {
          for (const f of inbox.frames.splice(0)) if (f.type === "message") seen.set(f.id, f);
          if (inbox.closed) throw new Error(`closed ${inbox.closed.code} ${inbox.closed.reason} while replaying`);
          return seen.size >= replay;
        },
        () => `bob's replay has every direct message to him; missing: ${toBob.filter((id) => !seen.has(id)).slice(0, 10)}`,
        { signal: inbox.changed, ms: 10_000 },
      );
      expect(seen.get(dms.get(`ab${N - 1}`)!)).toMatchObject({ from: "alice", to: "bob", text: `to bob ${N - 1}` });
      expect(seen.size).toBe(replay);
      expect(seen.has(broadcastId)).toBe(true);
      expect(toBob.filter((id) => !seen.has(id))).toEqual([]);
      expect(seen.has(afterId)).toBe(false);
      expect(Math.max(...seen.keys())).toBeLessThan(afterId);
    } finally {
      inbox.close();
    }
  } finally {
    expect(await fresh.stop()).toBe(0);
  }
}, 60_000);

test("backup: the copy holds the message log's messages above the pruned mark, and the live store's pruned marks per inbox", async () => {
  const dir = tempDir();
  const path = `${dir}/live.db`;
  const history = createSqliteHistory(path);
  try {
    const direct = (to: string, text: string) => ({ kind: "direct" as const, from: "alice", to, text, at: Date.now() });
    await history.append([direct("bob", "old 1"), direct("carol", "old 2"), direct("bob", "old 3")]);
    await history.append([direct("bob", "kept 4"), { kind: "broadcast", from: "alice", text: "kept 5", at: Date.now() }]);
    // Retention takes the three oldest: bob's newest pruned is 3, carol's 2.
    expect(await history.prune(2, 0, 100)).toBe(3);
    const r = await runBackup(`${dir}/copy.db`, path);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(": 2 messages (newest id 5)");
  } finally {
    await history.close();
  }
  const copy = new Database(`${dir}/copy.db`, { readonly: true });
  expect(copy.query("SELECT id, text FROM messages ORDER BY id").all()).toEqual([
    { id: 4, text: "kept 4" },
    { id: 5, text: "kept 5" },
  ]);
  expect(copy.query("SELECT value FROM meta WHERE key = 'pruned_through'").get()).toEqual({ value: 3 });
  expect(copy.query("SELECT user, id FROM pruned_inbox ORDER BY user").all()).toEqual([
    { user: "bob", id: 3 },
    { user: "carol", id: 2 },
  ]);
  copy.close();
  // A store opened on the copy takes its messages into a new log.
  const restored = createSqliteHistory(`${dir}/copy.db`);
  expect((await restored.get([1, 2, 3, 4, 5])).map((m) => m.text)).toEqual(["kept 4", "kept 5"]);
  expect(await restored.prunedInbox("bob")).toBe(3);
  await restored.close();
});
