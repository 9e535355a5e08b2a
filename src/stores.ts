/**
 * Opens what the configuration asks for: one node on SQLite, or a cluster
 * node on Redis (history, fan-out, identity). Used by `src/index.ts` only.
 */
import type { Broker } from "./broker/broker";
import { createRedisBroker } from "./broker/broker_redis";
import type { Config } from "./config";
import type { History } from "./history/history";
import { createRedisHistory } from "./history/history_redis";
import { createSqliteHistory } from "./history/history_sqlite";
import type { AccountStore, Revocations } from "./auth/store";
import { createRedisAuthStore } from "./auth/store_redis";
import { Redis } from "./cluster/redis";
import { createSqliteAuthStore } from "./auth/store_sqlite";
import type { Logger } from "./log";
import type { Observers } from "./metrics";
import type { Presence } from "./presence/presence";
import { createRedisPresence } from "./presence/presence_redis";
import { createNodeBoard, type NodeBoard } from "./cluster/node_figures";

export interface Stores {
  history: History;
  /** Undefined on one node: the app's local broker and presence. */
  broker?: Broker;
  presence?: Presence;
  /** Every node's figures, for the admin page; undefined on one node. */
  nodes?: NodeBoard;
  accounts: AccountStore;
  revocations: Revocations;
  /** A short description for the start-up line. */
  where: string;
  close(): Promise<void>;
}

/** SQLite at DB_PATH, or with REDIS_URL everything shared in Redis. */
export async function openStores(config: Config, log: Logger, observers?: Observers): Promise<Stores> {
  if (config.redisUrl === undefined) {
    const history = createSqliteHistory(config.dbPath, config.dbSync);
    const auth = createSqliteAuthStore(config.dbPath);
    return {
      history,
      ...auth,
      where: `history: ${config.dbPath}`,
      async close() {
        await history.close();
        auth.close();
      },
    };
  }
  const url = config.redisUrl;
  const prefix = config.redisPrefix;
  await warnIfVolatile(url, log);
  const history = await createRedisHistory({ url, prefix });
  const broker = await createRedisBroker({ url, prefix, log, observers });
  const auth = await createRedisAuthStore(url, prefix);
  const presence = await createRedisPresence({ url, prefix, ttlMs: config.presenceTtlMs, log });
  const nodes = await createNodeBoard(url, prefix);
  return {
    history,
    broker,
    presence,
    nodes,
    ...auth,
    where: `cluster on ${redacted(url)}, prefix ${prefix}`,
    async close() {
      await nodes.close();
      await presence.close();
      await broker.close();
      await history.close();
      auth.close();
    },
  };
}

/** A Redis URL without its password, for logs. */
const redacted = (url: string) => url.replace(/\/\/[^@/]*@/, "//***@");

/** An ack in cluster mode means "written to Redis": say so at start when Redis would lose it on a restart. */
async function warnIfVolatile(url: string, log: Logger): Promise<void> {
  const r = new Redis(url);
  try {
    await r.connect();
    const aof = (await r.send("CONFIG", ["GET", "appendonly"])) as unknown;
    const fsync = (await r.send("CONFIG", ["GET", "appendfsync"])) as unknown;
    const value = (x: unknown) => (Array.isArray(x) ? String(x[1]) : String(Object.values(x as object)[0] ?? ""));
    if (value(aof) !== "yes") {
      log.warn("Redis runs without appendonly: acknowledged messages are lost if Redis restarts; set appendonly yes (and appendfsync always or everysec)");
    } else if (value(fsync) === "no") {
      log.warn("Redis has appendfsync no: the last acknowledged messages may be lost if the machine crashes; use everysec or always");
    }
  } catch (err) {
    log.warn("could not read Redis's persistence settings; acks may not survive a Redis restart", { error: (err as Error).message });
  } finally {
    r.close();
  }
}
