/**
 * Inbox cursors: up to which id a user has received their direct messages,
 * so a connect without `since` replays only the rest. The cursor moves when a
 * client closes cleanly, and stops short of what was delivered in the last
 * `graceMs` (it may still have been on the wire while the close was).
 */
import type { History } from "../history/history";

export class Cursors {
  /** The first id and delivery time of each batch delivered in the last `graceMs`. */
  readonly #recent: { first: number; at: number }[] = [];

  constructor(
    readonly history: History,
    readonly deliveredThrough: () => number,
    readonly graceMs = 2_000,
  ) {}

  /** A batch starting at `firstId` was delivered to this node's sockets now. */
  delivered(firstId: number, now: number): void {
    this.#settled(now);
    this.#recent.push({ first: firstId, at: now });
  }

  /** A client closed cleanly after being live: its user has received everything settled. */
  closed(user: string, now: number): Promise<void> {
    return this.history.setCursor(user, this.#settled(now));
  }

  /** The newest id delivered more than `graceMs` ago; forgets older batches. */
  #settled(now: number): number {
    const recent = this.#recent;
    let drop = 0;
    while (drop < recent.length && recent[drop]!.at <= now - this.graceMs) drop++;
    recent.splice(0, drop);
    return recent.length > 0 ? recent[0]!.first - 1 : this.deliveredThrough();
  }
}
