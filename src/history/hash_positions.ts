/**
 * A map from 53-bit hashes to positions, for an index of a million entries
 * that takes a new one with every message: open addressing in typed arrays,
 * split by the hash's top bits into SHARDS tables that each grow on their
 * own.
 *
 * A JavaScriptCore Map rehashes whole as it grows, stopping the event loop:
 * measured in Bun 1.4.5 with random 53-bit keys, 53 ms at 196,608 entries,
 * 105 ms at 393,216 and 207 ms at 786,432. One table in typed arrays costs
 * the same (a rehash is a random read and write per entry over tens of
 * megabytes). A shard holds a 1,024th of the entries, so its growth moves
 * that many, within the processor's cache (a million random keys: no
 * growth over 0.6 ms); and the garbage collector has no entries to visit.
 */

const SHARDS = 1024;
/** Slots of a shard's first table, a power of two. */
const FIRST_SLOTS = 8;
/** The table of every shard that has held nothing yet: one empty slot, never written (a set grows first). */
const NONE = new Float64Array(1);

/** Hash (an integer in [0, 2^53)) → position (an integer in [0, 2^53)). */
export class HashPositions {
  /** Per shard, `hash + 1` in each slot (0: empty), and the slot's position. */
  readonly #keys: Float64Array[] = [];
  readonly #vals: Float64Array[] = [];
  readonly #used = new Uint32Array(SHARDS);
  #size = 0;

  constructor() {
    // A store that is never sent a cid allocates no table.
    for (let s = 0; s < SHARDS; s++) {
      this.#keys.push(NONE);
      this.#vals.push(NONE);
    }
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** The position held for `h`, if any. */
  get(h: number): number | undefined {
    const s = shardOf(h);
    const keys = this.#keys[s]!;
    const mask = keys.length - 1;
    const k = h + 1;
    for (let i = slotOf(h, mask); ; i = (i + 1) & mask) {
      const x = keys[i]!;
      if (x === k) return this.#vals[s]![i];
      if (x === 0) return undefined;
    }
  }

  /** Holds `pos` for `h`, replacing what was held. */
  set(h: number, pos: number): void {
    const s = shardOf(h);
    // At most three quarters full: a miss then probes a few slots on average.
    if ((this.#used[s]! + 1) * 4 > this.#keys[s]!.length * 3) this.#grow(s);
    const keys = this.#keys[s]!;
    const mask = keys.length - 1;
    const k = h + 1;
    let i = slotOf(h, mask);
    for (let x = keys[i]!; x !== 0 && x !== k; x = keys[i]!) i = (i + 1) & mask;
    if (keys[i] === 0) {
      keys[i] = k;
      this.#used[s]!++;
      this.#size++;
    }
    this.#vals[s]![i] = pos;
  }

  /** Drops `h`; whether it was held. */
  delete(h: number): boolean {
    const s = shardOf(h);
    const keys = this.#keys[s]!;
    const vals = this.#vals[s]!;
    const mask = keys.length - 1;
    const k = h + 1;
    let i = slotOf(h, mask);
    for (let x = keys[i]!; x !== k; x = keys[i]!) {
      if (x === 0) return false;
      i = (i + 1) & mask;
    }
    // Backward-shift deletion: every later entry of the probe run that may
    // move into the hole does, so no lookup ever stops short at it.
    for (let j = (i + 1) & mask; keys[j] !== 0; j = (j + 1) & mask) {
      const home = slotOf(keys[j]! - 1, mask);
      // The entry at j may fill the hole at i unless its home lies in (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        keys[i] = keys[j]!;
        vals[i] = vals[j]!;
        i = j;
      }
    }
    keys[i] = 0;
    this.#used[s]!--;
    this.#size--;
    return true;
  }

  #grow(s: number): void {
    const oldKeys = this.#keys[s]!;
    const oldVals = this.#vals[s]!;
    const slots = oldKeys === NONE ? FIRST_SLOTS : oldKeys.length * 2;
    const keys = new Float64Array(slots);
    const vals = new Float64Array(slots);
    const mask = keys.length - 1;
    for (let j = 0; j < oldKeys.length; j++) {
      const k = oldKeys[j]!;
      if (k === 0) continue;
      let i = slotOf(k - 1, mask);
      while (keys[i] !== 0) i = (i + 1) & mask;
      keys[i] = k;
      vals[i] = oldVals[j]!;
    }
    this.#keys[s] = keys;
    this.#vals[s] = vals;
  }
}

/** The top 10 of the 53 bits pick the shard... */
const shardOf = (h: number): number => (h / 2 ** 43) & (SHARDS - 1);
/** ...and the low 32 the slot. */
const slotOf = (h: number, mask: number): number => (h >>> 0) & mask;
