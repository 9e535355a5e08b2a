/**
 * The SDK against in-process servers in jwt, accounts and open mode, real
 * sockets: the token goes in the subprotocols (never the URL) and the HTTP
 * Authorization header; a function token is renewed on the open connection
 * before it expires and asked again after a failed connect and a 4001; a
 * string token stops at 4001; 4003 stops; `rate_limited` sends are retried
 * at the server's pace; the accounts helpers.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { authMode, ChatClientError, createChatClient, login, readClaims, refresh, register, type ChatClient, type ChatClientOptions } from "../src/sdk";
import { refreshDelay } from "../src/sdk/jwt";
import { Signal, startServer, waitUntil, type TestServer } from "./helpers";
import { ADMIN_TEST_TOKEN, jwtFor, opened, Recorder, startAuthServer } from "./sdk_helpers";

const servers: TestServer[] = [];
const clients: ChatClient[] = [];
afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.stop();
});

function serve<T extends TestServer>(s: T): T {
  servers.push(s);
  return s;
}

function client(opts: ChatClientOptions): Recorder {
  const c = createChatClient({ ackTimeoutMs: 5000, backoff: { initialMs: 20, maxMs: 200 }, ...opts });
  clients.push(c);
  return new Recorder(c);
}

/** Counts calls of a token function and awaits a number of them (never a sleep). */
class Calls {
  readonly at: number[] = [];
  readonly #changed = new Signal();

  /** Wraps `fn`: each call is counted (with its time) before it runs. */
  wrap(fn: () => Promise<string>): () => Promise<string> {
    return () => {
      this.at.push(Date.now());
      this.#changed.notify();
      return fn();
    };
  }

  get count(): number {
    return this.at.length;
  }

  async until(n: number, ms: number): Promise<void> {
    await waitUntil(
      () => this.count >= n,
      () => `${n} token calls; got ${this.count}`,
      { ms, signal: this.#changed },
    );
  }
}

/** A real WebSocket that records how each connect was made. */
function recordingSocket() {
  const made: { url: string; protocols?: string | string[] }[] = [];
  class Recording extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      made.push({ url, protocols });
    }
  }
  return { made, WebSocket: Recording };
}

/** The error a promise rejects with (the test fails if it resolves). */
async function failure(p: Promise<unknown>): Promise<ChatClientError> {
  const r = await p.then(
    (v) => ({ resolved: v }),
    (e: unknown) => ({ rejected: e }),
  );
  if (!("rejected" in r)) throw new Error(`expected a rejection, got ${JSON.stringify(r.resolved)}`);
  expect(r.rejected).toBeInstanceOf(ChatClientError);
  return r.rejected as ChatClientError;
}

