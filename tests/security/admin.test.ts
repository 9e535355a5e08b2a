/**
 * The admin API: absent without ADMIN_TOKEN, behind its bearer token
 * otherwise; disconnect closes a user's sockets with 4003, revoke refuses
 * their older tokens and closes their sockets with 4001.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { SignJWT } from "jose";
import { Client, connect, probe, upgrade, waitUntil, type ConnectOptions } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";
import type { WelcomeFrame } from "../../src/protocol";

setDefaultTimeout(20_000);

const SECRET = "admin-test-secret-0123456789abcdef";
const ADMIN_TOKEN = "admin-token-0123456789abcdef";
const nowS = () => Math.floor(Date.now() / 1000);
const token = (sub: string, iat = nowS()) =>
  new SignJWT({ sub, iat, exp: nowS() + 3600 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
const auth = (t: string) => ({ Authorization: `Bearer ${t}` });
const bearer = (t: string): ConnectOptions => ({ headers: auth(t) });
const admin = (s: ServerProcess, path: string, headers: Record<string, string> = auth(ADMIN_TOKEN)) => fetch(`${s.http}${path}`, { method: "POST", headers });

let withAdmin: ServerProcess;
let without: ServerProcess;
const clients: Client[] = [];
const join = async (s: ServerProcess, user: string, t?: string) => {
  const c = await connect(`${s.ws}/ws/${user}`, bearer(t ?? (await token(user))));
  clients.push(c);
  return c;
};
const alive = async (s: ServerProcess) => probe(`${s.ws}/ws`, bearer(await token(`probe-${crypto.randomUUID().slice(0, 8)}`)));

beforeAll(async () => {
  [withAdmin, without] = await Promise.all([
    spawnServer({ AUTH: "jwt", JWT_SECRET: SECRET, ADMIN_TOKEN, DB_PATH: `${tempDir()}/admin.db` }),
    spawnServer({ AUTH: "jwt", JWT_SECRET: SECRET, DB_PATH: `${tempDir()}/no-admin.db` }),
  ]);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([withAdmin?.stop(), without?.stop()]);
});

describe("admin API", () => {
  test("/admin/* is 404 when ADMIN_TOKEN is not set, with or without a bearer", async () => {
    const c = await join(without, "alice");
    for (const path of ["/admin/users/alice/disconnect", "/admin/users/alice/revoke"]) {
      expect((await admin(without, path, {})).status).toBe(404);
      expect((await admin(without, path, auth(ADMIN_TOKEN))).status).toBe(404);
      expect((await admin(without, path, auth(""))).status).toBe(404);
    }
    c.send({ type: "broadcast", text: "still connected", cid: "m" });
    await c.next((f) => f.type === "ack" && f.cid === "m");
    expect(c.closed).toBeUndefined();
    await alive(without);
  });

  test("ADMIN_TOKEN set: 401 unauthorized without it, with another token or with a user's JWT", async () => {
    const c = await join(withAdmin, "bob");
    for (const path of ["/admin/users/bob/disconnect", "/admin/users/bob/revoke"]) {
      for (const headers of [{}, auth("wrong"), auth(`${ADMIN_TOKEN}x`), auth(await token("bob")), { Authorization: ADMIN_TOKEN }]) {
        const r = await admin(withAdmin, path, headers);
        expect(r.status).toBe(401);
        expect(await r.json()).toMatchObject({ error: "unauthorized" });
      }
    }
    c.send({ type: "broadcast", text: "not disconnected", cid: "m" });
    await c.next((f) => f.type === "ack" && f.cid === "m");
    expect(c.closed).toBeUndefined();
    expect((await upgrade(`${withAdmin.ws}/ws/bob`, auth(await token("bob")))).status).toBe(101);
    await alive(withAdmin);
  });

  test("POST /admin/users/:name/disconnect closes every socket of the user with 4003, others stay", async () => {
    const a1 = await join(withAdmin, "carol");
    const a2 = await join(withAdmin, "carol");
    const other = await join(withAdmin, "dave");
    const r = await admin(withAdmin, "/admin/users/carol/disconnect");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ user: "carol", closed: 2 });
    expect((await a1.closedWith()).code).toBe(4003);
    expect((await a2.closedWith()).code).toBe(4003);
    // Presence is coalesced per tick (a join and a leave within one cancel out): ask the server instead.
    const online = async () =>
      ((await (await fetch(`${withAdmin.http}/users/online`, { headers: auth(await token("dave")) })).json()) as { users: string[] }).users;
    await waitUntil(async () => !(await online()).includes("carol"), "carol is offline after the disconnect", { pollMs: 20 });
    expect(await online()).toContain("dave");
    expect(other.closed).toBeUndefined();
    // A disconnect is not a revocation: the same token connects again.
    const again = new Client(`${withAdmin.ws}/ws/carol`, bearer(await token("carol", nowS() - 60)));
    clients.push(again);
    expect((await again.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("carol");
    await alive(withAdmin);
  });

  test("POST /admin/users/:name/revoke refuses older tokens (401) and closes the user's sockets with 4001", async () => {
    const old = await token("erin", nowS() - 60);
    const c = await join(withAdmin, "erin", old);
    const r = await admin(withAdmin, "/admin/users/erin/revoke");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ user: "erin", closed: 1 });
    expect((await c.closedWith()).code).toBe(4001);
    const refused = await upgrade(`${withAdmin.ws}/ws/erin`, auth(old));
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toMatchObject({ error: "unauthorized" });
    // HTTP with the revoked token is refused too.
    expect((await fetch(`${withAdmin.http}/history`, { headers: auth(old) })).status).toBe(401);
    // A token issued after the revocation works.
    const fresh = new Client(`${withAdmin.ws}/ws/erin`, bearer(await token("erin", nowS() + 2)));
    clients.push(fresh);
    expect((await fresh.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("erin");
    await alive(withAdmin);
  });

  test("admin actions on a user with no connection answer closed: 0", async () => {
    for (const action of ["disconnect", "revoke"]) {
      const r = await admin(withAdmin, `/admin/users/nobody-here/${action}`);
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ user: "nobody-here", closed: 0 });
    }
    await alive(withAdmin);
  });
});
