import type { ServerWebSocket } from "bun";
import type { Broker } from "./broker/broker";
import { topics } from "./broker/broker";
import { CID_WINDOW_MS, type History, type StoredMessage } from "./history/history";
import type { Presence } from "./presence";
import { ChatError } from "./errors";
import { decodeFrame } from "./decode";
import { Connection } from "./connection";
import { planReplay, streamReplay, toFrame } from "./replay";
import { CLOSE, LIMITS, encode, type AuthFrame, type ErrorFrame, type MessageKind } from "./protocol";
import { roomAllowed, type Identity, type TokenVerifier } from "./auth/auth";
import { RateLimiter } from "./hub/rate";
import { consoleLogger, limitedErrors, oneLine, type Logger } from "./log";

/** How long a client may go on sending after `rate_limited` before it is closed with 4008. */
export const RATE_LIMIT_GRACE_MS = 10_000;

/** What a connect brings, checked before the upgrade. */
export interface Session {
  user: string;
  since?: number;
  rooms: readonly string[];
  /** The verified token's holder (jwt and accounts modes). */
  identity?: Identity;
  /** The client's address (after TRUST_PROXY). */
  ip: string;
}

/** What the hub needs; all of it is built outside and passed in. */
export interface HubDeps {
  history: History;
  broker: Broker;
  presence: Presence;
  /** Most messages one connect replays before it answers `resumed:false`. */
  replayLimit: number;
  /**
   * How long a closing client may still be receiving (default 2,000 ms):
   * direct messages committed this shortly before a close stay in its inbox.
   */
  closeGraceMs?: number;
  /** Per-user message rate (0: off) and burst. */
  msgRate?: number;
  msgBurst?: number;
  /** Verifies `auth` frames; undefined in open mode. */
  verifier?: TokenVerifier;
  log?: Logger;
}

/** Counters for /metrics; they only go up. */
export interface HubStats {
  accepted: number;
  duplicates: number;
  storeFailures: number;
  badFrames: number;
  /** Sends Bun reported as dropped (0) rather than sent or queued. */
  droppedSends: number;
  /** Replays that met backpressure and waited for the socket to drain. */
  replayPauses: number;
  opened: number;
  closed: number;
  rateLimited: number;
}


interface Pending {
  m: StoredMessage;
  ws: ServerWebSocket<unknown>;
  /** Retries of the same cid that arrived before the batch committed. */
  dupes?: ServerWebSocket<unknown>[];
}

/**
 * The per-message path: decode → check → store (group commit) → ack →
 * publish through the broker. One hub per node; connections hold a small
 * `Connection` as their socket data, nothing of the HTTP request.
 */
export class Hub {
  readonly stats: HubStats = { accepted: 0, duplicates: 0, storeFailures: 0, badFrames: 0, droppedSends: 0, replayPauses: 0, opened: 0, closed: 0, rateLimited: 0 };
  readonly #sockets = new Set<ServerWebSocket<Connection>>();
  /** Each user's open sockets on this node: for limits and admin disconnects. */
  readonly #byUser = new Map<string, Set<ServerWebSocket<Connection>>>();
  readonly #byIp = new Map<string, number>();
  /** Connects per user whose `since` replay is still streaming. */
  readonly #replaying = new Map<string, number>();
  readonly #rate: RateLimiter | undefined;
  readonly #log: Logger;
  readonly #logError: (kind: string, line: string) => void;
  #pending: Pending[] = [];
  readonly #pendingByCid = new Map<string, Pending>();
  #flushQueued = false;
  #lastAssigned: number;
  #closing = false;
  /** The first id and commit time of each batch of the last `closeGraceMs`. */
  readonly #recent: { first: number; at: number }[] = [];

  constructor(readonly deps: HubDeps) {
    this.#lastAssigned = deps.history.lastId();
    this.#rate = deps.msgRate ? new RateLimiter(deps.msgRate, deps.msgBurst ?? deps.msgRate) : undefined;
    this.#log = deps.log ?? consoleLogger;
    this.#logError = limitedErrors(this.#log);
  }

  /** Open sockets of `user` on this node. */
  connectionsOf(user: string): number {
    return this.#byUser.get(user)?.size ?? 0;
  }

  /** Open sockets from client address `ip` on this node. */
  connectionsFrom(ip: string): number {
    return this.#byIp.get(ip) ?? 0;
  }

  /** Connects of `user` whose `since` replay is still streaming. */
  replaysOf(user: string): number {
    return this.#replaying.get(user) ?? 0;
  }

