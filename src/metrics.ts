import type { Broker } from "./broker/broker";
import type { Hub } from "./hub/hub";
import type { Presence } from "./presence/presence";

/** The hub's counters in the Prometheus text format. */
export function metricsText(hub: Hub, presence: Presence, broker: Broker): string {
  const s = hub.stats;
  const c = hub.committer.stats;
  const lines: string[] = [];
  const metric = (name: string, type: "counter" | "gauge", help: string, value: number) => {
    lines.push(`# HELP wirechat_${name} ${help}`, `# TYPE wirechat_${name} ${type}`, `wirechat_${name} ${value}`);
  };
  metric("connections", "gauge", "Open WebSocket connections on this node.", hub.connections);
  metric("users_online", "gauge", "Distinct users with an open connection on this node.", presence.localCount());
  metric("cluster_users_online", "gauge", "Distinct users with an open connection on any node.", presence.count());
  metric("messages_accepted_total", "counter", "Messages stored and published.", c.accepted);
  metric("messages_duplicate_total", "counter", "Retries answered with the first ack (same sender and cid).", c.duplicates);
  metric("store_failures_total", "counter", "Messages refused with store_failed.", c.storeFailures);
  metric("bad_frames_total", "counter", "Frames answered with an error frame.", s.badFrames);
  metric("dropped_sends_total", "counter", "Direct sends (welcome, replay, acks, errors) Bun reported as dropped.", s.droppedSends);
  metric("dropped_publishes_total", "counter", "Publishes Bun reported as dropped for some subscriber.", broker.dropped);
  metric("backpressured_publishes_total", "counter", "Publishes that met backpressure for some subscriber (queued, not dropped).", broker.backpressured);
  metric("replay_pauses_total", "counter", "Replays that met backpressure and waited for the socket to drain.", s.replayPauses);
  metric("connections_opened_total", "counter", "Connections opened.", s.opened);
  metric("connections_closed_total", "counter", "Connections closed.", s.closed);
  metric("rate_limited_total", "counter", "Messages refused with rate_limited.", s.rateLimited);
  metric("commit_batches_total", "counter", "Group-commit batches appended to the store.", c.batches);
  metric("resyncs_total", "counter", "Times every socket was closed to resume because this node missed messages.", s.gaps);
  return `${lines.join("\n")}\n`;
}
