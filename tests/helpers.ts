/**
 * Test helpers: a real server on port 0 and real WebSocket clients whose
 * frames are awaited with a timeout (never a sleep).
 */
import { createApp } from "../src/app";
import { createSqliteHistory } from "../src/history/history_sqlite";
import type { History } from "../src/history/history";
import type { ServerFrame } from "../src/protocol";

export interface TestServer {
  app: ReturnType<typeof createApp>;
  history: History;
  port: number;
  http: string;
  ws: string;
  stop(): Promise<void>;
}

/** Starts the app on 127.0.0.1:0 with a history (default: SQLite in memory). */
export function startServer(opts: { history?: History; replayLimit?: number; closeGraceMs?: number } = {}): TestServer {
  const history = opts.history ?? createSqliteHistory(":memory:");
  const app = createApp({ history, replayLimit: opts.replayLimit, closeGraceMs: opts.closeGraceMs }).listen({ port: 0, hostname: "127.0.0.1" });
  const port = app.server!.port!;
  return {
    app, history, port,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    async stop() {
      app.decorator.hub.shutdown();
      await app.stop(true);
      history.close();
    },
  };
}

/** The last few queued frames, shortened, for a failure message. */
const summary = (frames: ServerFrame[]) =>
  `${frames.length} frames, last: ${frames.slice(-3).map((f) => JSON.stringify(f).slice(0, 160)).join(" ")}`;

/** A WebSocket client that queues every frame and awaits them with a timeout. */
export class Client {
  readonly frames: ServerFrame[] = [];
  readonly raw: string[] = [];
  readonly ws: WebSocket;
  closed: { code: number; reason: string } | undefined;
  #waiters: (() => void)[] = [];
  #opened: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.#opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    this.ws.onmessage = (e) => {
      this.raw.push(String(e.data));
      this.frames.push(JSON.parse(String(e.data)));
      this.#wake();
    };
    this.ws.onclose = (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.#wake();
    };
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
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
  async next<T extends ServerFrame = ServerFrame>(match: (f: ServerFrame) => boolean = () => true, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(i, 1)[0] as T;
      if (this.closed) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting; queued: ${summary(this.frames)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a frame; queued: ${summary(this.frames)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Collects `n` frames matching `match`, in order. */
  async take<T extends ServerFrame = ServerFrame>(n: number, match: (f: ServerFrame) => boolean, ms = 5000): Promise<T[]> {
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next<T>(match, ms));
    return out;
  }

  /** Waits for the close event; returns its code and reason. */
  async closedWith(ms = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for close");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.closed;
  }

  close(): void {
    this.ws.close();
  }
}

/** Opens a client and waits for its welcome. */
export const connect = (url: string) => new Client(url).ready();

export const isMessage = (f: ServerFrame) => f.type === "message";
export const isAck = (cid: string) => (f: ServerFrame) => f.type === "ack" && f.cid === cid;
export const isError = (f: ServerFrame) => f.type === "error";
