/**
 * AUTH=accounts: register, log in, refresh, the login rate limits, and
 * revocation (also across a restart on the same DB_PATH). Real server
 * processes, real sockets.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { Client, connect, probe, upgrade, type ConnectOptions } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";
import type { TokenBody, WelcomeFrame } from "../../src/protocol";

setDefaultTimeout(20_000);

const ADMIN_TOKEN = "accounts-admin-token-0123456789";
const DB = `${tempDir()}/accounts.db`;
// TRUST_PROXY=1 and a new X-Forwarded-For address per request keep the
// per-address login limit out of these cases; it has its own server below.
const ENV = { AUTH: "accounts", ADMIN_TOKEN, TRUST_PROXY: "1", DB_PATH: DB };
const byte = () => Math.floor(Math.random() * 254) + 1;
const someAddress = () => `10.${byte()}.${byte()}.${byte()}`;
const auth = (t: string) => ({ Authorization: `Bearer ${t}` });
const bearer = (t: string): ConnectOptions => ({ headers: auth(t) });
const post = (s: ServerProcess, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${s.http}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "X-Forwarded-For": someAddress(), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
const register = (s: ServerProcess, username: string, password: string) => post(s, "/auth/register", { username, password });
const login = (s: ServerProcess, username: string, password: string, headers: Record<string, string> = {}) =>
  post(s, "/auth/login", { username, password }, headers);
/** Registers (if needed) and logs in; returns the token. */
async function account(s: ServerProcess, username: string, password = `pw-of-${username}-123`): Promise<string> {
  const r = await register(s, username, password);
  expect([201, 409]).toContain(r.status);
  const l = await login(s, username, password);
  expect(l.status).toBe(200);
  return ((await l.json()) as TokenBody).token;
}

let s: ServerProcess;
const clients: Client[] = [];
let probes = 0;
const alive = async (server = s) => probe(`${server.ws}/ws`, bearer(await account(server, `probe-${++probes}`)));

beforeAll(async () => {
  s = await spawnServer(ENV);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await s?.stop();
});

describe("accounts: register", () => {
  test("GET /auth/mode says accounts", async () => {
    expect(await (await fetch(`${s.http}/auth/mode`)).json()).toEqual({ mode: "accounts" });
  });

  test("POST /auth/register → 201 {username}; the same name again → 409 conflict", async () => {
    const r = await register(s, "alice", "correct horse battery");
    expect(r.status).toBe(201);
    expect(await r.json()).toEqual({ username: "alice" });
    const again = await register(s, "alice", "another password 1");
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: "conflict", message: expect.any(String) });
    // The first password still logs in: a duplicate did not overwrite it.
    expect((await login(s, "alice", "correct horse battery")).status).toBe(200);
    expect((await login(s, "alice", "another password 1")).status).toBe(401);
    await alive();
  });

  test("a password outside 8..128 characters → 400 invalid_frame; the bounds themselves are accepted", async () => {
    for (const password of ["", "seven77", "x".repeat(129), "x".repeat(1000)]) {
      const r = await register(s, "shorty", password);
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ error: "invalid_frame" });
    }
    expect((await login(s, "shorty", "seven77")).status).toBe(401);
    expect((await register(s, "eight", "8chars!!")).status).toBe(201);
    expect((await register(s, "long128", "y".repeat(128))).status).toBe(201);
    expect((await login(s, "long128", "y".repeat(128))).status).toBe(200);
    await alive();
  });

  test("an invalid username → 400 invalid_username", async () => {
    for (const username of ["", "bad name", "x".repeat(65), "../etc", "a\u0000b"]) {
      const r = await register(s, username, "good password 123");
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ error: "invalid_username" });
    }
    await alive();
  });

  test("malformed bodies are refused with a 4xx, never a 5xx", async () => {
    for (const body of ["", "not json", "[]", "null", '{"username":1,"password":2}', '{"username":"x"}', `{"username":"u","password":"${"p".repeat(5000)}"}`]) {
      for (const path of ["/auth/register", "/auth/login"]) {
        const r = await post(s, path, body);
        expect(r.status).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
      }
    }
    await alive();
  });

  test("the password is not stored in clear", async () => {
    const secret = "plain-text-canary-7f3a9";
    expect((await register(s, "canary", secret)).status).toBe(201);
    expect((await login(s, "canary", secret)).status).toBe(200);
    for (const f of [DB, `${DB}-wal`]) {
      if (existsSync(f)) expect(readFileSync(f).includes(Buffer.from(secret))).toBe(false);
    }
    await alive();
  });
});

