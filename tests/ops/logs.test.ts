/**
 * Logs of the real server process: every line it prints is one JSON object
 * with time, level and msg; user input that tries to forge a line (a newline
 * and a JSON object, control characters) stays inside a string; and after a
 * run that sends tokens, registers, logs in and sends messages, no token,
 * secret, password or message text appears in what it printed.
 */
import { expect, test } from "bun:test";
import { Writable } from "node:stream";
import { SignJWT } from "jose";
import { type Client, connect, isAck, upgrade } from "../helpers";
import { spawnServer } from "../spawn";
import { tempDir } from "../tmp";
import { createLogger } from "../../src/log";

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];
/** A forged line as an attacker would put it in a name, a path or a frame, with control characters and ANSI escapes. */
const FORGE = `x"\n{"level":"error","time":"2020-01-01T00:00:00.000Z","msg":"FORGED","forged":true}\r\n\u0000\u001b[31m\u2028\u2029`;

/** Every line printed, each parsed; throws naming the first line that is not one JSON object with time, level and msg. */
function lines(out: string): Record<string, unknown>[] {
  expect(out.endsWith("\n")).toBe(true);
  return out
    .slice(0, -1)
    .split("\n")
    .map((line) => {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line);
      } catch {
        throw new Error(`a line that is not JSON: ${JSON.stringify(line)}`);
      }
      if (typeof o !== "object" || o === null || Array.isArray(o)) throw new Error(`a line that is not an object: ${line}`);
      expect(typeof o.time).toBe("string");
      expect(Number.isNaN(Date.parse(o.time as string))).toBe(false);
      expect(LEVELS).toContain(o.level as string);
      expect(typeof o.msg).toBe("string");
      return o;
    });
}

const forged = (objs: Record<string, unknown>[]) => objs.filter((o) => o.msg === "FORGED" || "forged" in o);

test("the logger: user input in a field or a message stays on its line, inside its string", () => {
  let out = "";
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  });
  const log = createLogger({ level: "debug", destination: sink });
  log.info(`a message with ${FORGE}`, { user: FORGE, path: `/ws/${FORGE}` });
  log.error("store failed", { error: FORGE, token: "tok-should-not-appear", password: "pw-should-not-appear", text: "text-should-not-appear" });
  const objs = lines(out);
  expect(objs).toHaveLength(2);
  expect(forged(objs)).toEqual([]);
  // Round trip: the input is kept exactly, escaped, never interpreted.
  expect(objs[0]!.msg).toBe(`a message with ${FORGE}`);
  expect(objs[0]!.user).toBe(FORGE);
  expect(objs[1]!.error).toBe(FORGE);
  // No raw control character reaches the output (a terminal would act on an escape).
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is that no control character reaches the log
  expect(out.slice(0, -1).replaceAll("\n", "")).not.toMatch(/[\u0000-\u001f\u007f]/);
  expect(out).not.toMatch(/should-not-appear/);
  expect(objs[1]).toMatchObject({ token: "[redacted]", password: "[redacted]", text: "[redacted]" });
  // The errors the admin page shows: redacted too.
  expect(log.recentErrors!()).toEqual([
    { time: expect.any(String), msg: "store failed", fields: { error: FORGE, token: "[redacted]", password: "[redacted]", text: "[redacted]" } },
  ]);
  for (let i = 0; i < 30; i++) log.error(`error ${i}`);
  expect(log.recentErrors!().map((l) => l.msg)).toEqual(Array.from({ length: 20 }, (_, i) => `error ${i + 10}`));
});

