/**
 * The page in Chromium (accounts mode, a real server process): delivered
 * and read ticks, "bob is typing…", unread badges from the welcome on a new
 * device and falling on the other devices when one reads, direct
 * conversations kept across a reload, the header on a phone, the
 * composer's counter and a refused send that keeps its text. No console
 * error anywhere (a missing favicon would be one). Presence is announced to
 * watchers only (PRESENCE_GLOBAL_MAX=0), so the online list proves the page
 * watches its direct conversations' users.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { badge, isOpen, item, launch, newMessage, newPage, say, seen, select, until, WAIT, watch } from "./browser_helpers";
import { spawnServer, type ServerProcess } from "./spawn";
import { tempDir } from "./tmp";

let browser: Browser;
let server: ServerProcess;
const problems: string[] = [];

beforeAll(async () => {
  server = await spawnServer({ AUTH: "accounts", DB_PATH: `${tempDir()}/receipts.db`, PRESENCE_GLOBAL_MAX: "0" });
  browser = await launch();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/** A device of `user`: a browser context of its own, logged in (registering first with `register`). */
async function device(user: string, o: { register?: boolean; viewport?: { width: number; height: number } } = {}) {
  const { context, page } = await newPage(browser, o.viewport);
  watch(page, user, problems);
  await page.goto(server.http);
  await page.locator('#login[data-mode="accounts"]').waitFor({ timeout: WAIT });
  await page.fill("#username", user);
  await page.fill("#password", `${user} password`);
  await page.click(o.register ? "#register-button" : "#login-button");
  await isOpen(page);
  return { context, page };
}

const tick = (page: Page, text: string) => item(page, text).locator(".tick");
const tickIs = (page: Page, text: string, state: "sent" | "delivered" | "read") =>
  item(page, text).locator(`.tick[data-tick="${state}"]`).waitFor({ timeout: WAIT });

test("ticks, typing, unread badges on every device, conversations across a reload and on a new device", async () => {
  const { page: alice } = await device("alice", { register: true });
  const { context: bobLaptop, page: bob } = await device("bob", { register: true });

  // A direct conversation started by name; its user is watched (nobody is announced to everyone here).
  await newMessage(alice, "bob");
  await alice.locator('#online li[data-user="bob"]').waitFor({ timeout: WAIT });
  await say(alice, "hi bob");
  await seen(alice, "hi bob");
  // Bob's page received it: delivered. It is unread there until bob opens the conversation.
  await tickIs(alice, "hi bob", "delivered");
  expect(await tick(alice, "hi bob").getAttribute("aria-label")).toBe("Delivered");
  await badge(bob, "dm:alice").getByText("1", { exact: true }).waitFor({ timeout: WAIT });
  await select(bob, "dm:alice");
  await seen(bob, "hi bob");
  await tickIs(alice, "hi bob", "read");
  expect(await badge(bob, "dm:alice").count()).toBe(0);
  // Ticks are on my own direct messages only.
  expect(await item(bob, "hi bob").locator(".tick").count()).toBe(0);

  // Bob types: alice sees it while he types, and no longer once his message is there.
  await bob.locator("#text").pressSequentially("hel");
  await alice.locator("#typing").getByText("bob is typing…", { exact: true }).waitFor({ timeout: WAIT });
  await say(bob, "hello alice");
  await seen(alice, "hello alice");
  await until(alice, () => document.getElementById("typing")!.textContent === "");

  // A reload keeps the direct conversation, its history and its ticks.
  await alice.reload();
  await isOpen(alice);
  await select(alice, "dm:bob");
  await seen(alice, "hello alice");
  await tickIs(alice, "hi bob", "read");

  // Bob's laptop goes; his phone (a second device) is online while alice writes twice.
  await bobLaptop.close();
  const { page: phone } = await device("bob", { viewport: { width: 390, height: 844 } });
  await say(alice, "one");
  await say(alice, "two");
  await tickIs(alice, "two", "delivered");
  await badge(phone, "dm:alice").getByText("2", { exact: true }).waitFor({ timeout: WAIT });

  // The phone's header says who this is.
  const me = phone.locator("#me");
  expect(await me.textContent()).toBe("bob");
  expect(await me.isVisible()).toBe(true);
  const box = (await me.boundingBox())!;
  expect(box.x).toBeGreaterThanOrEqual(0);
  expect(box.x + box.width).toBeLessThanOrEqual(390);
  // Not cut off: its box holds all of it.
  expect(
    await me.evaluate((el) => {
      const box = el.closest(".me")!;
      return box.scrollWidth <= box.clientWidth && box.scrollHeight <= box.clientHeight;
    }),
  ).toBe(true);
  expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

  // A new device (empty browser storage) has the conversation back from the welcome's unread count alone:
  // the phone received both messages, so nothing of them is replayed.
  const { page: desk } = await device("bob");
  await badge(desk, "dm:alice").getByText("2", { exact: true }).waitFor({ timeout: WAIT });
  await select(desk, "dm:alice");
  await seen(desk, "two");
  expect(await desk.locator("#messages .text").allTextContents()).toEqual(["hi bob", "hello alice", "one", "two"]);
  // Read there: alice sees it, and the phone's badge goes.
  await tickIs(alice, "two", "read");
  await until(phone, () => document.querySelector('#convs li[data-key="dm:alice"] .badge') === null);

  expect(problems).toEqual([]);
}, 120_000);

test("the composer: a counter near the limit, too long is refused with the text kept, a refused send keeps its text, the note clears on success", async () => {
  const { page } = await device("carol", { register: true });
  const counter = page.locator("#counter");
  await page.fill("#text", "x".repeat(3000));
  expect(await counter.isVisible()).toBe(false);
  await page.fill("#text", "x".repeat(3990));
  expect(await counter.textContent()).toBe("3,990 / 4,000");
  expect(await counter.isVisible()).toBe(true);
  expect(await counter.getAttribute("class")).not.toContain("over");

  // 4,100 characters: nothing cut, nothing sent; the counter and a note say why.
  await page.fill("#text", "y".repeat(4100));
  expect(await counter.textContent()).toBe("4,100 / 4,000");
  expect(await counter.getAttribute("class")).toContain("over");
  await page.press("#text", "Enter");
  await page.locator("#notice").getByText("100 characters over the 4,000 limit", { exact: false }).waitFor({ timeout: WAIT });
  expect((await page.inputValue("#text")).length).toBe(4100);

  // The server refuses a text with a lone surrogate (invalid_frame): the text comes back for another try.
  await page.evaluate(() => {
    (document.getElementById("text") as HTMLInputElement).value = "a\ud800b";
  });
  await page.press("#text", "Enter");
  await until(page, () => (document.getElementById("text") as HTMLInputElement).value === "a\ud800b");
  expect(await page.locator("#notice").textContent()).not.toBe("");

  // A successful send clears the note.
  await say(page, "fixed");
  await seen(page, "fixed");
  await until(page, () => document.getElementById("notice")!.textContent === "");
  expect(await page.inputValue("#text")).toBe("");
  expect(await page.locator("#messages .text").allTextContents()).not.toContain("y".repeat(4100));

  // "New message" writes to anyone, also to a user who has never been online: stored, sent, not delivered yet.
  await newMessage(page, "nobody-yet");
  await say(page, "for later");
  await seen(page, "for later");
  await tickIs(page, "for later", "sent");
  expect(await tick(page, "for later").getAttribute("aria-label")).toBe("Sent");
  expect(problems).toEqual([]);
}, 60_000);
