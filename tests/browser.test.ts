/**
 * The web page in headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core) against the real server process: alice and bob exchange
 * a broadcast, a direct and a room message; the server restarts and both
 * pages reconnect and catch up; markup in a message stays text. In accounts
 * mode: register, log in, a direct message that survives a reload, log out.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launch, WAIT } from "./browser_helpers";
import { createChatClient } from "../src/sdk";
import { spawnServer, type ServerProcess } from "./spawn";
import { freePort } from "./sdk_helpers";
import { tempDir } from "./tmp";

let browser: Browser;
let server: ServerProcess;
const env = { PORT: "", DB_PATH: "" };
/** What went wrong on this test's pages; each test starts with none and closes its pages. */
const dialogs: string[] = [];
const problems: string[] = [];
const contexts: BrowserContext[] = [];

/** A browser context of this test: closed after it, so its pages cannot report into the next test. */
async function context(viewport: { width: number; height: number }): Promise<BrowserContext> {
  const c = await browser.newContext({ viewport });
  contexts.push(c);
  return c;
}

async function stopServer() {
  server.proc.kill("SIGTERM");
  await server.proc.exited;
}

beforeAll(async () => {
  env.PORT = String(freePort());
  env.DB_PATH = `${tempDir()}/chat.db`;
  server = await spawnServer(env);
  browser = await launch();
}, 60_000);

beforeEach(() => {
  dialogs.length = 0;
  problems.length = 0;
});

afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});

afterAll(async () => {
  await browser?.close();
  if (server && server.proc.exitCode === null) await stopServer();
});

