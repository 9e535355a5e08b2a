import type { Broker, BrokerHandlers } from "./broker";
import { Fanout } from "./fanout";
import { topicsOf } from "../hub/routing";

/** A broker for one node: what this node commits is all there is; it goes out on Bun's own pub/sub. */
export function createLocalBroker(): Broker {
  const out = new Fanout();
  let handlers: BrokerHandlers | undefined;
  let through = 0;
  /** Each message's topics, kept between batches: `messages` reads it and keeps nothing, so a batch allocates no list here. */
  const routes: (readonly string[])[] = [];
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
      for (let i = 0; i < batch.length; i++) routes[i] = topicsOf(batch[i]!);
      try {
        out.messages(frames, routes);
      } finally {
        routes.length = 0;
      }
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
