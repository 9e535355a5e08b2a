/**
 * The admin page against the real server process: without ADMIN_TOKEN it
 * does not exist; with it, the HTML is public but shows nothing until the
 * token is entered; `/admin/stats` needs the token. In headless Chromium:
 * enter the token, see a connected test user, disconnect it (its socket
 * closes with 4003) and the list updates; filter; revoke (4001); forget the
 * token; no console errors.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { launch, WAIT } from "../browser_helpers";
import { type Client, connect } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";

const TOKEN = "admin-page-test-token-0123456789";

let browser: Browser;
let server: ServerProcess;
const clients: Client[] = [];

beforeAll(async () => {
  server = await spawnServer({ ADMIN_TOKEN: TOKEN, DB_PATH: `${tempDir()}/admin.db` });
  browser = await launch();
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await browser?.close();
  await server?.stop();
});

/** A page whose script errors and console errors (a CSP violation among them) are collected in `problems`. */
async function adminPage(problems: string[]): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("dialog", (d) => {
    // Only revoke asks first; the test accepts what it expects.
    if (d.type() === "confirm" && d.message().startsWith("Revoke every token of ")) void d.accept();
    else {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    }
  });
  page.on("console", (m) => {
    // The browser's own favicon probe is a 404 the page does not cause.
    if (m.type() === "error" && !m.location().url.endsWith("/favicon.ico")) problems.push(`${m.text()} (${m.location().url})`);
  });
  return page;
}

test("without ADMIN_TOKEN there is no admin page; with it the page is public, its data is not", async () => {
  const off = await spawnServer({ DB_PATH: ":memory:" });
  try {
    for (const path of ["/admin", "/admin/app.js", "/admin/app.css", "/admin/stats"]) expect((await fetch(`${off.http}${path}`)).status).toBe(404);
  } finally {
    await off.stop();
  }
  const page = await fetch(`${server.http}/admin`);
  expect(page.status).toBe(200);
  const policy = page.headers.get("content-security-policy")!;
  expect(policy).toContain("script-src 'self'");
  expect(policy).toContain("default-src 'none'");
  const html = await page.text();
  // No inline script: the page loads its own script file.
  expect(html).toMatch(/<script type="module" src="\/admin\/app\.js"><\/script>/);
  expect(html).not.toMatch(/<script>|<script [^>]*>[^<]+<\/script>|\son\w+=/);
  expect((await fetch(`${server.http}/admin/app.js`)).headers.get("content-type")).toContain("javascript");
  expect((await fetch(`${server.http}/admin/stats`)).status).toBe(401);
  expect((await fetch(`${server.http}/admin/stats`, { headers: { authorization: "Bearer wrong-token-0123456789" } })).status).toBe(401);
});

test("in Chromium: enter the token, see the connected user, disconnect it (4003), the list updates; filter, revoke (4001)", async () => {
  const tess = await connect(`${server.ws}/ws/tess?rooms=ops`);
  const other = await connect(`${server.ws}/ws/olga`);
  clients.push(tess, other);
  const problems: string[] = [];
  const page = await adminPage(problems);
  const res = await page.goto(`${server.http}/admin`);
  expect(res!.status()).toBe(200);
  // Nothing is shown before the token.
  expect(await page.locator("#board").isVisible()).toBe(false);
  await page.fill("#token", TOKEN);
  await page.press("#token", "Enter");

  const row = page.locator('#connections tr[data-user="tess"]');
  await row.waitFor({ timeout: WAIT });
  expect(await row.locator("td").nth(2).textContent()).toBe("ops");
  await page.locator('#connections tr[data-user="olga"]').waitFor({ timeout: WAIT });
  await page.locator('#rooms td:text-is("ops")').waitFor({ timeout: WAIT });
  await page.locator('#state[data-state="live"]').waitFor({ timeout: WAIT });
  // The token stays in this tab only, and never in the page's address.
  expect(await page.evaluate(() => sessionStorage.getItem("wirechat-admin.token"))).toBe(TOKEN);
  expect(page.url()).not.toContain(TOKEN);

  await row.locator('button[data-action="disconnect"]').click();
  expect((await tess.closedWith(WAIT)).code).toBe(4003);
  await row.waitFor({ state: "detached", timeout: WAIT });
  await page.locator("#notice").getByText("Disconnected tess: 1 connection closed.").waitFor({ timeout: WAIT });
  // Only tess went.
  expect(await page.locator('#connections tr[data-user="olga"]').count()).toBe(1);
  expect(other.closed).toBeUndefined();

  // The filter asks the server for matching users only.
  await page.fill("#filter", "nobody-like-this");
  await page.locator("#connections td").getByText("no connection of such a user").waitFor({ timeout: WAIT });
  await page.fill("#filter", "olg");
  await page.locator('#connections tr[data-user="olga"]').waitFor({ timeout: WAIT });

  // A reload keeps the session's token.
  await page.reload();
  await page.locator('#connections tr[data-user="olga"]').waitFor({ timeout: WAIT });
  // Revoke (after a confirmation) closes with 4001.
  await page.locator('#connections tr[data-user="olga"] button[data-action="revoke"]').click();
  expect((await other.closedWith(WAIT)).code).toBe(4001);
  await page.locator("#notice").getByText("Revoked the tokens of olga: 1 connection closed.").waitFor({ timeout: WAIT });
  await page.locator('#connections tr[data-user="olga"]').waitFor({ state: "detached", timeout: WAIT });

  // "Forget token" drops it.
  await page.click("#forget");
  await page.locator("#login").waitFor({ timeout: WAIT });
  expect(await page.evaluate(() => sessionStorage.getItem("wirechat-admin.token"))).toBeNull();
  expect(await page.locator("#board").isVisible()).toBe(false);

  expect(problems).toEqual([]);
  await page.context().close();
}, 60_000);
