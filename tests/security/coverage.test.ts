/**
 * Security behaviours that had no test of their own, against the real
 * server: the `?rooms=` list against the token's `rooms` claim at connect,
 * EdDSA keys from a JWKS endpoint, the 30 s clock tolerance at connect, room
 * and typing frames outside the claim, a lone `bearer.<token>` subprotocol,
 * TOKEN_TTL and argon2id in accounts mode, and `isValidName` on non-strings.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, type JWTPayload } from "jose";
import { Client, isAck, isError, probe, upgrade, type ConnectOptions, type UpgradeAnswer } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";
import { isValidName } from "../../src/protocol/limits";
import type { ErrorFrame, TokenBody, WelcomeFrame } from "../../src/protocol";

setDefaultTimeout(20_000);

const SECRET = "coverage-test-secret-0123456789abcdef";
const enc = new TextEncoder();
const nowS = () => Math.floor(Date.now() / 1000);
const auth = (t: string) => ({ Authorization: `Bearer ${t}` });
const bearer = (t: string): ConnectOptions => ({ headers: auth(t) });
/** An HS256 token of server J for `sub`, valid an hour; `over` replaces claims. */
const token = (sub: string, over: JWTPayload = {}) =>
  new SignJWT({ sub, iat: nowS(), exp: nowS() + 3600, ...over }).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(enc.encode(SECRET));

/** No header and no body of an answer contains `secret`. */
function neverEchoes(r: UpgradeAnswer, secret: string) {
  for (const [name, value] of Object.entries(r.headers)) expect(`${name}: ${value}`).not.toContain(secret);
  expect(r.body).not.toContain(secret);
}

/** The upgrade is refused before it happens, with exactly this status and error code; the token is not echoed. */
async function refused(url: string, t: string, status: number, code: string, headers: Record<string, string> = auth(t)): Promise<UpgradeAnswer> {
  const r = await upgrade(url, headers);
  expect(r.status).toBe(status);
  expect(JSON.parse(r.body)).toMatchObject({ error: code, message: expect.any(String) });
  neverEchoes(r, t);
  return r;
}

let jwks: ReturnType<typeof Bun.serve>;
let j: ServerProcess; // AUTH=jwt: HS256 with SECRET, and EdDSA keys from the local JWKS endpoint
let ed: CryptoKeyPair;
let stranger: CryptoKeyPair;
const open: Client[] = [];
const track = (c: Client) => (open.push(c), c);
const alive = async () => probe(`${j.ws}/ws`, bearer(await token(`probe-${crypto.randomUUID().slice(0, 8)}`)));

beforeAll(async () => {
  ed = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  stranger = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const keys = [{ ...(await exportJWK(ed.publicKey)), kid: "ed1", alg: "EdDSA", use: "sig" }];
  jwks = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ keys }) });
  j = await spawnServer({
    AUTH: "jwt",
    JWT_SECRET: SECRET,
    JWT_JWKS_URL: `http://127.0.0.1:${jwks.port}/.well-known/jwks.json`,
    DB_PATH: `${tempDir()}/coverage-jwt.db`,
  });
});
afterAll(async () => {
  for (const c of open) c.close();
  await j?.stop();
  await jwks?.stop(true);
});

describe("isValidName", () => {
  test('isValidName: non-strings (null, undefined, 123, {}, [], ["alice"], an object whose toString is a name) → false', () => {
    for (const v of [null, undefined, 123, 0, true, {}, [], ["alice"], { toString: () => "alice" }, new String("alice")]) {
      expect(isValidName(v)).toBe(false);
    }
  });

  test('isValidName: the strings "null" and "undefined" follow the name rule (valid); null itself is not "null"', () => {
    expect(isValidName("null")).toBe(true);
    expect(isValidName("undefined")).toBe(true);
    expect(isValidName(null)).toBe(false);
    expect(isValidName(undefined)).toBe(false);
  });
});

