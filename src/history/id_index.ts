/**
 * In-memory secondary indexes for a store whose rows are written in id order:
 * for each key, the ids of its rows, ascending. Keeping them here instead of
 * in SQLite keeps every write an append; a secondary B-tree keyed by user or
 * room turns each commit into many scattered page writes (measured: about ten
 * times slower with 64 active users). Each key's ids are an IdList (chunks,
 * never copied as they grow).
 */
import { IdList } from "./id_list";
import { ShardedMap } from "./sharded_map";

/** Key arrays whose lists `addAll` keeps: as many as keysOf's memo holds. */
const KEY_SETS_MAX = 50_000;

export class IdIndex {
  /** Sharded: a store with many users holds hundreds of thousands of keys, and one Map's growth would stop the loop (see ShardedMap). */
  readonly #ids = new ShardedMap<IdList>();
  /** Ids at or below this were pruned: lookups skip them before they are trimmed. */
  #floor = 0;
  #trim: Iterator<[string, IdList]> | undefined;

  /**
   * The lists of each key array `addAll` was given, by the array itself: a
   * message's keys come from keysOf's memo, the same array for every message
   * between the same ends, so one lookup by identity replaces one lookup by
   * string per key (measured: 3 string lookups were most of an add's cost).
   * Cleared when a list is dropped (its array must not take ids again) and
   * past KEY_SETS_MAX arrays.
   */
  readonly #byKeys = new Map<readonly string[], IdList[]>();

  /** Appends `id` under `key`; ids must arrive in increasing order. */
  add(key: string, id: number): void {
    this.#list(key).push(id);
  }

  /** Appends `id` under each of `keys`; ids must arrive in increasing order. Fastest when the same array is passed for the same keys. */
  addAll(keys: readonly string[], id: number): void {
    let lists = this.#byKeys.get(keys);
    if (lists === undefined) {
      if (this.#byKeys.size >= KEY_SETS_MAX) this.#byKeys.clear();
      lists = keys.map((k) => this.#list(k));
      this.#byKeys.set(keys, lists);
    }
    for (let i = 0; i < lists.length; i++) lists[i]!.push(id);
  }

  #list(key: string): IdList {
    let list = this.#ids.get(key);
    if (list === undefined) this.#ids.set(key, (list = new IdList()));
    return list;
  }

  /**
   * Ids under `key` with `after` < id <= `upTo`, ascending, at most `limit`:
   * the oldest of them, or with `newest` the newest.
   */
  range(key: string, after: number, upTo: number, limit: number, newest = false): number[] {
    const list = this.#ids.get(key);
    if (!list) return [];
    const lo = list.firstAbove(Math.max(after, this.#floor));
    const hi = list.firstAbove(upTo);
    if (hi - lo <= limit) return list.slice(lo, hi);
    return newest ? list.slice(hi - limit, hi) : list.slice(lo, lo + limit);
  }

  /** Ids under `key` below `before`, newest first, at most `limit`. */
  before(key: string, before: number, limit: number): number[] {
    const list = this.#ids.get(key);
    if (!list) return [];
    // Ids above the floor are a suffix of the list: the newest `limit` of them below `before`.
    const hi = list.firstAbove(before - 1);
    return list.slice(Math.max(list.firstAbove(this.#floor), hi - limit), hi).reverse();
  }

  /**
   * Forgets every id <= `upTo` (the rows were pruned). Lookups skip them at
   * once; the memory is given back whole chunks at a time, a bounded number
   * of keys per call, so a store with many users never stalls here.
   */
  dropThrough(upTo: number, keysPerCall = 2_000): void {
    this.#floor = Math.max(this.#floor, upTo);
    this.#trim ??= this.#ids.entries();
    for (let i = 0; i < keysPerCall; i++) {
      const next = this.#trim.next();
      if (next.done) {
        this.#trim = undefined;
        return;
      }
      const [key, list] = next.value;
      if (list.dropThrough(this.#floor)) {
        this.#ids.delete(key);
        this.#byKeys.clear();
      }
    }
  }
}

/**
 * Merges ascending id lists into one ascending list without duplicates,
 * keeping the first `limit` (or, with `newest`, the last `limit`). A k-way
 * merge that stops at `limit`: it never sorts more than it keeps.
 */
export function mergeIds(lists: number[][], limit: number, newest: boolean): number[] {
  const live = lists.filter((l) => l.length > 0);
  if (live.length === 1) return newest ? live[0]!.slice(-limit) : live[0]!.slice(0, limit);
  const at = live.map((l) => (newest ? l.length - 1 : 0));
  const out: number[] = [];
  while (out.length < limit) {
    let pick = -1;
    for (let k = 0; k < live.length; k++) {
      const i = at[k]!;
      if (i < 0 || i >= live[k]!.length) continue;
      if (pick < 0 || (newest ? live[k]![i]! > live[pick]![at[pick]!]! : live[k]![i]! < live[pick]![at[pick]!]!)) pick = k;
    }
    if (pick < 0) break;
    const id = live[pick]![at[pick]!]!;
    at[pick] = at[pick]! + (newest ? -1 : 1);
    if (out.length === 0 || out[out.length - 1] !== id) out.push(id);
  }
  return newest ? out.reverse() : out;
}
