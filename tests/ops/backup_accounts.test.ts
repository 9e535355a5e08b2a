/**
 * `bun run backup` in AUTH=accounts mode: the copy holds the direct messages
 * and the accounts. A server started from the restored file lets an account
 * made before the backup log in (with its password only), gives the
 * recipient every direct message acked before the backup (their
 * conversation over HTTP and their inbox over a connect with since=0), and
 * knows nothing written after it. (tests/ops/backup.test.ts covers
 * broadcasts, room messages, the epoch and the script's refusals.)
 */
import { expect, test } from "bun:test";
import { Client, connect, isAck, waitUntil } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";
import type { AckFrame, MessageFrame, TokenBody } from "../../src/protocol";

const ROOT = `${import.meta.dir}/../..`;

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

/** The caller's whole direct conversation with `other`, oldest first, paging back from the newest. */
async function conversation(s: ServerProcess, token: string, other: string): Promise<MessageFrame[]> {
  const out: MessageFrame[] = [];
  let before = "";
  for (;;) {
    const r = await fetch(`${s.http}/users/${other}/history?limit=200${before}`, bearer(token));
    expect(r.status).toBe(200);
    const { messages } = (await r.json()) as { messages: MessageFrame[] };
    out.push(...messages);
    if (messages.length < 200) return out.reverse();
    before = `&before=${messages.at(-1)!.id}`;
  }
}

/** Sends each frame and resolves with its ack id, by cid. */
async function sendAll(c: Client, frames: { type: string; cid: string; [k: string]: unknown }[]): Promise<Map<string, number>> {
  for (const f of frames) c.send(f);
  const ids = new Map<string, number>();
  for (const f of frames) ids.set(f.cid, (await c.next<AckFrame>(isAck(f.cid), 10_000)).id!);
  return ids;
}

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

  const restored = `${dir}/restored/wirechat.db`;
  await Bun.write(restored, Bun.file(target));
  const fresh = await spawnServer({ ...ENV, DB_PATH: restored });
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
      await waitUntil(
        () => {
          for (const f of inbox.frames.splice(0)) if (f.type === "message") seen.set(f.id, f);
          if (inbox.closed) throw new Error(`closed ${inbox.closed.code} ${inbox.closed.reason} while replaying`);
          return seen.has(broadcastId) && toBob.every((id) => seen.has(id));
        },
        () => `bob's replay has every direct message to him; missing: ${toBob.filter((id) => !seen.has(id)).slice(0, 10)}`,
        { signal: inbox.changed, ms: 10_000 },
      );
      expect(seen.get(dms.get(`ab${N - 1}`)!)).toMatchObject({ from: "alice", to: "bob", text: `to bob ${N - 1}` });
      expect(seen.has(afterId)).toBe(false);
      expect(Math.max(...seen.keys())).toBeLessThan(afterId);
    } finally {
      inbox.close();
    }
  } finally {
    expect(await fresh.stop()).toBe(0);
  }
}, 60_000);
