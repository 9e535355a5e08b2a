/**
 * Counting and coalescing shared by the presence implementations: counts per
 * key (a user, or a room's user) that report only their first and last one,
 * and a tick's worth of changes in which a leave and a join cancel.
 */
import type { PresenceChanges } from "./presence";

/** Counts per key; `add`/`remove` say when a key appears or disappears. */
export class Tally<K> {
  readonly #n = new Map<K, number>();

  /** True when `key` had none before. */
  add(key: K): boolean {
    const n = this.#n.get(key) ?? 0;
    this.#n.set(key, n + 1);
    return n === 0;
  }

  /** True when that was the last of `key`. */
  remove(key: K): boolean {
    const n = this.#n.get(key);
    if (n === undefined) return false;
    if (n > 1) this.#n.set(key, n - 1);
    else this.#n.delete(key);
    return n === 1;
  }

  has(key: K): boolean {
    return this.#n.has(key);
  }

  keys(): IterableIterator<K> {
    return this.#n.keys();
  }

  get size(): number {
    return this.#n.size;
  }
}

/** One tick's changes, coalesced; `flush` hands them on once per tick. */
export class Coalescer {
  #users = new Map<string, "join" | "leave">();
  #rooms = new Map<string, Map<string, "join" | "leave">>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #handler: ((c: PresenceChanges) => void) | undefined;

  constructor(readonly tickMs: number) {}

  onChanges(handler: (c: PresenceChanges) => void): void {
    this.#handler = handler;
  }

  user(user: string, event: "join" | "leave"): void {
    this.#note(this.#users, user, event);
  }

  room(room: string, user: string, event: "join" | "leave"): void {
    let m = this.#rooms.get(room);
    if (!m) this.#rooms.set(room, (m = new Map()));
    this.#note(m, user, event);
  }

  #note(m: Map<string, "join" | "leave">, key: string, event: "join" | "leave"): void {
    // The opposite event in the same tick cancels out: nothing changed.
    if (m.has(key) && m.get(key) !== event) m.delete(key);
    else m.set(key, event);
    this.#timer ??= setTimeout(this.flush, this.tickMs);
  }

  readonly flush = (): void => {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const changes: PresenceChanges = { joins: [], leaves: [], rooms: new Map() };
    for (const [user, e] of this.#users) (e === "join" ? changes.joins : changes.leaves).push(user);
    for (const [room, m] of this.#rooms) {
      const r = { joins: [] as string[], leaves: [] as string[] };
      for (const [user, e] of m) (e === "join" ? r.joins : r.leaves).push(user);
      if (r.joins.length + r.leaves.length > 0) changes.rooms.set(room, r);
    }
    this.#users = new Map();
    this.#rooms = new Map();
    if (changes.joins.length + changes.leaves.length + changes.rooms.size > 0) this.#handler?.(changes);
  };

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
