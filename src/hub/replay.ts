/**
 * What a connect replays before it goes live, and the streaming of it: plan
 * from the store, send under backpressure, catch up with what was delivered
 * meanwhile, then subscribe in the same turn as the last check, so no message
 * falls between the replay and the live stream.
 */
import type { ServerWebSocket } from "bun";
import type { History, Reader, StoredMessage } from "../history/history";
import { NO_REPLAY, type Connection } from "./connection";
import { readerTopics } from "./routing";
import { frameOf } from "../history/frame";

/** Recent broadcasts replayed for context on a connect without `since`. */
const CONTEXT_BROADCASTS = 50;
/** Frames per array when a batching connection replays. */
const REPLAY_ARRAY = 100;
/** Rows read per catch-up query. */
const CATCH_UP_ROWS = 1000;

/** What one connect replays before going live, and whether that is complete. */
export interface ReplayPlan {
  messages: StoredMessage[];
  /** False when the replay cannot be complete: a gap the client must know of. */
  resumed: boolean;
  /** Live delivery covers every id above this one. */
  upTo: number;
}

/** Where a connect asks to resume from: after id `since` of the store whose epoch is `epoch`. */
export interface ResumePoint {
  since?: number;
  epoch?: string;
}

/**
 * With a `since` of this store's epoch: everything the reader may see after
 * it (the newest `limit` when there is more). Otherwise (no `since`, another
 * epoch, or a `since` the store never reached): the user's inbox (direct
 * messages since they last received) and the last 50 broadcasts, with
 * `resumed:false` when a `since` was given, since it cannot be honoured.
 */
export async function planReplay(history: History, reader: Reader, at: ResumePoint, upTo: number, limit: number): Promise<ReplayPlan> {
  let since = at.since;
  let honoured = true;
  if (since !== undefined && ((at.epoch !== undefined && at.epoch !== history.epoch) || (since > upTo && since > (await history.newest())))) {
    since = undefined;
    honoured = false;
  }
  if (since !== undefined) {
    // The client already has everything through `since`: on a node whose
    // delivery is behind it, live delivery must not start below it.
    upTo = Math.max(upTo, since);
    let resumed = since >= (await history.prunedThrough());
    let messages = await history.visible(reader, since, upTo, limit + 1);
    if (messages.length > limit) {
      resumed = false;
      messages = await history.visible(reader, since, upTo, limit, true);
    }
    return { messages, resumed, upTo };
  }
  const [cursor, prunedInbox] = await Promise.all([history.cursor(reader.user), history.prunedInbox(reader.user)]);
  let inbox = await history.inbox(reader.user, cursor, upTo, limit + 1);
  // Pruning removed direct messages this user had not received: say so, never a silent loss.
  const resumed = honoured && inbox.length <= limit && cursor >= prunedInbox;
  // Past the limit, the newest are the ones worth showing; resumed:false tells of the gap.
  if (inbox.length > limit) inbox = await history.inbox(reader.user, cursor, upTo, limit, true);
  const context = (await history.page(undefined, upTo + 1, CONTEXT_BROADCASTS)).reverse();
  return { messages: mergeById(inbox, context), resumed, upTo };
}

/** What streaming needs of the node: the store, and how far live delivery has got. */
export interface ReplaySource {
  history: History;
  deliveredThrough(): number;
  /** Resolves once live delivery has reached `id`, or `conn` closed, or every wait is let go (a gap, a shutdown). */
  deliveredPast(id: number, conn: Connection): Promise<void>;
  /** Sends one frame to the socket, counted with the node's other sends; Bun's status (bytes, -1 queued, 0 dropped). */
  send(ws: ServerWebSocket<Connection>, data: string): number;
}

/**
 * Sends the connection's replay until Bun reports backpressure ("paused":
 * call again on drain) or a drop ("dropped"). Once everything is sent, it
 * reads what was delivered meanwhile and, when nothing is left, subscribes
 * the socket to its topics in that same turn ("live"). Resolves "closed" when
 * the socket closed on the way.
 */
export async function streamReplay(ws: ServerWebSocket<Connection>, conn: Connection, src: ReplaySource): Promise<"live" | "paused" | "dropped" | "closed"> {
  for (;;) {
    while (conn.replayAt < conn.replay.length) {
      const r = src.send(ws, conn.batch ? nextArray(conn) : frameOf(conn.replay[conn.replayAt++]!));
      if (r === 0) return "dropped";
      if (r === -1) return "paused";
    }
    if (conn.closed) return "closed";
    const through = src.deliveredThrough();
    if (through < conn.replayUpTo) {
      // This node's delivery is behind what the client has (it resumed here from
      // a node that was ahead): subscribing now would send those ids again.
      await src.deliveredPast(conn.replayUpTo, conn);
      continue;
    }
    if (through === conn.replayUpTo) break;
    // Delivered while the replay was read or sent, without this socket: read it from the store.
    const upTo = Math.min(through, conn.replayUpTo + CATCH_UP_ROWS * 4);
    const next = await src.history.visible(conn, conn.replayUpTo, upTo, CATCH_UP_ROWS);
    if (conn.closed) return "closed";
    conn.replay = next;
    conn.replayAt = 0;
    conn.replayUpTo = next.length === CATCH_UP_ROWS ? next[CATCH_UP_ROWS - 1]!.id : upTo;
  }
  conn.replay = NO_REPLAY;
  conn.replayAt = 0;
  for (const topic of readerTopics(conn.user, conn.rooms)) conn.subscribe(ws, topic);
  conn.live = true;
  return "live";
}

/** Replays waiting for this node's live delivery to reach an id. */
export class DeliveryWaits {
  #waits: { id: number; owner: object; resolve: () => void }[] = [];

  /** Resolves once `delivered` reports `id` or beyond, or `owner`'s wait is cancelled, or on `releaseAll`. */
  until(id: number, owner: object): Promise<void> {
    return new Promise((resolve) => this.#waits.push({ id, owner, resolve }));
  }

  /** Live delivery reached `lastId`. */
  delivered(lastId: number): void {
    if (this.#waits.length > 0) this.#keep((w) => w.id > lastId);
  }

  /** `owner` closed: its wait ends now, not when delivery moves (which may be long while the broker is stalled). */
  cancel(owner: object): void {
    if (this.#waits.length > 0) this.#keep((w) => w.owner !== owner);
  }

  /** Lets every wait go: their sockets are closing, and each looks at its own state. */
  releaseAll(): void {
    for (const w of this.#waits.splice(0)) w.resolve();
  }

  #keep(still: (w: { id: number; owner: object }) => boolean): void {
    const kept = [];
    for (const w of this.#waits) {
      if (still(w)) kept.push(w);
      else w.resolve();
    }
    this.#waits = kept;
  }
}

/** A batching connection's next piece of replay: up to REPLAY_ARRAY frames in one array. */
function nextArray(conn: Connection): string {
  const end = Math.min(conn.replay.length, conn.replayAt + REPLAY_ARRAY);
  const parts: string[] = [];
  for (; conn.replayAt < end; conn.replayAt++) parts.push(frameOf(conn.replay[conn.replayAt]!));
  return `[${parts.join(",")}]`;
}

/** Merges two id-ordered lists that share no id into one. */
function mergeById(a: StoredMessage[], b: StoredMessage[]): StoredMessage[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out: StoredMessage[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]!.id < b[j]!.id)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}
