import type { Server } from "bun";
import type { StoredMessage } from "../history/history";
import type { PublishCounts } from "./fanout";

export { topics } from "../hub/routing";

/** What every node does to its own sockets when an administrator asks (the admin API's disconnect and revoke). */
export interface NodeCommand {
  /** Close every connection of this user, */
  disconnect: string;
  /** with this close code and reason. */
  code: number;
  reason: string;
}

/** What a node does with what the broker carries to it. */
export interface BrokerHandlers {
  /** The broker just published committed messages `firstId`..`lastId` (ascending) to this node's sockets. */
  delivered(firstId: number, lastId: number): void;
  /**
   * The broker lost messages it cannot bring back (its log was trimmed past
   * them, or the store started over with a new epoch): this node's sockets
   * must resume from the store (`since`).
   */
  gap(reason: string): void;
  /** A droppable volatile frame for this node's sockets on `topic`. */
  volatile(topic: string, data: string): void;
  /**
   * A publish met backpressure on this node (Bun queued or dropped the frame
   * for some socket): a socket near or past its backpressure limit may be
   * closed by Bun soon, with 1006. Bun's one status per publish does not say
   * which socket; the hub looks at their buffers. `dropped`: Bun dropped the
   * frame for some socket (status 0), not only queued it.
   */
  backpressure(dropped: boolean): void;
  /** Another node asked every node to run `cmd` on its sockets. */
  command(cmd: NodeCommand): void;
}

/**
 * Fan-out seam: the only path from a stored message to the sockets of every
 * node. handler → history → broker → `server.publish`. A node-local broker
 * delivers what this node committed; a cluster broker tails the store's log,
 * so every node delivers every message once, in id order, and resumes after
 * a lost connection without a gap (or reports one).
 */
export interface Broker {
  /** Binds the broker to the server that owns this node's sockets; called once on start. */
  attach(server: Server<unknown>): void;
  /** Starts delivering committed messages with id > `after` to `handlers`. */
  start(after: number, handlers: BrokerHandlers): Promise<void>;
  /**
   * This node committed `batch` (ids ascending) whose encoded frames are
   * `frames`. The local broker delivers them now; a cluster broker lets its
   * log tail deliver them, so that every node sees one order. Both lists
   * are lent for the call (the committer reuses them): read, never keep.
   */
  committed(batch: readonly StoredMessage[], frames: readonly string[]): void;
  /** The newest id delivered to this node's sockets: live delivery covers everything after it. */
  deliveredThrough(): number;
  /**
   * A volatile frame (receipts, typing) for `topic` on every node: at most
   * once, never stored; never throws. `droppable` frames go to the node's
   * `volatile` handler instead, which drops them first under backpressure.
   */
  publish(topic: string, data: string, droppable?: boolean): void;
  /**
   * Has every other node run `cmd` (the caller runs it on its own sockets).
   * At most once, like volatile frames: what it enforces is also kept in
   * the store (a revocation), or is undone by a reconnect anyway.
   */
  command(cmd: NodeCommand): void;
  /**
   * A socket of this node subscribed to or left a topic, or closed. The
   * fan-out keeps each topic's subscriber count between such changes (asking
   * Bun on every publish cost about a tenth of a direct message), so every
   * change must be reported here before the next publish.
   */
  topicsChanged(): void;
  /** A frame for `topic` on this node's sockets only (presence, which every node derives itself). */
  publishLocal(topic: string, data: string): void;
  /** What this node's publishes did: frames and bytes sent, drops and backpressure (for /metrics). */
  readonly counts: Readonly<PublishCounts>;
  /** Stops delivering; idempotent. */
  close(): Promise<void>;
}
