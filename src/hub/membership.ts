/** Rooms a connection is in and users whose presence it watches. */
import type { ServerWebSocket } from "bun";
import { roomAllowed } from "../auth/auth";
import { ChatError } from "../errors";
import type { Presence } from "../presence/presence";
import { LIMITS } from "../protocol";
import type { Connection } from "./connection";
import type { SocketRegistry } from "./registry";
import { topics } from "./routing";

type Socket = ServerWebSocket<Connection>;

/**
 * Joins, leaves and watches, and the checks before them: the token's `rooms`
 * claim, membership, LIMITS.roomsMax and LIMITS.watchMax. A refusal throws a
 * ChatError carrying the frame's cid. Keeps presence and the registry's room
 * filing in step with `conn.rooms`; a connection still replaying subscribes
 * to its topics when it goes live, not here.
 */
export class Membership {
  constructor(
    private readonly presence: Presence,
    private readonly sockets: SocketRegistry,
  ) {}

  /** Refuses a room the connection's token does not allow (its `rooms` claim), before membership is asked. */
  mayUse(conn: Connection, room: string, cid?: string): void {
    if (!roomAllowed(conn.allowedRooms, room)) throw new ChatError("forbidden", `Your token does not allow room "${room}"`, cid);
  }

  /** Refuses a room the token does not allow or the connection is not in (`doing`: what it tried, for the message). */
  member(conn: Connection, room: string, doing: string, cid?: string): void {
    this.mayUse(conn, room, cid);
    if (!conn.rooms.has(room)) throw new ChatError("not_member", `You are not in room "${room}": join it before ${doing}`, cid);
  }

  /** Puts the connection in `room` (nothing when it is in it already). */
  join(ws: Socket, conn: Connection, room: string, cid?: string): void {
    this.mayUse(conn, room, cid);
    if (conn.rooms.has(room)) return;
    if (conn.rooms.size >= LIMITS.roomsMax) {
      throw new ChatError("invalid_room", `Cannot join "${room}": a connection may be in at most ${LIMITS.roomsMax} rooms`, cid);
    }
    conn.rooms.add(room);
    this.enter(ws, conn, room);
    if (conn.live) conn.subscribe(ws, topics.room(room));
  }

  /** Takes the connection out of `room` and its topic (nothing when it is not in it). */
  leave(ws: Socket, conn: Connection, room: string): void {
    if (!conn.rooms.delete(room)) return;
    if (conn.live) conn.unsubscribe(ws, topics.room(room));
    this.left(ws, conn, room);
  }

  /** Files a room of `conn.rooms` with presence and the registry (on open and join). */
  enter(ws: Socket, conn: Connection, room: string): void {
    this.presence.addRoom(conn.user, room);
    this.sockets.enter(ws, room);
  }

  /** Unfiles a room already gone from `conn.rooms` and its topic (a token that no longer allows it). */
  left(ws: Socket, conn: Connection, room: string): void {
    this.presence.removeRoom(conn.user, room);
    this.sockets.leave(ws, room);
  }

  /** Subscribes to the presence of up to LIMITS.watchMax users. */
  watch(ws: Socket, conn: Connection, users: string[], cid?: string): void {
    const watching = (conn.watching ??= new Set());
    const fresh = users.filter((u) => !watching.has(u));
    if (watching.size + new Set(fresh).size > LIMITS.watchMax) {
      throw new ChatError("invalid_frame", `Cannot watch ${fresh.length} more users: a connection may watch at most ${LIMITS.watchMax}`, cid);
    }
    for (const u of fresh) {
      watching.add(u);
      conn.subscribe(ws, topics.watch(u));
    }
  }

  /** Stops watching `users` (those not watched are ignored). */
  unwatch(ws: Socket, conn: Connection, users: string[]): void {
    for (const u of users) if (conn.watching?.delete(u)) conn.unsubscribe(ws, topics.watch(u));
  }
}
