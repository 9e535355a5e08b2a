/**
 * Who is online on this node: a count of open connections per user, so that
 * presence changes once per user, not once per tab.
 */
export class Presence {
  readonly #count = new Map<string, number>();
  #connections = 0;

  /** Counts a new connection; true when it is the user's first (announce a join). */
  add(user: string): boolean {
    const n = this.#count.get(user) ?? 0;
    this.#count.set(user, n + 1);
    this.#connections++;
    return n === 0;
  }

  /** Uncounts a connection; true when it was the user's last (announce a leave). */
  remove(user: string): boolean {
    const n = this.#count.get(user);
    if (n === undefined) return false;
    this.#connections--;
    if (n > 1) {
      this.#count.set(user, n - 1);
      return false;
    }
    this.#count.delete(user);
    return true;
  }

  /** True while the user has at least one open connection. */
  isOnline(user: string): boolean {
    return this.#count.has(user);
  }

  /** The distinct users online, in the order they came online. */
  users(): string[] {
    return [...this.#count.keys()];
  }

  /** Open connections, all users together. */
  get connections(): number {
    return this.#connections;
  }
}
