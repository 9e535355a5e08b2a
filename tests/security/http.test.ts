/**
 * The HTTP routes with identity: which need a token, what a caller may read
 * of direct messages (only their own conversations), and /metrics behind
 * METRICS_TOKEN. Real server processes, real sockets.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { SignJWT } from "jose";
import { type Client, connect, isAck, probe, type ConnectOptions } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";
import type { AckFrame, HistoryBody } from "../../src/protocol";

setDefaultTimeout(20_000);

const SECRET = "http-test-secret-0123456789abcdef";
const METRICS_TOKEN = "metrics-token-0123456789";
const nowS = () => Math.floor(Date.now() / 1000);
const token = (sub: string) =>
  new SignJWT({ sub, iat: nowS(), exp: nowS() + 3600 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
const auth = (t: string) => ({ Authorization: `Bearer ${t}` });
const bearer = (t: string): ConnectOptions => ({ headers: auth(t) });

let jwt: ServerProcess;
let open: ServerProcess;
const clients: Client[] = [];
const aliveJwt = async () => probe(`${jwt.ws}/ws`, bearer(await token(`probe-${crypto.randomUUID().slice(0, 8)}`)));
const aliveOpen = () => probe(`${open.ws}/ws/probe-${crypto.randomUUID().slice(0, 8)}`);

beforeAll(async () => {
  [jwt, open] = await Promise.all([
    spawnServer({ AUTH: "jwt", JWT_SECRET: SECRET, METRICS_TOKEN, DB_PATH: `${tempDir()}/http-jwt.db` }),
    spawnServer({ DB_PATH: `${tempDir()}/http-open.db` }),
  ]);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([jwt?.stop(), open?.stop()]);
});

describe("jwt: HTTP routes need a token", () => {
  for (const path of ["/history", "/rooms/x/history", "/users/online", "/users/bob/history"]) {
    test(`GET ${path}: 401 unauthorized without a token or with a bad one, 200 with a valid one`, async () => {
      const none = await fetch(`${jwt.http}${path}`);
      expect(none.status).toBe(401);
      expect(await none.json()).toMatchObject({ error: "unauthorized", message: expect.any(String) });
      const bad = await fetch(`${jwt.http}${path}`, { headers: { Authorization: "Bearer not.a.token" } });
      expect(bad.status).toBe(401);
      expect(await bad.json()).toMatchObject({ error: "unauthorized" });
      const query = await fetch(`${jwt.http}${path}?token=${await token("alice")}`);
      expect(query.status).toBe(401);
      const ok = await fetch(`${jwt.http}${path}`, { headers: auth(await token("alice")) });
      expect(ok.status).toBe(200);
      await aliveJwt();
    });
  }

  test("GET /auth/mode is public", async () => {
    const r = await fetch(`${jwt.http}/auth/mode`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ mode: "jwt" });
    await aliveJwt();
  });
});

describe("GET /users/:name/history", () => {
  test("jwt: returns only the caller's conversation with :name, newest first; a third user's DMs never appear", async () => {
    const [alice, bob, carol] = await Promise.all(
      ["alice", "bob", "carol"].map(async (u) => {
        const c = await connect(`${jwt.ws}/ws/${u}`, bearer(await token(u)));
        clients.push(c);
        return c;
      }),
    );
    const send = async (c: Client, to: string | undefined, text: string) => {
      const cid = `c-${text}`;
      c.send(to === undefined ? { type: "broadcast", text, cid } : { type: "direct", to, text, cid });
      return (await c.next<AckFrame>(isAck(cid))).id!;
    };
    await send(alice!, "bob", "a2b-1");
    await send(bob!, "alice", "b2a");
    await send(carol!, "bob", "c2b");
    await send(carol!, "alice", "c2a");
    await send(alice!, "carol", "a2c");
    const last = await send(alice!, "bob", "a2b-2");
    await send(alice!, undefined, "public");

    const read = async (caller: string, name: string, query = "") => {
      const r = await fetch(`${jwt.http}/users/${name}/history${query}`, { headers: auth(await token(caller)) });
      expect(r.status).toBe(200);
      return ((await r.json()) as HistoryBody).messages;
    };
    const ab = await read("alice", "bob");
    expect(ab.map((m) => m.text)).toEqual(["a2b-2", "b2a", "a2b-1"]);
    expect(ab.every((m) => m.kind === "direct")).toBe(true);
    expect((await read("bob", "alice")).map((m) => m.text)).toEqual(["a2b-2", "b2a", "a2b-1"]);
    expect((await read("carol", "bob")).map((m) => m.text)).toEqual(["c2b"]);
    expect((await read("alice", "carol")).map((m) => m.text)).toEqual(["a2c", "c2a"]);
    expect((await read("bob", "carol")).map((m) => m.text)).toEqual(["c2b"]);
    expect(await read("dave", "alice")).toEqual([]);
    expect((await read("alice", "bob", "?limit=1")).map((m) => m.text)).toEqual(["a2b-2"]);
    expect((await read("alice", "bob", `?before=${last}`)).map((m) => m.text)).toEqual(["b2a", "a2b-1"]);

    // /history stays broadcasts only.
    const pub = (await (await fetch(`${jwt.http}/history`, { headers: auth(await token("dave")) })).json()) as HistoryBody;
    expect(pub.messages.map((m) => m.text)).toContain("public");
    expect(pub.messages.filter((m) => m.kind !== "broadcast")).toEqual([]);
    await aliveJwt();
  });

  test("jwt: an invalid :name → 400 invalid_username", async () => {
    const r = await fetch(`${jwt.http}/users/bad%20name/history`, { headers: auth(await token("alice")) });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: "invalid_username" });
    await aliveJwt();
  });

  test("open mode: 403 forbidden (nobody is who they say)", async () => {
    const c = await connect(`${open.ws}/ws/alice`);
    clients.push(c);
    c.send({ type: "direct", to: "bob", text: "secret", cid: "s" });
    await c.next(isAck("s"));
    const r = await fetch(`${open.http}/users/bob/history`);
    expect(r.status).toBe(403);
    const body = await r.json();
    expect(body).toMatchObject({ error: "forbidden" });
    expect(JSON.stringify(body)).not.toContain("secret");
    await aliveOpen();
  });
});

describe("/metrics", () => {
  test("METRICS_TOKEN set: 401 without it or with another token, 200 with it", async () => {
    expect((await fetch(`${jwt.http}/metrics`)).status).toBe(401);
    expect((await fetch(`${jwt.http}/metrics`, { headers: auth("wrong-token") })).status).toBe(401);
    expect((await fetch(`${jwt.http}/metrics`, { headers: auth(await token("alice")) })).status).toBe(401);
    const ok = await fetch(`${jwt.http}/metrics`, { headers: auth(METRICS_TOKEN) });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("wirechat_connections ");
    await aliveJwt();
  });

  test("METRICS_TOKEN unset (open mode): 200 without a token", async () => {
    const r = await fetch(`${open.http}/metrics`);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain("wirechat_connections ");
    await aliveOpen();
  });
});
