/** The first chunk's first size: a small log keeps a small array. */
const FIRST = 1024;

/**
 * Where each id of the message log starts in its segment (NaN: not held),
 * for the ids from `base` on. The offsets sit in chunks that are never
 * copied once full size: one array doubled as it grew copied every offset
 * onto fresh pages each time (32 MB at four million ids), a stall of the
 * event loop and a burst of page faults, and dropping old ids copied the
 * rest again. Only the first chunk grows, by doubling, up to full size.
 */
export class Starts {
  /** The oldest id held (when any is). */
  base = 0;
  readonly #bits: number;
  readonly #size: number;
  #chunks: Float64Array[];
  /** Slots of the first chunk before `base`'s (their ids were dropped). */
  #skip = 0;
  /** Ids held: base .. base + n - 1. */
  #n = 0;

  /** `chunkBits`: a full chunk holds 2^chunkBits offsets (16: 512 KiB); tests make it small. */
  constructor(chunkBits = 16) {
    this.#bits = chunkBits;
    this.#size = 1 << chunkBits;
    this.#chunks = [new Float64Array(Math.min(FIRST, this.#size))];
  }

  /** Offsets the chunks have room for: what the offsets cost in memory is 8 bytes each. */
  get capacity(): number {
    let n = 0;
    for (const c of this.#chunks) n += c.length;
    return n;
  }

  /** Records where `id` starts; ids come in increasing order, and any skipped between two are not held. */
  set(id: number, start: number): void {
    if (this.#n === 0) this.base = id;
    const i = id - this.base;
    const p = this.#skip + i;
    this.#reach(p);
    if (i > this.#n) this.#fill(this.#skip + this.#n, p);
    this.#chunks[p >>> this.#bits]![p & (this.#size - 1)] = start;
    this.#n = i + 1;
  }

  /** Where `id` starts; NaN when it is not held. */
  get(id: number): number {
    const i = id - this.base;
    if (i < 0 || i >= this.#n) return Number.NaN;
    const p = this.#skip + i;
    return this.#chunks[p >>> this.#bits]![p & (this.#size - 1)]!;
  }

  /** Forgets ids below `base`, freeing every chunk that held only those. */
  rebase(base: number): void {
    const k = Math.min(Math.max(0, base - this.base), this.#n);
    if (k === 0) return;
    this.#n -= k;
    this.base += k;
    this.#skip += k;
    const whole = Math.min(this.#skip >>> this.#bits, this.#chunks.length - 1);
    if (whole > 0) {
      this.#chunks.splice(0, whole);
      this.#skip -= whole * this.#size;
    }
  }

  /** Makes slot `p` exist: the first chunk doubles up to full size, then full chunks are added. */
  #reach(p: number): void {
    const chunks = this.#chunks;
    const first = chunks[0]!;
    if (p < first.length) return;
    const full = this.#size;
    if (first.length < full) {
      let size = first.length * 2;
      while (size <= p && size < full) size *= 2;
      const grown = new Float64Array(Math.min(size, full));
      grown.set(first);
      chunks[0] = grown;
    }
    while (chunks.length <= p >>> this.#bits) chunks.push(new Float64Array(full));
  }

  /** NaN in slots from..to-1: ids never written to the log. */
  #fill(from: number, to: number): void {
    const full = this.#size;
    while (from < to) {
      const c = from >>> this.#bits;
      const end = Math.min(to, (c + 1) * full);
      this.#chunks[c]!.fill(Number.NaN, from - c * full, end - c * full);
      from = end;
    }
  }
}