/** A page in its own browser context, logged in as `user`. */
async function open(user: string, viewport = { width: 1200, height: 760 }): Promise<Page> {
  const page = await (await context(viewport)).newPage();
  page.on("dialog", (d) => {
    dialogs.push(`${user}: ${d.message()}`);
    void d.dismiss();
  });
  // A CSP violation or a script error shows up here.
  page.on("pageerror", (e) => problems.push(`${user}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // Expected: socket failures while the server restarts. (A missing favicon would show here too.)
    if (/^WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws\/[^']+' failed/.test(m.text())) return;
    problems.push(`${user}: ${m.text()} (${m.location().url})`);
  });
  const res = await page.goto(server.http);
  expect(res!.headers()["content-security-policy"]).toContain("script-src 'self'");
  await page.fill("#username", user);
  await page.press("#username", "Enter");
  await page.locator('#status[data-status="open"]').waitFor({ timeout: WAIT });
  return page;
}

/** Types into the composer of the current conversation and sends. */
async function say(page: Page, text: string) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

const message = (page: Page, text: string) => page.locator("#messages .text").getByText(text, { exact: true });
const seen = (page: Page, text: string) => message(page, text).waitFor({ timeout: WAIT });
const select = (page: Page, key: string) => page.click(`#convs li[data-key="${key}"] button`);

test("alice and bob chat through a server restart; markup stays text", async () => {
  const alice = await open("alice");
  const bob = await open("bob");
  await alice.locator('#online li[data-user="bob"]').waitFor({ timeout: WAIT });

  await say(alice, "hello bob");
  await seen(bob, "hello bob");

  await alice.click('#online li[data-user="bob"] button');
  await say(alice, "psst, only you");
  await bob.locator('#convs li[data-key="dm:alice"] .badge').waitFor({ timeout: WAIT });
  await select(bob, "dm:alice");
  await seen(bob, "psst, only you");

  for (const page of [alice, bob]) {
    await page.fill("#room-name", "ops");
    await page.press("#room-name", "Enter");
    await page.locator("#conv-title").getByText("# ops", { exact: true }).waitFor({ timeout: WAIT });
  }
  await say(bob, "room hi");
  await seen(alice, "room hi");

  await select(alice, "everyone");
  await select(bob, "everyone");
  const xss = "<img src=x onerror=alert(1)>";
  await say(alice, xss);
  await seen(bob, xss);
  expect(await bob.locator("#messages img").count()).toBe(0);

  // A refused send leaves a note (the server refuses a lone surrogate); the reconnect below clears it.
  await alice.evaluate(() => {
    (document.getElementById("text") as HTMLInputElement).value = "bad \ud800 text";
  });
  await alice.press("#text", "Enter");
  await alice.waitForFunction(() => document.getElementById("notice")!.textContent !== "", undefined, { timeout: WAIT });
  await alice.fill("#text", "");

  // Restart on the same port and DB file; alice writes while it is down.
  await stopServer();
  for (const page of [alice, bob]) await page.locator('#status[data-status="reconnecting"]').waitFor({ timeout: WAIT });
  await say(alice, "sent while the server was down");
  server = await spawnServer(env);
  const carol = createChatClient({ url: server.http, username: "carol", rooms: ["ops"] });
  try {
    await carol.send.room("ops", "carol in ops after the restart");
    await carol.send.broadcast("carol after the restart");
  } finally {
    carol.close();
  }
  for (const page of [alice, bob]) await page.locator('#status[data-status="open"]').waitFor({ timeout: WAIT });
  expect(await alice.locator("#notice").textContent()).toBe("");
  await seen(bob, "sent while the server was down");
  await seen(bob, "carol after the restart");
  await seen(alice, "carol after the restart");
  await select(bob, "room:ops");
  await seen(bob, "carol in ops after the restart");

  // A reload starts from history: everything once, in id order. (Whether
  // carol's or alice's queued message got the lower id depends on who was
  // back first, so the order is read from the ids.)
  await bob.reload();
  await bob.locator('#status[data-status="open"]').waitFor({ timeout: WAIT });
  await seen(bob, "carol after the restart");
  await seen(bob, "sent while the server was down");
  const texts = await bob.locator("#messages .text").allTextContents();
  expect(texts.slice(0, 2)).toEqual(["hello bob", xss]);
  expect([...texts].sort()).toEqual([xss, "carol after the restart", "hello bob", "sent while the server was down"]);
  const ids = await bob.locator("#messages li").evaluateAll((lis) => lis.map((li) => Number(li.getAttribute("data-id"))));
  expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
  await select(bob, "room:ops");
  await seen(bob, "carol in ops after the restart");
  expect(await bob.locator("#messages .text").allTextContents()).toEqual(["room hi", "carol in ops after the restart"]);
  // Open mode serves no direct-message history: the tab kept its own copy.
  await select(bob, "dm:alice");
  await seen(bob, "psst, only you");

  expect(dialogs).toEqual([]);
  expect(problems).toEqual([]);
  // The README's picture is refreshed on request only, so a test run leaves the tree clean.
  const shot = await alice.screenshot(process.env.UPDATE_DOCS ? { path: `${import.meta.dir}/../docs/screenshot.png` } : {});
  expect(shot.byteLength).toBeGreaterThan(10_000);
}, 120_000);

test("on a phone-sized screen the page fits the width, the header says who you are, and the sidebar opens from the menu", async () => {
  const page = await open("phone-user", { width: 390, height: 844 });
  const me = page.locator("#me");
  expect(await me.textContent()).toBe("phone-user");
  const head = (await me.boundingBox())!;
  expect(head.x).toBeGreaterThanOrEqual(0);
  expect(head.x + head.width).toBeLessThanOrEqual(390);
  // Not cut off: its box holds all of it.
  expect(
    await me.evaluate((el) => {
      const box = el.closest(".me")!;
      return box.scrollWidth <= box.clientWidth && box.scrollHeight <= box.clientHeight;
    }),
  ).toBe(true);
  await say(page, "from a small screen");
  await seen(page, "from a small screen");
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  expect(await page.locator("#side").isVisible()).toBe(true);
  const box = async () => (await page.locator("#side").boundingBox())!;
  expect((await box()).x + (await box()).width).toBeLessThanOrEqual(0);
  await page.click("#menu");
  await page.waitForFunction(() => document.getElementById("side")!.getBoundingClientRect().x >= 0, undefined, { timeout: WAIT });
  expect(dialogs).toEqual([]);
  expect(problems).toEqual([]);

  // The policy blocks inline script, and the console listener above sees it.
  const violation = page.waitForEvent("console", { predicate: (m) => m.text().includes("Content Security Policy"), timeout: WAIT });
  await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "document.body.dataset.inline = 'ran'";
    document.head.append(s);
  });
  await violation;
  expect(await page.evaluate(() => document.body.dataset.inline)).toBeUndefined();
  expect(problems.splice(0)).toEqual([expect.stringContaining("Content Security Policy")]);

  // Open mode: "Change user" goes back to the name form, and the tab forgot who it was.
  await page.click("#logout");
  await page.locator('#login[data-mode="open"]').waitFor({ timeout: WAIT });
  expect(await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith("wirechat.")))).toEqual([]);
  await page.fill("#username", "phone-user-2");
  await page.press("#username", "Enter");
  await page.locator('#status[data-status="open"]').waitFor({ timeout: WAIT });
  expect(await page.locator("#me").textContent()).toBe("phone-user-2");
  expect(problems).toEqual([]);
}, 60_000);

