/**
 * Young-generation collections paced by the messages the server delivers.
 *
 * JavaScriptCore lets its young generation grow with the whole heap. A server
 * that holds its modules and a history index (about 19 MB here, against raw
 * Bun's 0.2 MB) then allocates 8-16 MB between collections: each collection
 * leaves thousands of empty blocks, the allocator gives their pages back to
 * the OS, and the next cycle faults them in again (measured at 20,000 direct
 * messages a second: about 2,500 minor page faults a second, each 14 µs on
 * this kind of machine, and the loop waiting 3-6 ms at a time while the
 * allocator's purge thread ran on its core). Collecting the young
 * generation every `everyMessages` messages keeps each one to a few
 * megabytes: its pages are reused while they are still mapped. A
 * collection's pause hardly depends on how much it frees (in a loaded
 * server 0.4-0.6 ms with nothing allocated, 0.7-1.1 ms after 20 to 100 ms
 * of traffic: the work is in the heap itself, not in the garbage), so the
 * pace is as slow as the page reuse allows: 4,000 messages (some 5.5 MB of
 * new objects at about 1,400 bytes a direct message) at the server's
 * default. An idle server never collects here, and under heavy load
 * `minIntervalMs` bounds the cost.
 */
import { edenGC } from "bun:jsc";

/** How often to collect; see GcPacer. */
export interface GcPacerOptions {
  /** Messages between two collections. */
  everyMessages: number;
  /** Least time between two collections (default 50): at about 1 ms each, a busy server spends some 2% of its time in them. */
  minIntervalMs?: number;
  /** Told each collection's length in seconds (for /metrics, a histogram: its count and sum are the collections and their time). */
  observe?: (seconds: number) => void;
}

/**
 * Collects the young generation on the caller's turn, synchronously, once
 * `everyMessages` have been noted since the last collection, and never
 * twice within `minIntervalMs`: nothing noted, nothing collected. Each
 * collection is reported to `observe`.
 */
export class GcPacer {
  readonly #every: number;
  readonly #minIntervalMs: number;
  readonly #observe: ((seconds: number) => void) | undefined;
  #since = 0;
  #last = Number.NEGATIVE_INFINITY;

  constructor(options: GcPacerOptions) {
    if (!Number.isSafeInteger(options.everyMessages) || options.everyMessages < 1) {
      throw new RangeError(`GcPacer: everyMessages must be a whole number of at least 1, got ${options.everyMessages}`);
    }
    const minIntervalMs = options.minIntervalMs ?? 50;
    if (!(minIntervalMs >= 0)) {
      throw new RangeError(`GcPacer: minIntervalMs must be a number of milliseconds, 0 or more, got ${options.minIntervalMs}`);
    }
    this.#every = options.everyMessages;
    this.#minIntervalMs = minIntervalMs;
    this.#observe = options.observe;
  }

  /**
   * Counts `n` delivered messages. Once `everyMessages` have been counted
   * since the last collection and `minIntervalMs` has passed, collects the
   * young generation now, synchronously: call it once the batch's frames
   * are sent, so the pause delays only what arrives next.
   */
  note(n: number): void {
    this.#since += n;
    if (this.#since < this.#every) return;
    const started = performance.now();
    if (started - this.#last < this.#minIntervalMs) return;
    this.#since = 0;
    this.#last = started;
    edenGC();
    this.#observe?.((performance.now() - started) / 1000);
  }
}
