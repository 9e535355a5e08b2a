/** A live connection's token: its expiry, and a fresh token sent with an `auth` frame. */
import type { ServerWebSocket } from "bun";
import { roomAllowed, type TokenVerifier } from "../auth/auth";
import { ChatError } from "../errors";
import { CLOSE, type AuthFrame } from "../protocol";
import type { Connection } from "./connection";
import { topics } from "./routing";

/**
 * Closes sockets with 4001 once their token is no longer valid. One timer
 * for the node, sockets in one-second buckets: a timer and a closure per
 * connection would cost more memory than the connection itself.
 */
export class Expiries {
  readonly #buckets = new Map<number, Set<ServerWebSocket<Connection>>>();
  #done = Math.floor(Date.now() / 1000);
  readonly #timer: ReturnType<typeof setInterval>;

  constructor() {
    this.#timer = setInterval(this.#tick, 1000);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** The socket's token is valid until `validUntil` (epoch ms): close it then. */
  set(ws: ServerWebSocket<Connection>, conn: Connection, validUntil: number): void {
    this.delete(ws, conn);
    if (validUntil <= Date.now()) {
      ws.close(CLOSE.unauthorized, "Token expired: get a new token and reconnect");
      return;
    }
    const sec = Math.ceil(validUntil / 1000);
    let bucket = this.#buckets.get(sec);
    if (!bucket) this.#buckets.set(sec, (bucket = new Set()));
    bucket.add(ws);
    conn.expiresAt = sec;
  }

  /** Forgets the socket (closed, or about to get a new expiry). */
  delete(ws: ServerWebSocket<Connection>, conn: Connection): void {
    if (conn.expiresAt === 0) return;
    const bucket = this.#buckets.get(conn.expiresAt);
    if (bucket?.delete(ws) && bucket.size === 0) this.#buckets.delete(conn.expiresAt);
    conn.expiresAt = 0;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  readonly #tick = (): void => {
    const now = Math.floor(Date.now() / 1000);
    for (let sec = this.#done + 1; sec <= now; sec++) {
      const bucket = this.#buckets.get(sec);
      if (!bucket) continue;
      this.#buckets.delete(sec);
      for (const ws of bucket) {
        ws.data.expiresAt = 0;
        ws.close(CLOSE.unauthorized, "Token expired: get a new token and reconnect");
      }
    }
    this.#done = now;
  };
}

/** How `reauth` answers. */
export interface ReauthReplies {
  ack(cid: string): void;
  reject(err: unknown): void;
  /** False once the socket closed: a late verification then does nothing. */
  open(): boolean;
  /** The new token no longer allows `room`: the connection left it. */
  left(room: string): void;
  /** The connection's token is valid until then (epoch ms). */
  validUntil(ms: number): void;
}

/**
 * A fresh token for a live connection. Same user: the expiry and room claim
 * follow the new token (rooms it no longer allows are left), then the ack.
 * Another user: `forbidden` and close 4003. Invalid: `unauthorized`, and the
 * connection goes on until its current token expires. In open mode (no
 * verifier) the frame is acked and ignored.
 */
export function reauth(ws: ServerWebSocket<Connection>, conn: Connection, f: AuthFrame, verifier: TokenVerifier | undefined, r: ReauthReplies): void {
  if (!verifier) {
    if (f.cid !== undefined) r.ack(f.cid);
    return;
  }
  verifier.verify(f.token).then(
    (identity) => {
      if (!r.open()) return;
      if (identity.user !== conn.user) {
        r.reject(new ChatError("forbidden", `The token is for another user: this connection is "${conn.user}"`, f.cid));
        ws.close(CLOSE.forbidden, "Token for another user");
        return;
      }
      conn.allowedRooms = identity.rooms;
      for (const room of conn.rooms) {
        if (roomAllowed(identity.rooms, room)) continue;
        conn.rooms.delete(room);
        r.left(room);
        if (conn.live) conn.unsubscribe(ws, topics.room(room));
      }
      r.validUntil(identity.validUntil);
      if (f.cid !== undefined) r.ack(f.cid);
    },
    (err) => {
      if (r.open()) r.reject(err instanceof ChatError ? new ChatError(err.code, err.message, f.cid, err.retryAfterMs) : err);
    },
  );
}
