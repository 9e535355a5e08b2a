/**
 * Test helpers: a real server on port 0 and real WebSocket clients whose
 * frames are awaited with a timeout (never a sleep).
 */
import { afterEach } from "bun:test";
import { createApp, type AppDeps } from "../src/app";
import { createSqliteHistory } from "../src/history/history_sqlite";
import type { History } from "../src/history/history";
import type { LogFields, Logger } from "../src/log";
import type { SingleServerFrame as ServerFrame, WelcomeFrame } from "../src/protocol";

/** Wakes whoever waits on it: the event on which `waitUntil` checks its condition again. */
export class Signal {
  #waiters: (() => void)[] = [];

  notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Resolves at the next `notify`, or after `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.max(0, ms));
      this.#waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** What `waitUntil` throws at its deadline (and only then), for a caller that reports or returns something else instead. */
export class WaitTimeout extends Error {}

/**
 * Waits until `check` returns something other than `undefined` or `false`
 * and resolves with it. The check runs again on every `signal` notify (with
 * no signal: every `pollMs`, for state that has no event, such as an HTTP
 * answer; with both: on every notify and at least every `pollMs`); a throw
 * from it ends the wait. After `ms` it throws a `WaitTimeout` "timed out
 * waiting until <what>" (`what` may be a function, to describe the state at
 * that moment). The one wait-with-a-deadline of the test suite: never a
 * bare sleep.
 */
export async function waitUntil<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what: string | (() => string),
  opts: { ms?: number; signal?: Signal; pollMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.ms ?? 5000);
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    const left = deadline - Date.now();
    if (left <= 0) throw new WaitTimeout(`timed out waiting until ${typeof what === "function" ? what() : what}`);
    await (opts.signal ? opts.signal.wait(Math.min(left, opts.pollMs ?? left)) : new Promise((r) => setTimeout(r, Math.min(left, opts.pollMs ?? 10))));
  }
}

/** One line a `recordingLogger` kept. */
export interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  fields?: LogFields;
}

/** A logger for `startServer({ log })` that keeps its lines instead of printing them, for a test to assert. */
export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine["level"]) => (msg: string, fields?: LogFields) => {
    lines.push(fields === undefined ? { level, msg } : { level, msg, fields });
  };
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

export interface TestServer {
  app: ReturnType<typeof createApp>;
  history: History;
  port: number;
  http: string;
  ws: string;
  stop(): Promise<void>;
}

/** Starts the app on 127.0.0.1:0 with a history (default: SQLite in memory); other deps as given. */
export function startServer(opts: Partial<AppDeps> = {}): TestServer {
  const history = opts.history ?? createSqliteHistory(":memory:");
  const app = createApp({ ...opts, history }).listen({ port: 0, hostname: "127.0.0.1" });
  const port = app.server!.port!;
  return {
    app,
    history,
    port,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    async stop() {
      await app.decorator.hub.shutdown();
      await app.stop(true);
      await history.close();
    },
  };
}

/** The last few queued frames, shortened, for a failure message. */
const summary = (frames: ServerFrame[]) =>
  `${frames.length} frames, last: ${frames
    .slice(-3)
    .map((f) => JSON.stringify(f).slice(0, 160))
    .join(" ")}`;

/** What a client may send with its upgrade request (Bun's WebSocket takes both). */
export interface ConnectOptions {
  headers?: Record<string, string>;
  protocols?: string[];
}

/** A WebSocket client that queues every frame and awaits them with a timeout. */
export class Client {
  readonly frames: ServerFrame[] = [];
  readonly raw: string[] = [];
  readonly ws: WebSocket;
  closed: { code: number; reason: string } | undefined;
  /** Notified on every frame and on the close. */
  readonly changed = new Signal();
  #opened: Promise<void>;

  constructor(url: string, opts?: ConnectOptions) {
    // Bun's WebSocket takes headers and protocols in an options object.
    this.ws = opts ? new WebSocket(url, opts as unknown as string[]) : new WebSocket(url);
    this.#opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    this.#opened.catch(() => {}); // ready() still rejects; a client never awaited does not fail the run
    this.ws.onmessage = (e) => {
      this.raw.push(String(e.data));
      const f = JSON.parse(String(e.data)) as ServerFrame | ServerFrame[];
      // A `?batch=1` connection gets arrays: queue their frames one by one.
      if (Array.isArray(f)) this.frames.push(...f);
      else this.frames.push(f);
      this.changed.notify();
    };
    this.ws.onclose = (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.changed.notify();
    };
  }

  /** Waits until the socket is open and the welcome frame arrived. */
  async ready(ms = 5000): Promise<this> {
    await this.#opened;
    await this.next((f) => f.type === "welcome", ms);
    return this;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /**
   * Resolves with the first not yet taken frame that matches and takes it
   * out of the queue; the other frames stay queued.
   */
  next<T extends ServerFrame = ServerFrame>(match: (f: ServerFrame) => boolean = () => true, ms = 5000): Promise<T> {
    // The frame is taken inside the check, in the same turn that found it: two waits never take one frame.
    return waitUntil(
      () => {
        const i = this.frames.findIndex(match);
        if (i >= 0) return this.frames.splice(i, 1)[0] as T;
        if (this.closed) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting; queued: ${summary(this.frames)}`);
        return undefined;
      },
      () => `a frame arrives; queued: ${summary(this.frames)}`,
      { ms, signal: this.changed },
    );
  }

  /** Collects `n` frames matching `match`, in order. */
  async take<T extends ServerFrame = ServerFrame>(n: number, match: (f: ServerFrame) => boolean, ms = 5000): Promise<T[]> {
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next<T>(match, ms));
    return out;
  }

  /** Waits for the close event; returns its code and reason. */
  closedWith(ms = 5000): Promise<{ code: number; reason: string }> {
    return waitUntil(() => this.closed, "the socket closes", { ms, signal: this.changed });
  }

  close(): void {
    this.ws.close();
  }
}

