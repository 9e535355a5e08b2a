import type { MessageKind } from "../protocol";

/** How long a cid is remembered for de-duplicating retries. */
export const CID_WINDOW_MS = 24 * 3600_000;

/** Most cids remembered for de-duplication: it bounds the memory under heavy load. */
export const CID_MEMORY_MAX = 1_000_000;

/** A message as a sender hands it to the store, before it has an id. */
export interface NewMessage {
  kind: MessageKind;
  from: string;
  /** The recipient (direct) or the room (room); absent or undefined on broadcasts. */
  to?: string;
  text: string;
  /** Epoch milliseconds when the server accepted the message. */
  at: number;
  cid?: string;
}

/** A message as stored: the message frame's fields plus the sender's cid. */
export interface StoredMessage extends NewMessage {
  id: number;
}

/** What a retry needs of the message its cid first stored: enough to ack it again. */
export type CidHit = Pick<StoredMessage, "id" | "kind" | "to">;

/**
 * The store's answer for one message of a batch: stored now, with its frame
 * JSON (`frameOf(stored)`, made once while storing it), or a retry of one
 * stored before.
 */
export type Appended = { stored: StoredMessage; frame: string; duplicate?: undefined } | { stored?: undefined; frame?: undefined; duplicate: CidHit };

/** What one connection may read: broadcasts, its user's direct messages, its rooms. */
export interface Reader {
  user: string;
  rooms: ReadonlySet<string>;
}

/**
 * Durable message history: the source of truth for ids, bodies, the indexes
 * replay reads, cid de-duplication and inbox cursors. Every implementation
 * passes tests/history_contract.test.ts; methods never throw synchronously.
 */
export interface History {
  /** Fixed for the life of the store's data; new whenever it starts empty. */
  readonly epoch: string;
  /**
   * Reads the epoch again (a shared store may have started over since):
   * creates one when the store has none, updates `epoch`, resolves with it.
   */
  refreshEpoch(): Promise<string>;
  /** The newest id this node knows to be stored (0 when none); it never goes back. */
  lastId(): number;
  /** The newest id stored, as the store knows it now (other nodes' appends included). */
  newest(): Promise<number>;
  /**
   * Assigns ids (strictly increasing, across every node sharing the store)
   * and stores the batch's new messages with their indexes in one atomic
   * step; a message whose sender and cid were stored within CID_WINDOW_MS
   * (or earlier in the same batch) is not stored again but answered as a
   * duplicate. Resolves, in batch order, once every stored message survives
   * a crash of the process; rejects with nothing stored. The batch list is
   * lent for the call (the committer reuses it): read it, never keep it.
   */
  append(batch: readonly NewMessage[]): Promise<Appended[]>;
  /**
   * `append` done before it returns, for a store whose append waits on no
   * I/O of its own (the file log's write is synchronous): the same guarantees,
   * and it throws where `append` rejects. Absent on stores that must wait
   * (Redis). The committer then commits a batch within one turn, with no
   * promise in between, and calls `append` only to retry a failed batch: a
   * wrapper that changes `append` must change this too, or leave it out.
   */
  appendNow?(batch: readonly NewMessage[]): Appended[];
  /** The message `from` sent with `cid` at `notBefore` or later, if it is remembered. */
  findByCid(from: string, cid: string, notBefore: number): Promise<CidHit | undefined>;
  /**
   * Messages `reader` may see with `after` < id <= `upTo`, oldest first, at
   * most `limit`: the oldest of them, or with `newest` the newest.
   */
  visible(reader: Reader, after: number, upTo: number, limit: number, newest?: boolean): Promise<StoredMessage[]>;
  /** Direct messages to `user` with `after` < id <= `upTo`, oldest first, at most `limit` (the newest with `newest`). */
  inbox(user: string, after: number, upTo: number, limit: number, newest?: boolean): Promise<StoredMessage[]>;
  /** Direct messages between `a` and `b` (either way) with id < `before`, newest first, at most `limit`. */
  conversation(a: string, b: string, before: number, limit: number): Promise<StoredMessage[]>;
  /** Broadcasts (room undefined) or one room's messages with id < `before`, newest first. */
  page(room: string | undefined, before: number, limit: number): Promise<StoredMessage[]>;
  /** The highest id removed by pruning (0 when none): a replay from below it has a gap. */
  prunedThrough(): Promise<number>;
  /** The newest id of a direct message to `user` that pruning removed (0 when none). */
  prunedInbox(user: string): Promise<number>;
  /** The messages with these ids that are still stored, in id order. */
  get(ids: readonly number[]): Promise<StoredMessage[]>;
  /** The user's read markers: conversation (`@user`, `#room`, `*`) → the newest id read (absent: none). */
  reads(user: string): Promise<Record<string, number>>;
  /** Records that `user` has read `conversation` up to `id`; never moves back. Resolves with the marker now. */
  setRead(user: string, conversation: string, id: number): Promise<number>;
  /**
   * Per conversation of `user` with messages from others after its read
   * marker: how many (counted up to `cap`) and the newest id. Conversations:
   * `@x` direct, `#room` for each of `rooms`, `*` broadcasts. Direct
   * conversations are found among the newest `cap` direct messages to `user`.
   */
  unread(user: string, rooms: Iterable<string>, markers: Record<string, number>, cap: number): Promise<Record<string, { count: number; lastId: number }>>;
  /** Up to which id `user` has received direct messages (0 when never recorded). */
  cursor(user: string): Promise<number>;
  /** Records that `user` has received direct messages up to `id`; never moves it back. */
  setCursor(user: string, id: number): Promise<void>;
  /**
   * Removes up to `maxRows` messages beyond retention (more than `maxMessages`,
   * or older than `minAt`). Resolves with how many it removed; call again while > 0.
   */
  prune(maxMessages: number, minAt: number, maxRows: number): Promise<number>;
  /** Resolves when the store can take writes now (for `/ready`); rejects saying why not. */
  check(): Promise<void>;
  /** Releases the store; idempotent. */
  close(): Promise<void>;
}
