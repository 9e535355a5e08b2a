/** A tiny typed event emitter: `on` returns the function that unsubscribes. */
export class Emitter<Events extends object> {
  readonly #handlers = new Map<keyof Events, Set<(payload: never) => void>>();

  on<E extends keyof Events>(event: E, handler: (payload: Events[E]) => void): () => void {
    let set = this.#handlers.get(event);
    if (!set) this.#handlers.set(event, (set = new Set()));
    set.add(handler as (payload: never) => void);
    return () => void set.delete(handler as (payload: never) => void);
  }

  emit<E extends keyof Events>(event: E, payload: Events[E]): void {
    for (const h of this.#handlers.get(event) ?? []) {
      try {
        (h as (payload: Events[E]) => void)(payload);
      } catch (err) {
        // One app handler's bug must not stop the frame loop or the other
        // handlers; rethrow outside so it is still reported.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
