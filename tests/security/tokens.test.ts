/**
 * AUTH=jwt against the real server: who may connect with which token, how a
 * connection refreshes its token, what happens when it expires, and the
 * `rooms` claim. Every refusal is checked by its HTTP status, error code or
 * close code, and every case ends with a probe: the server still answers.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type JWTPayload } from "jose";
import { Client, connect, isAck, isError, probe, upgrade, type ConnectOptions } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";
import type { ErrorFrame, HistoryBody, WelcomeFrame } from "../../src/protocol";

setDefaultTimeout(20_000);

const SECRET_1 = "first-test-secret-0123456789abcdef";
const SECRET_2 = "second-test-secret-0123456789abcdef";
const ISSUER = "https://issuer.wirechat.test";
const AUDIENCE = "wirechat-tests";
const enc = new TextEncoder();
const nowS = () => Math.floor(Date.now() / 1000);
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** Claims a valid token of server A carries for `sub`; `over` replaces or (with undefined) removes some. */
const claims = (sub: string, over: Record<string, unknown> = {}): JWTPayload => {
  const c: Record<string, unknown> = { sub, iss: ISSUER, aud: AUDIENCE, iat: nowS(), exp: nowS() + 3600, ...over };
  for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
  return c as JWTPayload;
};
const hs256 = (payload: JWTPayload, secret = SECRET_1) => new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(enc.encode(secret));
const token = (sub: string, over: Record<string, unknown> = {}, secret = SECRET_1) => hs256(claims(sub, over), secret);
const bearer = (t: string): ConnectOptions => ({ headers: { Authorization: `Bearer ${t}` } });
const auth = (t: string) => ({ Authorization: `Bearer ${t}` });

/** The upgrade is refused before it happens, with this status and error code. */
async function refused(url: string, headers: Record<string, string>, status: number, code: string) {
  const r = await upgrade(url, headers);
  expect(r.status).toBe(status);
  expect(JSON.parse(r.body)).toMatchObject({ error: code, message: expect.any(String) });
  // A refusal never echoes the token it was given.
  for (const v of Object.values(headers)) {
    for (const part of v.split(/[ ,]+/)) if (part.length > 16) expect(r.body).not.toContain(part.replace(/^bearer\./, ""));
  }
}

let a: ServerProcess; // HS256 with two secrets, issuer and audience checked
const open: Client[] = [];
const track = <T extends Client>(c: T) => (open.push(c), c);
const alive = async () => probe(`${a.ws}/ws`, bearer(await token(`probe-${crypto.randomUUID().slice(0, 8)}`)));

beforeAll(async () => {
  a = await spawnServer({
    AUTH: "jwt",
    JWT_SECRET: `${SECRET_1},${SECRET_2}`,
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    DB_PATH: `${tempDir()}/tokens.db`,
  });
});
afterAll(async () => {
  for (const c of open) c.close();
  await a?.stop();
});

