/**
 * The cids a store remembers for de-duplicating retries, held in typed
 * arrays: remembering one leaves the garbage collector nothing to look at.
 *
 * A Map from strings to objects that takes a new entry is rescanned whole by
 * the next young collection (JSC's write barrier remembers its storage, not
 * the entry), and every object it keeps is one more survivor to mark.
 * Measured in Bun 1.4.5 with the server's own traffic, 64 users sending
 * direct messages with cids as the SDK does: each paced collection took
 * 10.2 ms after 480,000 such messages (0.8 ms without cids); with the Map
 * holding numbers only, 1.6 ms, the key strings and hit objects it then still
 * kept being the rest. Here a keyed 53-bit hash of the key maps to the
 * entry's position in typed arrays (HashPositions: a Map that size also
 * stalled the loop for up to 200 ms each time it grew), and each entry's
 * fields and characters sit in a page of typed arrays.
 */
import type { CidHit } from "./history";
import { HashPositions } from "./hash_positions";
import type { MessageKind } from "../protocol";

/** Entries per page: pages are forgotten whole. */
const PAGE = 1024;
const KINDS: readonly MessageKind[] = ["broadcast", "direct", "room"];
const KIND_CODE: Record<MessageKind, number> = { broadcast: 0, direct: 1, room: 2 };
/** Characters per entry the first page makes room for (a sender, a UUID cid and a recipient); later pages, what the last one used and an eighth more. */
const CHARS_GUESS = 64;

/** PAGE entries, in the order they were remembered. */
interface Page {
  n: number;
  ids: Float64Array;
  ats: Float64Array;
  hashes: Float64Array;
  kinds: Uint8Array;
  /** Where entry i's characters start in `chars`: its key's, then its `to`'s (none on a broadcast). */
  offs: Uint32Array;
  keyLens: Uint16Array;
  chars: Uint16Array;
  /** The newest `at` in the page: it is forgotten once this leaves the window. */
  maxAt: number;
}

const newPage = (at: number, chars: number): Page => ({
  n: 0,
  ids: new Float64Array(PAGE),
  ats: new Float64Array(PAGE),
  hashes: new Float64Array(PAGE),
  kinds: new Uint8Array(PAGE),
  offs: new Uint32Array(PAGE + 1),
  keyLens: new Uint16Array(PAGE),
  chars: new Uint16Array(chars),
  maxAt: at,
});

/**
 * A 53-bit hash of a string from two xxHash32 with seeds drawn per process.
 * The index tells apart keys whose hashes collide, so a collision costs
 * time (a lookup in a Map of strings), never a wrong answer.
 */
export function keyedHash(): (key: string) => number {
  const seeds = crypto.getRandomValues(new Uint32Array(2));
  const a = seeds[0]!;
  const b = seeds[1]!;
  return (key) => Bun.hash.xxHash32(key, a) * 2 ** 21 + (Bun.hash.xxHash32(key, b) >>> 11);
}

/**
 * Sender-and-cid keys → the message each first stored, oldest first. Holds
 * the newest `max` entries at least and at most PAGE more; a key remembered
 * again replaces its entry. Exact: a key whose hash another held key already
 * has is kept by the key itself, in a small Map of strings.
 */
export class CidIndex {
  /** hash(key) → position of its entry (positions count every entry ever remembered). */
  readonly #byHash = new HashPositions();
  readonly #collided = new Map<string, number>();
  readonly #pages: Page[] = [];
  /** The page being filled (the last one), if any. */
  #last: Page | undefined;
  /** Position of the first page's first entry (a multiple of PAGE), and after the last entry. */
  #start = 0;
  #end = 0;

  /** `hash`: tests pass a weak one to make collisions. */
  constructor(
    readonly max: number,
    readonly hash: (key: string) => number = keyedHash(),
  ) {}

  /** Entries held, counting ones a later entry of the same key replaced. */
  get size(): number {
    return this.#end - this.#start;
  }

