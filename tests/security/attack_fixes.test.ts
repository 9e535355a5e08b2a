/**
 * Inputs that used to crash a route, poison a commit batch or confuse the
 * start-up, against the real server: bad percent-escapes, lone surrogates,
 * one sender's bad frames among others' good ones, messages built to break
 * the message log's lines, a busy port, a short Host header.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type Client, connect, isAck, isError, probe, upgrade } from "../helpers";
import { spawnServer, type ServerProcess } from "../spawn";
import { chattr, tempDir } from "../tmp";
import { readdirSync } from "node:fs";
import { messageLogDir } from "../../src/history/history_sqlite";
import type { AckFrame, ErrorFrame, HistoryBody, SingleServerFrame as ServerFrame } from "../../src/protocol";

setDefaultTimeout(20_000);

const ROOT = `${import.meta.dir}/../..`;
const DB = `${tempDir()}/attacks.db`;
let s: ServerProcess;
const clients: Client[] = [];
const join = async (path: string) => {
  const c = await connect(`${s.ws}${path}`);
  clients.push(c);
  return c;
};
const alive = () => probe(`${s.ws}/ws/probe-${crypto.randomUUID().slice(0, 8)}`);
const history = async () => ((await (await fetch(`${s.http}/history?limit=200`)).json()) as HistoryBody).messages;

beforeAll(async () => {
  // No message rate limit here: the batch cases send bursts on purpose.
  s = await spawnServer({ DB_PATH: DB, MSG_RATE: "0" });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await s?.stop();
});

describe("bad percent-escapes in paths", () => {
  test("/ws/%zz → 400 invalid_username, and /users/online still answers 200", async () => {
    for (const path of ["/ws/%zz", "/ws/%", "/ws/%E0%A4%A", "/ws/%ff%fe", "/ws/%00", "/ws/a%2Fb"]) {
      const r = await upgrade(`${s.ws}${path}`);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body)).toMatchObject({ error: "invalid_username" });
    }
    const online = await fetch(`${s.http}/users/online`);
    expect(online.status).toBe(200);
    expect(await online.json()).toHaveProperty("users");
    await alive();
  });

  test("HTTP routes with a bad escape answer 4xx, never 5xx", async () => {
    for (const path of ["/rooms/%zz/history", "/users/%zz/history", "/ws/%zz", "/%zz", "/history?before=%zz", "/rooms/%E0%A4%A/history"]) {
      const r = await fetch(`${s.http}${path}`);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    await alive();
  });
});

describe("lone surrogates", () => {
  // The frames are raw JSON text: `\\ud800` is the six characters of the escape, as a client would send them.
  const frames = [
    ['{"type":"broadcast","text":"ls-1-a\\ud800b","cid":"ls1"}', "ls1"],
    ['{"type":"broadcast","text":"ls-2-\\udc00","cid":"ls2"}', "ls2"],
    ['{"type":"broadcast","text":"ls-3-\\ude00\\ud83d","cid":"ls3"}', "ls3"],
    ['{"type":"direct","to":"bob","text":"ls-4-\\ud800","cid":"ls4"}', "ls4"],
    ['{"type":"room","room":"dev","text":"ls-5-\\udbff","cid":"ls5"}', "ls5"],
  ] as const;

  test('text "a\\ud800b" (as a JSON escape) → error invalid_frame with its cid; nothing stored, no ack', async () => {
    const alice = await join("/ws/alice?rooms=dev");
    const bob = await join("/ws/bob?rooms=dev");
    for (const [raw, cid] of frames) {
      alice.send(raw);
      expect(await alice.next<ErrorFrame>(isError)).toMatchObject({ code: "invalid_frame", cid });
    }
    for (const raw of ['{"message":"ls-6-\\ud800"}', '{"message":"ls-7-\\udfff","to_user":"bob"}']) {
      alice.send(raw);
      expect(await alice.next<ErrorFrame>(isError)).toMatchObject({ code: "invalid_frame" });
    }
    // A well-formed pair is fine.
    alice.send('{"type":"broadcast","text":"ok-\\ud83d\\ude00","cid":"pair"}');
    expect((await alice.next<AckFrame>(isAck("pair"))).id).toBeGreaterThan(0);
    await bob.next((f) => f.type === "message" && f.text === "ok-\u{1F600}");
    expect(alice.frames.filter((f) => f.type === "ack" && f.cid.startsWith("ls"))).toEqual([]);
    expect(bob.frames.filter((f) => f.type === "message" && f.text.startsWith("ls-"))).toEqual([]);
    expect((await history()).filter((m) => m.text.startsWith("ls-"))).toEqual([]);
    const dev = ((await (await fetch(`${s.http}/rooms/dev/history`)).json()) as HistoryBody).messages;
    expect(dev.filter((m) => m.text.startsWith("ls-"))).toEqual([]);
    await alive();
  });

  test("a bad sender never makes other senders' messages fail", async () => {
    const mallory = await join("/ws/mallory");
    const bob = await join("/ws/bobby");
    const evil = [
      '{"type":"broadcast","text":"x\\ud800","cid":"e1"}',
      '{"type":"broadcast","text":"nul\\u0000inside","cid":"e2"}',
      `{"type":"broadcast","text":"${"\\ud83d\\ude00".repeat(2000)}","cid":"e3"}`,
      '{"type":"broadcast","text":"lone cid","cid":"\\ud800"}',
      '{"type":"broadcast","text":"nul cid","cid":"a\\u0000b"}',
      '{"type":"direct","to":"bobby","text":"\\u2028\\u2029\\ufeff","cid":"e6"}',
      '{"type":"broadcast","text":"dup","cid":"same"}',
      '{"type":"broadcast","text":"dup","cid":"same"}',
      `{"type":"broadcast","text":"${"y".repeat(4001)}","cid":"e9"}`,
      '{"type":"broadcast","text":"","cid":"e10"}',
      '{"type":"join","room":"\\ud800"}',
      '{"type":"direct","to":"\\ud800","text":"t"}',
    ];
    // 5 of the 12 are refused: 4 rounds stay within the 20 bad frames a minute that close with 1008.
    const rounds = 4;
    for (let r = 0; r < rounds; r++) {
      // In one turn of the event loop: the server commits them in one batch.
      for (let i = 0; i < evil.length; i++) {
        mallory.send(evil[i]!.replace(/"cid":"(e\d+)"/, `"cid":"$1-${r}"`));
        bob.send({ type: "broadcast", text: `good-${r}-${i}`, cid: `g-${r}-${i}` });
      }
      for (let i = 0; i < evil.length; i++) await bob.next(isAck(`g-${r}-${i}`));
    }
    expect(bob.frames.filter(isError)).toEqual([]);
    const allowed = new Set(["invalid_frame", "invalid_room", "invalid_username", "bad_json"]);
    const codes = mallory.frames.filter((f): f is ErrorFrame => f.type === "error").map((f) => f.code);
    expect(codes.filter((c) => !allowed.has(c))).toEqual([]);
    expect(mallory.closed === undefined || mallory.closed.code === 1008).toBe(true);
    await alive();
  });
});

describe("messages built to break the message log's lines", () => {
  test("newlines, JSON that closes the line and line separators are stored and read back exactly, and the others' messages too", async () => {
    const mallory = await join("/ws/forger");
    const bob = await join("/ws/honest");
    const forged = [
      'x"}\n{"id":1,"kind":"broadcast","from":"admin","text":"forged","at":0}\n',
      "\n\n\r\n",
      "\u2028\u2029\u0085",
      '\\"}',
      `${"z".repeat(3990)}\n{"id":2}`,
    ];
    for (let r = 0; r < 3; r++) {
      // Back to back in one turn: one group-commit batch, one write to the log.
      for (let i = 0; i < forged.length; i++) {
        mallory.send({ type: "broadcast", text: forged[i]!, cid: `f-${r}-${i}` });
        bob.send({ type: "broadcast", text: `good-${r}-${i}`, cid: `g-${r}-${i}` });
      }
      for (let i = 0; i < forged.length; i++) {
        expect((await mallory.next<AckFrame>(isAck(`f-${r}-${i}`))).id).toBeGreaterThan(0);
        expect((await bob.next<AckFrame>(isAck(`g-${r}-${i}`))).id).toBeGreaterThan(0);
      }
    }
    const stored = (await history()).filter((m) => m.from === "forger" || m.from === "honest").sort((a, b) => a.id - b.id);
    expect(stored.filter((m) => m.from === "forger").map((m) => m.text)).toEqual([...forged, ...forged, ...forged]);
    expect(stored.filter((m) => m.from === "honest").length).toBe(3 * forged.length);
    expect((await history()).filter((m) => m.from === "admin")).toEqual([]);
    await alive();
  });
});

describe("start-up", () => {
  test("a second server on a port in use exits non-zero printing `port N is in use`", async () => {
    const env: Record<string, string | undefined> = { ...process.env, HOST: "127.0.0.1", PORT: String(s.port), DB_PATH: `${tempDir()}/second.db` };
    delete env.AUTH;
    const proc = Bun.spawn([process.execPath, "run", `${ROOT}/src/index.ts`], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    clearTimeout(timer);
    expect(code).not.toBe(0);
    expect(`${out}${err}`).toContain(`wirechat: port ${s.port} is in use`);
    expect(`${out}${err}`).not.toMatch(/^\s+at /m);
    expect(`${out}${err}`).not.toContain("listening on");
    // The first server keeps every connection.
    for (let i = 0; i < 5; i++) await alive();
  });
});

describe("Host header", () => {
  test("a Host of 1 to 3 characters still upgrades and gets its welcome", async () => {
    for (const host of ["a", "ab", "abc", "a:1"]) {
      const r = await upgrade(`${s.ws}/ws/shorthost`, { Host: host });
      expect(r.status).toBe(101);
      expect(JSON.parse(r.frame!) as ServerFrame).toMatchObject({ type: "welcome", user: "shorthost" });
    }
    await alive();
  });
});

describe("store failures", () => {
  test("a store failure answers store_failed and logs one line, not a stack trace; the server keeps running", async () => {
    // A server of its own: repeated store failures are logged once per interval, so another case's failure must not come first.
    const path = `${tempDir()}/store-failure.db`;
    const own = await spawnServer({ DB_PATH: path });
    try {
      const c = await connect(`${own.ws}/ws/writer`);
      c.send({ type: "broadcast", text: "first", cid: "first" });
      await c.next(isAck("first"));
      const mark = own.output().length;
      // The message log's file made immutable: the server's writes to it are refused (EPERM), as by a failing disk.
      const dir = messageLogDir(path);
      const segment = `${dir}/${readdirSync(dir).find((n) => n.endsWith(".jsonl"))}`;
      chattr("+i", segment);
      try {
        c.send({ type: "broadcast", text: "while refused", cid: "locked" });
        expect(await c.next<ErrorFrame>(isError, 10_000)).toMatchObject({ code: "store_failed", cid: "locked" });
        await own.waitForOutput((out) => out.slice(mark).includes("\n"));
      } finally {
        chattr("-i", segment);
      }
      c.send({ type: "broadcast", text: "after repair", cid: "locked" });
      expect((await c.next<AckFrame>(isAck("locked"))).id).toBeGreaterThan(0);
      c.close();
      await probe(`${own.ws}/ws/probe`);
      const lines = own
        .output()
        .slice(mark)
        .split("\n")
        .filter((l) => l.trim() !== "");
      expect(lines.filter((l) => /^\s+at /.test(l))).toEqual([]);
      const failure = lines.filter((l) => /stor|sqlite|database|locked|busy|EPERM/i.test(l));
      expect(failure).toHaveLength(1);
      // One JSON object per line, at level error.
      expect(JSON.parse(failure[0]!)).toMatchObject({ level: "error", app: "wirechat" });
    } finally {
      await own.stop();
    }
  });
});
