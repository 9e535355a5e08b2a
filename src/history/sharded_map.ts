/**
 * A Map from strings, split by a hash of the key into SHARDS Maps that each
 * grow on their own.
 *
 * A JavaScriptCore Map rehashes whole when it grows, stopping the event
 * loop. Measured in Bun 1.4.5 with conversation-like string keys
 * (`c:u<i>\nu<i+1>`, 4 runs), one insert took 14-21 ms at 196,608 entries,
 * 30-41 ms at 393,216, 67-97 ms at 786,432 and 156-231 ms at 1,572,864: a store's index has
 * two keys per user and one per conversation, so a server with a hundred
 * thousand users gets there. A shard holds a 256th of the keys, so its
 * growth moves that many.
 */
const SHARDS = 256;

export class ShardedMap<V> {
  readonly #shards: Map<string, V>[] = Array.from({ length: SHARDS }, () => new Map<string, V>());

  /** Entries held. */
  get size(): number {
    let n = 0;
    for (const shard of this.#shards) n += shard.size;
    return n;
  }

  /** The value held for `key`, if any. */
  get(key: string): V | undefined {
    return this.#shards[shardOf(key)]!.get(key);
  }

  /** Holds `value` for `key`, replacing what was held. */
  set(key: string, value: V): void {
    this.#shards[shardOf(key)]!.set(key, value);
  }

  /** Forgets `key`; true if it was held. */
  delete(key: string): boolean {
    return this.#shards[shardOf(key)]!.delete(key);
  }

  /**
   * Every entry, shard by shard (not in insertion order). Like a Map's
   * iterator, it may go on while entries are deleted: a deleted entry not
   * yet reached is not visited.
   */
  *entries(): IterableIterator<[string, V]> {
    for (const shard of this.#shards) yield* shard.entries();
  }
}

/** FNV-1a over the key's UTF-16 code units, folded to a shard. */
function shardOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h ^ (h >>> 16)) & (SHARDS - 1);
}