describe("gate.admit: ?rooms= against the token's rooms claim", () => {
  const judy = () => token("judy", { rooms: ["general", "dev*"] });

  test("gate.admit: ?rooms=random outside the claim → 403 forbidden before the upgrade", async () => {
    const t = await judy();
    for (const rooms of ["random", "general,random", "de", "devx,secret"]) {
      const r = await refused(`${j.ws}/ws/judy?rooms=${rooms}`, t, 403, "forbidden");
      expect(r.headers.upgrade).toBeUndefined();
    }
    const r = await refused(`${j.ws}/ws?rooms=general,random`, t, 403, "forbidden");
    expect(JSON.parse(r.body).message).toContain('"random"');
    await alive();
  });

  test("gate.admit: a prefix claim dev* allows ?rooms=dev-1: 101, welcome, and the connection is in dev-1", async () => {
    const t = await judy();
    const raw = await upgrade(`${j.ws}/ws/judy?rooms=dev-1,general`, auth(t));
    expect(raw.status).toBe(101);
    expect(JSON.parse(raw.frame!)).toMatchObject({ type: "welcome", user: "judy" });
    const c = track(new Client(`${j.ws}/ws/judy?rooms=dev-1`, bearer(t)));
    expect((await c.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("judy");
    // In the room from the connect on: a send needs no join.
    c.send({ type: "room", room: "dev-1", text: "in dev-1 from the query", cid: "q1" });
    await c.next(isAck("q1"));
    await c.next((f) => f.type === "message" && f.text === "in dev-1 from the query");
    expect(c.frames.filter(isError)).toEqual([]);
    await alive();
  });
});

describe("jwt verifier: EdDSA (Ed25519) keys from JWT_JWKS_URL", () => {
  const eddsa = (sub: string, kid: string, key: CryptoKey) =>
    new SignJWT({ sub, iat: nowS(), exp: nowS() + 3600 }).setProtectedHeader({ alg: "EdDSA", kid, typ: "JWT" }).sign(key);

  test("jwt verifier: an EdDSA token signed with the served Ed25519 key → welcome with user = sub", async () => {
    const t = await eddsa("edna", "ed1", ed.privateKey);
    const c = track(new Client(`${j.ws}/ws/edna`, bearer(t)));
    expect((await c.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("edna");
    const raw = await upgrade(`${j.ws}/ws`, auth(t));
    expect(raw.status).toBe(101);
    expect(JSON.parse(raw.frame!)).toMatchObject({ type: "welcome", user: "edna" });
    await alive();
  });

  test("jwt verifier: an EdDSA token signed with a key not in the set → 401 unauthorized (known kid and unknown kid)", async () => {
    await refused(`${j.ws}/ws/edna`, await eddsa("edna", "ed1", stranger.privateKey), 401, "unauthorized");
    await refused(`${j.ws}/ws/edna`, await eddsa("edna", "ed-unknown", stranger.privateKey), 401, "unauthorized");
    await alive();
  });
});

describe("CLOCK_TOLERANCE_S (30 s) at connect", () => {
  test("CLOCK_TOLERANCE_S: a token expired 10 s ago → 101 and welcome", async () => {
    const t = await token("tolerated", { iat: nowS() - 3600, exp: nowS() - 10 });
    const r = await upgrade(`${j.ws}/ws/tolerated`, auth(t));
    expect(r.status).toBe(101);
    expect(JSON.parse(r.frame!)).toMatchObject({ type: "welcome", user: "tolerated" });
    await alive();
  });

  test("CLOCK_TOLERANCE_S: a token expired 40 s ago → 401 unauthorized", async () => {
    const t = await token("late", { iat: nowS() - 3600, exp: nowS() - 40 });
    await refused(`${j.ws}/ws/late`, t, 401, "unauthorized");
    await alive();
  });
});

describe("hub: typing frames outside the rooms claim", () => {
  test('hub typing: {"type":"typing","room":"secret"} outside the claim → error forbidden; an allowed room not joined → not_member', async () => {
    const c = track(new Client(`${j.ws}/ws/judy?rooms=general`, bearer(await token("judy", { rooms: ["general", "dev*"] }))));
    await c.ready();
    c.send({ type: "typing", room: "secret" });
    expect((await c.next<ErrorFrame>(isError)).code).toBe("forbidden");
    // Allowed by the claim but not joined: the membership answer, so the one above came from the claim.
    c.send({ type: "typing", room: "dev-9" });
    expect((await c.next<ErrorFrame>(isError)).code).toBe("not_member");
    c.send({ type: "broadcast", text: "still connected", cid: "after" });
    await c.next(isAck("after"));
    expect(c.closed).toBeUndefined();
    await alive();
  });
});

describe("socket upgrade: a lone bearer.<token> subprotocol", () => {
  test("socket upgrade: Sec-WebSocket-Protocol bearer.<t> without wirechat.v1 → 400 invalid_frame naming wirechat.v1; the token is never echoed", async () => {
    const t = await token("bea");
    for (const path of ["/ws/bea", "/ws"]) {
      const r = await refused(`${j.ws}${path}`, t, 400, "invalid_frame", { "Sec-WebSocket-Protocol": `bearer.${t}` });
      expect(r.headers["sec-websocket-protocol"]).toBeUndefined();
      const body = JSON.parse(r.body) as { message: string };
      expect(body.message).toContain("wirechat.v1");
      expect(body.message).toContain("bearer.");
    }
    // With wirechat.v1 offered too, the answer is wirechat.v1 alone.
    const ok = await upgrade(`${j.ws}/ws/bea`, { "Sec-WebSocket-Protocol": `bearer.${t}, wirechat.v1` });
    expect(ok.status).toBe(101);
    expect(ok.headers["sec-websocket-protocol"]).toBe("wirechat.v1");
    neverEchoes(ok, t);
    await alive();
  });
});

describe("accounts: TOKEN_TTL and password storage", () => {
  const DB = `${tempDir()}/coverage-accounts.db`;
  let s: ServerProcess;
  beforeAll(async () => {
    s = await spawnServer({ AUTH: "accounts", TOKEN_TTL: "90s", TRUST_PROXY: "1", DB_PATH: DB });
  });
  afterAll(async () => {
    await s?.stop();
  });

  const byte = () => Math.floor(Math.random() * 254) + 1;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${s.http}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "X-Forwarded-For": `10.${byte()}.${byte()}.${byte()}`, ...headers },
      body: JSON.stringify(body),
    });
  /** The stored hash of `username`, read from the server's SQLite file; undefined when there is no such account. */
  const storedHash = (username: string): string | undefined => {
    const db = new Database(DB, { readonly: true });
    try {
      return (db.query("SELECT hash FROM accounts WHERE username = ?").get(username) as { hash: string } | null)?.hash;
    } finally {
      db.close();
    }
  };
  const aliveS = async () => {
    const name = `probe-${crypto.randomUUID().slice(0, 8)}`;
    expect((await post("/auth/register", { username: name, password: "probe password 1" })).status).toBe(201);
    const l = await post("/auth/login", { username: name, password: "probe password 1" });
    await probe(`${s.ws}/ws`, bearer(((await l.json()) as TokenBody).token));
  };

  test("Accounts.issue with TOKEN_TTL=90s: login and refresh tokens have exp - iat = 90 and expiresAt = exp × 1000", async () => {
    expect((await post("/auth/register", { username: "ttl", password: "ttl password 1" })).status).toBe(201);
    const before = Date.now();
    const l = await post("/auth/login", { username: "ttl", password: "ttl password 1" });
    const after = Date.now();
    expect(l.status).toBe(200);
    const body = (await l.json()) as TokenBody;
    const p = decodeJwt(body.token);
    expect(p).toMatchObject({ sub: "ttl", iss: "wirechat" });
    expect(p.exp! - p.iat!).toBe(90);
    expect(body.expiresAt).toBe(p.exp! * 1000);
    expect(body.expiresAt).toBeGreaterThan(before + 89_000);
    expect(body.expiresAt).toBeLessThanOrEqual(after + 90_000);
    const r = await post("/auth/refresh", {}, auth(body.token));
    expect(r.status).toBe(200);
    const refreshed = (await r.json()) as TokenBody;
    const q = decodeJwt(refreshed.token);
    expect(q.exp! - q.iat!).toBe(90);
    expect(refreshed.expiresAt).toBe(q.exp! * 1000);
    await aliveS();
  });

  test("Accounts.register stores the password as an argon2id hash ($argon2id$) that verifies it", async () => {
    const password = "argon password 1";
    expect((await post("/auth/register", { username: "argon", password })).status).toBe(201);
    const hash = storedHash("argon");
    expect(hash).toBeString();
    expect(hash!.startsWith("$argon2id$")).toBe(true);
    expect(hash).not.toContain(password);
    expect(await Bun.password.verify(password, hash!)).toBe(true);
    expect(await Bun.password.verify("another password", hash!)).toBe(false);
    await aliveS();
  });

  test('POST /auth/register with username null → 400 invalid_frame and no account "null"; the string "null" is a valid name → 201', async () => {
    const r = await post("/auth/register", { username: null, password: "null password 1" });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: "invalid_frame" });
    expect(storedHash("null")).toBeUndefined();
    expect((await post("/auth/register", { username: "null", password: "null password 2" })).status).toBe(201);
    expect(storedHash("null")!.startsWith("$argon2id$")).toBe(true);
    await aliveS();
  });
});