test("the server process: every line is JSON; forging attempts by name, path, frame and admin call stay one line or unlogged", async () => {
  const ADMIN_TOKEN = "logs-admin-token-0123456789abcdef";
  const server = await spawnServer({ ADMIN_TOKEN, LOG_LEVEL: "debug", DB_PATH: `${tempDir()}/logs.db` });
  const clients: Client[] = [];
  try {
    const enc = encodeURIComponent(FORGE);
    // A refused connect whose name is the forged line.
    expect((await upgrade(`${server.ws}/ws/${enc}`)).status).toBe(400);
    expect((await upgrade(`${server.ws}/ws/mallory?rooms=${enc}`)).status).toBe(400);
    expect((await upgrade(`${server.ws}/ws/mallory?since=${enc}`)).status).toBe(400);
    // HTTP routes with the forged line in the path and the query.
    expect((await fetch(`${server.http}/rooms/${enc}/history`)).status).toBe(400);
    expect((await fetch(`${server.http}/history?before=${enc}`)).status).toBe(400);
    expect((await fetch(`${server.http}/${enc}`)).status).toBe(404);
    // Admin calls on a crafted name, with and without the token.
    const admin = (name: string, token = ADMIN_TOKEN) =>
      fetch(`${server.http}/admin/users/${encodeURIComponent(name)}/disconnect`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    expect((await admin(FORGE)).status).toBe(400);
    // (A header cannot carry control characters: the rest of the line then.)
    expect((await admin("mallory", FORGE.replace(/[^\x20-\x7e]/g, ""))).status).toBe(401);
    // Frames carrying it: as text (stored and delivered, never logged), as a recipient, as a room, as garbage.
    const mallory = await connect(`${server.ws}/ws/mallory`);
    clients.push(mallory);
    mallory.send({ type: "broadcast", text: FORGE, cid: "f1" });
    await mallory.next(isAck("f1"));
    mallory.send({ type: "direct", to: FORGE, text: FORGE, cid: "f2" });
    mallory.send({ type: "join", room: FORGE, cid: "f3" });
    mallory.send(`{"type":"broadcast","text":1}${FORGE}`);
    for (const cid of ["f2", "f3"]) await mallory.next((f) => f.type === "error" && f.cid === cid);
    await mallory.next((f) => f.type === "error" && f.cid === undefined);
    // A logged admin action names the user in a field.
    expect(await (await admin("mallory")).json()).toEqual({ user: "mallory", closed: 1 });
    expect((await mallory.closedWith()).code).toBe(4003);
    await server.waitForOutput((out) => out.includes("admin: disconnected a user"));
  } finally {
    for (const c of clients) c.close();
    expect(await server.stop()).toBe(0);
  }
  const objs = lines(server.output());
  expect(forged(objs)).toEqual([]);
  expect(objs.map((o) => o.msg)).toEqual(expect.arrayContaining([expect.stringMatching(/^wirechat listening on /), "admin: disconnected a user", "stopped"]));
  expect(objs.find((o) => o.msg === "admin: disconnected a user")).toMatchObject({ level: "info", user: "mallory", closed: 1 });
  expect(server.output()).not.toContain(ADMIN_TOKEN);
}, 30_000);

/** What a run must never print: each of these strings. */
function expectNoneOf(out: string, secrets: string[]) {
  lines(out);
  for (const s of secrets) {
    expect(s.length).toBeGreaterThanOrEqual(8);
    if (out.includes(s)) throw new Error(`the server printed a secret or a message text: ${JSON.stringify(s)}\n${out}`);
  }
  // Nothing that looks like a JWT (their header and payload start with base64 "{\"").
  expect(out).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+/);
}

