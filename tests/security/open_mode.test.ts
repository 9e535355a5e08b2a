/**
 * AUTH unset (open mode): the classic tutorial's flow still works, the mode
 * is announced, an auth frame is acked and ignored, and the server refuses
 * to start on a non-loopback HOST.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Client, isAck, probe } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { tempDir } from "../tmp";
import type { MessageFrame, WelcomeFrame } from "../../src/protocol";

setDefaultTimeout(20_000);

const ROOT = `${import.meta.dir}/../..`;
let s: ServerProcess;
const clients: Client[] = [];
const alive = () => probe(`${s.ws}/ws/probe-${crypto.randomUUID().slice(0, 8)}`);
/** The environment of a server started here, without AUTH even when the test's own environment has it. */
const envWithout = (extra: Record<string, string>) => {
  const env: Record<string, string | undefined> = { ...process.env, PORT: "0", ...extra };
  delete env.AUTH;
  return env;
};

beforeAll(async () => {
  s = await spawnServer({ DB_PATH: `${tempDir()}/open.db`, AUTH: "" });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await s?.stop();
});

describe("open mode", () => {
  test('the tutorial flow: /ws/alice/ sending {"message":"hi","to_user":"bob"} reaches bob', async () => {
    const bob = new Client(`${s.ws}/ws/bob/`);
    const alice = new Client(`${s.ws}/ws/alice/`);
    clients.push(alice, bob);
    await bob.ready();
    await alice.ready();
    alice.send(JSON.stringify({ message: "hi", to_user: "bob" }));
    const m = await bob.next<MessageFrame>((f) => f.type === "message");
    expect(m).toMatchObject({ type: "message", kind: "direct", from: "alice", to: "bob", text: "hi" });
    alice.send(JSON.stringify({ message: "to all" }));
    expect(await bob.next<MessageFrame>((f) => f.type === "message")).toMatchObject({ kind: "broadcast", from: "alice", text: "to all" });
    await alive();
  });

  test("GET /auth/mode says open; /ws gives a guest name", async () => {
    expect(await (await fetch(`${s.http}/auth/mode`)).json()).toEqual({ mode: "open" });
    const g = new Client(`${s.ws}/ws`);
    clients.push(g);
    expect((await g.next<WelcomeFrame>((f) => f.type === "welcome")).user).toMatch(/^guest-[0-9a-f]{8}$/);
    await alive();
  });

  test("an auth frame is acked and ignored: the connection stays the URL's user", async () => {
    const c = new Client(`${s.ws}/ws/carol`);
    clients.push(c);
    await c.ready();
    c.send({ type: "auth", token: "anything at all", cid: "a" });
    await c.next(isAck("a"));
    c.send({ type: "broadcast", text: "still carol", cid: "m" });
    await c.next(isAck("m"));
    expect(await c.next<MessageFrame>((f) => f.type === "message" && f.text === "still carol")).toMatchObject({ from: "carol" });
    await alive();
  });

  test("the server prints one warning line at start", () => {
    const lines = s
      .output()
      .split("\n")
      .filter((l) => /warn/i.test(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("AUTH");
  });

  test("HOST non-loopback with AUTH unset: refuses to start, exit 2, one line naming HOST and AUTH", async () => {
    const proc = Bun.spawn([process.execPath, "run", `${ROOT}/src/index.ts`], {
      cwd: ROOT,
      env: envWithout({ HOST: "0.0.0.0", DB_PATH: `${tempDir()}/refuse.db` }),
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    clearTimeout(timer);
    expect(code).toBe(2);
    const lines = `${out}${err}`.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("HOST");
    expect(lines[0]).toContain("AUTH");
    await alive();
  });
});
