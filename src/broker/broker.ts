import type { Server } from "bun";

/**
 * Fan-out seam: the only path from an accepted message to the sockets.
 * handler → history → broker → `server.publish`. A node-local broker publishes
 * straight to Bun's topics; a cluster broker carries frames between nodes
 * first. Frames arrive already encoded, once per publish.
 */
export interface Broker {
  /** Binds the broker to the server that owns this node's sockets; called once on start. */
  attach(server: Server<unknown>): void;
  /**
   * Delivers `data` to every connection subscribed to `topic`, on every node,
   * in publish order per topic. Returns once the frame is handed on; it never throws.
   */
  publish(topic: string, data: string): void;
  /** Publishes Bun reported as dropped for some subscriber, on this node. */
  readonly dropped: number;
  /** Publishes that met backpressure (queued, not dropped) for some subscriber, on this node. */
  readonly backpressured: number;
  /** Stops delivering; idempotent. */
  close(): Promise<void>;
}

/** Topic names: one place that spells them. */
export const topics = {
  all: "all",
  user: (name: string) => `user:${name}`,
  room: (name: string) => `room:${name}`,
} as const;
