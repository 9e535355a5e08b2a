/** What the hub sends to one socket: acks, error frames, and the one counted send they all take. */
import type { Server, ServerWebSocket } from "bun";
import { ChatError } from "../errors";
import type { CidHit } from "../history/history";
import { oneLine, type LogFields } from "../log";
import type { Presence } from "../presence/presence";
import { CLOSE, LIMITS, encode, type ErrorFrame } from "../protocol";
import type { Connection } from "./connection";
import type { SocketCounts } from "./registry";
import { topics } from "./routing";
import type { HubStats } from "./types";

/**
 * Every frame for one socket (as against a publish) goes out through `send`,
 * which counts it in the hub's stats; acks and error frames are built here.
 */
export class Replies {
  /** Bun's server once it listens (`Hub.attach`): acks may then take the user's topic (see `ack`). */
  server: Server<unknown> | undefined;

  constructor(
    private readonly stats: HubStats,
    private readonly presence: Presence,
    private readonly sockets: SocketCounts,
    private readonly logError: (kind: string, msg: string, fields?: LogFields) => void,
  ) {}

  /**
   * Sends `data`: counted as a frame out, or, when Bun drops it, as a drop
   * that marks the socket's coming 1006 close as a backpressure close.
   * Returns Bun's status (bytes, -1 queued, 0 dropped or not open).
   */
  send(ws: ServerWebSocket<unknown>, data: string): number {
    if (ws.readyState !== 1) return 0;
    const r = ws.send(data);
    this.#count(ws.data as Connection | undefined, r, data);
    return r;
  }

  #count(conn: Connection | undefined, r: number, data: string): void {
    if (r === 0) {
      this.stats.droppedSends++;
      if (conn) conn.overflowed = true;
    } else {
      this.stats.framesOut++;
      // A positive status is the bytes sent; -1 (queued) gives none, so the length stands in.
      this.stats.bytesOut += r > 0 ? r : data.length;
    }
  }

  /**
   * Sends an ack to `ws`, like `send`. A live socket that is its user's only
   * one on this node gets it published to its user topic instead, where it
   * is the one subscriber: uWS then writes it in the same syscall as the
   * frames published to the socket in this turn (the sender's own copy of
   * a direct message, say), where a send is a write of its own. Order holds
   * either way: a send first writes out what was published to the socket.
   */
  ack(ws: ServerWebSocket<unknown>, data: string): number {
    const conn = ws.data as Connection;
    const server = this.server;
    if (server === undefined || !conn.live || ws.readyState !== 1 || this.sockets.connectionsOf(conn.user) !== 1) return this.send(ws, data);
    const topic = conn.topic(topics.user(conn.user));
    const r = server.publish(topic, data, false);
    // 0 is a drop, or no subscriber: then the socket is not in its topic after all, and a send still reaches it.
    if (r === 0 && server.subscriberCount(topic) === 0) return this.send(ws, data);
    this.#count(conn, r, data);
    return r;
  }

  /** The ack of a stored message; a direct message to a user offline everywhere says `delivered: false`. */
  ackOf(cid: string, hit: CidHit): string {
    if (hit.kind === "direct" && !this.presence.isOnline(hit.to!)) {
      return encode({ type: "ack", cid, id: hit.id, delivered: false });
    }
    return encode({ type: "ack", cid, id: hit.id });
  }

  /**
   * Answers a frame that failed with `err`: a ChatError becomes its error
   * frame (and counts against LIMITS.badFramesMax: past it the socket is
   * closed with 1008); anything else is logged and answered `internal`.
   */
  reject(ws: ServerWebSocket<Connection>, conn: Connection, err: unknown): void {
    if (!(err instanceof ChatError)) {
      this.logError("frame", "unexpected error handling a frame", { user: conn.user, error: oneLine(err) });
      this.send(ws, encode({ type: "error", code: "internal", message: "The server failed to handle the frame: send it again" }));
      return;
    }
    this.stats.badFrames++;
    const frame: ErrorFrame = { type: "error", code: err.code, message: err.message };
    if (err.cid !== undefined) frame.cid = err.cid;
    if (err.retryAfterMs !== undefined) frame.retryAfterMs = err.retryAfterMs;
    this.send(ws, encode(frame));
    if (conn.countBadFrame(Date.now())) {
      ws.close(CLOSE.policyViolation, `More than ${LIMITS.badFramesMax} bad frames in a minute`);
    }
  }
}
