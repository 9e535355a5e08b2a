/**
 * The cluster under test: one private redis-server and two wirechat nodes
 * (src/index.ts with REDIS_URL, a fresh REDIS_PREFIX, the same AUTH=jwt and
 * MSG_RATE=0 as the single node), fresh for every scenario run.
 *
 * Placement on this 2-core machine (see PLACEMENT): both nodes on core 0, where
 * the single node runs; Redis and the load client on core 1. The two nodes
 * together get one core, as the single node does, so the cluster's figures
 * are the cost of the same job through Redis, not of extra hardware; Redis
 * shares its core with the C client (about half a core at these rates).
 */
import { randomBytes } from "node:crypto";
import { startRedis, type BenchRedis } from "./redis";
import { startServer, type RunningServer, type ServerSpec } from "./servers";

/** Which core each process of a cluster run is pinned to (when pinning is on). */
export const PLACEMENT = { nodes: [0, 0], redis: 1, client: 1 } as const;

/** A running cluster. */
export interface RunningCluster {
  redis: BenchRedis;
  nodes: RunningServer[];
  ports: number[];
  prefix: string;
  /** Whether Redis and every node still run. */
  alive(): boolean;
  /** Which process died, for the error message. */
  dead(): string[];
  stop(): Promise<void>;
}

/** Starts Redis, then the nodes (in parallel) on it under a fresh key prefix. */
export async function startCluster(spec: ServerSpec, root: string): Promise<RunningCluster> {
  const redis = await startRedis(PLACEMENT.redis);
  const prefix = `bench${randomBytes(4).toString("hex")}:`;
  const started = await Promise.allSettled(
    PLACEMENT.nodes.map((core) => startServer(spec, root, { core, env: { REDIS_URL: redis.url, REDIS_PREFIX: prefix } })),
  );
  const nodes = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
  };
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const dead = () => [...(redis.alive() ? [] : ["redis-server"]), ...nodes.flatMap((n, i) => (n.alive() ? [] : [`node ${i + 1}`]))];
  return { redis, nodes, ports: nodes.map((n) => n.port), prefix, alive: () => dead().length === 0, dead, stop };
}
