/**
 * Presence seam: who is online (any connection open on any node) and who is
 * in which room, and what changed, coalesced per tick. Implementations:
 * `presence_local.ts` (one node), `presence_redis.ts` (a cluster).
 */

/** What changed in one tick; a user who left and came back within it is in neither list. */
export interface PresenceChanges {
  joins: string[];
  leaves: string[];
  /** Per room, who came into it and who went. */
  rooms: Map<string, { joins: string[]; leaves: string[] }>;
}

export interface Presence {
  /** A connection of `user` opened on this node. */
  add(user: string): void;
  /** A connection of `user` closed on this node. */
  remove(user: string): void;
  /** A connection of `user` on this node is in `room` now (join or connect). */
  addRoom(user: string, room: string): void;
  /** A connection of `user` on this node left `room` (leave or close). */
  removeRoom(user: string, room: string): void;
  /** True while `user` has a connection open on any node (as this node knows it). */
  isOnline(user: string): boolean;
  /** Distinct users online on every node. */
  count(): number;
  /** The users online on every node. */
  users(): string[];
  /** The users with a connection in `room`, on every node. */
  roomUsers(room: string): string[];
  /** Distinct users with a connection on this node. */
  localCount(): number;
  /** Called once per tick in which anything changed, on every node, with the cluster-wide changes. */
  onChanges(handler: (changes: PresenceChanges) => void): void;
  /** Stops; a cluster implementation takes this node's users offline. Idempotent. */
  close(): Promise<void>;
}
