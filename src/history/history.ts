import type { MessageKind } from "../protocol";

/** How long a cid is remembered for de-duplicating retries. */
export const CID_WINDOW_MS = 24 * 3600_000;

/** A message as stored: the message frame's fields plus the sender's cid. */
export interface StoredMessage {
  id: number;
  kind: MessageKind;
  from: string;
  /** The recipient (direct) or the room (room); absent on broadcasts. */
  to?: string;
  text: string;
  at: number;
  cid?: string;
}

/** Most cids remembered for de-duplication: it bounds the memory under heavy load. */
export const CID_MEMORY_MAX = 1_000_000;

/** What a retry needs of the message its cid first stored: enough to ack it again. */
export type CidHit = Pick<StoredMessage, "id" | "kind" | "to">;

/** What one connection may read: broadcasts, its user's direct messages, its rooms. */
export interface Reader {
  user: string;
  rooms: ReadonlySet<string>;
}

/**
 * Durable message history. Every implementation passes
 * tests/history_contract.test.ts.
 */
export interface History {
  /** The newest id ever stored, 0 when none; it never goes back, pruning included. */
  lastId(): number;
  /** The highest id removed by pruning (0 when none): a replay from below it has a gap. */
  prunedThrough(): number;
  /**
   * Stores the whole batch in one transaction, or none of it (then throws).
   * Once it returns, every message survives a crash of the process.
   */
  append(batch: readonly StoredMessage[]): void;
  /**
   * The message `from` sent with `cid` at `notBefore` or later, if it is
   * remembered: cids are kept 24 hours (at most `CID_MEMORY_MAX` of them),
   * also after their message was pruned.
   */
  findByCid(from: string, cid: string, notBefore: number): CidHit | undefined;
  /**
   * Messages `reader` may see with `after` < id <= `upTo`, oldest first, at
   * most `limit`: the oldest of them, or with `newest` the newest.
   */
  visible(reader: Reader, after: number, upTo: number, limit: number, newest?: boolean): StoredMessage[];
  /** Direct messages to `user` with id > `after`, oldest first, at most `limit`: the oldest, or with `newest` the newest. */
  inbox(user: string, after: number, limit: number, newest?: boolean): StoredMessage[];
  /** Direct messages between `a` and `b` (either way) with id < `before`, newest first, at most `limit`. */
  conversation(a: string, b: string, before: number, limit: number): StoredMessage[];
  /**
   * The newest id of a direct message to `user` that pruning removed (0 when
   * none): an inbox replay from a cursor below it has lost messages.
   */
  prunedInbox(user: string): number;
  /** Broadcasts (room undefined) or one room's messages with id < `before`, newest first. */
  page(room: string | undefined, before: number, limit: number): StoredMessage[];
  /** Up to which id `user` has received direct messages (0 when never recorded). */
  cursor(user: string): number;
  /** Records that `user` has received direct messages up to `id`; never moves it back. */
  setCursor(user: string, id: number): void;
  /**
   * Removes up to `maxRows` messages beyond retention (more than `maxMessages`,
   * or older than `minAt`). Returns how many it removed; call again while > 0.
   */
  prune(maxMessages: number, minAt: number, maxRows: number): number;
  /** Releases the store; idempotent. */
  close(): void;
}
