/**
 * Each node's own figures (connections, users, messages accepted) in one
 * Redis hash, written every few seconds, so that the admin page of any node
 * shows every node. A node that stops writing (stopped, killed, cut off)
 * drops out of the list after three missed writes.
 */
import { Redis, randomHex, redisKeys } from "./redis";

/** What one node reports of itself. */
export interface NodeFigures {
  node: string;
  connections: number;
  users: number;
  accepted: number;
  /** When it wrote them (epoch ms). */
  at: number;
}

export interface NodeBoard {
  /** Starts writing this node's figures, as `read` gives them, every `everyMs`. */
  start(read: () => Omit<NodeFigures, "node" | "at">): void;
  /** Every node that wrote within the last three periods, this one first. */
  all(): Promise<NodeFigures[]>;
  /** Stops writing and takes this node off the board. */
  close(): Promise<void>;
}

/** A board in the hash `{prefix}nodefigures` of the Redis at `url`. */
export async function createNodeBoard(url: string, prefix: string, everyMs = 2_000): Promise<NodeBoard> {
  const key = redisKeys(prefix).nodeFigures;
  const node = randomHex(6);
  const redis = new Redis(url);
  await redis.connect();
  let timer: ReturnType<typeof setInterval> | undefined;
  let read: (() => Omit<NodeFigures, "node" | "at">) | undefined;
  const write = () => {
    if (!read) return Promise.resolve();
    const f: NodeFigures = { node, ...read(), at: Date.now() };
    return redis.send("HSET", [key, node, JSON.stringify(f)]).then(
      () => {},
      () => {}, // Redis away: the board is advisory, the next write catches up
    );
  };
  return {
    start(r) {
      read = r;
      void write();
      timer = setInterval(write, everyMs);
      (timer as { unref?: () => void }).unref?.();
    },
    async all() {
      const raw = (await redis.send("HGETALL", [key])) as Record<string, string> | string[] | null;
      const values = Array.isArray(raw) ? raw.filter((_, i) => i % 2 === 1) : Object.values(raw ?? {});
      const fresh = Date.now() - 3 * everyMs;
      const out: NodeFigures[] = [];
      for (const v of values) {
        try {
          const f = JSON.parse(String(v)) as NodeFigures;
          if (f.at >= fresh) out.push(f);
        } catch {
          // not ours: skip it
        }
      }
      return out.sort((a, b) => (a.node === node ? -1 : b.node === node ? 1 : a.node < b.node ? -1 : 1));
    },
    async close() {
      clearInterval(timer);
      await redis.send("HDEL", [key, node]).catch(() => {});
      redis.close();
    },
  };
}