  /** Remembers `key` (sender and cid) as `hit`, stored at `at`; `h` is `hash(key)`, when the caller has it from `find`. */
  remember(key: string, hit: CidHit, at: number, h = this.hash(key)): void {
    let page = this.#last;
    if (page === undefined || page.n === PAGE) {
      const used = page === undefined ? PAGE * CHARS_GUESS : page.offs[PAGE]!;
      this.#pages.push((page = this.#last = newPage(at, used + (used >>> 3))));
    }
    const pos = this.#end++;
    const i = page.n++;
    page.ids[i] = hit.id;
    page.ats[i] = at;
    page.hashes[i] = h;
    page.kinds[i] = KIND_CODE[hit.kind];
    page.keyLens[i] = key.length;
    const to = hit.to ?? "";
    let o = page.offs[i]!;
    if (o + key.length + to.length > page.chars.length) {
      const more = new Uint16Array(Math.max(page.chars.length * 2, o + key.length + to.length));
      more.set(page.chars);
      page.chars = more;
    }
    for (let c = 0; c < key.length; c++) page.chars[o++] = key.charCodeAt(c);
    for (let c = 0; c < to.length; c++) page.chars[o++] = to.charCodeAt(c);
    page.offs[i + 1] = o;
    if (at > page.maxAt) page.maxAt = at;
    const held = this.#byHash.get(h);
    if (held === undefined || this.#keyIs(held, key)) this.#byHash.set(h, pos);
    else this.#collided.set(key, pos);
    while (this.#pages.length > 1 && this.size - PAGE >= this.max) this.#dropFirst();
  }

  /** What `key` was remembered as last, if that was at `notBefore` or later and is still held; `h` is `hash(key)`. */
  find(key: string, notBefore: number, h = this.hash(key)): CidHit | undefined {
    let pos = this.#byHash.get(h);
    if (pos === undefined || !this.#keyIs(pos, key)) pos = this.#collided.size === 0 ? undefined : this.#collided.get(key);
    if (pos === undefined) return undefined;
    const page = this.#pageOf(pos)!;
    const i = pos % PAGE;
    if (page.ats[i]! < notBefore) return undefined;
    const kind = KINDS[page.kinds[i]!]!;
    // No characters after the key: no `to` (a broadcast, or a stored message that had none).
    const from = page.offs[i]! + page.keyLens[i]!;
    const to = from === page.offs[i + 1]! ? undefined : String.fromCharCode(...page.chars.subarray(from, page.offs[i + 1]!));
    return { id: page.ids[i]!, kind, to };
  }

  /** Forgets, oldest first, the pages whose every entry is older than `minAt`. */
  forget(minAt: number): void {
    while (this.#pages.length > 0 && this.#pages[0]!.maxAt < minAt) this.#dropFirst();
  }

  #pageOf(pos: number): Page | undefined {
    return pos < this.#start ? undefined : this.#pages[Math.floor((pos - this.#start) / PAGE)];
  }

  /** Whether the entry at `pos` is held and has `key`. */
  #keyIs(pos: number, key: string): boolean {
    const page = this.#pageOf(pos);
    const i = pos % PAGE;
    if (page === undefined || page.keyLens[i] !== key.length) return false;
    const o = page.offs[i]!;
    for (let c = 0; c < key.length; c++) if (page.chars[o + c] !== key.charCodeAt(c)) return false;
    return true;
  }

  /** Forgets the oldest page; each page's first position stays a multiple of PAGE. */
  #dropFirst(): void {
    const page = this.#pages.shift()!;
    if (page === this.#last) this.#last = undefined;
    const base = this.#start;
    this.#start += PAGE;
    this.#end = Math.max(this.#end, this.#start);
    for (let i = 0; i < page.n; i++) {
      const h = page.hashes[i]!;
      if (this.#byHash.get(h) === base + i) this.#byHash.delete(h);
    }
    for (const [key, pos] of this.#collided) if (pos < this.#start) this.#collided.delete(key);
  }
}