test("accounts mode: register, log in, a direct message survives a reload, log out shows the form", async () => {
  const accounts = await spawnServer({ AUTH: "accounts", DB_PATH: `${tempDir()}/accounts.db` });
  const refused: string[] = [];
  try {
    const page = async (user: string) => {
      const p = await (await context({ width: 1200, height: 760 })).newPage();
      p.on("pageerror", (e) => problems.push(`${user}: ${e.message}`));
      p.on("console", (m) => {
        if (m.type() !== "error") return;
        // Expected once: the wrong password's 401 below.
        if (/status of 401/.test(m.text())) refused.push(`${user}: ${m.location().url}`);
        else problems.push(`${user}: ${m.text()} (${m.location().url})`);
      });
      const res = await p.goto(accounts.http);
      expect(res!.headers()["content-security-policy"]).toContain("connect-src 'self'");
      await p.locator('#login[data-mode="accounts"]').waitFor({ timeout: WAIT });
      return p;
    };
    const enter = async (p: Page, user: string, password: string, button: "#login-button" | "#register-button") => {
      await p.fill("#username", user);
      await p.fill("#password", password);
      await p.click(button);
    };
    const isOpen = (p: Page) => p.locator('#status[data-status="open"]').waitFor({ timeout: WAIT });

    const dana = await page("dana");
    await enter(dana, "dana", "correct horse", "#register-button");
    await isOpen(dana);
    expect(await dana.locator("#me").textContent()).toBe("dana");
    const erin = await page("erin");
    await enter(erin, "erin", "battery staple", "#register-button");
    await isOpen(erin);

    // A direct conversation started by name, from the "Message" field.
    await dana.fill("#dm-name", "erin");
    await dana.press("#dm-name", "Enter");
    await dana.locator("#conv-title").getByText("@ erin", { exact: true }).waitFor({ timeout: WAIT });
    await say(dana, "hello erin, only you");
    await erin.locator('#convs li[data-key="dm:dana"] .badge').waitFor({ timeout: WAIT });

    // A reload keeps the session and the conversation, read back from the server.
    await dana.reload();
    await isOpen(dana);
    await select(dana, "dm:erin");
    await seen(dana, "hello erin, only you");
    expect(await dana.evaluate(() => document.cookie)).toBe("");

    // Log out: the form again, and the tab forgot its token.
    await erin.click("#logout");
    await erin.locator('#login[data-mode="accounts"]').waitFor({ timeout: WAIT });
    expect(await erin.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith("wirechat.")))).toEqual([]);
    await erin.reload();
    await erin.locator('#login[data-mode="accounts"]').waitFor({ timeout: WAIT });
    await enter(erin, "erin", "wrong password", "#login-button");
    await erin.locator("#login-error").getByText("Wrong username or password.").waitFor({ timeout: WAIT });
    await enter(erin, "erin", "battery staple", "#login-button");
    await isOpen(erin);
    await select(erin, "dm:dana");
    await seen(erin, "hello erin, only you");

    expect(refused).toEqual([`erin: ${accounts.http}/auth/login`]);
    expect(dialogs).toEqual([]);
    expect(problems).toEqual([]);
  } finally {
    await accounts.stop();
  }
}, 60_000);
