/**
 * Who may see a message, in one table: the topics it is published to, the
 * index keys a store files it under, and the topics and keys a reader
 * subscribes to and reads from are all derived here.
 */
import type { MessageKind } from "../protocol";

/** Topic names: one place that spells them. */
export const topics = {
  all: "all",
  user: (name: string) => `user:${name}`,
  room: (name: string) => `room:${name}`,
  /** Presence of one user, for the connections watching them. */
  watch: (name: string) => `presence:${name}`,
} as const;

/** Index keys of a store: broadcasts, direct messages to and from a user, a room, one direct conversation. */
export const indexKeys = {
  broadcast: "b",
  to: (user: string) => `d:${user}`,
  from: (user: string) => `s:${user}`,
  room: (room: string) => `r:${room}`,
  /** Both directions of one direct conversation, whichever user is first. */
  pair: (a: string, b: string) => (a < b ? `c:${a}\n${b}` : `c:${b}\n${a}`),
} as const;

/** What routing needs of a message. */
export interface Routed {
  kind: MessageKind;
  from: string;
  to?: string;
}

/** The topics a message is published to: everyone, the room, or both ends of a direct message (once for oneself). */
export function topicsOf(m: Routed): readonly string[] {
  if (m.kind === "broadcast") return ALL_TOPICS;
  if (m.kind === "room") return roomTopics.get(m.to!, "") ?? roomTopics.set(m.to!, "", [topics.room(m.to!)]);
  return directTopics.get(m.from, m.to!) ?? directTopics.set(m.from, m.to!, m.to === m.from ? [topics.user(m.to!)] : [topics.user(m.to!), topics.user(m.from)]);
}

/** The index keys a message is filed under. */
export function keysOf(m: Routed): readonly string[] {
  if (m.kind === "broadcast") return BROADCAST_KEYS;
  if (m.kind === "room") return roomKeys.get(m.to!, "") ?? roomKeys.set(m.to!, "", [indexKeys.room(m.to!)]);
  const hit = directKeys.get(m.from, m.to!);
  if (hit) return hit;
  const pair = indexKeys.pair(m.from, m.to!);
  return directKeys.set(m.from, m.to!, m.to === m.from ? [indexKeys.to(m.to!), pair] : [indexKeys.to(m.to!), indexKeys.from(m.from), pair]);
}

/** Whether topics are a direct message's (users only: both ends, or oneself), for a broker that has only the topics. */
export function isDirect(ts: readonly string[]): boolean {
  for (let i = 0; i < ts.length; i++) if (!ts[i]!.startsWith(USER_TOPIC)) return false;
  return true;
}

const USER_TOPIC = topics.user("");
const ALL_TOPICS: readonly string[] = [topics.all];
const BROADCAST_KEYS: readonly string[] = [indexKeys.broadcast];
/** The lists kept for one sender (or room): by recipient, and the last one asked for. */
interface Kept {
  byB: Map<string, readonly string[]>;
  lastB: string | undefined;
  last: readonly string[] | undefined;
}

/**
 * Topics and keys already built, by sender (or room) and recipient: a busy
 * commit looks them up instead of building and hashing new strings for
 * every message. Bounded: past Memo.MAX entries it starts over.
 */
class Memo {
  static readonly MAX = 50_000;
  readonly #byA = new Map<string, Kept>();
  #size = 0;

  /**
   * The list kept for (a, b), if any. No callback to make a missing one: a
   * closure per call made topicsOf and keysOf allocate 150 of the ~2,100
   * bytes a direct message cost (measured with JSC's GC log). A sender's
   * messages mostly go on in one conversation, so the recipient asked for
   * last is compared first: each message brings a new `to` string, which a
   * Map must hash and then compare anyway (four lookups a message were 4%
   * of a busy server's samples).
   */
  get(a: string, b: string): readonly string[] | undefined {
    const kept = this.#byA.get(a);
    if (kept === undefined) return undefined;
    if (kept.lastB === b) return kept.last;
    const hit = kept.byB.get(b);
    if (hit !== undefined) {
      kept.lastB = b;
      kept.last = hit;
    }
    return hit;
  }

  /**
   * Keeps `made` for (a, b) and returns it, read-only by type only: JSC
   * iterates a frozen array several times slower (measured in Bun 1.4.5:
   * 57-113 ns against 11-25 ns for a two-topic list), and each message
   * walks its lists a few times.
   */
  set(a: string, b: string, made: string[]): readonly string[] {
    if (this.#size >= Memo.MAX) {
      this.#byA.clear();
      this.#size = 0;
    }
    let kept = this.#byA.get(a);
    if (!kept) this.#byA.set(a, (kept = { byB: new Map(), lastB: undefined, last: undefined }));
    kept.byB.set(b, made);
    kept.lastB = b;
    kept.last = made;
    this.#size++;
    return made;
  }
}
const roomTopics = new Memo();
const directTopics = new Memo();
const roomKeys = new Memo();
const directKeys = new Memo();

/** The topics a connection of `user` in `rooms` subscribes to: the same set `topicsOf` publishes to. */
export function readerTopics(user: string, rooms: Iterable<string>): string[] {
  const out = [topics.all, topics.user(user)];
  for (const r of rooms) out.push(topics.room(r));
  return out;
}

/** The index keys holding what `user` in `rooms` may read: the same set `keysOf` files under. */
export function readerKeys(user: string, rooms: Iterable<string>): string[] {
  const out: string[] = [indexKeys.broadcast, indexKeys.to(user), indexKeys.from(user)];
  for (const r of rooms) out.push(indexKeys.room(r));
  return out;
}
