/**
 * Prometheus metrics with prom-client. The per-message path only bumps plain
 * numbers (`hub.stats`, `committer.stats`, the broker's counts); the counters
 * here read them when scraped. Histograms are observed once per batch or per
 * connect, never per recipient.
 */
import client from "prom-client";
import type { Broker } from "./broker/broker";
import { FastHistogram, type Observer } from "./histogram";
import type { Hub } from "./hub/hub";
import type { Presence } from "./presence/presence";

/** What the hub observes directly. */
export interface Observers {
  /** Seconds one group commit took in the store. */
  commitSeconds: Observer;
  /** Seconds from a batch's first message arriving to its acks going out. */
  ackSeconds: Observer;
  /** Messages per group-commit batch. */
  batchSize: Observer;
  /** Messages replayed per connect. */
  replaySize: Observer;
  /** Cluster mode: seconds from a message's acceptance to its delivery on this node. */
  deliveryLagSeconds: Observer;
  /** Cluster mode: Redis round trip of a PING, seconds. */
  redisSeconds: Observer;
  /** Seconds each collection GC_PACE ran took (its count: the collections; empty when GC_PACE=0). */
  gcPauseSeconds: Observer;
}

/** A registry with process metrics (memory, CPU, event-loop lag) and every wirechat metric. */
export function createMetrics(): { registry: client.Registry; observers: Observers; attach(hub: Hub, presence: Presence, broker: Broker): void } {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "wirechat_" });
  const histogram = (name: string, help: string, buckets: number[]) => new FastHistogram(`wirechat_${name}`, help, buckets, registry);
  const seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
  const observers: Observers = {
    commitSeconds: histogram("store_commit_seconds", "Seconds one group commit took in the store.", seconds),
    ackSeconds: histogram("ack_latency_seconds", "Seconds from a batch's first message arriving to its acks being sent.", seconds),
    batchSize: histogram("commit_batch_size", "Messages per group-commit batch.", [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000]),
    replaySize: histogram("replay_messages", "Messages replayed per connect.", [0, 1, 10, 50, 100, 500, 1000, 5000, 10000]),
    deliveryLagSeconds: histogram("cluster_delivery_lag_seconds", "Seconds from a message's acceptance to its delivery on this node (cluster mode).", seconds),
    redisSeconds: histogram("redis_roundtrip_seconds", "Redis round trip of a PING (cluster mode).", seconds),
    gcPauseSeconds: histogram("gc_paced_pause_seconds", "Seconds each young-generation collection run by GC_PACE took.", [0.00025, ...seconds]),
  };

  const attach = (hub: Hub, presence: Presence, broker: Broker) => {
    const gauge = (name: string, help: string, read: () => number) =>
      new client.Gauge({
        name: `wirechat_${name}`,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    /** A counter mirrored from a plain number that only goes up. */
    const counter = (name: string, help: string, read: () => number, labels?: Record<string, () => number>) =>
      new client.Counter({
        name: `wirechat_${name}`,
        help,
        registers: [registry],
        labelNames: labels ? ["kind"] : [],
        collect() {
          this.reset();
          if (!labels) this.inc(read());
          else for (const [kind, f] of Object.entries(labels)) this.inc({ kind }, f());
        },
      });
    const s = hub.stats;
    const c = hub.committer.stats;
    gauge("connections", "Open WebSocket connections on this node.", () => hub.connections);
    gauge("users_online", "Distinct users with an open connection on this node.", () => presence.localCount());
    gauge("cluster_users_online", "Distinct users with an open connection on any node.", () => presence.count());
    counter("messages_accepted_total", "Messages stored and published, by kind.", () => c.accepted, {
      broadcast: () => c.byKind.broadcast,
      direct: () => c.byKind.direct,
      room: () => c.byKind.room,
    });
    counter("messages_duplicate_total", "Retries answered with the first ack (same sender and cid).", () => c.duplicates);
    counter("acks_total", "Acks sent for stored messages and retries.", () => c.acks);
    counter("store_failures_total", "Messages refused with store_failed.", () => c.storeFailures);
    counter("frames_in_total", "Frames received from clients.", () => s.framesIn);
    counter(
      "frames_out_total",
      "Frames sent to clients: one per subscriber of a publish, and each connection's own (welcome, acks, errors, replays).",
      () => broker.counts.framesOut + s.framesOut,
    );
    counter(
      "bytes_out_total",
      "Bytes of the frames sent to clients (UTF-8, as Bun reports them; a queued frame counts its length).",
      () => broker.counts.bytesOut + s.bytesOut,
    );
    counter("bad_frames_total", "Frames answered with an error frame.", () => s.badFrames);
    counter("rate_limited_total", "Messages refused with rate_limited.", () => s.rateLimited);
    new client.Counter({
      name: "wirechat_connects_refused_total",
      help: "Connects refused before the upgrade, by reason (the error code).",
      labelNames: ["reason"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(s.refused)) this.inc({ reason }, n);
      },
    });
    counter("resumed_false_total", "Connects whose replay could not be complete (welcome resumed:false).", () => s.resumedFalse);
    counter("dropped_sends_total", "Direct sends (welcome, replay, acks, errors) Bun reported as dropped.", () => s.droppedSends);
    counter("dropped_publishes_total", "Publishes Bun reported as dropped for some subscriber.", () => broker.counts.dropped);
    counter("backpressured_publishes_total", "Publishes that met backpressure for some subscriber (queued, not dropped).", () => broker.counts.backpressured);
    counter("backpressure_closes_total", "Connections closed by the server for being too far behind (1006 after 1 MiB unsent).", () => s.backpressureCloses);
    counter("typing_dropped_total", "Typing frames not forwarded: over the rate, or to a socket under backpressure.", () => s.typingDropped);
    counter("replay_pauses_total", "Replays that met backpressure and waited for the socket to drain.", () => s.replayPauses);
    counter("connections_opened_total", "Connections opened.", () => s.opened);
    counter("connections_closed_total", "Connections closed.", () => s.closed);
    counter("commit_batches_total", "Group-commit batches appended to the store.", () => c.batches);
    counter("resyncs_total", "Times every socket was closed to resume because this node missed messages.", () => s.gaps);
  };
  return { registry, observers, attach };
}