  /** Closes every socket of `user` on this node with `code`; returns how many. */
  disconnect(user: string, code: number, reason: string): number {
    const socks = [...(this.#byUser.get(user) ?? [])];
    for (const ws of socks) ws.close(code, reason);
    return socks.length;
  }

  /** Takes over a freshly upgraded socket: welcome, replay, then live delivery. */
  open(ws: ServerWebSocket<unknown>, session: Session): void {
    const { history, presence, replayLimit } = this.deps;
    const { user, since, rooms } = session;
    const conn = new Connection(this, user, rooms, session.ip);
    const sock = ws as ServerWebSocket<Connection>;
    sock.data = conn;
    this.#sockets.add(sock);
    this.stats.opened++;
    let mine = this.#byUser.get(user);
    if (!mine) this.#byUser.set(user, (mine = new Set()));
    mine.add(sock);
    this.#byIp.set(session.ip, (this.#byIp.get(session.ip) ?? 0) + 1);
    if (session.identity) {
      conn.allowedRooms = session.identity.rooms;
      this.#armExpiry(sock, conn, session.identity.validUntil);
    }
    const first = presence.add(user);
    const plan = planReplay(history, conn, since, replayLimit);
    this.#send(sock, encode({ type: "welcome", user, online: presence.users(), lastId: plan.upTo, resumed: plan.resumed, replay: plan.messages.length }));
    conn.replay = plan.messages;
    conn.replayUpTo = plan.upTo;
    if (since !== undefined) {
      conn.countedReplay = true;
      this.#replaying.set(user, this.replaysOf(user) + 1);
    }
    this.#stream(sock, conn);
    if (first) this.deps.broker.publish(topics.all, encode({ type: "presence", event: "join", user }));
  }

  /** One incoming frame. Never throws: bad input gets an error frame. */
  message(ws: ServerWebSocket<Connection>, conn: Connection, raw: string | Buffer): void {
    if (typeof raw !== "string") {
      ws.close(CLOSE.unsupportedData, "Binary frames are not supported: send JSON text frames");
      return;
    }
    try {
      const f = decodeFrame(raw);
      switch (f.type) {
        case "broadcast":
          if (this.#rate && !this.#allow(ws, conn, f.cid)) return;
          return this.#accept(ws, conn, "broadcast", undefined, f.text, f.cid);
        case "direct":
          if (this.#rate && !this.#allow(ws, conn, f.cid)) return;
          return this.#accept(ws, conn, "direct", f.to, f.text, f.cid);
        case "room":
          if (!conn.rooms.has(f.room)) {
            throw new ChatError("not_member", `You are not in room "${f.room}": join it before sending to it`, f.cid);
          }
          if (this.#rate && !this.#allow(ws, conn, f.cid)) return;
          return this.#accept(ws, conn, "room", f.room, f.text, f.cid);
        case "auth":
          return this.#reauth(ws, conn, f);
        case "join":
          if (!roomAllowed(conn.allowedRooms, f.room)) {
            throw new ChatError("forbidden", `Your token does not allow room "${f.room}"`, f.cid);
          }
          if (!conn.rooms.has(f.room) && conn.rooms.size >= LIMITS.roomsMax) {
            throw new ChatError("invalid_room", `Cannot join "${f.room}": a connection may be in at most ${LIMITS.roomsMax} rooms`, f.cid);
          }
          conn.rooms.add(f.room);
          if (conn.live) ws.subscribe(topics.room(f.room));
          if (f.cid !== undefined) this.#send(ws, encode({ type: "ack", cid: f.cid }));
          return;
        case "leave":
          conn.rooms.delete(f.room);
          if (conn.live) ws.unsubscribe(topics.room(f.room));
          if (f.cid !== undefined) this.#send(ws, encode({ type: "ack", cid: f.cid }));
          return;
      }
    } catch (err) {
      this.#reject(ws, conn, err);
    }
  }

  /** The socket can take more: go on with a replay that backpressure paused. */
  drain(ws: ServerWebSocket<Connection>, conn: Connection): void {
    if (!conn.live) this.#stream(ws, conn);
  }

  /** A socket closed, for whatever reason. */
  close(ws: ServerWebSocket<Connection>, conn: Connection, code: number): void {
    if (!this.#sockets.delete(ws)) return;
    this.stats.closed++;
    clearTimeout(conn.expiry);
    this.#doneReplaying(conn);
    const mine = this.#byUser.get(conn.user);
    if (mine && mine.delete(ws) && mine.size === 0) this.#byUser.delete(conn.user);
    const n = (this.#byIp.get(conn.ip) ?? 1) - 1;
    if (n > 0) this.#byIp.set(conn.ip, n);
    else this.#byIp.delete(conn.ip);
    if (!this.deps.presence.remove(conn.user)) return;
    // Only a close the client asked for (1000, 1001, or a close frame with no
    // code: 1005) suggests it read what was sent, and not what was published
    // while its close was on the way: the cursor stops short of the last
    // `closeGraceMs` of commits. Otherwise, and on shutdown, the inbox keeps
    // the messages (a duplicate is better than a loss).
    if ((code === 1000 || code === 1001 || code === 1005) && conn.live && !this.#closing) {
      try {
        this.deps.history.setCursor(conn.user, this.#settledId(Date.now()));
      } catch (err) {
        this.#logError("cursor", `could not record the inbox cursor of "${conn.user}": ${oneLine(err)}`);
      }
    }
    this.deps.broker.publish(topics.all, encode({ type: "presence", event: "leave", user: conn.user }));
  }

  /** Commits what is pending, then closes every socket with 1001. */
  shutdown(reason = "Server is shutting down: reconnect in a moment"): void {
    this.flush();
    this.#closing = true;
    for (const ws of this.#sockets) ws.close(CLOSE.goingAway, reason);
  }

  /** Open sockets on this node. */
  get connections(): number {
    return this.#sockets.size;
  }

  #accept(ws: ServerWebSocket<Connection>, conn: Connection, kind: MessageKind, to: string | undefined, text: string, cid: string | undefined): void {
    const now = Date.now();
    const key = cid === undefined ? undefined : `${conn.user}\n${cid}`;
    if (key !== undefined) {
      const waiting = this.#pendingByCid.get(key);
      if (waiting) {
        (waiting.dupes ??= []).push(ws);
        this.stats.duplicates++;
        return;
      }
      const prev = this.deps.history.findByCid(conn.user, cid!, now - CID_WINDOW_MS);
      if (prev) {
        this.stats.duplicates++;
        this.#send(ws, this.#ack(prev.id, prev.kind, prev.to, cid!));
        return;
      }
    }
    const p: Pending = { m: { id: ++this.#lastAssigned, kind, from: conn.user, to, text, at: now, cid }, ws };
    this.#pending.push(p);
    if (key !== undefined) this.#pendingByCid.set(key, p);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      // Group commit: everything that arrives in this turn of the event loop
      // goes into one transaction.
      setImmediate(this.flush);
    }
  }

  /** Commits the pending batch, then acks and publishes each message in id order. */
  readonly flush = (): void => {
    this.#flushQueued = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    this.#pendingByCid.clear();
    const stored = this.#store(batch);
    if (stored.length === 0) return;
    this.#publish(stored);
  };

  /**
   * Appends the batch in one transaction. When that fails for something
   * one message may cause, each is tried alone, so one bad message never
   * fails the others; a locked, full or broken store fails them all.
   * Failed ones get `store_failed`; returns the stored ones.
   */
  #store(batch: Pending[]): Pending[] {
    try {
      this.deps.history.append(batch.map((p) => p.m));
      return batch;
    } catch (err) {
      this.#logError("store", `storing a batch of ${batch.length} messages failed: ${oneLine(err)}`);
      if (batch.length === 1 || storeWide(err)) {
        this.#failed(batch);
        return [];
      }
    }
    const ok: Pending[] = [];
    for (const p of batch) {
      try {
        this.deps.history.append([p.m]);
        ok.push(p);
      } catch {
        this.#failed([p]);
      }
    }
    return ok;
  }

  #failed(batch: Pending[]): void {
    this.stats.storeFailures += batch.length;
    for (const p of batch) {
      const frame: ErrorFrame = { type: "error", code: "store_failed", message: "The server could not store the message: send it again later" };
      if (p.m.cid !== undefined) frame.cid = p.m.cid;
      const data = encode(frame);
      this.#send(p.ws, data);
      for (const d of p.dupes ?? []) this.#send(d, data);
    }
  }

  /** Acks and publishes a committed batch, in id order. */
  #publish(batch: Pending[]): void {
    const { broker } = this.deps;
    this.stats.accepted += batch.length;
    const now = Date.now();
    this.#settledId(now);
    this.#recent.push({ first: batch[0]!.m.id, at: now });
    for (const p of batch) {
      const m = p.m;
      if (m.cid !== undefined) {
        const ack = this.#ack(m.id, m.kind, m.to, m.cid);
        this.#send(p.ws, ack);
        for (const d of p.dupes ?? []) this.#send(d, ack);
      }
      const data = encode(toFrame(m));
      if (m.kind === "broadcast") broker.publish(topics.all, data);
      else if (m.kind === "room") broker.publish(topics.room(m.to!), data);
      else {
        broker.publish(topics.user(m.to!), data);
        if (m.to !== m.from) broker.publish(topics.user(m.from), data);
      }
    }
  }

  /** The newest id committed more than `closeGraceMs` ago; forgets older batches. */
  #settledId(now: number): number {
    const recent = this.#recent;
    const grace = this.deps.closeGraceMs ?? 2_000;
    let drop = 0;
    while (drop < recent.length && recent[drop]!.at <= now - grace) drop++;
    recent.splice(0, drop);
    return recent.length > 0 ? recent[0]!.first - 1 : this.deps.history.lastId();
  }

  #ack(id: number, kind: MessageKind, to: string | undefined, cid: string): string {
    if (kind === "direct" && !this.deps.presence.isOnline(to!)) {
      return encode({ type: "ack", cid, id, delivered: false });
    }
    return encode({ type: "ack", cid, id });
  }

  /** Streams the replay; drain() calls it again after backpressure. */
  #stream(ws: ServerWebSocket<Connection>, conn: Connection): void {
    const state = streamReplay(ws, conn, this.deps.history);
    if (state === "dropped") this.stats.droppedSends++;
    else if (state === "paused") this.stats.replayPauses++;
    else this.#doneReplaying(conn);
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
    const frame: ErrorFrame = { type: "error", code: "rate_limited", message: `Too many messages: at most ${this.deps.msgRate} a second; wait before sending again`, retryAfterMs: wait };
    if (cid !== undefined) frame.cid = cid;
    this.#send(ws, encode(frame));
    return false;
  }

  /** A fresh token for a live connection: same user, or the connection is closed. */
  #reauth(ws: ServerWebSocket<Connection>, conn: Connection, f: AuthFrame): void {
    const verifier = this.deps.verifier;
    if (!verifier) {
      if (f.cid !== undefined) this.#send(ws, encode({ type: "ack", cid: f.cid }));
      return;
    }
    verifier.verify(f.token).then((identity) => {
      if (!this.#sockets.has(ws)) return;
      if (identity.user !== conn.user) {
        this.#reject(ws, conn, new ChatError("forbidden", `The token is for another user: this connection is "${conn.user}"`, f.cid));
        ws.close(CLOSE.forbidden, "Token for another user");
        return;
      }
      conn.allowedRooms = identity.rooms;
      for (const room of conn.rooms) {
        if (roomAllowed(identity.rooms, room)) continue;
        conn.rooms.delete(room);
        if (conn.live) ws.unsubscribe(topics.room(room));
      }
      this.#armExpiry(ws, conn, identity.validUntil);
      if (f.cid !== undefined) this.#send(ws, encode({ type: "ack", cid: f.cid }));
    }, (err) => {
      if (this.#sockets.has(ws)) this.#reject(ws, conn, err instanceof ChatError ? new ChatError(err.code, err.message, f.cid) : err);
    });
  }

  /** Closes the socket with 4001 once its token is no longer valid. */
  #armExpiry(ws: ServerWebSocket<Connection>, conn: Connection, validUntil: number): void {
    clearTimeout(conn.expiry);
    const left = validUntil - Date.now();
    if (left <= 0) {
      ws.close(CLOSE.unauthorized, "Token expired: get a new token and reconnect");
      return;
    }
    // setTimeout holds at most 2^31-1 ms (24.8 days): longer tokens re-arm.
    conn.expiry = setTimeout(() => this.#armExpiry(ws, conn, validUntil), Math.min(left, 2 ** 31 - 1));
  }

  #reject(ws: ServerWebSocket<Connection>, conn: Connection, err: unknown): void {
    if (!(err instanceof ChatError)) {
      this.#logError("frame", `unexpected error handling a frame: ${oneLine(err)}`);
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

  #send(ws: ServerWebSocket<unknown>, data: string): void {
    if (ws.readyState !== 1) return;
    if (ws.send(data) === 0) this.stats.droppedSends++;
  }
}

/** Errors of the whole store (locked, full, I/O), not of one message: retrying apart would only wait longer. */
function storeWide(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|NOMEM|CORRUPT|NOTADB)/.test(code);
}