/** Opens a client and waits for its welcome. */
export const connect = (url: string, opts?: ConnectOptions) => new Client(url, opts).ready();

/**
 * A test file's servers and clients, closed after each test: `start` a
 * server (or several, one at a time), `join` opens a client and waits for its
 * welcome, `welcomeOf` returns the client with its welcome frame.
 */
export function serverPerTest() {
  let server: TestServer | undefined;
  const open: Client[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) c.close();
    await server?.stop();
    server = undefined;
  });
  const current = () => {
    if (!server) throw new Error("no server: call start() first");
    return server;
  };
  return {
    start(opts: Partial<AppDeps> = {}): TestServer {
      server = startServer(opts);
      return server;
    },
    get s(): TestServer {
      return current();
    },
    async join(path: string, opts?: ConnectOptions): Promise<Client> {
      const c = new Client(`${current().ws}${path}`, opts);
      open.push(c);
      return c.ready();
    },
    async welcomeOf(path: string, opts?: ConnectOptions): Promise<{ c: Client; w: WelcomeFrame }> {
      const c = new Client(`${current().ws}${path}`, opts);
      open.push(c);
      const w = await c.next<WelcomeFrame>((f) => f.type === "welcome");
      return { c, w };
    },
    /** A client that is closed after the test, not awaited here. */
    track(c: Client): Client {
      open.push(c);
      return c;
    },
  };
}

/** Sends a marker broadcast from `from` and waits until every client got it: every earlier frame to them has arrived. */
export async function settle(from: Client, everyone: Client[]): Promise<void> {
  const marker = `marker-${crypto.randomUUID()}`;
  from.send({ type: "broadcast", text: marker });
  for (const c of everyone) await c.next((f) => f.type === "message" && f.text === marker);
}

/**
 * The server still answers: a fresh connection gets its welcome and a
 * broadcast with a cid comes back acked and delivered to its sender.
 */
export async function probe(url: string, opts?: ConnectOptions): Promise<void> {
  const c = await connect(url, opts);
  try {
    const cid = `probe-${crypto.randomUUID()}`;
    c.send({ type: "broadcast", text: cid, cid });
    await c.next(isAck(cid));
    await c.next((f) => f.type === "message" && f.text === cid);
  } finally {
    c.close();
  }
}

/** What the server answered a raw WebSocket upgrade request. */
export interface UpgradeAnswer {
  status: number;
  /** Response headers, names in lower case. */
  headers: Record<string, string>;
  /** The body of a refusal (empty on 101). */
  body: string;
  /** On 101: the payload of the first WebSocket frame (the welcome), unless `hold`. */
  frame?: string;
  /** The TCP socket; still open (and paused) only with `hold`. */
  socket: import("node:net").Socket;
}

