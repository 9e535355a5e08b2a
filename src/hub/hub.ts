import type { ServerWebSocket } from "bun";
import type { Broker } from "../broker/broker";
import type { CidHit, History } from "../history/history";
import type { Presence } from "../presence/presence";
import { presenceFrames } from "../presence/notify";
import type { Identity, TokenVerifier } from "../auth/auth";
import { roomAllowed } from "../auth/auth";
import { ChatError } from "../errors";
import { decodeFrame } from "../decode";
import { consoleLogger, limitedErrors, oneLine, type Logger } from "../log";
import { CLOSE, LIMITS, encode, type ErrorFrame, type MessageKind } from "../protocol";
import { Committer } from "./commit";
import type { GcPacer } from "./gc_pacer";
import { Connection } from "./connection";
import { Cursors } from "./cursors";
import { Expiries, reauth } from "./identity";
import { Receipts } from "./receipts";
import { RateLimiter } from "./rate";
import { DeliveryWaits, planReplay, streamReplay, type ReplaySource } from "./replay";
import { topics } from "./routing";
import { UserSockets } from "./user_sockets";
import type { Observers } from "../metrics";

/** How long a client may go on sending after `rate_limited` before it is closed with 4008. */
export const RATE_LIMIT_GRACE_MS = 10_000;
/** Frames a client may send before its welcome; they are handled right after it. */
const EARLY_FRAMES_MAX = 100;
/** How often, at most, a publish that met backpressure makes the hub look at every socket's buffer. */
const FULL_SCAN_MS = 10;
/** A socket this far behind is looked at again on every turn that meets backpressure. */
const SUSPECT_BYTES = 16 * 1024;
/** A socket with this much unsent data gets no typing frames: they are the first dropped. */
const TYPING_BUFFER_MAX = 16 * 1024;
/** Unsent bytes past which Bun drops a send and closes the socket (the app's `backpressureLimit`). */
export const BACKPRESSURE_LIMIT = 1024 * 1024;
/** Unread messages counted per conversation in the welcome (the page shows "999+"). */
export const UNREAD_CAP = 999;

/** What a connect brings, checked before the upgrade. */
export interface Session {
  user: string;
  since?: number;
  /** The epoch `since` belongs to, when the client knows it. */
  epoch?: string;
  rooms: readonly string[];
  /** The verified token's holder (jwt and accounts modes). */
  identity?: Identity;
  /** The client's address (after TRUST_PROXY). */
  ip: string;
  /** `?batch=1`: messages arrive as JSON arrays, one per topic and commit batch. */
  batch?: boolean;
}

/** What the hub needs; all of it is built outside and passed in. */
export interface HubDeps {
  history: History;
  broker: Broker;
  presence: Presence;
  /** Up to this many users online, everyone hears of every join and leave; above it, watchers only (default 500). */
  presenceGlobalMax?: number;
  /** Most messages one connect replays before it answers `resumed:false`. */
  replayLimit: number;
  /** How long a closing client may still be receiving (default 2,000 ms); see Cursors. */
  closeGraceMs?: number;
  /** Per-user message rate (0: off) and burst. */
  msgRate?: number;
  msgBurst?: number;
  /** Verifies `auth` frames; undefined in open mode. */
  verifier?: TokenVerifier;
  log?: Logger;
  /** Histograms to observe (commit, ack latency, batch and replay sizes). */
  observers?: Observers;
  /** Paces young-generation collections by the messages delivered here (from any node); undefined: the engine's own pacing. */
  gcPacer?: GcPacer;
}

/** Counters for /metrics; they only go up. */
export interface HubStats {
  badFrames: number;
  /** Sends Bun reported as dropped (0) rather than sent or queued. */
  droppedSends: number;
  /** Replays that met backpressure and waited for the socket to drain. */
  replayPauses: number;
  opened: number;
  closed: number;
  rateLimited: number;
  /** Times every socket was told to resume because the broker lost messages. */
  gaps: number;
  /** Typing frames not sent: over the per-conversation rate, or to a socket under backpressure. */
  typingDropped: number;
  framesIn: number;
  /** Connects refused before the upgrade, by error code. */
  refused: Record<string, number>;
  resumedFalse: number;
  /** Sockets Bun closed for being too far behind. */
  backpressureCloses: number;
  /** Frames sent to one socket (welcome, acks, errors, replays; publishes are the broker's count), and their bytes. */
  framesOut: number;
  bytesOut: number;
}

