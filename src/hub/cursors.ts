/**
 * Inbox cursors: up to which id a user has received their direct messages,
 * so a connect without `since` replays only the rest. The cursor moves when a
 * client closes cleanly, and stops short of what was delivered in the last
 * `graceMs` (it may still have been on the wire while the close was).
 */
import type { History } from "../history/history";

export class Cursors {
  /**
   * The first id and delivery time of each batch delivered in the last
   * `graceMs`, from `#head` on: two lists of numbers rather than an object
   * per batch, which the collector would have had to visit on every young
   * collection while they lived (thousands at a thousand batches a second).
   */
  readonly #first: number[] = [];
  readonly #at: number[] = [];
  /**
   * Where the unsettled batches start: settling moves this index instead of
   * shifting the lists, which at a thousand batches a second hold thousands
   * of entries.
   */
  #head = 0;

  constructor(
    readonly history: History,
    readonly deliveredThrough: () => number,
    readonly graceMs = 2_000,
  ) {}

  /** A batch starting at `firstId` was delivered to this node's sockets now. */
  delivered(firstId: number, now: number): void {
    this.#settled(now);
    this.#first.push(firstId);
    this.#at.push(now);
  }

  /** A client closed cleanly after being live: its user has received everything settled. */
  closed(user: string, now: number): Promise<void> {
    return this.history.setCursor(user, this.#settled(now));
  }

  /** The newest id delivered more than `graceMs` ago; forgets older batches. */
  #settled(now: number): number {
    const first = this.#first;
    const at = this.#at;
    let head = this.#head;
    while (head < at.length && at[head]! <= now - this.graceMs) head++;
    // Give the settled entries back once they are half the lists: each entry is moved a bounded number of times.
    if (head > 64 && head * 2 >= at.length) {
      first.splice(0, head);
      at.splice(0, head);
      head = 0;
    }
    this.#head = head;
    return head < first.length ? first[head]! - 1 : this.deliveredThrough();
  }
}