/**
 * Sends a WebSocket upgrade request over a bare TCP socket with exactly these
 * headers (a `Host` given here replaces the default `host:port`) and resolves
 * with the status and body, or, on 101, the first frame. With `hold`, a 101's
 * socket stays open and stops reading (the server meets backpressure);
 * otherwise it is closed.
 */
export async function upgrade(url: string, headers: Record<string, string> = {}, opts: { hold?: boolean; ms?: number } = {}): Promise<UpgradeAnswer> {
  const { connect: tcp } = await import("node:net");
  const u = new URL(url);
  const port = Number(u.port);
  const all: Record<string, string> = {
    Host: u.host,
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16)))),
    "Sec-WebSocket-Version": "13",
  };
  for (const [k, v] of Object.entries(headers)) {
    for (const d of Object.keys(all)) if (d.toLowerCase() === k.toLowerCase()) delete all[d];
    all[k] = v;
  }
  const request = `GET ${u.pathname}${u.search} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;
  const socket = tcp({ host: u.hostname, port });
  return await new Promise<UpgradeAnswer>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let head: { status: number; headers: Record<string, string>; end: number } | undefined;
    const timer = setTimeout(
      () => finish(new Error(`no complete answer to the upgrade of ${url} in ${opts.ms ?? 5000} ms; got: ${buf.toString("latin1").slice(0, 300)}`)),
      opts.ms ?? 5000,
    );
    let done = false;
    const finish = (result: Error | Omit<UpgradeAnswer, "socket">) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeAllListeners("data");
      if (result instanceof Error) {
        socket.destroy();
        reject(result);
        return;
      }
      if (opts.hold && result.status === 101) socket.pause();
      else socket.destroy();
      resolve({ ...result, socket });
    };
    socket.on("connect", () => socket.write(request));
    socket.on("error", (err) => finish(err));
    socket.on("close", () => {
      if (head && head.status !== 101) finish({ status: head.status, headers: head.headers, body: buf.subarray(head.end).toString("utf8") });
      else finish(new Error(`connection closed before a complete answer; got: ${buf.toString("latin1").slice(0, 300)}`));
    });
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!head) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? "")?.[1] ?? NaN);
        const hs: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(":");
          if (i > 0) hs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        head = { status, headers: hs, end: end + 4 };
        if (status === 101 && opts.hold) return finish({ status, headers: hs, body: "" });
      }
      const rest = buf.subarray(head.end);
      if (head.status === 101) {
        const frame = firstFrame(rest);
        if (frame !== undefined) finish({ status: 101, headers: head.headers, body: "", frame });
        return;
      }
      const body = httpBody(rest, head.headers);
      if (body !== undefined) finish({ status: head.status, headers: head.headers, body });
    });
  });
}

/** The payload of the first complete (unmasked, unfragmented) server frame in `b`, or undefined. */
function firstFrame(b: Buffer): string | undefined {
  if (b.length < 2) return undefined;
  let len = b[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    if (b.length < 4) return undefined;
    len = b.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (b.length < 10) return undefined;
    len = Number(b.readBigUInt64BE(2));
    at = 10;
  }
  return b.length < at + len ? undefined : b.subarray(at, at + len).toString("utf8");
}

/** The complete body after the headers (content-length or chunked), or undefined while it is incomplete. */
function httpBody(b: Buffer, headers: Record<string, string>): string | undefined {
  if (headers["transfer-encoding"]?.toLowerCase().includes("chunked")) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = b.indexOf("\r\n", at);
      if (eol < 0) return undefined;
      const size = parseInt(b.subarray(at, eol).toString("latin1"), 16);
      if (Number.isNaN(size)) return b.toString("utf8");
      if (size === 0) return Buffer.concat(parts).toString("utf8");
      if (b.length < eol + 2 + size + 2) return undefined;
      parts.push(b.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
  }
  const length = Number(headers["content-length"] ?? 0);
  return b.length < length ? undefined : b.subarray(0, length).toString("utf8");
}

export const isMessage = (f: ServerFrame) => f.type === "message";
export const isAck = (cid: string) => (f: ServerFrame) => f.type === "ack" && f.cid === cid;
export const isError = (f: ServerFrame) => f.type === "error";
