import { describe, expect, test } from "bun:test";
import { bearerToken, roomAllowed } from "../../src/auth/auth";
import { RATE_LIMIT_GRACE_MS, RateLimiter, admit } from "../../src/hub/rate";
import { clientAddress, originAllowed } from "../../src/http/gate";

describe("RateLimiter", () => {
  test("RateLimiter.take: allows the burst, then waits for the rate", () => {
    const r = new RateLimiter(2, 3);
    for (let i = 0; i < 3; i++) expect(r.take("u", 0)).toBe(0);
    expect(r.take("u", 0)).toBe(500);
    const wait = r.take("u", 499);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(2);
    expect(r.take("u", 500)).toBe(0);
    // Keys are independent.
    expect(r.take("v", 500)).toBe(0);
  });

  test("RateLimiter.peek: tells the wait without spending", () => {
    const r = new RateLimiter(1, 1);
    expect(r.peek("u", 0)).toBe(0);
    expect(r.take("u", 0)).toBe(0);
    expect(r.peek("u", 0)).toBe(1000);
    expect(r.peek("u", 1000)).toBe(0);
  });

  test("RateLimiter: refilled buckets are forgotten", () => {
    const r = new RateLimiter(1, 1);
    r.take("a", 0);
    r.take("b", 0);
    expect(r.size).toBe(2);
    r.take("c", 120_000);
    expect(r.size).toBe(1);
  });
});

describe("admit", () => {
  const sender = () => ({ user: "u", limitedSince: 0, lastRefusedAt: 0 });

  test("admit: 0 while the bucket allows, then the wait, and close once refusals go on for the grace period", () => {
    const r = new RateLimiter(0.001, 1);
    const run = sender();
    expect(admit(r, run, 0)).toBe(0);
    expect(run.limitedSince).toBe(0);
    expect(admit(r, run, 1)).toBeGreaterThan(0);
    expect(run.limitedSince).toBe(1);
    expect(admit(r, run, RATE_LIMIT_GRACE_MS)).toBeGreaterThan(0);
    expect(admit(r, run, 1 + RATE_LIMIT_GRACE_MS)).toBe("close");
  });

  test("admit: messages let through during a run of refusals do not restart its clock", () => {
    const r = new RateLimiter(1, 1);
    const run = sender();
    expect(admit(r, run, 0)).toBe(0);
    // Each second one message is let through and the next refused.
    for (let t = 1; t < RATE_LIMIT_GRACE_MS; t += 1000) {
      expect(admit(r, run, t)).toBeGreaterThan(0);
      expect(admit(r, run, t + 1000)).toBe(0);
    }
    expect(run.limitedSince).toBe(1);
    expect(admit(r, run, 2 + RATE_LIMIT_GRACE_MS)).toBe("close");
  });

  test("admit: a quiet spell longer than the grace period starts a new run of refusals", () => {
    const r = new RateLimiter(1, 1);
    const run = sender();
    admit(r, run, 0);
    expect(admit(r, run, 1)).toBeGreaterThan(0);
    const later = 1 + RATE_LIMIT_GRACE_MS + 1;
    expect(admit(r, run, later)).toBe(0);
    expect(admit(r, run, later + 1)).toBeGreaterThan(0);
    expect(run.limitedSince).toBe(later + 1);
    expect(admit(r, run, later + 2)).not.toBe("close");
  });
});

describe("auth helpers", () => {
  test("roomAllowed: names and prefixes ending in *, every room without a claim", () => {
    expect(roomAllowed(undefined, "x")).toBe(true);
    expect(roomAllowed(["dev", "ops-*"], "dev")).toBe(true);
    expect(roomAllowed(["dev", "ops-*"], "ops-1")).toBe(true);
    expect(roomAllowed(["dev", "ops-*"], "dev2")).toBe(false);
    expect(roomAllowed(["dev", "ops-*"], "ops")).toBe(false);
    expect(roomAllowed([], "dev")).toBe(false);
  });

  test("bearerToken: Authorization header first, then the bearer. subprotocol; malformed header is empty", () => {
    expect(bearerToken(new Headers({ authorization: "Bearer abc.def.ghi" }))).toBe("abc.def.ghi");
    expect(bearerToken(new Headers({ authorization: "bearer   t" }))).toBe("t");
    expect(bearerToken(new Headers({ authorization: "Basic dXNlcjpwYXNz" }))).toBe("");
    expect(bearerToken(new Headers({ "sec-websocket-protocol": "wirechat.v1, bearer.x.y.z" }))).toBe("x.y.z");
    expect(bearerToken(new Headers({ "sec-websocket-protocol": "wirechat.v1" }))).toBeUndefined();
    expect(bearerToken(new Headers())).toBeUndefined();
  });
});

describe("gate helpers", () => {
  const req = (headers: Record<string, string>) => new Request("http://127.0.0.1/ws", { headers });
  const server = { requestIP: () => ({ address: "10.0.0.9", port: 1, family: "IPv4" }) } as never;

  test("clientAddress: the socket's address unless proxies are trusted", () => {
    expect(clientAddress(req({ "x-forwarded-for": "1.1.1.1" }), server, 0)).toBe("10.0.0.9");
    expect(clientAddress(req({ "x-forwarded-for": "6.6.6.6, 1.1.1.1" }), server, 1)).toBe("1.1.1.1");
    expect(clientAddress(req({ "x-forwarded-for": "6.6.6.6, 1.1.1.1, 2.2.2.2" }), server, 2)).toBe("1.1.1.1");
    expect(clientAddress(req({}), server, 1)).toBe("10.0.0.9");
  });

  test("originAllowed: no Origin, the request's own host, or a listed origin", () => {
    expect(originAllowed(new Headers({ host: "chat:8000" }), undefined)).toBe(true);
    expect(originAllowed(new Headers({ host: "chat:8000", origin: "http://chat:8000" }), undefined)).toBe(true);
    expect(originAllowed(new Headers({ host: "chat:8000", origin: "http://evil:8000" }), undefined)).toBe(false);
    expect(originAllowed(new Headers({ host: "chat:8000", origin: "null" }), undefined)).toBe(false);
    expect(originAllowed(new Headers({ host: "x", origin: "https://a.example" }), ["https://a.example"])).toBe(true);
    expect(originAllowed(new Headers({ host: "a.example", origin: "https://a.example" }), ["https://b.example"])).toBe(false);
    expect(originAllowed(new Headers({ origin: "https://any.example" }), "*")).toBe(true);
  });
});
