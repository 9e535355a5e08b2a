import type { ServerWebSocket } from "bun";
import type { Broker } from "./broker/broker";
import { topics } from "./broker/broker";
import { CID_WINDOW_MS, type History, type StoredMessage } from "./history/history";
import type { Presence } from "./presence";
import { ChatError } from "./errors";
import { decodeFrame } from "./decode";
import { Connection } from "./connection";
import { planReplay, streamReplay, toFrame } from "./replay";
import { CLOSE, LIMITS, encode, type ErrorFrame, type MessageKind } from "./protocol";

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
  readonly stats: HubStats = { accepted: 0, duplicates: 0, storeFailures: 0, badFrames: 0, droppedSends: 0, replayPauses: 0, opened: 0, closed: 0 };
  readonly #sockets = new Set<ServerWebSocket<Connection>>();
  #pending: Pending[] = [];
  readonly #pendingByCid = new Map<string, Pending>();
  #flushQueued = false;
  #lastAssigned: number;
  #closing = false;
  /** The first id and commit time of each batch of the last `closeGraceMs`. */
  readonly #recent: { first: number; at: number }[] = [];

  constructor(readonly deps: HubDeps) {
    this.#lastAssigned = deps.history.lastId();
  }

  /** Takes over a freshly upgraded socket: welcome, replay, then live delivery. */
  open(ws: ServerWebSocket<unknown>, user: string, since: number | undefined, rooms: readonly string[]): void {
    const { history, presence, replayLimit } = this.deps;
    const conn = new Connection(this, user, rooms);
    const sock = ws as ServerWebSocket<Connection>;
    sock.data = conn;
    this.#sockets.add(sock);
    this.stats.opened++;
    const first = presence.add(user);
    const plan = planReplay(history, conn, since, replayLimit);
    this.#send(sock, encode({ type: "welcome", user, online: presence.users(), lastId: plan.upTo, resumed: plan.resumed, replay: plan.messages.length }));
    conn.replay = plan.messages;
    conn.replayUpTo = plan.upTo;
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
          return this.#accept(ws, conn, "broadcast", undefined, f.text, f.cid);
        case "direct":
          return this.#accept(ws, conn, "direct", f.to, f.text, f.cid);
        case "room":
          if (!conn.rooms.has(f.room)) {
            throw new ChatError("not_member", `You are not in room "${f.room}": join it before sending to it`, f.cid);
          }
          return this.#accept(ws, conn, "room", f.room, f.text, f.cid);
        case "join":
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
        console.error(`wirechat: could not record the inbox cursor of "${conn.user}":`, err);
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
    try {
      this.deps.history.append(batch.map((p) => p.m));
    } catch (err) {
      console.error(`wirechat: storing ${batch.length} messages failed:`, err);
      this.stats.storeFailures += batch.length;
      for (const p of batch) {
        const frame: ErrorFrame = { type: "error", code: "store_failed", message: "The server could not store the message: send it again later" };
        if (p.m.cid !== undefined) frame.cid = p.m.cid;
        const data = encode(frame);
        this.#send(p.ws, data);
        for (const d of p.dupes ?? []) this.#send(d, data);
      }
      return;
    }
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
  };

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
  }

  #reject(ws: ServerWebSocket<Connection>, conn: Connection, err: unknown): void {
    if (!(err instanceof ChatError)) {
      console.error("wirechat: unexpected error handling a frame:", err);
      this.#send(ws, encode({ type: "error", code: "internal", message: "The server failed to handle the frame: send it again" }));
      return;
    }
    this.stats.badFrames++;
    const frame: ErrorFrame = { type: "error", code: err.code, message: err.message };
    if (err.cid !== undefined) frame.cid = err.cid;
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
