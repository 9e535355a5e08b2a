/** A live connection's token: its expiry, and a fresh token sent with an `auth` frame. */
import type { ServerWebSocket } from "bun";
import { roomAllowed, type TokenVerifier } from "../auth/auth";
import { ChatError } from "../errors";
import { CLOSE, type AuthFrame } from "../protocol";
import type { Connection } from "./connection";
import { topics } from "./routing";

/** setTimeout holds at most 2^31-1 ms (24.8 days): a longer wait re-arms. */
const TIMER_MAX = 2 ** 31 - 1;

/** Closes the socket with 4001 once its token is no longer valid (`validUntil`, epoch ms). */
export function armExpiry(ws: ServerWebSocket<Connection>, conn: Connection, validUntil: number): void {
  clearTimeout(conn.expiry);
  const left = validUntil - Date.now();
  if (left <= 0) {
    ws.close(CLOSE.unauthorized, "Token expired: get a new token and reconnect");
    return;
  }
  conn.expiry = setTimeout(() => armExpiry(ws, conn, validUntil), Math.min(left, TIMER_MAX));
}

/** How `reauth` answers. */
export interface ReauthReplies {
  ack(cid: string): void;
  reject(err: unknown): void;
  /** False once the socket closed: a late verification then does nothing. */
  open(): boolean;
  /** The new token no longer allows `room`: the connection left it. */
  left(room: string): void;
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
  verifier.verify(f.token).then((identity) => {
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
      if (conn.live) ws.unsubscribe(topics.room(room));
    }
    armExpiry(ws, conn, identity.validUntil);
    if (f.cid !== undefined) r.ack(f.cid);
  }, (err) => {
    if (r.open()) r.reject(err instanceof ChatError ? new ChatError(err.code, err.message, f.cid) : err);
  });
}
