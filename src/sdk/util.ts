/** Small helpers of the SDK: ids, the recent-id window, URLs. */

/**
 * A random client id for a frame. `getRandomValues` rather than
 * `randomUUID`, which browsers offer in secure contexts only.
 */
export function newCid(): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The last `max` message ids seen, to drop a duplicate delivery by id. */
export class RecentIds {
  readonly #ids = new Set<number>();
  constructor(readonly max: number) {}

  has(id: number): boolean {
    return this.#ids.has(id);
  }

  /** Forgets every id (ids of another epoch mean nothing to the current store). */
  clear(): void {
    this.#ids.clear();
  }

  add(id: number): void {
    this.#ids.add(id);
    // A Set iterates in insertion order: the first one is the oldest.
    if (this.#ids.size > this.max) this.#ids.delete(this.#ids.values().next().value!);
  }
}

/** What a connect asks the server for (never a token: URLs end up in logs). */
export interface ConnectQuery {
  since?: number;
  /** The epoch `since` belongs to. */
  epoch?: string;
  /** Ask for messages as JSON arrays (`?batch=1`). */
  batch?: boolean;
  rooms: readonly string[];
}

/**
 * The server's HTTP base for a base URL given as `http(s)://` or `ws(s)://`
 * (a path prefix is kept, a trailing slash dropped).
 */
export function httpBase(base: string): string {
  const u = new URL(base);
  if (!["http:", "https:", "ws:", "wss:"].includes(u.protocol)) {
    throw new TypeError(`url must start with http(s):// or ws(s)://, got ${JSON.stringify(base)}`);
  }
  const secure = u.protocol === "https:" || u.protocol === "wss:";
  return `${secure ? "https" : "http"}://${u.host}${u.pathname.replace(/\/+$/, "")}`;
}

/** The HTTP base and the WebSocket URL maker for a server base URL (see `httpBase`). */
export function socketUrl(base: string, username: string): { http: string; ws(q: ConnectQuery): string } {
  const http = httpBase(base);
  const ws = `${http.replace(/^http/, "ws")}/ws/${encodeURIComponent(username)}`;
  return {
    http,
    ws(q) {
      const p = new URLSearchParams();
      if (q.since !== undefined) p.set("since", String(q.since));
      if (q.since !== undefined && q.epoch !== undefined) p.set("epoch", q.epoch);
      if (q.rooms.length > 0) p.set("rooms", q.rooms.join(","));
      // Coalesced delivery: one array frame per topic and commit batch; the client unpacks it.
      if (q.batch) p.set("batch", "1");
      const s = p.toString();
      return s ? `${ws}?${s}` : ws;
    },
  };
}