/**
 * Socket events in, the hub's parts out: decode → check → commit (group
 * commit, ids from the store) → broker → `server.publish`; replay before
 * live delivery; inbox cursors; limits. Connections hold a small
 * `Connection` as their socket data, nothing of the HTTP request.
 */
export class Hub {
  readonly stats: HubStats = {
    badFrames: 0,
    droppedSends: 0,
    replayPauses: 0,
    opened: 0,
    closed: 0,
    rateLimited: 0,
    gaps: 0,
    typingDropped: 0,
    framesIn: 0,
    refused: {},
    resumedFalse: 0,
    backpressureCloses: 0,
    framesOut: 0,
    bytesOut: 0,
  };
  readonly receipts: Receipts;
  /** This node's sockets per room: droppable frames (typing) are sent to them one by one. */
  readonly #byRoom = new Map<string, Set<ServerWebSocket<Connection>>>();
  /** `user\nconversation` → when its last typing frame was forwarded. */
  readonly #typedAt = new Map<string, number>();
  readonly committer: Committer;
  readonly #expiries = new Expiries();
  #overflowScan = false;
  /** When every socket's buffer was last looked at, and the sockets then behind by SUSPECT_BYTES or more. */
  #fullScanAt = 0;
  readonly #suspects = new Set<ServerWebSocket<Connection>>();
  readonly #replaySource: ReplaySource;
  readonly cursors: Cursors;
  readonly #sockets = new Set<ServerWebSocket<Connection>>();
  /** Each user's open sockets on this node: for limits and admin disconnects. */
  readonly #byUser = new UserSockets<ServerWebSocket<Connection>>();
  readonly #byIp = new Map<string, number>();
  /** Connects per user whose `since` replay is still streaming. */
  readonly #replaying = new Map<string, number>();
  readonly #rate: RateLimiter | undefined;
  readonly log: Logger;
  readonly #logError: ReturnType<typeof limitedErrors>;
  #closing = false;
  readonly #waits = new DeliveryWaits();
  get #globalMax(): number {
    return this.deps.presenceGlobalMax ?? 500;
  }
  /** Resolves once the broker delivers: `index.ts` waits for it before listening. */
  readonly ready: Promise<void>;

  constructor(readonly deps: HubDeps) {
    this.#rate = deps.msgRate ? new RateLimiter(deps.msgRate, deps.msgBurst ?? deps.msgRate) : undefined;
    this.log = deps.log ?? consoleLogger;
    this.#logError = limitedErrors(this.log);
    const { history, broker } = deps;
    this.#replaySource = {
      history,
      deliveredThrough: () => broker.deliveredThrough(),
      deliveredPast: (id, conn) => this.#waits.until(id, conn),
      send: (ws, data) => this.#send(ws, data),
    };
    this.cursors = new Cursors(history, () => broker.deliveredThrough(), deps.closeGraceMs);
    this.committer = new Committer(
      history,
      broker,
      {
        ack: (ws, cid, hit) => this.#send(ws, this.#ack(cid, hit)),
        failed: (ws, data) => this.#send(ws, data),
        log: (line, err) => this.#logError("store", line, { error: oneLine(err) }),
        epochChanged: () => this.resync("the message store started over"),
      },
      deps.observers,
    );
    deps.presence.onChanges((c) => {
      for (const [topic, data] of presenceFrames(c, deps.presence.count(), this.#globalMax)) broker.publishLocal(topic, data);
    });
    this.receipts = new Receipts(history, broker, (user, err) => this.#logError("receipts", "could not record receipts", { user, error: oneLine(err) }));
    this.ready = broker.start(history.lastId(), {
      delivered: (first, last) => {
        this.cursors.delivered(first, Date.now());
        this.#waits.delivered(last);
        // Last: the batch's frames are out, so the collection delays only what comes next.
        deps.gcPacer?.note(last - first + 1);
      },
      gap: (reason) => this.resync(reason),
      volatile: (topic, data) => this.#sendDroppable(topic, data),
      backpressure: (dropped) => this.#noteOverflow(dropped),
      command: (c) => {
        const closed = this.disconnect(c.disconnect, c.code, c.reason);
        if (closed > 0) this.log.info("closed a user's connections as another node asked", { user: c.disconnect, code: c.code, closed });
      },
    });
  }

  /** Open sockets of `user` on this node. */
  connectionsOf(user: string): number {
    return this.#byUser.count(user);
  }

  /** Open sockets from client address `ip` on this node. */
  connectionsFrom(ip: string): number {
    return this.#byIp.get(ip) ?? 0;
  }

  /** Connects of `user` whose `since` replay is still streaming. */
  replaysOf(user: string): number {
    return this.#replaying.get(user) ?? 0;
  }

  /** This node's open connections (the admin page lists them). */
  *eachConnection(): IterableIterator<Connection> {
    for (const ws of this.#sockets) yield ws.data;
  }

  /** Rooms with a socket on this node, and how many sockets are in each. */
  roomSockets(): [room: string, sockets: number][] {
    return Array.from(this.#byRoom, ([room, socks]) => [room, socks.size]);
  }

  /** Closes every socket of `user` on this node with `code`; returns how many. */
  disconnect(user: string, code: number, reason: string): number {
    const socks = this.#byUser.of(user);
    for (const ws of socks) ws.close(code, reason);
    return socks.length;
  }

  /** Closes every socket of `user` on every node; returns how many were on this one (the others close theirs as the command reaches them). */
  disconnectEverywhere(user: string, code: number, reason: string): number {
    this.deps.broker.command({ disconnect: user, code, reason });
    return this.disconnect(user, code, reason);
  }

  /**
   * This node missed messages it cannot deliver live (`reason`): every
   * socket is closed with 1013 and resumes from the store with `since`.
   */
  resync(reason: string): void {
    this.stats.gaps++;
    this.deps.history.refreshEpoch().catch((err) => this.#logError("epoch", "could not read the store's epoch", { error: oneLine(err) }));
    this.#logError("gap", `closing every connection so it resumes from the store: ${reason}`, { connections: this.#sockets.size });
    for (const ws of this.#sockets) ws.close(CLOSE.backpressure, "Missed messages: reconnect with since to resume");
    this.#waits.releaseAll();
  }

  /** Takes over a freshly upgraded socket: welcome, replay, then live delivery. */
  open(ws: ServerWebSocket<unknown>, session: Session): void {
    const { user } = session;
    const conn = new Connection(this, user, session.rooms, session.ip, session.batch === true);
    const sock = ws as ServerWebSocket<Connection>;
    sock.data = conn;
    this.#sockets.add(sock);
    this.stats.opened++;
    this.#byUser.add(user, sock);
    this.#byIp.set(session.ip, (this.#byIp.get(session.ip) ?? 0) + 1);
    if (session.identity) {
      conn.allowedRooms = session.identity.rooms;
      this.#expiries.set(sock, conn, session.identity.validUntil);
    }
    if (session.since !== undefined) {
      conn.countedReplay = true;
      this.#replaying.set(user, this.replaysOf(user) + 1);
    }
    this.deps.presence.add(user);
    for (const room of conn.rooms) this.#enterRoom(sock, conn, room);
    void this.#welcome(sock, conn, session);
  }

  /** Plans the replay, sends the welcome, then streams the replay. */
  async #welcome(ws: ServerWebSocket<Connection>, conn: Connection, session: Session): Promise<void> {
    const { history, broker, presence, replayLimit } = this.deps;
    let plan: Awaited<ReturnType<typeof planReplay>>;
    let unread: Awaited<ReturnType<History["unread"]>>;
    try {
      plan = await planReplay(history, conn, session, broker.deliveredThrough(), replayLimit);
      unread = await history.unread(conn.user, conn.rooms, await history.reads(conn.user), UNREAD_CAP);
    } catch (err) {
      this.#logError("replay", "could not read a replay", { user: conn.user, error: oneLine(err) });
      ws.close(1011, "Could not read history: reconnect in a moment");
      return;
    }
    if (conn.closed) return;
    const onlineCount = presence.count();
    if (!plan.resumed) this.stats.resumedFalse++;
    this.deps.observers?.replaySize.observe(plan.messages.length);
    this.#send(
      ws,
      encode({
        type: "welcome",
        user: conn.user,
        online: onlineCount <= this.#globalMax ? presence.users() : undefined,
        onlineCount,
        lastId: plan.upTo,
        resumed: plan.resumed,
        replay: plan.messages.length,
        epoch: history.epoch,
        unread: Object.entries(unread).map(([conversation, u]) => ({ conversation, ...u })),
      }),
    );
    conn.welcomed = true;
    conn.replay = plan.messages;
    conn.replayUpTo = plan.upTo;
    void this.#stream(ws, conn);
    const early = conn.early;
    conn.early = undefined;
    for (const raw of early ?? []) this.message(ws, conn, raw);
  }

  /** One incoming frame. Never throws: bad input gets an error frame. */
  message(ws: ServerWebSocket<Connection>, conn: Connection, raw: string | Buffer): void {
    this.stats.framesIn++;
    if (!conn.welcomed) {
      const early = (conn.early ??= []);
      if (early.length >= EARLY_FRAMES_MAX) ws.close(CLOSE.policyViolation, "Too many frames before the welcome");
      else early.push(raw);
      return;
    }
    if (typeof raw !== "string") {
      ws.close(CLOSE.unsupportedData, "Binary frames are not supported: send JSON text frames");
      return;
    }
    try {
      const f = decodeFrame(raw);
      switch (f.type) {
        case "broadcast":
          return this.#accept(ws, conn, "broadcast", undefined, f.text, f.cid);
        case "direct":
          return this.#accept(ws, conn, "direct", f.to, f.text, f.cid);
        case "room":
          this.#mayUse(conn, f.room, f.cid);
          if (!conn.rooms.has(f.room)) {
            throw new ChatError("not_member", `You are not in room "${f.room}": join it before sending to it`, f.cid);
          }
          return this.#accept(ws, conn, "room", f.room, f.text, f.cid);
        case "auth":
          return reauth(ws, conn, f, this.deps.verifier, {
            ack: (cid) => this.#send(ws, encode({ type: "ack", cid })),
            reject: (err) => this.#reject(ws, conn, err),
            open: () => this.#sockets.has(ws),
            left: (room) => this.#leaveRoom(ws, conn, room, false),
            validUntil: (ms) => this.#expiries.set(ws, conn, ms),
          });
        case "watch":
          return this.#watch(ws, conn, f.users, f.cid);
        case "received":
          // What a device processed: never past what this node delivered.
          conn.sentReceived = true;
          return this.receipts.received(conn.user, Math.min(f.id, this.deps.broker.deliveredThrough()));
        case "read":
          return this.receipts.read(conn.user, conn.rooms, f.id, (err) => this.#reject(ws, conn, err));
        case "typing":
          return this.#typing(conn, "to" in f ? f.to : undefined, "room" in f ? f.room : undefined);
        case "unwatch":
          for (const u of f.users) if (conn.watching?.delete(u)) conn.unsubscribe(ws, topics.watch(u));
          if (f.cid !== undefined) this.#send(ws, encode({ type: "ack", cid: f.cid }));
          return;
        case "join":
          this.#mayUse(conn, f.room, f.cid);
          if (!conn.rooms.has(f.room) && conn.rooms.size >= LIMITS.roomsMax) {
            throw new ChatError("invalid_room", `Cannot join "${f.room}": a connection may be in at most ${LIMITS.roomsMax} rooms`, f.cid);
          }
          if (!conn.rooms.has(f.room)) {
            conn.rooms.add(f.room);
            this.#enterRoom(ws, conn, f.room);
            if (conn.live) conn.subscribe(ws, topics.room(f.room));
          }
          if (f.cid !== undefined) this.#send(ws, encode({ type: "ack", cid: f.cid }));
          return;
        case "leave":
          if (conn.rooms.has(f.room)) this.#leaveRoom(ws, conn, f.room, true);
          if (f.cid !== undefined) this.#send(ws, encode({ type: "ack", cid: f.cid }));
          return;
      }
    } catch (err) {
      this.#reject(ws, conn, err);
    }
  }

  /** The socket can take more: go on with a replay that backpressure paused. */
  drain(ws: ServerWebSocket<Connection>, conn: Connection): void {
    // Caught up: a later 1006 is a vanished peer, not a backpressure close.
    conn.overflowed = false;
    this.#suspects.delete(ws);
    if (conn.welcomed && !conn.live && !conn.streaming) void this.#stream(ws, conn);
  }

  /** A socket closed, for whatever reason. */
  close(ws: ServerWebSocket<Connection>, conn: Connection, code: number): void {
    // Bun has taken the socket out of its topics before this handler runs.
    this.topicsChanged();
    if (!this.#sockets.delete(ws)) return;
    conn.closed = true;
    this.#waits.cancel(conn);
    this.stats.closed++;
    if (code === 1006 && conn.overflowed) this.stats.backpressureCloses++;
    this.#suspects.delete(ws);
    this.#expiries.delete(ws, conn);
    this.#doneReplaying(conn);
    const n = (this.#byIp.get(conn.ip) ?? 1) - 1;
    if (n > 0) this.#byIp.set(conn.ip, n);
    else this.#byIp.delete(conn.ip);
    for (const room of conn.rooms) this.#leaveRoom(ws, conn, room, false);
    this.deps.presence.remove(conn.user);
    if (this.#byUser.delete(conn.user, ws) !== 0) return;
    // A client that sends `received` moves its cursor exactly. For one that
    // never does (v1, the tutorial's), only a close it asked for (1000, 1001,
    // or 1005: no code) suggests it read what was sent; otherwise, and on
    // shutdown, the inbox keeps the messages (a duplicate beats a loss).
    if (!conn.sentReceived && (code === 1000 || code === 1001 || code === 1005) && conn.live && !this.#closing) {
      this.cursors.closed(conn.user, Date.now()).catch((err) => {
        this.#logError("cursor", "could not record an inbox cursor", { user: conn.user, error: oneLine(err) });
      });
    }
  }

  /** Commits what is pending, then closes every socket with 1001. */
  async shutdown(reason = "Server is shutting down: reconnect in a moment"): Promise<void> {
    this.#closing = true;
    this.#expiries.stop();
    await this.committer.flush();
    for (const ws of this.#sockets) ws.close(CLOSE.goingAway, reason);
    this.#waits.releaseAll();
  }

  /** Shutting down: new connections are refused and /ready says so. */
  get draining(): boolean {
    return this.#closing;
  }

  /** A socket of this node subscribed to or left a topic, or closed: the broker's subscriber counts are stale. */
  topicsChanged(): void {
    this.deps.broker.topicsChanged();
  }

  /** Open sockets on this node. */
  get connections(): number {
    return this.#sockets.size;
  }

  #accept(ws: ServerWebSocket<Connection>, conn: Connection, kind: MessageKind, to: string | undefined, text: string, cid: string | undefined): void {
    if (this.#rate && !this.#allow(ws, conn, cid)) return;
    // Every field in the literal, absent ones undefined: on the commit path an object given a property
    // after it is made outgrows its inline slots and allocates more storage, once per message.
    this.committer.add(ws, { kind, from: conn.user, to, text, at: Date.now(), cid });
  }

  #enterRoom(ws: ServerWebSocket<Connection>, conn: Connection, room: string): void {
    this.deps.presence.addRoom(conn.user, room);
    let socks = this.#byRoom.get(room);
    if (!socks) this.#byRoom.set(room, (socks = new Set()));
    socks.add(ws);
  }

  /** Takes the socket out of `room` (and, with `unsubscribe`, out of its topic). */
  #leaveRoom(ws: ServerWebSocket<Connection>, conn: Connection, room: string, unsubscribe: boolean): void {
    if (unsubscribe) {
      conn.rooms.delete(room);
      if (conn.live) conn.unsubscribe(ws, topics.room(room));
    }
    this.deps.presence.removeRoom(conn.user, room);
    const socks = this.#byRoom.get(room);
    if (socks?.delete(ws) && socks.size === 0) this.#byRoom.delete(room);
  }

  /** Refuses a room the connection's token does not allow (its `rooms` claim), before membership is asked. */
  #mayUse(conn: Connection, room: string, cid?: string): void {
    if (!roomAllowed(conn.allowedRooms, room)) throw new ChatError("forbidden", `Your token does not allow room "${room}"`, cid);
  }

  /** Forwards "typing" at most once per LIMITS.typingEveryMs per sender and conversation; never stored. */
  #typing(conn: Connection, to: string | undefined, room: string | undefined): void {
    if (room !== undefined) {
      this.#mayUse(conn, room);
      if (!conn.rooms.has(room)) throw new ChatError("not_member", `You are not in room "${room}": join it before typing in it`);
    }
    const key = `${conn.user}\n${to === undefined ? `#${room}` : `@${to}`}`;
    const now = Date.now();
    if (now - (this.#typedAt.get(key) ?? 0) < LIMITS.typingEveryMs) {
      this.stats.typingDropped++;
      return;
    }
    this.#typedAt.set(key, now);
    // Old entries only matter for LIMITS.typingEveryMs: forget them in bulk now and then.
    if (this.#typedAt.size > 10_000) for (const [k, at] of this.#typedAt) if (now - at >= LIMITS.typingEveryMs) this.#typedAt.delete(k);
    const data = encode(to !== undefined ? { type: "typing", from: conn.user, to } : { type: "typing", from: conn.user, room: room! });
    this.deps.broker.publish(to !== undefined ? topics.user(to) : topics.room(room!), data, true);
  }

  /** A droppable frame (typing) to this node's live sockets on `topic`, skipping any with unsent data. */
  #sendDroppable(topic: string, data: string): void {
    const socks = topic.startsWith("room:") ? this.#byRoom.get(topic.slice(5)) : topic.startsWith("user:") ? this.#byUser.of(topic.slice(5)) : undefined;
    for (const ws of socks ?? []) {
      if (!ws.data.live) continue;
      if (ws.getBufferedAmount() > TYPING_BUFFER_MAX) this.stats.typingDropped++;
      else this.#send(ws, data);
    }
  }

  /** Subscribes to the presence of up to LIMITS.watchMax users; the ack says which are online. */
  #watch(ws: ServerWebSocket<Connection>, conn: Connection, users: string[], cid: string | undefined): void {
    const watching = (conn.watching ??= new Set());
    const fresh = users.filter((u) => !watching.has(u));
    if (watching.size + new Set(fresh).size > LIMITS.watchMax) {
      throw new ChatError("invalid_frame", `Cannot watch ${fresh.length} more users: a connection may watch at most ${LIMITS.watchMax}`, cid);
    }
    for (const u of fresh) {
      watching.add(u);
      conn.subscribe(ws, topics.watch(u));
    }
    if (cid !== undefined) this.#send(ws, encode({ type: "ack", cid, online: users.filter((u) => this.deps.presence.isOnline(u)) }));
  }

  #ack(cid: string, hit: CidHit): string {
    if (hit.kind === "direct" && !this.deps.presence.isOnline(hit.to!)) {
      return encode({ type: "ack", cid, id: hit.id, delivered: false });
    }
    return encode({ type: "ack", cid, id: hit.id });
  }

  /** Streams the replay; drain() calls it again after backpressure. */
  async #stream(ws: ServerWebSocket<Connection>, conn: Connection): Promise<void> {
    conn.streaming = true;
    let state: Awaited<ReturnType<typeof streamReplay>>;
    try {
      state = await streamReplay(ws, conn, this.#replaySource);
    } catch (err) {
      this.#logError("replay", "could not read a catch-up", { user: conn.user, error: oneLine(err) });
      ws.close(1011, "Could not read history: reconnect with since");
      return;
    } finally {
      conn.streaming = false;
    }
    if (state === "paused") this.stats.replayPauses++;
    else if (state !== "dropped") this.#doneReplaying(conn);
  }

  #doneReplaying(conn: Connection): void {
    if (!conn.countedReplay) return;
    conn.countedReplay = false;
    const n = this.replaysOf(conn.user) - 1;
    if (n > 0) this.#replaying.set(conn.user, n);
    else this.#replaying.delete(conn.user);
  }

  /** Spends a message from the user's bucket; false (and an error frame, or a close) when it is empty. */
  #allow(ws: ServerWebSocket<Connection>, conn: Connection, cid: string | undefined): boolean {
    const now = Date.now();
    const wait = this.#rate!.take(conn.user, now);
    if (wait === 0) return true;
    this.stats.rateLimited++;
    // A run of refusals ends only after a quiet grace period: messages the
    // bucket lets through in between do not restart the clock.
    if (conn.limitedSince === 0 || now - conn.lastRefusedAt > RATE_LIMIT_GRACE_MS) conn.limitedSince = now;
    conn.lastRefusedAt = now;
    if (now - conn.limitedSince >= RATE_LIMIT_GRACE_MS) {
      ws.close(CLOSE.rateLimited, "Kept sending after rate_limited: slow down, then reconnect");
      return false;
    }
    const frame: ErrorFrame = {
      type: "error",
      code: "rate_limited",
      message: `Too many messages: at most ${this.deps.msgRate} a second; wait before sending again`,
      retryAfterMs: wait,
    };
    if (cid !== undefined) frame.cid = cid;
    this.#send(ws, encode(frame));
    return false;
  }

  #reject(ws: ServerWebSocket<Connection>, conn: Connection, err: unknown): void {
    if (!(err instanceof ChatError)) {
      this.#logError("frame", "unexpected error handling a frame", { user: conn.user, error: oneLine(err) });
      this.#send(ws, encode({ type: "error", code: "internal", message: "The server failed to handle the frame: send it again" }));
      return;
    }
    this.stats.badFrames++;
    const frame: ErrorFrame = { type: "error", code: err.code, message: err.message };
    if (err.cid !== undefined) frame.cid = err.cid;
    if (err.retryAfterMs !== undefined) frame.retryAfterMs = err.retryAfterMs;
    this.#send(ws, encode(frame));
    if (conn.countBadFrame(Date.now())) {
      ws.close(CLOSE.policyViolation, `More than ${LIMITS.badFramesMax} bad frames in a minute`);
    }
  }

  /**
   * Every frame for one socket goes out here: counted as a frame out, or, when
   * Bun drops it, as a drop that marks the socket's coming 1006 close as a
   * backpressure close. Returns Bun's status (bytes, -1 queued, 0 dropped or
   * not open).
   */
  #send(ws: ServerWebSocket<unknown>, data: string): number {
    if (ws.readyState !== 1) return 0;
    const r = ws.send(data);
    if (r === 0) {
      this.stats.droppedSends++;
      const conn = ws.data as Connection | undefined;
      if (conn) conn.overflowed = true;
    } else {
      this.stats.framesOut++;
      // A positive status is the bytes sent; -1 (queued) gives none, so the length stands in.
      this.stats.bytesOut += r > 0 ? r : data.length;
    }
    return r;
  }

  /**
   * A publish met backpressure for some socket. Bun closes a socket whose
   * buffer passes the limit with 1006 and an empty buffer, like a vanished
   * peer, and its one status per publish does not say which socket: sockets
   * past half the limit are marked (drain clears the mark). Once per turn:
   * every socket after a drop or when the last full look is FULL_SCAN_MS
   * old, else only the sockets that look found behind (a status of -1 comes
   * back while any subscriber has anything queued: one slow client must not
   * make every turn look at every socket).
   */
  #noteOverflow(dropped: boolean): void {
    if (this.#overflowScan) return;
    this.#overflowScan = true;
    queueMicrotask(() => {
      this.#overflowScan = false;
      const now = performance.now();
      const full = dropped || now - this.#fullScanAt >= FULL_SCAN_MS;
      if (full) this.#fullScanAt = now;
      for (const ws of full ? this.#sockets : this.#suspects) {
        const behind = ws.getBufferedAmount();
        if (behind >= BACKPRESSURE_LIMIT / 2) ws.data.overflowed = true;
        if (behind >= SUSPECT_BYTES) this.#suspects.add(ws);
        else this.#suspects.delete(ws);
      }
    });
  }
}
