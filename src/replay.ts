import type { ServerWebSocket } from "bun";
import { topics } from "./broker/broker";
import type { History, Reader, StoredMessage } from "./history/history";
import type { Connection } from "./connection";
import { encode, type MessageFrame } from "./protocol";

/** Recent broadcasts replayed for context on a connect without `since`. */
const CONTEXT_BROADCASTS = 50;
/** Rows read per catch-up query after a paused replay. */
const CATCH_UP_ROWS = 1000;

/** Turns a stored message into the frame clients see. */
export const toFrame = (m: StoredMessage): MessageFrame => ({
  type: "message", id: m.id, kind: m.kind, from: m.from, to: m.to, text: m.text, at: m.at,
});

/** What one connect replays before going live, and whether that is complete. */
export interface ReplayPlan {
  messages: StoredMessage[];
  /** False when the replay cannot be complete: a gap the client must know of. */
  resumed: boolean;
  /** The newest stored id when the plan was made: live delivery covers what comes after. */
  upTo: number;
}

/**
 * With `since`: everything the reader may see after it (the newest `limit`
 * when there is more). Without: the user's inbox (direct messages since they
 * were last connected) and the last 50 broadcasts.
 */
export function planReplay(history: History, reader: Reader, since: number | undefined, limit: number): ReplayPlan {
  const upTo = history.lastId();
  if (since !== undefined) {
    let resumed = since >= history.prunedThrough();
    let messages = history.visible(reader, since, upTo, limit + 1);
    if (messages.length > limit) {
      resumed = false;
      messages = history.visible(reader, since, upTo, limit, true);
    }
    return { messages, resumed, upTo };
  }
  const cursor = history.cursor(reader.user);
  let inbox = history.inbox(reader.user, cursor, limit + 1);
  // Pruning removed direct messages this user had not received: say so, never a silent loss.
  const resumed = inbox.length <= limit && cursor >= history.prunedInbox(reader.user);
  // Past the limit, the newest are the ones worth showing; resumed:false tells of the gap.
  if (!resumed) inbox = history.inbox(reader.user, cursor, limit, true);
  const context = history.page(undefined, upTo + 1, CONTEXT_BROADCASTS).reverse();
  return { messages: mergeById(inbox, context), resumed, upTo };
}

/**
 * Sends the connection's replay until Bun reports backpressure ("paused":
 * call again on drain) or a drop ("dropped"). Once everything is sent it
 * reads what was committed meanwhile, then subscribes the socket to its
 * topics in the same turn of the event loop, so no message falls between
 * the replay and the live stream ("live").
 */
export function streamReplay(ws: ServerWebSocket<Connection>, conn: Connection, history: History): "live" | "paused" | "dropped" {
  for (;;) {
    while (conn.replayAt < conn.replay.length) {
      const r = ws.send(encode(toFrame(conn.replay[conn.replayAt++]!)));
      if (r === 0) return "dropped";
      if (r === -1) {
        conn.paused = true;
        return "paused";
      }
    }
    if (!conn.paused) break;
    // While paused, newer messages were published without this socket.
    conn.paused = false;
    const newest = history.lastId();
    conn.replay = history.visible(conn, conn.replayUpTo, newest, CATCH_UP_ROWS);
    conn.replayAt = 0;
    conn.replayUpTo = conn.replay.length === CATCH_UP_ROWS ? conn.replay[CATCH_UP_ROWS - 1]!.id : newest;
    if (conn.replay.length === 0) break;
    // A full chunk may not be all: look again once it is sent.
    if (conn.replay.length === CATCH_UP_ROWS) conn.paused = true;
  }
  conn.replay = [];
  conn.replayAt = 0;
  ws.subscribe(topics.all);
  ws.subscribe(topics.user(conn.user));
  for (const room of conn.rooms) ws.subscribe(topics.room(room));
  conn.live = true;
  return "live";
}

/** Merges two id-ordered lists into one. */
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