describe("accounts: login", () => {
  test("POST /auth/login → 200 {token, expiresAt}; the token connects on /ws/:name and /ws", async () => {
    expect((await register(s, "bob", "bob password 1")).status).toBe(201);
    const r = await login(s, "bob", "bob password 1");
    expect(r.status).toBe(200);
    const body = (await r.json()) as TokenBody;
    expect(body.token).toBeString();
    expect(body.expiresAt).toBeGreaterThan(Date.now());
    const c = new Client(`${s.ws}/ws/bob`, bearer(body.token));
    clients.push(c);
    expect((await c.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("bob");
    const d = new Client(`${s.ws}/ws`, bearer(body.token));
    clients.push(d);
    expect((await d.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("bob");
    const other = await upgrade(`${s.ws}/ws/alice`, auth(body.token));
    expect(other.status).toBe(403);
    expect(JSON.parse(other.body)).toMatchObject({ error: "forbidden" });
    expect((await upgrade(`${s.ws}/ws/bob`)).status).toBe(401);
    await alive();
  });

  test("a wrong password and an unknown user both → 401 with the same body", async () => {
    expect((await register(s, "carol", "carol password 1")).status).toBe(201);
    const wrong = await login(s, "carol", "not her password");
    const unknown = await login(s, "nobody-at-all", "carol password 1");
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const a = await wrong.json();
    expect(a).toEqual({ error: "unauthorized", message: "Wrong username or password" });
    expect(await unknown.json()).toEqual(a);
    await alive();
  });

  test("repeated failed logins for one username → 429 rate_limited; even the right password is refused then; other users are not", async () => {
    expect((await register(s, "locky", "locky password 1")).status).toBe(201);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await login(s, "locky", `guess-${i}-xxxx`)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const limited = await login(s, "locky", "guess-5-xxxx");
    expect(limited.status).toBe(429);
    const body = (await limited.json()) as { error: string; retryAfterMs: number };
    expect(body).toMatchObject({ error: "rate_limited", message: expect.any(String) });
    expect(body.retryAfterMs).toBeGreaterThan(0);
    expect((await login(s, "locky", "locky password 1")).status).toBe(429);
    expect((await login(s, "carol", "carol password 1")).status).toBe(200);
    await alive();
  });

  test("POST /auth/refresh with a valid token → 200 with a token that connects; without or with a bad one → 401", async () => {
    const t = await account(s, "dora");
    const r = await post(s, "/auth/refresh", "", auth(t));
    expect(r.status).toBe(200);
    const body = (await r.json()) as TokenBody;
    expect(body.expiresAt).toBeGreaterThan(Date.now());
    const c = new Client(`${s.ws}/ws/dora`, bearer(body.token));
    clients.push(c);
    expect((await c.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("dora");
    for (const headers of [{}, auth("not.a.token"), auth(ADMIN_TOKEN), auth(`${t}x`), { Authorization: t }]) {
      const bad = await post(s, "/auth/refresh", "", headers);
      expect(bad.status).toBe(401);
      expect(await bad.json()).toMatchObject({ error: "unauthorized" });
    }
    await alive();
  });
});

describe("accounts: revocation", () => {
  let revoked: string;
  let kept: string;
  let afterRevoke: string;

  test("a revoked user: old token → 401, open connections closed with 4001; a new login works", async () => {
    revoked = await account(s, "dave", "dave password 1");
    kept = await account(s, "erin", "erin password 1");
    const d1 = await connect(`${s.ws}/ws/dave`, bearer(revoked));
    const d2 = await connect(`${s.ws}/ws`, bearer(revoked));
    const e = await connect(`${s.ws}/ws/erin`, bearer(kept));
    clients.push(d1, d2, e);
    const r = await post(s, "/admin/users/dave/revoke", "", auth(ADMIN_TOKEN));
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ user: "dave", closed: 2 });
    expect((await d1.closedWith()).code).toBe(4001);
    expect((await d2.closedWith()).code).toBe(4001);
    const refused = await upgrade(`${s.ws}/ws/dave`, auth(revoked));
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toMatchObject({ error: "unauthorized" });
    expect((await post(s, "/auth/refresh", "", auth(revoked))).status).toBe(401);
    expect((await fetch(`${s.http}/history`, { headers: auth(revoked) })).status).toBe(401);
    e.send({ type: "broadcast", text: "erin stays", cid: "e" });
    await e.next((f) => f.type === "ack" && f.cid === "e");
    // Logging in again right after the revocation gives a token that works.
    const l = await login(s, "dave", "dave password 1");
    expect(l.status).toBe(200);
    afterRevoke = ((await l.json()) as TokenBody).token;
    expect((await upgrade(`${s.ws}/ws/dave`, auth(afterRevoke))).status).toBe(101);
    await alive();
  });

  test("revocation survives a restart on the same DB_PATH; other tokens and accounts do too", async () => {
    expect(revoked).toBeString();
    expect(await s.stop()).toBe(0);
    s = await spawnServer(ENV);
    const refused = await upgrade(`${s.ws}/ws/dave`, auth(revoked));
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toMatchObject({ error: "unauthorized" });
    expect((await upgrade(`${s.ws}/ws/erin`, auth(kept))).status).toBe(101);
    expect((await upgrade(`${s.ws}/ws/dave`, auth(afterRevoke))).status).toBe(101);
    expect((await login(s, "alice", "correct horse battery")).status).toBe(200);
    expect((await register(s, "alice", "correct horse battery")).status).toBe(409);
    await alive();
  }, 30_000);
});

describe("accounts: login attempts per client address", () => {
  let p: ServerProcess;
  beforeAll(async () => {
    p = await spawnServer({ AUTH: "accounts", TRUST_PROXY: "1", DB_PATH: `${tempDir()}/per-address.db` });
  });
  afterAll(async () => {
    await p?.stop();
  });

  test("more than 30 failed logins from one address → 429 for that address only", async () => {
    expect((await register(p, "victim", "victim password 1")).status).toBe(201);
    const from = (ip: string) => ({ "X-Forwarded-For": ip });
    const statuses: number[] = [];
    // 31 failures spread over usernames (at most 3 each), all from 10.9.9.9.
    for (let i = 0; i < 31; i++) statuses.push((await login(p, `user-${Math.floor(i / 3)}`, "wrong password", from("10.9.9.9"))).status);
    expect(statuses.slice(0, 30).every((x) => x === 401)).toBe(true);
    expect(statuses[30]).toBe(429);
    const r = await login(p, "victim", "victim password 1", from("10.9.9.9"));
    expect(r.status).toBe(429);
    expect(await r.json()).toMatchObject({ error: "rate_limited" });
    // Another address is not affected.
    expect((await login(p, "victim", "victim password 1", from("10.9.9.10"))).status).toBe(200);
    expect((await login(p, "victim", "wrong password", from("10.9.9.10"))).status).toBe(401);
    await alive(p);
  }, 120_000); // 33 argon2id verifications, about 0.2 s each here

  test("successful logins do not count as failed attempts: 40 from one address all → 200", async () => {
    expect((await register(p, "regular", "regular password 1")).status).toBe(201);
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await login(p, "regular", "regular password 1", { "X-Forwarded-For": "10.8.8.8" })).status);
    expect(statuses.filter((x) => x !== 200)).toEqual([]);
    await alive(p);
  }, 120_000); // 40 argon2id verifications
});
