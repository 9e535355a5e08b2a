/**
 * Cluster test helpers: a private redis-server (tests/redis_server.ts), three
 * wirechat nodes as child processes on it (tests/spawn.ts) under a fresh key
 * prefix, and devices: WebSocket clients that record every frame across their
 * reconnects, resume with `since` and `epoch`, and can send with cids until
 * each is acked. Waiting is on frames and closes with a deadline, never a
 * sleep; the only timers are a short pause between reconnect attempts and
 * between retries of a refused send (a client's pacing, not a wait).
 */
import { existsSync } from "node:fs";
import { Signal, WaitTimeout, waitUntil } from "../helpers";
import { startRedis, type RedisServer } from "../redis_server";
import { spawnServer, type ServerProcess } from "../spawn";
import type { AckFrame, ErrorFrame, MessageFrame, PresenceFrame, SingleServerFrame as ServerFrame, WelcomeFrame } from "../../src/protocol";

// No process.on("exit") backstop: bun test 1.4.5 does not run exit handlers. Every test file
// stops its cluster and its Redis in afterEach/afterAll, which run also when a test fails.

export interface ClusterOptions {
  nodes?: number;
  /** Extra environment for every node. */
  env?: Record<string, string>;
}

/** Three nodes (by default) on one Redis, under a prefix of their own. */
export class Cluster {
  readonly nodes: (ServerProcess | undefined)[] = [];
  readonly prefix = `t${crypto.randomUUID().slice(0, 8)}:`;
  /** Where a node would put SQLite (its folder created on open): cluster mode must never create either. */
  readonly dbPath = `${process.env.TMPDIR ?? "/tmp"}/wirechat-unused-${crypto.randomUUID()}/unused.db`;

  private constructor(
    readonly redis: RedisServer,
    readonly env: Record<string, string>,
  ) {}

  static async start(redis: RedisServer, o: ClusterOptions = {}): Promise<Cluster> {
    const env = {
      REDIS_URL: redis.url,
      MSG_RATE: "0",
      PRESENCE_TTL: "2s",
      REPLAY_CONCURRENCY: "0",
      MAX_CONNECTIONS_PER_USER: "0",
      ...o.env,
    };
    const c = new Cluster(redis, env);
    c.env.REDIS_PREFIX = c.prefix;
    c.env.DB_PATH = c.dbPath;
    const n = o.nodes ?? 3;
    // allSettled: when one fails, the others have started (or failed) before everything is stopped.
    const started = await Promise.allSettled(Array.from({ length: n }, (_, i) => c.startNode(i)));
    const failed = started.find((r) => r.status === "rejected");
    if (failed) {
      await c.stop();
      throw failed.reason;
    }
    return c;
  }

  /** Starts node `i` (again), on a new port. */
  async startNode(i: number): Promise<ServerProcess> {
    const node = await spawnServer(this.env);
    this.nodes[i] = node;
    return node;
  }

  node(i: number): ServerProcess {
    const n = this.nodes[i];
    if (!n) throw new Error(`node ${i} is not running`);
    return n;
  }

  /** The nodes still running. */
  alive(): ServerProcess[] {
    return this.nodes.filter((n): n is ServerProcess => n !== undefined && n.proc.exitCode === null && n.proc.signalCode === null);
  }

  /** SIGKILL node `i` and wait for its exit: nothing is flushed or closed cleanly. */
  async kill(i: number): Promise<void> {
    const n = this.nodes[i];
    if (!n) return;
    this.nodes[i] = undefined;
    n.proc.kill("SIGKILL");
    await n.proc.exited;
  }

  /** Everything the nodes printed, for a failure message. */
  output(): string {
    return this.nodes.map((n, i) => `--- node ${i}\n${n?.output() ?? "(not running)"}`).join("\n");
  }

  /** Kills every node (SIGKILL: a node whose Redis is away may take long to stop cleanly). */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.kill(i)));
  }

  /** Cluster mode keeps nothing in SQLite. */
  sqliteUntouched(): boolean {
    return !existsSync(this.dbPath.slice(0, this.dbPath.lastIndexOf("/")));
  }
}

/** Starts a private Redis; with `appendonly`, AOF with `appendfsync always`. */
export const redisServer = (appendonly: boolean) => startRedis({ appendonly });

/**
 * One device of a user: a WebSocket that records every frame of every
 * connection it makes. `since` is the newest message id it received; it
 * resumes from there with the epoch of its last welcome.
 */
