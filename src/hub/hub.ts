import type { Server, ServerWebSocket } from "bun";
import { presenceFrames } from "../presence/notify";
import { decodeFrame } from "../decode";
import { consoleLogger, limitedErrors, oneLine, type Logger } from "../log";
import { CLOSE, encode, type ErrorFrame, type MessageKind } from "../protocol";
import { OverflowWatch } from "./backpressure";
import { CatchUp } from "./catch_up";
import { Committer } from "./commit";
import { Connection } from "./connection";
import { Cursors } from "./cursors";
import { Expiries, reauth } from "./identity";
import { Membership } from "./membership";
import { RateLimiter, admit } from "./rate";
import { Receipts } from "./receipts";
import { SocketRegistry, type SocketCounts } from "./registry";
import { Replies } from "./replies";
import { TypingRelay } from "./typing";
import { newHubStats, type HubDeps, type HubStats, type Session } from "./types";

/** Frames a client may send before its welcome; they are handled right after it. */
const EARLY_FRAMES_MAX = 100;

/**
 * Socket events in, the hub's parts out: decode → check → commit (group
 * commit, ids from the store) → broker → `server.publish`; replay before
 * live delivery (CatchUp); inbox cursors; limits. Connections hold a small
 * `Connection` as their socket data, nothing of the HTTP request.
 */
export class Hub {
  readonly stats: HubStats = newHubStats();
  readonly receipts: Receipts;
  readonly committer: Committer;
  readonly cursors: Cursors;
  readonly log: Logger;
  /** Resolves once the broker delivers: `index.ts` waits for it before listening. */
  readonly ready: Promise<void>;
  readonly #sockets = new SocketRegistry();
  readonly #overflow = new OverflowWatch(this.#sockets.all);
  readonly #expiries = new Expiries();
  readonly #catchUp: CatchUp;
  readonly #typing: TypingRelay;
  readonly #membership: Membership;
  readonly #replies: Replies;
  readonly #rate: RateLimiter | undefined;
  readonly #logError: ReturnType<typeof limitedErrors>;
  /** Up to this many users online, everyone hears of every join and leave. */
  readonly #globalMax: number;
  #closing = false;

  constructor(readonly deps: HubDeps) {
    const { history, broker } = deps;
    this.#rate = deps.msgRate ? new RateLimiter(deps.msgRate, deps.msgBurst ?? deps.msgRate) : undefined;
    this.log = deps.log ?? consoleLogger;
    this.#logError = limitedErrors(this.log);
    this.#globalMax = deps.presenceGlobalMax ?? 500;
    const replies = (this.#replies = new Replies(this.stats, deps.presence, this.#sockets, this.#logError));
    const send = (ws: ServerWebSocket<Connection>, data: string) => replies.send(ws, data);
    this.#membership = new Membership(deps.presence, this.#sockets);
    this.#catchUp = new CatchUp(deps, { stats: this.stats, sockets: this.#sockets, globalMax: this.#globalMax, send, logError: this.#logError });
    this.#typing = new TypingRelay(broker, this.#sockets, send, this.stats);
    this.cursors = new Cursors(history, () => broker.deliveredThrough(), deps.closeGraceMs);
    this.committer = new Committer(
      history,
      broker,
      {
        ack: (ws, cid, hit) => replies.ack(ws, replies.ackOf(cid, hit)),
        failed: send,
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
        this.#catchUp.waits.delivered(last);
        // Last: the batch's frames are out, so the collection delays only what comes next.
        deps.gcPacer?.note(last - first + 1);
      },
      gap: (reason) => this.resync(reason),
      volatile: (topic, data) => this.#typing.deliver(topic, data),
      backpressure: (dropped) => this.#overflow.note(dropped),
      command: (c) => {
        const closed = this.disconnect(c.disconnect, c.code, c.reason);
        if (closed > 0) this.log.info("closed a user's connections as another node asked", { user: c.disconnect, code: c.code, closed });
      },
    });
  }

  /** Binds the hub to the server that owns its sockets, once it listens. */
  attach(server: Server<unknown>): void {
    this.#replies.server = server;
  }

  /** Whether `attach` has run: until it does, acks take `ws.send`, not the user's topic (see Replies.ack). */
  get attached(): boolean {
    return this.#replies.server !== undefined;
  }

  /** This node's sockets, as counted for the limits and listed on the admin page. */
  get sockets(): SocketCounts {
    return this.#sockets;
  }

