/**
 * The page's Content-Security-Policy: sockets to this origin and to the
 * configured origins only, never to whatever a request's Host header says.
 */
import { afterAll, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { contentSecurityPolicy, socketOrigin, webPage } from "../src/web/page";
import { startServer, type TestServer } from "./helpers";

const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
});

const connectSrc = (policy: string | null) => policy?.split("; ").find((d) => d.startsWith("connect-src"));

test("without configured origins: connect-src 'self' alone", () => {
  expect(connectSrc(contentSecurityPolicy())).toBe("connect-src 'self'");
  expect(connectSrc(contentSecurityPolicy({ allowedOrigins: "*" }))).toBe("connect-src 'self'");
  const policy = contentSecurityPolicy();
  for (const d of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"]) {
    expect(policy).toContain(d);
  }
});

test("configured origins join as their ws/wss forms; anything that is not a plain origin is left out", () => {
  const policy = contentSecurityPolicy({
    allowedOrigins: [
      "https://chat.example.com",
      "http://localhost:8000",
      "https://chat.example.com/",
      "javascript:alert(1)",
      "https://x.example/path",
      "wss://y.example",
      "https://a.example; script-src *",
    ],
  });
  expect(connectSrc(policy)).toBe("connect-src 'self' wss://chat.example.com ws://localhost:8000");
  expect(socketOrigin("https://[::1]:8443")).toBe("wss://[::1]:8443");
  expect(socketOrigin("not a url")).toBeUndefined();
});

test("the served page's policy ignores the Host header", async () => {
  const app = new Elysia().use(webPage({ allowedOrigins: ["https://chat.example.com"] }));
  for (const host of ["evil.example", "evil.example:1 'unsafe-inline'", "a"]) {
    const res = await app.handle(new Request("http://localhost/", { headers: { host } }));
    expect(res.status).toBe(200);
    expect(connectSrc(res.headers.get("content-security-policy"))).toBe("connect-src 'self' wss://chat.example.com");
  }
});

test("the real server's page names no host it was not configured with", async () => {
  const s = startServer();
  servers.push(s);
  const res = await fetch(`${s.http}/`, { headers: { host: "evil.example:8000" } });
  expect(res.status).toBe(200);
  const policy = res.headers.get("content-security-policy");
  expect(policy).not.toContain("evil");
  expect(connectSrc(policy)).toBe("connect-src 'self'");
});

test("the icon is served (no 404 in the browser's console) and the page links it", async () => {
  const s = startServer();
  servers.push(s);
  for (const path of ["/favicon.svg", "/favicon.ico"]) {
    const res = await fetch(`${s.http}${path}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/svg+xml");
    expect(await res.text()).toStartWith("<svg");
  }
  expect(await (await fetch(`${s.http}/`)).text()).toContain('<link rel="icon" href="/favicon.svg"');
});

test("the page's script carries no schema library and no secure-context-only API", async () => {
  const s = startServer();
  servers.push(s);
  const js = await (await fetch(`${s.http}/app.js`)).text();
  expect(js).not.toContain("randomUUID");
  expect(js).not.toContain("TypeBox");
  // The size the issue aims for is 20 KB; this guards against a schema library or another large dependency coming back.
  expect(js.length).toBeLessThan(40_000);
});
