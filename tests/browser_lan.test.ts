/**
 * The page over plain HTTP on a non-loopback address, where browsers offer
 * no secure-context-only API (`crypto.randomUUID`, ...): a page that used
 * one would fail there, and only there.
 *
 * The test makes a network namespace of its own (`unshare --net`), adds
 * 10.200.0.1/24 to that namespace's own loopback device, and runs the server
 * and Chromium inside it (Chromium through `nsenter`; playwright talks to it
 * over pipes). The machine's real interfaces are never touched and no packet
 * leaves the namespace. Skipped, saying why, only where no namespace can be
 * made.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import type { Browser } from "playwright-core";
import { isOpen, launch, newMessage, newPage, say, seen, WAIT, watch } from "./browser_helpers";
import { tempDir } from "./tmp";

const ADDR = "10.200.0.1";
const ROOT = `${import.meta.dir}/..`;
const UNSHARE = Bun.which("unshare");
const NSENTER = Bun.which("nsenter");
const IP = Bun.which("ip") ?? Bun.which("ip", { PATH: "/usr/sbin:/sbin" });
/** Without root, the namespace needs a user namespace of its own too (and nsenter must enter both). */
const ROOTLESS = process.getuid?.() !== 0;
const UNSHARE_ARGS = ROOTLESS ? ["--net", "--map-root-user"] : ["--net"];
const SETUP = `${IP} link set lo up && ${IP} addr add ${ADDR}/24 dev lo`;

/** Why this machine cannot run the test, or undefined when it can: it tries to make such a namespace first. */
function unsupported(): string | undefined {
  if (!UNSHARE || !NSENTER || !IP) return "needs unshare, nsenter (util-linux) and ip (iproute2)";
  const probe = Bun.spawnSync([UNSHARE, ...UNSHARE_ARGS, "sh", "-c", SETUP], { stderr: "pipe" });
  if (probe.exitCode !== 0) return `cannot create a network namespace here: ${probe.stderr.toString().trim() || `exit ${probe.exitCode}`}`;
  return undefined;
}

const why = unsupported();
if (why) console.warn(`browser_lan.test.ts skipped: ${why}`);

let server: ReturnType<typeof Bun.spawn> | undefined;
let browser: Browser | undefined;
let url = "";
let output = "";

/** Starts the server inside a new network namespace, listening on ADDR; resolves with its port. */
async function startInNamespace(): Promise<number> {
  const dir = tempDir();
  server = Bun.spawn([UNSHARE!, ...UNSHARE_ARGS, "sh", "-c", `${SETUP} && exec "$0" run src/index.ts`, process.execPath], {
    cwd: ROOT,
    // A non-loopback HOST needs AUTH written out.
    env: { ...process.env, HOST: ADDR, PORT: "0", AUTH: "open", DB_PATH: `${dir}/lan.db` },
    stdout: "pipe",
    stderr: "pipe",
  });
  const proc = server;
  let found: (port: number) => void = () => {};
  const listening = new Promise<number>((resolve) => (found = resolve));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      output += dec.decode(chunk, { stream: true });
      const m = new RegExp(`listening on http://${ADDR.replaceAll(".", "\\.")}:(\\d+)`).exec(output);
      if (m) found(Number(m[1]));
    }
  };
  void pump(proc.stdout as ReadableStream<Uint8Array>);
  void pump(proc.stderr as ReadableStream<Uint8Array>);
  let timer: Timer | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the server did not listen on ${ADDR} in 15 s:\n${output}`)), 15_000);
    void proc.exited.then((code) => reject(new Error(`the server exited with ${code}:\n${output}`)));
  });
  failed.catch(() => {});
  try {
    return await Promise.race([listening, failed]);
  } finally {
    clearTimeout(timer);
  }
}

/** A Chromium that runs in the server's namespace: a wrapper that enters it, then starts the real binary. */
function chromiumInNamespace(pid: number): string {
  const wrapper = `${tempDir()}/chromium-in-netns`;
  const enter = ROOTLESS ? `-t ${pid} --user --net --preserve-credentials` : `--net=/proc/${pid}/ns/net`;
  writeFileSync(wrapper, `#!/bin/sh\nexec ${NSENTER} ${enter} -- /usr/bin/chromium "$@"\n`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}

beforeAll(async () => {
  if (why) return;
  const port = await startInNamespace();
  url = `http://${ADDR}:${port}/`;
  browser = await launch(chromiumInNamespace(server!.pid));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await server.exited;
  }
});

test.skipIf(why !== undefined)(
  `over plain HTTP on ${ADDR} (not a secure context) the page logs in, sends, and starts a direct conversation`,
  async () => {
    const problems: string[] = [];
    const open = async (user: string) => {
      const { page } = await newPage(browser!);
      watch(page, user, problems);
      await page.goto(url);
      await page.fill("#username", user);
      await page.press("#username", "Enter");
      await isOpen(page);
      return page;
    };
    const alice = await open("alice");
    // The point of the test: here the browser withholds secure-context-only APIs.
    expect(await alice.evaluate(() => [location.hostname, window.isSecureContext, typeof crypto.randomUUID])).toEqual([ADDR, false, "undefined"]);

    const bob = await open("bob");
    await say(alice, "hello over the LAN");
    await seen(alice, "hello over the LAN");
    await seen(bob, "hello over the LAN");
    await newMessage(alice, "bob");
    await say(alice, "psst");
    await seen(alice, "psst");
    await bob.locator('#convs li[data-key="dm:alice"]').waitFor({ timeout: WAIT });
    expect(problems).toEqual([]);
  },
  60_000,
);
