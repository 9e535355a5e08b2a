import type { Server } from "bun";
import type { Broker } from "./broker";

/** A broker for one node: publishes on Bun's own pub/sub (`server.publish`). */
export function createLocalBroker(): Broker {
  let server: Server<unknown> | undefined;
  return {
    attach(s) {
      server = s;
    },
    publish(topic, data) {
      // Before attach there is no socket to deliver to.
      server?.publish(topic, data);
    },
    async close() {
      server = undefined;
    },
  } satisfies Broker;
}
