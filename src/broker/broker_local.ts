import type { Broker, BrokerHandlers } from "./broker";
import { Fanout } from "./fanout";
import { topicsOf } from "../hub/routing";

/** A broker for one node: what this node commits is all there is; it goes out on Bun's own pub/sub. */
export function createLocalBroker(): Broker {
  const out = new Fanout();
  let handlers: BrokerHandlers | undefined;
  let through = 0;
  return {
    attach(s) {
      out.server = s;
    },
    async start(after, h) {
      through = after;
      handlers = h;
      out.onPressure = h.backpressure;
    },
    committed(batch, frames) {
      if (batch.length === 0) return;
      out.messages(
        frames,
        batch.map((m) => topicsOf(m)),
      );
      through = batch[batch.length - 1]!.id;
      handlers?.delivered(batch[0]!.id, through);
    },
    deliveredThrough: () => through,
    publish(topic, data, droppable) {
      if (droppable) handlers?.volatile(topic, data);
      else out.event(topic, data);
    },
    publishLocal: (topic, data) => out.event(topic, data),
    topicsChanged: () => out.topicsChanged(),
    command() {
      // One node: the caller has run it already.
    },
    counts: out,
    async close() {
      out.server = undefined;
    },
  } satisfies Broker;
}
