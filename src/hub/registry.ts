/** This node's open sockets, filed by user, client address and room. */
import type { ServerWebSocket } from "bun";
import type { Connection } from "./connection";
import { UserSockets } from "./user_sockets";

type Socket = ServerWebSocket<Connection>;

/** What the rest of the server may read of the registry: the limits at connect, the admin page. */
export type SocketCounts = Pick<SocketRegistry, "connectionsOf" | "connectionsFrom" | "replaysOf" | "roomSockets" | "eachConnection">;

/**
 * Every open socket of this node and the counts the limits need: sockets per
 * user and per client address, connects per user still streaming a `since`
 * replay, sockets per room (droppable frames such as typing are sent to them
 * one by one, not published).
 */
export class SocketRegistry {
  /** Every open socket. */
  readonly all = new Set<Socket>();
  readonly #byUser = new UserSockets<Socket>();
  readonly #byIp = new Map<string, number>();
  readonly #byRoom = new Map<string, Set<Socket>>();
  readonly #replaying = new Map<string, number>();

  /** Files a socket that just opened; with `replaying` its connect counts as a `since` replay until `doneReplaying`. */
  add(ws: Socket, conn: Connection, replaying: boolean): void {
    this.all.add(ws);
    this.#byUser.add(conn.user, ws);
    this.#byIp.set(conn.ip, this.connectionsFrom(conn.ip) + 1);
    if (replaying) {
      conn.countedReplay = true;
      this.#replaying.set(conn.user, this.replaysOf(conn.user) + 1);
    }
  }

  /**
   * Takes a closed socket out of everything, its rooms included. Returns how
   * many sockets its user still has here, or undefined when it was not filed
   * (already taken out).
   */
  remove(ws: Socket, conn: Connection): number | undefined {
    if (!this.all.delete(ws)) return undefined;
    this.doneReplaying(conn);
    const n = this.connectionsFrom(conn.ip) - 1;
    if (n > 0) this.#byIp.set(conn.ip, n);
    else this.#byIp.delete(conn.ip);
    for (const room of conn.rooms) this.leave(ws, room);
    return this.#byUser.delete(conn.user, ws);
  }

  /** The connect's `since` replay is over (or the socket closed): it no longer counts. Idempotent. */
  doneReplaying(conn: Connection): void {
    if (!conn.countedReplay) return;
    conn.countedReplay = false;
    const n = this.replaysOf(conn.user) - 1;
    if (n > 0) this.#replaying.set(conn.user, n);
    else this.#replaying.delete(conn.user);
  }

  /** Files the socket under `room`. */
  enter(ws: Socket, room: string): void {
    let socks = this.#byRoom.get(room);
    if (!socks) this.#byRoom.set(room, (socks = new Set()));
    socks.add(ws);
  }

  /** Takes the socket out from under `room`. */
  leave(ws: Socket, room: string): void {
    const socks = this.#byRoom.get(room);
    if (socks?.delete(ws) && socks.size === 0) this.#byRoom.delete(room);
  }

  /** The sockets in `room` (none: undefined). */
  inRoom(room: string): ReadonlySet<Socket> | undefined {
    return this.#byRoom.get(room);
  }

  /** The sockets of `user`, as a new array (safe to close them while iterating). */
  ofUser(user: string): Socket[] {
    return this.#byUser.of(user);
  }

  /** Open sockets of `user`. */
  connectionsOf(user: string): number {
    return this.#byUser.count(user);
  }

  /** Open sockets from client address `ip`. */
  connectionsFrom(ip: string): number {
    return this.#byIp.get(ip) ?? 0;
  }

  /** Connects of `user` whose `since` replay is still streaming. */
  replaysOf(user: string): number {
    return this.#replaying.get(user) ?? 0;
  }

  /** The open connections (the admin page lists them). */
  *eachConnection(): IterableIterator<Connection> {
    for (const ws of this.all) yield ws.data;
  }

  /** Rooms with a socket here, and how many sockets are in each. */
  roomSockets(): [room: string, sockets: number][] {
    return Array.from(this.#byRoom, ([room, socks]) => [room, socks.size]);
  }
}
