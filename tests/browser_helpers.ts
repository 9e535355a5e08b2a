/**
 * Helpers of the browser tests: Debian's Chromium through playwright-core,
 * pages whose console errors and script errors are collected, and the page's
 * own controls. Every wait is for something on the page, with a timeout.
 */
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** How long a page may take to show what a step expects. */
export const WAIT = 15_000;

/** Launches Chromium (`executablePath` another binary or a wrapper of it); says how to install it when it is missing. */
export async function launch(executablePath = CHROMIUM): Promise<Browser> {
  if (!(await Bun.file(CHROMIUM).exists())) {
    throw new Error(`Chromium is missing at ${CHROMIUM}: install it with "apt-get update && apt-get install -y chromium"`);
  }
  return chromium.launch({ executablePath, args: ARGS });
}

/**
 * Collects what goes wrong on a page: script errors, console errors (a CSP
 * violation, a failed request such as a missing favicon) and dialogs.
 * `expected` lets a test name console errors it causes on purpose.
 */
export function watch(page: Page, who: string, problems: string[], expected: (text: string, url: string) => boolean = () => false): Page {
  page.on("dialog", (d) => {
    problems.push(`${who}: dialog ${d.message()}`);
    void d.dismiss();
  });
  page.on("pageerror", (e) => problems.push(`${who}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error" || expected(m.text(), m.location().url)) return;
    problems.push(`${who}: ${m.text()} (${m.location().url})`);
  });
  return page;
}

/** A new page in a browser context of its own (its own storage: another browser, or another device). */
export async function newPage(browser: Browser, viewport = { width: 1200, height: 760 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport });
  return { context, page: await context.newPage() };
}

/** Waits until the page's connection state shows `open`. */
export const isOpen = (page: Page) => page.locator('#status[data-status="open"]').waitFor({ timeout: WAIT });

/** Types into the composer of the current conversation and sends. */
export async function say(page: Page, text: string): Promise<void> {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

/** A message of the current conversation by its exact text. */
export const message = (page: Page, text: string) => page.locator("#messages .text").getByText(text, { exact: true });
export const seen = (page: Page, text: string) => message(page, text).waitFor({ timeout: WAIT });
/** The list item of a message of the current conversation. */
export const item = (page: Page, text: string) => page.locator("#messages li", { has: page.locator(".text").getByText(text, { exact: true }) });

/** Shows a conversation: `everyone`, `room:NAME` or `dm:USER`. */
export const select = (page: Page, key: string) => page.click(`#convs li[data-key="${key}"] button`);
/** The unread badge of a conversation in the list. */
export const badge = (page: Page, key: string) => page.locator(`#convs li[data-key="${key}"] .badge`);

/** Starts (or shows) a direct conversation with `user` from the "new message" field. */
export async function newMessage(page: Page, user: string): Promise<void> {
  await page.fill("#dm-name", user);
  await page.press("#dm-name", "Enter");
  await page.locator("#conv-title").getByText(`@ ${user}`, { exact: true }).waitFor({ timeout: WAIT });
}

/** Waits until `fn` (run in the page) returns true. */
export async function until(page: Page, fn: () => boolean): Promise<void> {
  await page.waitForFunction(fn, undefined, { timeout: WAIT });
}
