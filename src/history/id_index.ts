/**
 * In-memory secondary indexes for a store whose rows are written in id order:
 * for each key, the ids of its rows, ascending. Keeping them here instead of
 * in SQLite keeps every write an append; a secondary B-tree keyed by user or
 * room turns each commit into many scattered page writes (measured: about ten
 * times slower with 64 active users).
 */
export class IdIndex {
  readonly #ids = new Map<string, number[]>();

  /** Appends `id` under `key`; ids must arrive in increasing order. */
  add(key: string, id: number): void {
    const list = this.#ids.get(key);
    if (list) list.push(id);
    else this.#ids.set(key, [id]);
  }

  /**
   * Ids under `key` with `after` < id <= `upTo`, ascending, at most `limit`:
   * the oldest of them, or with `newest` the newest.
   */
  range(key: string, after: number, upTo: number, limit: number, newest = false): number[] {
    const list = this.#ids.get(key);
    if (!list) return [];
    const lo = firstAbove(list, after);
    const hi = firstAbove(list, upTo);
    if (hi - lo <= limit) return list.slice(lo, hi);
    return newest ? list.slice(hi - limit, hi) : list.slice(lo, lo + limit);
  }

  /** Ids under `key` below `before`, newest first, at most `limit`. */
  before(key: string, before: number, limit: number): number[] {
    const list = this.#ids.get(key);
    if (!list) return [];
    const out: number[] = [];
    for (let i = firstAbove(list, before - 1) - 1; i >= 0 && out.length < limit; i--) out.push(list[i]!);
    return out;
  }

  /** Forgets every id <= `upTo` (the rows were pruned). */
  dropThrough(upTo: number): void {
    for (const [key, list] of this.#ids) {
      const n = firstAbove(list, upTo);
      if (n === list.length) this.#ids.delete(key);
      else if (n > 0) list.splice(0, n);
    }
  }
}

/** The index of the first element > `value` in an ascending list. */
function firstAbove(list: number[], value: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Merges ascending id lists into one ascending list without duplicates,
 * keeping the first `limit` (or, with `newest`, the last `limit`).
 */
export function mergeIds(lists: number[][], limit: number, newest: boolean): number[] {
  const all = lists.length === 1 ? lists[0]! : lists.flat().sort((a, b) => a - b);
  const out: number[] = [];
  for (const id of all) if (out.length === 0 || out[out.length - 1] !== id) out.push(id);
  return newest ? out.slice(-limit) : out.slice(0, limit);
}