  /** Closes every socket of `user` on this node with `code`; returns how many. */
  disconnect(user: string, code: number, reason: string): number {
    const socks = this.#sockets.ofUser(user);
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
    this.#logError("gap", `closing every connection so it resumes from the store: ${reason}`, { connections: this.connections });
    for (const ws of this.#sockets.all) ws.close(CLOSE.backpressure, "Missed messages: reconnect with since to resume");
    this.#catchUp.waits.releaseAll();
  }

  /** Takes over a freshly upgraded socket: welcome, replay, then live delivery. */
  open(ws: ServerWebSocket<unknown>, session: Session): void {
    const { user } = session;
    const conn = new Connection(this, user, session.rooms, session.ip, session.batch === true);
    const sock = ws as ServerWebSocket<Connection>;
    sock.data = conn;
    conn.allowedRooms = session.identity?.rooms;
    this.#sockets.add(sock, conn, session.since !== undefined);
    this.stats.opened++;
    this.deps.presence.add(user);
    for (const room of conn.rooms) this.#membership.enter(sock, conn, room);
    // Last: a token that expired since the upgrade closes the socket here, and the close undoes all of the above.
    if (session.identity) this.#expiries.set(sock, conn, session.identity.validUntil);
    if (!conn.closed) void this.#catchUp.welcome(sock, conn, session, () => this.#welcomed(sock, conn));
  }

  /** Right after the welcome, in its turn: the replay starts, then the frames that came before the welcome are handled. */
  #welcomed(ws: ServerWebSocket<Connection>, conn: Connection): void {
    void this.#catchUp.stream(ws, conn);
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
          this.#membership.member(conn, f.room, "sending to it", f.cid);
          return this.#accept(ws, conn, "room", f.room, f.text, f.cid);
        case "auth":
          return reauth(ws, conn, f, this.deps.verifier, {
            ack: (cid) => this.#ack(ws, cid),
            reject: (err) => this.#replies.reject(ws, conn, err),
            open: () => this.#sockets.all.has(ws),
            left: (room) => this.#membership.left(ws, conn, room),
            validUntil: (ms) => this.#expiries.set(ws, conn, ms),
          });
        case "watch":
          this.#membership.watch(ws, conn, f.users, f.cid);
          if (f.cid !== undefined) this.#replies.send(ws, encode({ type: "ack", cid: f.cid, online: f.users.filter((u) => this.deps.presence.isOnline(u)) }));
          return;
        case "received":
          // What a device processed: never past what this node delivered.
          conn.sentReceived = true;
          return this.receipts.received(conn.user, Math.min(f.id, this.deps.broker.deliveredThrough()));
        case "read":
          return this.receipts.read(conn.user, conn.rooms, f.id, (err) => this.#replies.reject(ws, conn, err));
        case "typing": {
          const room = "room" in f ? f.room : undefined;
          if (room !== undefined) this.#membership.member(conn, room, "typing in it");
          return this.#typing.typing(conn, "to" in f ? f.to : undefined, room);
        }
        case "unwatch":
          this.#membership.unwatch(ws, conn, f.users);
          return this.#ack(ws, f.cid);
        case "join":
          this.#membership.join(ws, conn, f.room, f.cid);
          return this.#ack(ws, f.cid);
        case "leave":
          this.#membership.leave(ws, conn, f.room);
          return this.#ack(ws, f.cid);
      }
    } catch (err) {
      this.#replies.reject(ws, conn, err);
    }
  }

  /** The socket can take more: go on with a replay that backpressure paused. */
  drain(ws: ServerWebSocket<Connection>, conn: Connection): void {
    // Caught up: a later 1006 is a vanished peer, not a backpressure close.
    conn.overflowed = false;
    this.#overflow.forget(ws);
    if (conn.welcomed && !conn.live && !conn.streaming) void this.#catchUp.stream(ws, conn);
  }

  /** A socket closed, for whatever reason. */
  close(ws: ServerWebSocket<Connection>, conn: Connection, code: number): void {
    // Bun has taken the socket out of its topics before this handler runs.
    this.topicsChanged();
    const left = this.#sockets.remove(ws, conn);
    if (left === undefined) return;
    conn.closed = true;
    this.#catchUp.waits.cancel(conn);
    this.stats.closed++;
    if (code === 1006 && conn.overflowed) this.stats.backpressureCloses++;
    this.#overflow.forget(ws);
    this.#expiries.delete(ws, conn);
    for (const room of conn.rooms) this.deps.presence.removeRoom(conn.user, room);
    this.deps.presence.remove(conn.user);
    if (left !== 0) return;
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
    for (const ws of this.#sockets.all) ws.close(CLOSE.goingAway, reason);
    this.#catchUp.waits.releaseAll();
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
    return this.#sockets.all.size;
  }

  #accept(ws: ServerWebSocket<Connection>, conn: Connection, kind: MessageKind, to: string | undefined, text: string, cid: string | undefined): void {
    if (this.#rate && !this.#allow(ws, conn, cid)) return;
    // Every field in the literal, absent ones undefined: on the commit path an object given a property
    // after it is made outgrows its inline slots and allocates more storage, once per message.
    this.committer.add(ws, { kind, from: conn.user, to, text, at: Date.now(), cid });
  }

  /** Spends a message from the user's bucket; false (and an error frame, or a close) when it is empty. */
  #allow(ws: ServerWebSocket<Connection>, conn: Connection, cid: string | undefined): boolean {
    const wait = admit(this.#rate!, conn, Date.now());
    if (wait === 0) return true;
    this.stats.rateLimited++;
    if (wait === "close") {
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
    this.#replies.send(ws, encode(frame));
    return false;
  }

  /** Acks a frame that needs no id (when it carried a cid). */
  #ack(ws: ServerWebSocket<Connection>, cid: string | undefined): void {
    if (cid !== undefined) this.#replies.send(ws, encode({ type: "ack", cid }));
  }
}
