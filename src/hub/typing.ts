/** Typing frames: throttled, never stored, the first frames dropped for a slow socket. */
import type { ServerWebSocket } from "bun";
import type { Broker } from "../broker/broker";
import { LIMITS, encode } from "../protocol";
import type { Connection } from "./connection";
import type { SocketRegistry } from "./registry";
import { topics } from "./routing";
import type { HubStats } from "./types";

/** A socket with this much unsent data gets no typing frames. */
const TYPING_BUFFER_MAX = 16 * 1024;
/** Senders and conversations remembered before the stale ones are forgotten in bulk. */
const REMEMBERED_MAX = 10_000;

/**
 * Forwards "typing" at most once per LIMITS.typingEveryMs per sender and
 * conversation, through the broker as a volatile publish (every node gets it,
 * none stores it), and hands what arrives to this node's live sockets one by
 * one, skipping a socket that is behind: a typing frame is worth less than
 * the messages queued before it.
 */
export class TypingRelay {
  /** `user\nconversation` → when its last typing frame was forwarded. */
  readonly #typedAt = new Map<string, number>();

  constructor(
    private readonly broker: Broker,
    private readonly sockets: SocketRegistry,
    private readonly send: (ws: ServerWebSocket<Connection>, data: string) => number,
    private readonly stats: HubStats,
  ) {}

  /** `conn`'s user is typing to `to` or in `room` (a room the caller checked it may use and is in). */
  typing(conn: Connection, to: string | undefined, room: string | undefined): void {
    const key = `${conn.user}\n${to === undefined ? `#${room}` : `@${to}`}`;
    const now = Date.now();
    if (now - (this.#typedAt.get(key) ?? 0) < LIMITS.typingEveryMs) {
      this.stats.typingDropped++;
      return;
    }
    this.#typedAt.set(key, now);
    // Old entries only matter for LIMITS.typingEveryMs: forget them in bulk now and then.
    if (this.#typedAt.size > REMEMBERED_MAX) for (const [k, at] of this.#typedAt) if (now - at >= LIMITS.typingEveryMs) this.#typedAt.delete(k);
    const data = encode(to !== undefined ? { type: "typing", from: conn.user, to } : { type: "typing", from: conn.user, room: room! });
    this.broker.publish(to !== undefined ? topics.user(to) : topics.room(room!), data, true);
  }

  /** A volatile frame the broker delivers on `topic`: to this node's live sockets on it, skipping any with unsent data. */
  deliver(topic: string, data: string): void {
    const socks = topic.startsWith("room:") ? this.sockets.inRoom(topic.slice(5)) : topic.startsWith("user:") ? this.sockets.ofUser(topic.slice(5)) : undefined;
    for (const ws of socks ?? []) {
      if (!ws.data.live) continue;
      if (ws.getBufferedAmount() > TYPING_BUFFER_MAX) this.stats.typingDropped++;
      else this.send(ws, data);
    }
  }
}