const admin = (s: TestServer, action: "revoke" | "disconnect", user: string) =>
  fetch(`${s.http}/admin/users/${user}/${action}`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_TEST_TOKEN}` } }).then((r) => r.json());

describe("token claims and refresh timing", () => {
  test("claims are read from the payload; anything else is not a token", async () => {
    const t = await jwtFor("alice", { validForS: 100, lifetimeS: 50 });
    const c = readClaims(t)!;
    expect(c.sub).toBe("alice");
    expect(c.exp! - c.iat!).toBe(50);
    expect(readClaims("not-a-jwt")).toBeUndefined();
    expect(readClaims("a.%%%.c")).toBeUndefined();
    expect(readClaims(`x.${btoa("[1]")}.y`)).toBeUndefined();
  });

  test("60 s before exp for a long token, at 80% of the lifetime for a short one, from the client's own clock when there is an iat", async () => {
    const hour = await jwtFor("a", { validForS: 3600 + 30, lifetimeS: 3600 });
    const now = Date.now();
    // exp is whole seconds: allow the rounding.
    expect(refreshDelay(hour, now, now)!).toBeGreaterThanOrEqual(3540_000 - 1000);
    expect(refreshDelay(hour, now, now)!).toBeLessThanOrEqual(3540_000);
    const short = await jwtFor("a", { lifetimeS: 10 });
    // Measured from when it was obtained, so a client clock that is off does not matter.
    expect(refreshDelay(short, now, now)).toBe(8000);
    expect(refreshDelay(short, now + 5000, now)).toBe(3000);
    expect(refreshDelay(short, now + 60_000, now)).toBe(0);
    expect(refreshDelay("opaque", now)).toBeUndefined();
  });
});

describe("jwt mode", () => {
  const s = serve(startAuthServer("jwt"));

  test("the token travels in the subprotocols, never in the URL, and in the HTTP Authorization header", async () => {
    const token = await jwtFor("carrier");
    const sock = recordingSocket();
    const rec = client({ url: s.http, username: "carrier", token, WebSocket: sock.WebSocket });
    await opened(rec);
    expect(sock.made).toEqual([{ url: `${s.ws}/ws/carrier?batch=1`, protocols: ["wirechat.v1", `bearer.${token}`] }]);
    await rec.client.send.broadcast("with a token");
    expect((await rec.client.history({ limit: 1 }))[0]!.text).toBe("with a token");
    expect(await rec.client.onlineUsers()).toContain("carrier");
    // Without a token the same query is refused.
    const anon = createChatClient({ url: s.http, username: "anon", backoff: { initialMs: 1000 } });
    clients.push(anon);
    expect((await failure(anon.history())).code).toBe("unauthorized");
    anon.close();
  });

  test("a function token is renewed on the open connection before it expires; the connection outlives the first token", async () => {
    // Each token is accepted for at most 5 s from when it is made (lifetime 4 s): without a refresh the server closes with 4001.
    const calls = new Calls();
    const rec = client({ url: s.http, username: "refresher", token: calls.wrap(() => jwtFor("refresher", { validForS: 5, lifetimeS: 4 })) });
    await opened(rec);
    // The third call is the second refresh, ~6.4 s in: past the first token's end.
    await calls.until(3, 15_000);
    await rec.client.send.broadcast("still here");
    expect(rec.welcomes.length).toBe(1);
    expect(rec.statuses).toEqual(["open"]);
    const gaps = calls.at.slice(1).map((t, i) => t - calls.at[i]!);
    console.log(`refresh gaps for a 4 s token: ${gaps.join(", ")} ms`);
    for (const g of gaps) {
      expect(g).toBeGreaterThan(2500); // 80% of 4 s, less the rounding of exp to whole seconds
      expect(g).toBeLessThan(4000);
    }
  }, 20_000);

  test("a failed connect (HTTP 401 before the upgrade) asks the function again for a fresh token", async () => {
    const calls = new Calls();
    const rec = client({
      url: s.http,
      username: "second-try",
      token: calls.wrap(async () => (calls.count === 1 ? "not.a.token" : jwtFor("second-try"))),
    });
    await opened(rec);
    expect(calls.count).toBe(2);
    expect(rec.statuses).toEqual(["reconnecting", "open"]);
  });

  test("4001 (revoked) with a function token: a fresh token and a reconnect", async () => {
    const calls = new Calls();
    let revoked = false;
    // A token made after the revoke carries an iat from then on.
    const fn = () => jwtFor("revoked-fn", revoked ? { iat: Math.ceil(Date.now() / 1000) } : {});
    const rec = client({ url: s.http, username: "revoked-fn", token: calls.wrap(fn) });
    await opened(rec);
    revoked = true;
    expect(await admin(s, "revoke", "revoked-fn")).toEqual({ user: "revoked-fn", closed: 1 });
    await rec.nextWelcome();
    expect(rec.statuses).toEqual(["open", "reconnecting", "open"]);
    expect(calls.count).toBe(2);
    expect(rec.errors).toEqual([]);
    await rec.client.send.broadcast("back after the revoke");
  });

  test("4001 with a string token: closed, with an `unauthorized` error, no reconnect", async () => {
    const rec = client({ url: s.http, username: "revoked-str", token: await jwtFor("revoked-str") });
    await opened(rec);
    await admin(s, "revoke", "revoked-str");
    await rec.until(() => rec.client.status === "closed", "closed");
    expect(rec.statuses).toEqual(["open", "closed"]);
    expect(rec.errors.map((e) => e.code)).toEqual(["unauthorized"]);
    expect((await failure(rec.client.send.broadcast("late"))).code).toBe("closed");
  });

  test("4003 (an admin disconnect) stops reconnecting: closed, with a `forbidden` error", async () => {
    const sock = recordingSocket();
    const calls = new Calls();
    const rec = client({
      url: s.http,
      username: "kicked",
      token: calls.wrap(() => jwtFor("kicked")),
      WebSocket: sock.WebSocket,
      backoff: { initialMs: 1, maxMs: 1 },
    });
    await opened(rec);
    expect(await admin(s, "disconnect", "kicked")).toEqual({ user: "kicked", closed: 1 });
    await rec.until(() => rec.client.status === "closed", "closed");
    expect(rec.errors.map((e) => e.code)).toEqual(["forbidden"]);
    // A whole connect of another client takes longer than the 1 ms backoff a reconnect would wait.
    await opened(client({ url: s.http, username: "witness", token: await jwtFor("witness") }));
    expect(sock.made.length).toBe(1);
    expect(calls.count).toBe(1);
    expect(s.app.decorator.hub.sockets.connectionsOf("kicked")).toBe(0);
    expect(rec.statuses).toEqual(["open", "closed"]);
  });

  test("a token function that rejects with `unauthorized` stops the client; other rejections are retried", async () => {
    const calls = new Calls();
    const rec = client({
      url: s.http,
      username: "no-more",
      token: calls.wrap(async () => {
        if (calls.count === 1) throw new TypeError("fetch failed");
        throw new ChatClientError("unauthorized", "Token was revoked: log in again");
      }),
    });
    await rec.until(() => rec.client.status === "closed", "closed");
    expect(rec.errors.map((e) => e.code)).toEqual(["token_failed", "unauthorized"]);
    expect(rec.statuses).toEqual(["reconnecting", "closed"]);
  });

  test("a direct conversation is readable over HTTP by both of its users only", async () => {
    const a = client({ url: s.http, username: "conv-a", token: await jwtFor("conv-a") });
    const b = client({ url: s.http, username: "conv-b", token: await jwtFor("conv-b") });
    const c = client({ url: s.http, username: "conv-c", token: await jwtFor("conv-c") });
    await Promise.all([opened(a), opened(b), opened(c)]);
    await a.client.send.direct("conv-b", "one");
    await b.client.send.direct("conv-a", "two");
    expect((await a.client.userHistory("conv-b")).map((m) => m.text)).toEqual(["two", "one"]);
    expect((await b.client.userHistory("conv-a", { limit: 1 })).map((m) => m.text)).toEqual(["two"]);
    expect(await c.client.userHistory("conv-a")).toEqual([]);
  });
});

describe("accounts mode", () => {
  const s = serve(startAuthServer("accounts"));

  test("authMode, register, login, refresh; errors carry the server's code", async () => {
    expect(await authMode(s.http)).toBe("accounts");
    expect(await register(s.http, "acc-alice", "correct horse")).toBe("acc-alice");
    expect((await failure(register(s.http, "acc-alice", "another password"))).code).toBe("conflict");
    expect((await failure(register(s.http, "acc-bob", "short"))).code).toBe("invalid_frame");
    expect((await failure(login(s.http, "acc-alice", "wrong password"))).code).toBe("unauthorized");
    const t = await login(s.http, "acc-alice", "correct horse");
    expect(readClaims(t.token)!.sub).toBe("acc-alice");
    expect(t.expiresAt).toBeGreaterThan(Date.now());
    const r = await refresh(s.http, t.token);
    expect(readClaims(r.token)!.sub).toBe("acc-alice");
    expect((await failure(refresh(s.http, "garbage"))).code).toBe("unauthorized");
  });

  test("a client whose token function refreshes its login token connects and reconnects", async () => {
    await register(s.http, "acc-carol", "correct horse");
    let current = (await login(s.http, "acc-carol", "correct horse")).token;
    const calls = new Calls();
    const rec = client({ url: s.http, username: "acc-carol", token: calls.wrap(async () => (current = (await refresh(s.http, current)).token)) });
    await opened(rec);
    await rec.client.send.direct("acc-alice", "hi from carol");
    expect((await rec.client.userHistory("acc-alice")).map((m) => m.text)).toEqual(["hi from carol"]);
    // A 4003 would stop it; a server-side close for expiry (4001) reconnects with a fresh token.
    s.app.decorator.hub.disconnect("acc-carol", 4001, "test: token expired");
    await rec.nextWelcome();
    expect(calls.count).toBe(2);
  });
});

describe("open mode", () => {
  test("authMode says open; direct-message history is refused with `forbidden`", async () => {
    const s = serve(startServer());
    expect(await authMode(s.ws)).toBe("open");
    const rec = client({ url: s.http, username: "open-user" });
    await opened(rec);
    const err = await failure(rec.client.userHistory("someone"));
    expect(err.code).toBe("forbidden");
  });
});

describe("rate limits", () => {
  // 5 a second after a burst of 2: 8 messages at once take about (8 - 2) / 5 = 1.2 s.
  const s = serve(startServer({ msgRate: 5, msgBurst: 2 }));

  test("`rate_limited` sends are written again (same cid) when the server allows: all acked once, in order", async () => {
    const a = client({ url: s.http, username: "burst-a" });
    const b = client({ url: s.http, username: "burst-b" });
    await Promise.all([opened(a), opened(b)]);
    const texts = Array.from({ length: 8 }, (_, i) => `burst ${i}`);
    const refusedBefore = s.app.decorator.hub.stats.rateLimited;
    const started = Date.now();
    const acks = await Promise.all(texts.map((t) => a.client.send.broadcast(t)));
    const took = Date.now() - started;
    const refused = s.app.decorator.hub.stats.rateLimited - refusedBefore;
    console.log(`8 messages at 5/s after a burst of 2: ${took} ms, ${refused} refusals`);
    expect(acks.map((k) => k.id)).toEqual(acks.map((_, i) => acks[0]!.id + i));
    await b.until(() => b.texts().includes("burst 7"), "the last message");
    expect(b.texts().filter((t) => t.startsWith("burst"))).toEqual(texts);
    expect(took).toBeGreaterThanOrEqual(1000);
    // The first refusals are the frames already on the wire; after that the client keeps to the server's pace.
    expect(refused).toBeLessThanOrEqual(texts.length + 2);
  }, 15_000);

  test("an app that sends above the limit for longer than the server's 10 s grace is paced, not closed with 4008", async () => {
    const rec = client({ url: s.http, username: "steady", ackTimeoutMs: 60_000 });
    await opened(rec);
    const refusedBefore = s.app.decorator.hub.stats.rateLimited;
    const sends: Promise<unknown>[] = [];
    const started = Date.now();
    // 6 a second against 5: refused from about 2 s in, the queue grows until 11 s, then drains at the server's pace.
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        sends.push(rec.client.send.broadcast(`steady ${sends.length}`));
        if (Date.now() - started >= 11_000) {
          clearInterval(timer);
          resolve();
        }
      }, 1000 / 6);
    });
    await Promise.all(sends);
    const refused = s.app.decorator.hub.stats.rateLimited - refusedBefore;
    console.log(`${sends.length} messages at 6/s against 5/s: ${Date.now() - started} ms, ${refused} refusals`);
    expect(rec.statuses).toEqual(["open"]);
    expect(refused).toBeLessThan(10);
  }, 40_000);

  test("past `rateLimitRetries` the send rejects with `rate_limited` and the server's retryAfterMs", async () => {
    const rec = client({ url: s.http, username: "no-retry", rateLimitRetries: 0 });
    await opened(rec);
    await rec.client.send.broadcast("1");
    await rec.client.send.broadcast("2");
    const err = await failure(rec.client.send.broadcast("3"));
    expect(err.code).toBe("rate_limited");
    expect(err.retryAfterMs).toBeGreaterThan(0);
  });
});
