import type { Server } from "bun";
import type { Broker, BrokerHandlers } from "./broker";
import { topicsOf } from "../hub/routing";

/** A broker for one node: what this node commits is all there is; it goes out on Bun's own pub/sub. */
export function createLocalBroker(): Broker {
  let server: Server<unknown> | undefined;
  let handlers: BrokerHandlers | undefined;
  let through = 0;
  let dropped = 0;
  let framesOut = 0;
  let bytesOut = 0;
  let backpressured = 0;
  const publish = (topic: string, data: string) => {
    // Before attach there is no socket to deliver to.
    if (!server) return;
    const status = server.publish(topic, data, false);
    const subscribers = server.subscriberCount(topic);
    framesOut += subscribers;
    // A positive status is the bytes of one copy.
    bytesOut += subscribers * (status > 0 ? status : data.length);
    // 0 also means "no subscribers", which is no loss.
    if (status === 0 && subscribers > 0) dropped++;
    else if (status === -1) backpressured++;
  };
  return {
    attach(s) {
      server = s;
    },
    async start(after, h) {
      through = after;
      handlers = h;
    },
    committed(batch, frames) {
      for (let i = 0; i < batch.length; i++) {
        for (const topic of topicsOf(batch[i]!)) publish(topic, frames[i]!);
      }
      if (batch.length === 0) return;
      through = batch[batch.length - 1]!.id;
      handlers?.delivered(batch[0]!.id, through);
    },
    deliveredThrough: () => through,
    publish(topic, data, droppable) {
      if (droppable) handlers?.volatile(topic, data);
      else publish(topic, data);
    },
    publishLocal: publish,
    get framesOut() {
      return framesOut;
    },
    get bytesOut() {
      return bytesOut;
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