test("AUTH=jwt: tokens, secrets and message texts never appear in the log", async () => {
  const JWT_SECRET = `jwt-log-secret-${crypto.randomUUID()}`;
  const ADMIN_TOKEN = `admin-${crypto.randomUUID()}`;
  const METRICS_TOKEN = `metrics-${crypto.randomUUID()}`;
  const key = new TextEncoder().encode(JWT_SECRET);
  const now = () => Math.floor(Date.now() / 1000);
  const jwt = (sub: string, exp = now() + 3600) =>
    new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(sub)
      .setIssuedAt(now() - 5)
      .setExpirationTime(exp)
      .sign(key);
  const server = await spawnServer({ AUTH: "jwt", JWT_SECRET, ADMIN_TOKEN, METRICS_TOKEN, LOG_LEVEL: "debug", DB_PATH: `${tempDir()}/jwt.db` });
  const tokens = await Promise.all([jwt("alice"), jwt("bob"), jwt("alice"), jwt("alice", now() - 3600), jwt("mallory")]);
  const [aliceToken, bobToken, refreshToken, expiredToken, otherToken] = tokens;
  const texts = [`broadcast-${crypto.randomUUID()}`, `direct-${crypto.randomUUID()}`, `room-${crypto.randomUUID()}`];
  const clients: Client[] = [];
  try {
    const alice = await connect(`${server.ws}/ws/alice?rooms=ops`, { headers: { Authorization: `Bearer ${aliceToken}` } });
    const bob = await connect(`${server.ws}/ws`, { protocols: ["wirechat.v1", `bearer.${bobToken}`] });
    clients.push(alice, bob);
    alice.send({ type: "broadcast", text: texts[0], cid: "1" });
    alice.send({ type: "direct", to: "bob", text: texts[1], cid: "2" });
    alice.send({ type: "room", room: "ops", text: texts[2], cid: "3" });
    for (const cid of ["1", "2", "3"]) await alice.next(isAck(cid));
    await bob.next((f) => f.type === "message" && f.text === texts[1]);
    alice.send({ type: "auth", token: refreshToken!, cid: "4" });
    await alice.next(isAck("4"));
    const auth = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
    expect((await fetch(`${server.http}/history`, auth(aliceToken!))).status).toBe(200);
    expect((await fetch(`${server.http}/users/bob/history`, auth(aliceToken!))).status).toBe(200);
    expect((await fetch(`${server.http}/metrics`, auth(METRICS_TOKEN))).status).toBe(200);
    expect((await fetch(`${server.http}/admin/stats`, auth(ADMIN_TOKEN))).status).toBe(200);
    // Refusals: an expired token, a forged one, a token in the query string.
    expect((await upgrade(`${server.ws}/ws`, { Authorization: `Bearer ${expiredToken}` })).status).toBe(401);
    expect((await upgrade(`${server.ws}/ws`, { Authorization: `Bearer ${aliceToken!.slice(0, -4)}AAAA` })).status).toBe(401);
    expect((await upgrade(`${server.ws}/ws?token=${aliceToken}`)).status).toBe(401);
    // A token for another user on a live connection closes it.
    bob.send({ type: "auth", token: otherToken!, cid: "5" });
    expect((await bob.closedWith()).code).toBe(4003);
    // Revoke logs the user, not the tokens.
    expect((await fetch(`${server.http}/admin/users/alice/revoke`, { method: "POST", ...auth(ADMIN_TOKEN) })).status).toBe(200);
    expect((await alice.closedWith()).code).toBe(4001);
    await server.waitForOutput((out) => out.includes("admin: revoked"));
  } finally {
    for (const c of clients) c.close();
    expect(await server.stop()).toBe(0);
  }
  expectNoneOf(server.output(), [JWT_SECRET, ADMIN_TOKEN, METRICS_TOKEN, ...tokens, ...tokens.map((t) => t.split(".")[2]!), ...texts]);
}, 30_000);

test("AUTH=accounts: passwords, tokens, the signing secret and message texts never appear in the log", async () => {
  const AUTH_SECRET = `accounts-log-secret-${crypto.randomUUID()}`;
  const server = await spawnServer({ AUTH: "accounts", AUTH_SECRET, LOG_LEVEL: "debug", DB_PATH: `${tempDir()}/accounts.db` });
  const password = `pw-${crypto.randomUUID()}`;
  const wrong = `wrong-${crypto.randomUUID()}`;
  const texts = [`hello-${crypto.randomUUID()}`, `dm-${crypto.randomUUID()}`];
  const tokens: string[] = [];
  const clients: Client[] = [];
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.http}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  try {
    for (const user of ["dana", "erin"]) expect((await post("/auth/register", { username: user, password })).status).toBe(201);
    expect((await post("/auth/register", { username: "dana", password: wrong })).status).toBe(409);
    expect((await post("/auth/login", { username: "dana", password: wrong })).status).toBe(401);
    expect((await post("/auth/login", { username: "nobody", password })).status).toBe(401);
    for (const user of ["dana", "erin"]) {
      const r = await post("/auth/login", { username: user, password });
      expect(r.status).toBe(200);
      tokens.push(((await r.json()) as { token: string }).token);
    }
    const refreshed = await post("/auth/refresh", {}, { authorization: `Bearer ${tokens[0]}` });
    expect(refreshed.status).toBe(200);
    tokens.push(((await refreshed.json()) as { token: string }).token);
    const dana = await connect(`${server.ws}/ws`, { headers: { Authorization: `Bearer ${tokens[2]}` } });
    const erin = await connect(`${server.ws}/ws/erin`, { protocols: ["wirechat.v1", `bearer.${tokens[1]}`] });
    clients.push(dana, erin);
    dana.send({ type: "broadcast", text: texts[0], cid: "1" });
    dana.send({ type: "direct", to: "erin", text: texts[1], cid: "2" });
    for (const cid of ["1", "2"]) await dana.next(isAck(cid));
    await erin.next((f) => f.type === "message" && f.text === texts[1]);
  } finally {
    for (const c of clients) c.close();
    expect(await server.stop()).toBe(0);
  }
  expectNoneOf(server.output(), [AUTH_SECRET, password, wrong, ...tokens, ...tokens.map((t) => t.split(".")[2]!), ...texts]);
}, 30_000);