describe("jwt: connecting with a token (HS256)", () => {
  test("GET /auth/mode says jwt without a token", async () => {
    const r = await fetch(`${a.http}/auth/mode`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ mode: "jwt" });
  });

  test("a valid token signed with the first secret: welcome with user = sub", async () => {
    const c = track(new Client(`${a.ws}/ws/alice`, bearer(await token("alice"))));
    const w = await c.next<WelcomeFrame>((f) => f.type === "welcome");
    expect(w.user).toBe("alice");
    await alive();
  });

  test("a valid token signed with the second of two comma-separated secrets is accepted", async () => {
    const c = track(new Client(`${a.ws}/ws/bob`, bearer(await token("bob", {}, SECRET_2))));
    expect((await c.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("bob");
    await alive();
  });

  test("no token → 401 unauthorized", async () => {
    await refused(`${a.ws}/ws/alice`, {}, 401, "unauthorized");
    await refused(`${a.ws}/ws`, {}, 401, "unauthorized");
    await alive();
  });

  test("malformed tokens and headers → 401 unauthorized", async () => {
    const good = await token("alice");
    for (const h of [
      "Bearer",
      "Bearer ",
      "Bearer not-a-jwt",
      "Bearer a.b.c",
      `Basic ${btoa("alice:pw")}`,
      good,
      `Bearer ${good}x`,
      `Bearer ${"x".repeat(9000)}`,
    ]) {
      await refused(`${a.ws}/ws/alice`, { Authorization: h }, 401, "unauthorized");
    }
    await alive();
  });

  test("a token signed with another secret → 401 unauthorized", async () => {
    await refused(`${a.ws}/ws/alice`, auth(await token("alice", {}, "not-the-server-secret-0123456789ab")), 401, "unauthorized");
    await alive();
  });

  test("a token whose payload was changed after signing → 401 unauthorized", async () => {
    const [h, , s] = (await token("alice")).split(".");
    const forged = `${h}.${b64url(claims("alice", { sub: "admin" }))}.${s}`;
    await refused(`${a.ws}/ws/admin`, auth(forged), 401, "unauthorized");
    await alive();
  });

  test("an expired token (beyond the 30 s tolerance) → 401 unauthorized", async () => {
    await refused(`${a.ws}/ws/alice`, auth(await token("alice", { iat: nowS() - 7200, exp: nowS() - 120 })), 401, "unauthorized");
    await alive();
  });

  test("a token without exp → 401 unauthorized", async () => {
    await refused(`${a.ws}/ws/alice`, auth(await token("alice", { exp: undefined })), 401, "unauthorized");
    await alive();
  });

  test("a token not yet valid (nbf an hour ahead) → 401 unauthorized", async () => {
    await refused(`${a.ws}/ws/alice`, auth(await token("alice", { nbf: nowS() + 3600 })), 401, "unauthorized");
    await alive();
  });

  test("JWT_ISSUER set: a wrong or missing issuer → 401 unauthorized", async () => {
    await refused(`${a.ws}/ws/alice`, auth(await token("alice", { iss: "https://evil.example" })), 401, "unauthorized");
    await refused(`${a.ws}/ws/alice`, auth(await token("alice", { iss: undefined })), 401, "unauthorized");
    await alive();
  });

  test("JWT_AUDIENCE set: a wrong or missing audience → 401 unauthorized", async () => {
    await refused(`${a.ws}/ws/alice`, auth(await token("alice", { aud: "another-service" })), 401, "unauthorized");
    await refused(`${a.ws}/ws/alice`, auth(await token("alice", { aud: undefined })), 401, "unauthorized");
    await alive();
  });

  test('an unsigned token (alg "none", empty signature) → 401 unauthorized', async () => {
    for (const alg of ["none", "None", "NONE"]) {
      const unsigned = `${b64url({ alg, typ: "JWT" })}.${b64url(claims("alice"))}.`;
      await refused(`${a.ws}/ws/alice`, auth(unsigned), 401, "unauthorized");
    }
    await alive();
  });

  test("a token without sub, or whose sub is not a valid username, is refused", async () => {
    for (const over of [{ sub: undefined }, { sub: "" }, { sub: "bad name" }, { sub: "x".repeat(65) }, { sub: 42 }]) {
      const r = await upgrade(`${a.ws}/ws`, auth(await hs256(claims("alice", over))));
      expect([401, 403]).toContain(r.status);
      expect(["unauthorized", "forbidden"]).toContain(JSON.parse(r.body).error);
    }
    await alive();
  });

  test("another user's sub on /ws/:name → 403 forbidden", async () => {
    await refused(`${a.ws}/ws/bob`, auth(await token("alice")), 403, "forbidden");
    await refused(`${a.ws}/ws/Alice`, auth(await token("alice")), 403, "forbidden");
    await alive();
  });

  test("/ws (no name) takes the token's sub", async () => {
    const c = track(new Client(`${a.ws}/ws`, bearer(await token("carol"))));
    expect((await c.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("carol");
    const d = track(new Client(`${a.ws}/ws/carol/`, bearer(await token("carol"))));
    expect((await d.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("carol");
    await alive();
  });

  test('token in the subprotocol list ["wirechat.v1", "bearer.<t>"]: the server answers "wirechat.v1"', async () => {
    const t = await token("dave");
    const c = track(new Client(`${a.ws}/ws/dave`, { protocols: ["wirechat.v1", `bearer.${t}`] }));
    expect((await c.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("dave");
    expect(c.ws.protocol).toBe("wirechat.v1");
    const raw = await upgrade(`${a.ws}/ws`, { "Sec-WebSocket-Protocol": `wirechat.v1, bearer.${t}` });
    expect(raw.status).toBe(101);
    expect(raw.headers["sec-websocket-protocol"]).toBe("wirechat.v1");
    expect(JSON.parse(raw.frame!)).toMatchObject({ type: "welcome", user: "dave" });
    await alive();
  });

  test("a bad token in the subprotocol list → 401 unauthorized", async () => {
    const bad = await token("dave", {}, "not-the-server-secret-0123456789ab");
    await refused(`${a.ws}/ws/dave`, { "Sec-WebSocket-Protocol": `wirechat.v1, bearer.${bad}` }, 401, "unauthorized");
    await refused(`${a.ws}/ws/dave`, { "Sec-WebSocket-Protocol": "wirechat.v1" }, 401, "unauthorized");
    await alive();
  });

  test("a token in the URL query is not accepted (401)", async () => {
    const t = await token("alice");
    await refused(`${a.ws}/ws/alice?token=${t}`, {}, 401, "unauthorized");
    await refused(`${a.ws}/ws?token=${t}`, {}, 401, "unauthorized");
    await refused(`${a.ws}/ws?access_token=${t}`, {}, 401, "unauthorized");
    await alive();
  });
});

describe("jwt: the auth frame", () => {
  test("a fresh token for the same user → ack with its cid; the connection goes on", async () => {
    const c = track(await connect(`${a.ws}/ws/erin`, bearer(await token("erin"))));
    c.send({ type: "auth", token: await token("erin", { exp: nowS() + 7200 }), cid: "re" });
    await c.next(isAck("re"));
    c.send({ type: "broadcast", text: "after refresh", cid: "m" });
    await c.next(isAck("m"));
    expect(c.frames.filter(isError)).toEqual([]);
    await alive();
  });

  test("a token for another user → error forbidden, then close 4003", async () => {
    const c = track(await connect(`${a.ws}/ws/frank`, bearer(await token("frank"))));
    c.send({ type: "auth", token: await token("mallory"), cid: "x" });
    const e = await c.next<ErrorFrame>(isError);
    expect(e).toMatchObject({ code: "forbidden" });
    expect((await c.closedWith()).code).toBe(4003);
    await alive();
  });

  test("an invalid token → error unauthorized; the connection stays", async () => {
    const c = track(await connect(`${a.ws}/ws/gina`, bearer(await token("gina"))));
    c.send({ type: "auth", token: await token("gina", {}, "not-the-server-secret-0123456789ab"), cid: "bad1" });
    expect(await c.next<ErrorFrame>(isError)).toMatchObject({ code: "unauthorized", cid: "bad1" });
    c.send({ type: "auth", token: await token("gina", { iat: nowS() - 7200, exp: nowS() - 120 }), cid: "bad2" });
    expect(await c.next<ErrorFrame>(isError)).toMatchObject({ code: "unauthorized", cid: "bad2" });
    c.send({ type: "auth", token: "garbage", cid: "bad3" });
    expect(await c.next<ErrorFrame>(isError)).toMatchObject({ code: "unauthorized", cid: "bad3" });
    c.send({ type: "broadcast", text: "still here", cid: "m" });
    await c.next(isAck("m"));
    expect(c.closed).toBeUndefined();
    await alive();
  });

  test("a connection whose token expires is closed with 4001; one refreshed in time stays", async () => {
    // Both tokens expire within seconds (inside the 30 s tolerance, so accepted);
    // the refreshed one expires first, so by the time the other is closed it would be too.
    const refreshed = track(await connect(`${a.ws}/ws/hank`, bearer(await token("hank", { exp: nowS() + 2 }))));
    const expiring = track(await connect(`${a.ws}/ws/ivy`, bearer(await token("ivy", { exp: nowS() + 3 }))));
    refreshed.send({ type: "auth", token: await token("hank", { exp: nowS() + 3600 }), cid: "r" });
    await refreshed.next(isAck("r"));
    expect((await expiring.closedWith(45_000)).code).toBe(4001);
    refreshed.send({ type: "broadcast", text: "refreshed in time", cid: "m" });
    await refreshed.next(isAck("m"));
    expect(refreshed.closed).toBeUndefined();
    await alive();
  }, 60_000);
});

describe("jwt: the rooms claim", () => {
  const roomsToken = () => token("judy", { rooms: ["general", "dev*"] });

  test("joining a room outside the claim → error forbidden; dev* allows dev-1", async () => {
    const c = track(await connect(`${a.ws}/ws/judy`, bearer(await roomsToken())));
    c.send({ type: "join", room: "random", cid: "j1" });
    expect(await c.next<ErrorFrame>(isError)).toMatchObject({ code: "forbidden", cid: "j1" });
    c.send({ type: "join", room: "de", cid: "j2" });
    expect(await c.next<ErrorFrame>(isError)).toMatchObject({ code: "forbidden", cid: "j2" });
    c.send({ type: "join", room: "dev-1", cid: "j3" });
    await c.next(isAck("j3"));
    c.send({ type: "join", room: "general", cid: "j4" });
    await c.next(isAck("j4"));
    c.send({ type: "room", room: "dev-1", text: "in dev-1", cid: "m1" });
    await c.next(isAck("m1"));
    await c.next((f) => f.type === "message" && f.text === "in dev-1");
    expect(c.frames.filter(isError)).toEqual([]);
    await alive();
  });

  test("sending to a room outside the claim → error forbidden, nothing stored", async () => {
    const c = track(await connect(`${a.ws}/ws/judy`, bearer(await roomsToken())));
    c.send({ type: "room", room: "random", text: "sneaky", cid: "s" });
    const e = await c.next<ErrorFrame>(isError);
    expect(e.code).toBe("forbidden");
    expect(e.cid).toBe("s");
    const page = (await (await fetch(`${a.http}/rooms/random/history`, { headers: auth(await token("other")) })).json()) as HistoryBody;
    expect(page.messages.map((m) => m.text)).not.toContain("sneaky");
    await alive();
  });

  test("GET /rooms/:room/history outside the claim → 403 forbidden; inside → 200", async () => {
    const t = await roomsToken();
    const out = await fetch(`${a.http}/rooms/random/history`, { headers: auth(t) });
    expect(out.status).toBe(403);
    expect(await out.json()).toMatchObject({ error: "forbidden" });
    const inside = await fetch(`${a.http}/rooms/dev-1/history`, { headers: auth(t) });
    expect(inside.status).toBe(200);
    expect(((await inside.json()) as HistoryBody).messages).toBeArray();
    await alive();
  });
});

describe("jwt: keys from a JWKS endpoint (RS256, ES256)", () => {
  let jwks: ReturnType<typeof Bun.serve>;
  let b: ServerProcess;
  let rsa: CryptoKeyPair;
  let ec: CryptoKeyPair;
  let stranger: CryptoKeyPair;

  beforeAll(async () => {
    rsa = await generateKeyPair("RS256", { extractable: true });
    ec = await generateKeyPair("ES256", { extractable: true });
    stranger = await generateKeyPair("RS256", { extractable: true });
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: "rs1", alg: "RS256", use: "sig" },
      { ...(await exportJWK(ec.publicKey)), kid: "es1", alg: "ES256", use: "sig" },
    ];
    jwks = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ keys }) });
    b = await spawnServer({ AUTH: "jwt", JWT_JWKS_URL: `http://127.0.0.1:${jwks.port}/.well-known/jwks.json`, DB_PATH: `${tempDir()}/jwks.db` });
  });
  afterAll(async () => {
    await b?.stop();
    await jwks?.stop(true);
  });

  const signed = (sub: string, alg: string, kid: string, key: CryptoKey | Uint8Array, over: Record<string, unknown> = {}) =>
    new SignJWT({ sub, iat: nowS(), exp: nowS() + 3600, ...over }).setProtectedHeader({ alg, kid, typ: "JWT" }).sign(key);
  const aliveB = async () => probe(`${b.ws}/ws`, bearer(await signed(`probe-${crypto.randomUUID().slice(0, 8)}`, "RS256", "rs1", rsa.privateKey)));

  test("an RS256 token signed with the served key: welcome with user = sub", async () => {
    const c = track(new Client(`${b.ws}/ws/alice`, bearer(await signed("alice", "RS256", "rs1", rsa.privateKey))));
    expect((await c.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("alice");
    await aliveB();
  });

  test("an ES256 token signed with the served key: welcome with user = sub", async () => {
    const c = track(new Client(`${b.ws}/ws`, bearer(await signed("bob", "ES256", "es1", ec.privateKey))));
    expect((await c.next<WelcomeFrame>((f) => f.type === "welcome")).user).toBe("bob");
    await aliveB();
  });

  test("an RS256 token signed with a key not in the JWKS → 401 unauthorized", async () => {
    await refused(`${b.ws}/ws/alice`, auth(await signed("alice", "RS256", "rs1", stranger.privateKey)), 401, "unauthorized");
    await refused(`${b.ws}/ws/alice`, auth(await signed("alice", "RS256", "unknown-kid", stranger.privateKey)), 401, "unauthorized");
    await aliveB();
  });

  test("an expired RS256 token → 401 unauthorized", async () => {
    const t = await signed("alice", "RS256", "rs1", rsa.privateKey, { iat: nowS() - 7200, exp: nowS() - 120 });
    await refused(`${b.ws}/ws/alice`, auth(t), 401, "unauthorized");
    await aliveB();
  });

  test("algorithm confusion: HS256 signed with the public key as the HMAC secret → 401 unauthorized", async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const jwk = JSON.stringify(await exportJWK(rsa.publicKey));
    for (const secret of [pem, jwk]) {
      await refused(`${b.ws}/ws/alice`, auth(await signed("alice", "HS256", "rs1", enc.encode(secret))), 401, "unauthorized");
    }
    await aliveB();
  });

  test('an unsigned token (alg "none") → 401 unauthorized', async () => {
    const unsigned = `${b64url({ alg: "none", kid: "rs1" })}.${b64url({ sub: "alice", iat: nowS(), exp: nowS() + 3600 })}.`;
    await refused(`${b.ws}/ws/alice`, auth(unsigned), 401, "unauthorized");
    await aliveB();
  });
});

describe("jwt: a JWKS endpoint that does not answer, or answers an error", () => {
  let down: ServerProcess;
  let failing: ServerProcess;
  let broken: ReturnType<typeof Bun.serve>;
  beforeAll(async () => {
    // A port that was just free: nothing listens there.
    const gone = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const port = gone.port;
    await gone.stop(true);
    down = await spawnServer({ AUTH: "jwt", JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`, JWT_SECRET: SECRET_1, DB_PATH: `${tempDir()}/jwks-down.db` });
    broken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("key store on fire", { status: 500 }) });
    failing = await spawnServer({
      AUTH: "jwt",
      JWT_JWKS_URL: `http://127.0.0.1:${broken.port}/jwks.json`,
      JWT_SECRET: SECRET_1,
      DB_PATH: `${tempDir()}/jwks-500.db`,
    });
  });
  afterAll(async () => {
    await down?.stop();
    await failing?.stop();
    await broken?.stop(true);
  });

  const rs256 = async () => {
    const { privateKey } = await generateKeyPair("RS256");
    return new SignJWT({ sub: "alice", iat: nowS(), exp: nowS() + 3600 }).setProtectedHeader({ alg: "RS256", kid: "k" }).sign(privateKey);
  };

  // The server's failure, not the token's: 503 with Retry-After, never 401 (which tells a client to drop its token) or a 500.
  for (const [name, server] of [
    ["nothing listens", () => down],
    ["it answers HTTP 500", () => failing],
  ] as const) {
    test(`${name}: an RS256 token → 503 unavailable with Retry-After, on the upgrade and over HTTP; HS256 tokens still work`, async () => {
      const s = server();
      const t = await rs256();
      for (let i = 0; i < 3; i++) {
        await refused(`${s.ws}/ws/alice`, auth(t), 503, "unavailable");
        expect((await upgrade(`${s.ws}/ws/alice`, auth(t))).headers["retry-after"]).toBe("5");
      }
      const res = await fetch(`${s.http}/history`, { headers: auth(t) });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: string; retryAfterMs: number }).retryAfterMs).toBe(5000);
      await probe(`${s.ws}/ws`, bearer(await hs256({ sub: "probe", iat: nowS(), exp: nowS() + 3600 })));
    });
  }

  test("an auth frame with an RS256 token → error unavailable with its cid and retryAfterMs; the connection goes on", async () => {
    const c = new Client(`${down.ws}/ws/alice`, bearer(await hs256({ sub: "alice", iat: nowS(), exp: nowS() + 3600 })));
    try {
      await c.ready();
      c.send({ type: "auth", token: await rs256(), cid: "re" });
      expect(await c.next<ErrorFrame>(isError)).toMatchObject({ code: "unavailable", cid: "re", retryAfterMs: 5000 });
      c.send({ type: "broadcast", text: "still here", cid: "b" });
      await c.next(isAck("b"));
    } finally {
      c.close();
    }
  });
});