export class Device {
  ws: WebSocket | undefined;
  /** Every message received, across connections, in arrival order. */
  readonly messages: MessageFrame[] = [];
  /** The raw JSON of each message frame, by id (the last received). */
  readonly rawById = new Map<number, string>();
  readonly welcomes: WelcomeFrame[] = [];
  readonly presence: PresenceFrame[] = [];
  readonly acks: AckFrame[] = [];
  readonly errors: ErrorFrame[] = [];
  /** Close codes of every connection that ended without `close()`. */
  readonly closes: number[] = [];
  /** Frames of the current connection not yet taken by `next`. */
  queue: ServerFrame[] = [];
  since: number | undefined;
  epoch: string | undefined;
  connected = false;
  /** Notified on every frame and every close; `until` checks its condition again then. */
  readonly #changed = new Signal();
  #closing = false;

  constructor(
    readonly user: string,
    readonly rooms: string[] = [],
  ) {}

  get name(): string {
    return `${this.user}${this.rooms.length ? `[${this.rooms.join(",")}]` : ""}`;
  }

  ids(): number[] {
    return this.messages.map((m) => m.id);
  }

  lastWelcome(): WelcomeFrame {
    return this.welcomes[this.welcomes.length - 1]!;
  }

  #wake() {
    this.#changed.notify();
  }

  /**
   * Connects to `node`; with `resume` (default) and a `since`, as
   * `?since=N&epoch=E`. Resolves with the welcome; rejects when the upgrade
   * is refused or the socket closes first.
   */
  connect(node: { ws: string }, opts: { resume?: boolean; since?: number; epoch?: string | null } = {}): Promise<WelcomeFrame> {
    const q = new URLSearchParams();
    const since = opts.since ?? (opts.resume === false ? undefined : this.since);
    if (since !== undefined) q.set("since", String(since));
    const epoch = opts.epoch === null ? undefined : (opts.epoch ?? (since === undefined ? undefined : this.epoch));
    if (epoch !== undefined) q.set("epoch", epoch);
    if (this.rooms.length) q.set("rooms", this.rooms.join(","));
    const url = `${node.ws}/ws/${this.user}${q.size ? `?${q}` : ""}`;
    this.#closing = false;
    this.queue = [];
    const ws = new WebSocket(url);
    this.ws = ws;
    return new Promise<WelcomeFrame>((resolve, reject) => {
      let welcomed = false;
      ws.onmessage = (e) => {
        if (this.ws !== ws) return;
        const raw = String(e.data);
        const f = JSON.parse(raw) as ServerFrame;
        this.queue.push(f);
        if (f.type === "message") {
          this.messages.push(f);
          this.rawById.set(f.id, raw);
          if (this.since === undefined || f.id > this.since) this.since = f.id;
        } else if (f.type === "welcome") {
          this.welcomes.push(f);
          // Another store (it started over): ids from the old one mean nothing; live delivery starts after lastId.
          if (this.epoch !== undefined && f.epoch !== this.epoch) this.since = f.lastId;
          this.epoch = f.epoch;
          this.since ??= 0;
          welcomed = true;
          this.connected = true;
          resolve(f);
        } else if (f.type === "presence") this.presence.push(f);
        else if (f.type === "ack") this.acks.push(f);
        else if (f.type === "error") this.errors.push(f);
        this.onFrame?.(f);
        this.#wake();
      };
      ws.onclose = (e) => {
        if (this.ws !== ws) return;
        this.connected = false;
        if (!this.#closing) this.closes.push(e.code);
        if (!welcomed) reject(new Error(`${this.name}: closed (${e.code} ${e.reason}) before the welcome from ${url}`));
        this.onClose?.(e.code);
        this.#wake();
      };
      ws.onerror = () => {
        if (!welcomed) reject(new Error(`${this.name}: cannot connect to ${url}`));
      };
    });
  }

  /** Called for every frame after it is recorded. */
  onFrame: ((f: ServerFrame) => void) | undefined;
  /** Called when a connection ends (not after `close()`). */
  onClose: ((code: number) => void) | undefined;

  send(frame: unknown): void {
    this.ws!.send(JSON.stringify(frame));
  }

  close(): void {
    this.#closing = true;
    this.connected = false;
    this.ws?.close();
  }

  /**
   * Waits until `cond` holds, checking again on every frame and close and at
   * least every 250 ms (it may read state with no event, such as a node's);
   * throws after `ms` with `what`. A close does not end the wait (a device may reconnect).
   */
  async until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
    try {
      await waitUntil(cond, what, { ms, signal: this.#changed, pollMs: 250 });
    } catch (err) {
      throw err instanceof WaitTimeout ? new Error(`${this.name}: ${err.message}`) : err;
    }
  }

  /** Takes the first queued frame of this connection that matches, waiting for it. */
  async next<T extends ServerFrame = ServerFrame>(match: (f: ServerFrame) => boolean, what = "a frame", ms = 10_000): Promise<T> {
    let got: T | undefined;
    await this.until(
      () => {
        const i = this.queue.findIndex(match);
        if (i >= 0) got = this.queue.splice(i, 1)[0] as T;
        return got !== undefined;
      },
      what,
      ms,
    );
    return got!;
  }
}

export const isAck = (cid: string) => (f: ServerFrame) => f.type === "ack" && f.cid === cid;
export const isText = (text: string) => (f: ServerFrame) => f.type === "message" && f.text === text;
export const named = (f: PresenceFrame) => f.users ?? (f.user === undefined ? [] : [f.user]);
export const mentions = (user: string) => (f: ServerFrame) => f.type === "presence" && named(f).includes(user);

/** Connects a device and waits for its welcome. */
export async function device(node: { ws: string }, user: string, rooms: string[] = [], opts: { since?: number } = {}): Promise<Device> {
  const d = new Device(user, rooms);
  await d.connect(node, opts);
  return d;
}

/**
 * Keeps a device connected: whenever its connection ends, it resumes with
 * `since` and `epoch` on the next node `pick` gives, trying again (after a
 * short pause) while connects are refused. Returns a stop function.
 */
export function keepConnected(d: Device, pick: (attempt: number) => { ws: string } | undefined): () => void {
  let stopped = false;
  const reconnect = async () => {
    for (let attempt = 0; !stopped; attempt++) {
      const node = pick(attempt);
      if (node) {
        try {
          await d.connect(node);
          return;
        } catch {
          // refused or closed before the welcome: try again
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  d.onClose = () => {
    if (!stopped) void reconnect();
  };
  return () => {
    stopped = true;
  };
}

/**
 * Sends `count` messages from a device with cids, at most `window` unacked at
 * once, resending a cid refused with store_failed and, after a reconnect,
 * every unacked one: each message is stored once, whatever fails.
 */
export class Sender {
  /** cid → id, once acked. */
  readonly acked = new Map<string, number>();
  /** cid → the message, for every cid sent and not yet acked. */
  readonly unacked = new Map<string, Record<string, unknown>>();
  /** cid → every id its acks carried (a resend of a stored cid must get the same one). */
  readonly ackIds = new Map<string, Set<number>>();
  #next = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  storeFailures = 0;

  constructor(
    readonly d: Device,
    readonly count: number,
    readonly make: (i: number) => Record<string, unknown>,
    readonly window = 10,
  ) {
    const onFrame = d.onFrame;
    d.onFrame = (f) => {
      onFrame?.(f);
      if (f.type === "ack" && f.id !== undefined && /^c\d+$/.test(f.cid)) {
        let ids = this.ackIds.get(f.cid);
        if (!ids) this.ackIds.set(f.cid, (ids = new Set()));
        ids.add(f.id);
      }
      if (f.type === "ack" && this.unacked.has(f.cid) && f.id !== undefined) {
        this.unacked.delete(f.cid);
        this.acked.set(f.cid, f.id);
        this.pump();
      } else if (f.type === "error" && f.cid !== undefined && this.unacked.has(f.cid)) {
        if (f.code !== "store_failed") throw new Error(`${d.name}: unexpected error ${JSON.stringify(f)}`);
        this.storeFailures++;
        this.#retrySoon();
      } else if (f.type === "welcome") {
        // A new connection: whatever was in flight may or may not be stored; the same cid settles it.
        this.resendAll();
      }
    };
  }

  get done(): boolean {
    return this.acked.size === this.count;
  }

  /** Sends until `window` are unacked. */
  pump(): void {
    if (!this.d.connected) return;
    while (this.#next < this.count && this.unacked.size < this.window) {
      const cid = `c${this.#next}`;
      const m = { ...this.make(this.#next++), cid };
      this.unacked.set(cid, m);
      this.d.send(m);
    }
  }

  resendAll(): void {
    if (!this.d.connected) return;
    for (const m of this.unacked.values()) this.d.send(m);
    this.pump();
  }

  #retrySoon(): void {
    this.#retryTimer ??= setTimeout(() => {
      this.#retryTimer = undefined;
      this.resendAll();
    }, 50);
  }

  /** Cids whose acks named more than one id (must be none). */
  conflictingAcks(): string[] {
    return [...this.ackIds].filter(([, ids]) => ids.size > 1).map(([cid, ids]) => `${cid}: ${[...ids].join(",")}`);
  }

  /** Ids of the acked messages. */
  ids(): number[] {
    return [...this.acked.values()];
  }
}

/** The duplicates in a list of ids. */
export function duplicates(ids: number[]): number[] {
  const seen = new Set<number>();
  const dup: number[] = [];
  for (const id of ids) {
    if (seen.has(id)) dup.push(id);
    seen.add(id);
  }
  return dup;
}

/** What a list lacks of `expected`, and what it has beyond it. */
export function diff(got: number[], expected: Iterable<number>): { missing: number[]; extra: number[] } {
  const g = new Set(got);
  const e = new Set(expected);
  return { missing: [...e].filter((x) => !g.has(x)).sort((a, b) => a - b), extra: [...g].filter((x) => !e.has(x)).sort((a, b) => a - b) };
}
