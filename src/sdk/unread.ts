/**
 * Unread counts per conversation, kept by the client: the welcome's counts
 * (the server's, from its read markers), then one more for each message from
 * someone else that arrives after them, and down again when this user reads
 * (on this device or, through its read receipts, on any other).
 */
import type { ChatMessage, ConversationKey, UnreadCount } from "./types.js";

/** The conversation `m` belongs to, as user `me` sees it: `@other`, `#room` or `*`. */
export function conversationOf(m: Pick<ChatMessage, "kind" | "from" | "to">, me: string): ConversationKey {
  if (m.kind === "broadcast") return "*";
  if (m.kind === "room") return `#${m.to}`;
  return `@${m.from === me ? m.to : m.from}`;
}

interface Entry {
  count: number;
  /** The newest unread id known. */
  lastId: number;
  /** The welcome's `lastId` for it: messages up to it are in `count` already. */
  counted: number;
  /** Ids of the unread messages this client has seen, ascending: what a read up to some id takes off. */
  ids: number[];
}

/** Messages whose conversation is remembered for `markRead(id)`. */
const REMEMBER = 10_000;

export class UnreadTracker {
  readonly #convs = new Map<ConversationKey, Entry>();
  /** Read markers known: from own read receipts, `markRead` and history pages. */
  readonly #reads = new Map<ConversationKey, number>();
  /** Message id → its conversation, the newest REMEMBER of them. */
  readonly #convOf = new Map<number, ConversationKey>();
  /** Messages up to this id are in the welcome's counts (or were read). */
  #baseline = 0;

  constructor(
    readonly me: string,
    readonly changed: (u: UnreadCount) => void,
  ) {}

  /** Conversations with unread messages. */
  list(): UnreadCount[] {
    return [...this.#convs].filter(([, e]) => e.count > 0).map(([conversation, e]) => ({ conversation, count: e.count, lastId: e.lastId }));
  }

  /** The read marker of `conv` as far as this client knows (0: none known). */
  marker(conv: ConversationKey): number {
    return this.#reads.get(conv) ?? 0;
  }

  /** The conversation of a message this client processed, if remembered. */
  conversationOfId(id: number): ConversationKey | undefined {
    return this.#convOf.get(id);
  }

  /**
   * A welcome: its counts replace what was known (they are the server's,
   * taken from every device's reads). `lastId` is the welcome's: every
   * message up to it is in these counts.
   */
  welcome(unread: readonly UnreadCount[] | undefined, lastId: number): void {
    const before = new Map(this.#convs);
    this.#convs.clear();
    this.#baseline = lastId;
    for (const u of unread ?? []) {
      const old = before.get(u.conversation);
      const marker = this.marker(u.conversation);
      const ids = (old?.ids ?? []).filter((id) => id > marker && id <= u.lastId);
      if (u.lastId <= marker) continue; // read since, on this device (a read frame still on its way)
      this.#convs.set(u.conversation, { count: Math.max(u.count, ids.length), lastId: u.lastId, counted: u.lastId, ids });
    }
    for (const conv of new Set([...before.keys(), ...this.#convs.keys()])) {
      const a = before.get(conv);
      const b = this.#convs.get(conv);
      if ((a?.count ?? 0) !== (b?.count ?? 0) || (b && a?.lastId !== b.lastId)) this.#emit(conv, b);
    }
  }

  /** A message this client processed (once per id). */
  message(m: ChatMessage): void {
    const conv = conversationOf(m, this.me);
    this.#convOf.set(m.id, conv);
    if (this.#convOf.size > REMEMBER) this.#convOf.delete(this.#convOf.keys().next().value!);
    if (m.from === this.me || m.id <= this.marker(conv)) return;
    const e = this.#convs.get(conv);
    if (m.id <= this.#baseline || (e !== undefined && m.id <= e.counted)) {
      // Counted by the welcome already: only note its id, for a later read up to some id.
      if (e && !e.ids.includes(m.id)) insertSorted(e.ids, m.id);
      return;
    }
    const entry = e ?? { count: 0, lastId: 0, counted: 0, ids: [] };
    this.#convs.set(conv, entry);
    entry.count++;
    entry.lastId = Math.max(entry.lastId, m.id);
    insertSorted(entry.ids, m.id);
    this.#emit(conv, entry);
  }

  /**
   * This user has read `conv` up to `id`. Exact when that covers its newest
   * unread message (the usual case); otherwise what is left counts the
   * messages seen here above `id`, and those the welcome counted without
   * this client seeing them only while `id` is older than every one seen.
   * Returns true when the marker moved.
   */
  read(conv: ConversationKey, id: number): boolean {
    const moved = id > this.marker(conv);
    if (moved) this.#reads.set(conv, id);
    const e = this.#convs.get(conv);
    // The same marker again (a receipt of this device's own read) still
    // counts again: a welcome in between may have counted from before it.
    if (!e || id < this.marker(conv)) return moved;
    let count: number;
    if (id >= e.lastId) count = 0;
    else {
      const unseen = Math.max(0, e.count - e.ids.length);
      const firstSeen = e.ids[0];
      e.ids = e.ids.filter((x) => x > id);
      count = e.ids.length + (firstSeen === undefined || id < firstSeen ? unseen : 0);
    }
    if (count === 0) {
      this.#convs.delete(conv);
      this.#emit(conv, undefined);
    } else if (count !== e.count) {
      e.count = count;
      this.#emit(conv, e);
    }
    return moved;
  }

  /** Stops counting a conversation (a room left): its count goes to 0. */
  forget(conv: ConversationKey): void {
    if (this.#convs.delete(conv)) this.#emit(conv, undefined);
  }

  #emit(conv: ConversationKey, e: Entry | undefined) {
    this.changed({ conversation: conv, count: e?.count ?? 0, lastId: e?.lastId ?? this.marker(conv) });
  }
}

function insertSorted(list: number[], id: number) {
  let i = list.length;
  while (i > 0 && list[i - 1]! > id) i--;
  list.splice(i, 0, id);
}
