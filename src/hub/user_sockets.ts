/**
 * The open sockets of each user on this node. Most users have one socket: it
 * is kept as is, and a Set is made only for a second one. A Set holding one
 * socket costs 256 bytes of heap in Bun 1.4.5 (an empty one 32), which was
 * the largest single part of what an idle connection keeps.
 */
export class UserSockets<S> {
  readonly #byUser = new Map<string, S | Set<S>>();

  /** Files `sock` under `user`. */
  add(user: string, sock: S): void {
    const had = this.#byUser.get(user);
    if (had === undefined) this.#byUser.set(user, sock);
    else if (had instanceof Set) had.add(sock);
    else if (had !== sock) this.#byUser.set(user, new Set([had, sock]));
  }

  /** Takes `sock` out from under `user`; returns how many sockets the user still has, or -1 when `sock` was not filed. */
  delete(user: string, sock: S): number {
    const had = this.#byUser.get(user);
    if (had === undefined) return -1;
    if (had instanceof Set) {
      if (!had.delete(sock)) return -1;
      if (had.size === 1) this.#byUser.set(user, had.values().next().value!);
      else if (had.size === 0) this.#byUser.delete(user);
      return had.size;
    }
    if (had !== sock) return -1;
    this.#byUser.delete(user);
    return 0;
  }

  /** How many sockets `user` has. */
  count(user: string): number {
    const had = this.#byUser.get(user);
    return had === undefined ? 0 : had instanceof Set ? had.size : 1;
  }

  /** The sockets of `user`, as a new array (safe to close them while iterating). */
  of(user: string): S[] {
    const had = this.#byUser.get(user);
    return had === undefined ? [] : had instanceof Set ? [...had] : [had];
  }
}
