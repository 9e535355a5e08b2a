import type { ServerWebSocket } from "bun";
import type { StoredMessage } from "../history/history";
import type { Hub } from "./hub";
import { LIMITS } from "../protocol";
import { batchTopic } from "../broker/fanout";

/** The replay of a connection with none left: one shared empty list, not one per connection (64 bytes each). */
export const NO_REPLAY: readonly StoredMessage[] = [];

/**
 * What one socket keeps: its user, its rooms and its replay position. It is
 * the socket's `data`, so Bun's events reach the hub through these methods
 * without a closure or a wrapper per message.
 */
export class Connection {
  readonly rooms: Set<string>;
  /** Subscribed to its topics: the replay is done. */
  live = false;
  /** Replay still to send, from `replayAt`; it covers ids up to `replayUpTo`. */
  replay: readonly StoredMessage[] = NO_REPLAY;
  replayAt = 0;
  replayUpTo = 0;
  /** The welcome went out; frames that came before it wait in `early`. */
  welcomed = false;
  early: (string | Buffer)[] | undefined;
  /** The socket closed; async work for it stops. */
  closed = false;
  /** A replay read or send is under way (drain must not start a second one). */
  streaming = false;
  /** It sent a `received` frame: its user's inbox cursor moves by those only. */
  sentReceived = false;
  /** Users whose presence this connection watches. */
  watching: Set<string> | undefined;
  /** This connect counts against the user's concurrent `since` replays until it is live. */
  countedReplay = false;
  /** The token's `rooms` claim; undefined: every room. */
  allowedRooms: readonly string[] | undefined;
  /** Bun dropped a frame for it (past its backpressure limit): its coming 1006 close is a backpressure close. */
  overflowed = false;
  /** The second its token expires, as filed in the hub's Expiries (0: none). */
  expiresAt = 0;
  /** When the client was first told `rate_limited` in the current run of refusals (0: never). */
  limitedSince = 0;
  /** When it was last told. */
  lastRefusedAt = 0;
  /** When the socket opened (ms since the epoch), for the admin page. */
  readonly openedAt = Date.now();
  #badAt: number[] | undefined;

  constructor(
    readonly hub: Hub,
    readonly user: string,
    rooms: readonly string[],
    readonly ip: string,
    readonly batch = false,
  ) {
    this.rooms = new Set(rooms);
  }

  /** The topic this connection subscribes to for `topic`: batching connections take the array variant. */
  topic(topic: string): string {
    return this.batch ? batchTopic(topic) : topic;
  }

  /** Subscribes the socket to `topic` (its array variant with `?batch=1`). Every subscription goes through here or `unsubscribe`: the fan-out's subscriber counts depend on it. */
  subscribe(ws: ServerWebSocket<Connection>, topic: string): void {
    ws.subscribe(this.topic(topic));
    this.hub.topicsChanged();
  }

  /** Takes the socket out of `topic` (its array variant with `?batch=1`). */
  unsubscribe(ws: ServerWebSocket<Connection>, topic: string): void {
    ws.unsubscribe(this.topic(topic));
    this.hub.topicsChanged();
  }

  message(ws: ServerWebSocket<Connection>, raw: string | Buffer): void {
    this.hub.message(ws, this, raw);
  }

  drain(ws: ServerWebSocket<Connection>): void {
    this.hub.drain(ws, this);
  }

  close(ws: ServerWebSocket<Connection>, code: number): void {
    this.hub.close(ws, this, code);
  }

  /** Records a bad frame; true when there were more than allowed within the window. */
  countBadFrame(now: number): boolean {
    const times = (this.#badAt ??= []);
    times.push(now);
    while (times.length > 0 && times[0]! <= now - LIMITS.badFrameWindowMs) times.shift();
    return times.length > LIMITS.badFramesMax;
  }
}
