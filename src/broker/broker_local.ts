import type { Server } from "bun";
import type { Broker } from "./broker";

/** A broker for one node: publishes on Bun's own pub/sub (`server.publish`). */
export function createLocalBroker(): Broker {
  let server: Server<unknown> | undefined;
  let dropped = 0;
  let backpressured = 0;
  return {
    attach(s) {
      server = s;
    },
    publish(topic, data) {
      // Before attach there is no socket to deliver to.
      if (!server) return;
      const status = server.publish(topic, data, false);
      // 0 also means "no subscribers", which is no loss.
      if (status === 0 && server.subscriberCount(topic) > 0) dropped++;
      else if (status === -1) backpressured++;
    },
    get dropped() {
      return dropped;
    },
    get backpressured() {
      return backpressured;
    },
    async close() {
      server = undefined;
    },
  } satisfies Broker;
}
