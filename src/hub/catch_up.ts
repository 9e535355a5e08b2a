/** A connect's way to live delivery: the welcome, then its replay, then its topics. */
import type { ServerWebSocket } from "bun";
import type { History } from "../history/history";
import { oneLine, type LogFields } from "../log";
import { encode } from "../protocol";
import type { Connection } from "./connection";
import type { SocketRegistry } from "./registry";
import { DeliveryWaits, planReplay, streamReplay, type ReplaySource } from "./replay";
import type { HubDeps, HubStats, Session } from "./types";

/** Unread messages counted per conversation in the welcome (the page shows "999+"). */
export const UNREAD_CAP = 999;

/** What catching up needs of the hub besides its deps. */
export interface CatchUpHost {
  readonly stats: HubStats;
  readonly sockets: SocketRegistry;
  /** Up to this many users online, the welcome lists them. */
  readonly globalMax: number;
  /** Sends one frame to one socket, counted; Bun's status. */
  send(ws: ServerWebSocket<Connection>, data: string): number;
  /** Logs an error, at most one of each `kind` every few seconds. */
  logError(kind: string, msg: string, fields?: LogFields): void;
}

/**
 * Plans each connect's replay (its inbox since its cursor or `since`, with
 * recent broadcasts for context), sends the welcome, streams the replay
 * (pausing under backpressure) and subscribes the socket to its topics once
 * nothing is left: no message between the replay and live delivery is lost
 * or sent twice.
 */
export class CatchUp {
  /** Replays waiting for this node's live delivery to reach the id their client already has. */
  readonly waits = new DeliveryWaits();
  readonly #source: ReplaySource;

  constructor(
    private readonly deps: HubDeps,
    private readonly host: CatchUpHost,
  ) {
    this.#source = {
      history: deps.history,
      deliveredThrough: () => deps.broker.deliveredThrough(),
      deliveredPast: (id, conn) => this.waits.until(id, conn),
      send: (ws, data) => host.send(ws, data),
    };
  }

  /**
   * Plans the replay and sends the welcome, then calls `welcomed` in the
   * same turn (nothing else may run between the welcome and what follows
   * it: a close in between would leave frames handled on a closed socket).
   * Nothing happens when the socket closed meanwhile; when the store could
   * not be read the socket is closed with 1011.
   */
  async welcome(ws: ServerWebSocket<Connection>, conn: Connection, session: Session, welcomed: () => void): Promise<void> {
    const { history, broker, presence, replayLimit } = this.deps;
    let plan: Awaited<ReturnType<typeof planReplay>>;
    let unread: Awaited<ReturnType<History["unread"]>>;
    try {
      plan = await planReplay(history, conn, session, broker.deliveredThrough(), replayLimit);
      unread = await history.unread(conn.user, conn.rooms, await history.reads(conn.user), UNREAD_CAP);
    } catch (err) {
      this.host.logError("replay", "could not read a replay", { user: conn.user, error: oneLine(err) });
      ws.close(1011, "Could not read history: reconnect in a moment");
      return;
    }
    if (conn.closed) return;
    const onlineCount = presence.count();
    if (!plan.resumed) this.host.stats.resumedFalse++;
    this.deps.observers?.replaySize.observe(plan.messages.length);
    this.host.send(
      ws,
      encode({
        type: "welcome",
        user: conn.user,
        online: onlineCount <= this.host.globalMax ? presence.users() : undefined,
        onlineCount,
        lastId: plan.upTo,
        resumed: plan.resumed,
        replay: plan.messages.length,
        epoch: history.epoch,
        unread: Object.entries(unread).map(([conversation, u]) => ({ conversation, ...u })),
      }),
    );
    conn.welcomed = true;
    conn.replay = plan.messages;
    conn.replayUpTo = plan.upTo;
    welcomed();
  }

  /** Streams the replay; call again on drain after backpressure (not while `conn.streaming`). */
  async stream(ws: ServerWebSocket<Connection>, conn: Connection): Promise<void> {
    conn.streaming = true;
    let state: Awaited<ReturnType<typeof streamReplay>>;
    try {
      state = await streamReplay(ws, conn, this.#source);
    } catch (err) {
      this.host.logError("replay", "could not read a catch-up", { user: conn.user, error: oneLine(err) });
      ws.close(1011, "Could not read history: reconnect with since");
      return;
    } finally {
      conn.streaming = false;
    }
    if (state === "paused") this.host.stats.replayPauses++;
    else if (state !== "dropped") this.host.sockets.doneReplaying(conn);
  }
}
