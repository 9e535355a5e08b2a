/**
 * Each node's own figures (connections, users, messages accepted) in Redis,
 * written every few seconds, so that the admin page of any node shows every
 * node. Times are Redis's own (TIME inside the scripts), so a node's clock
 * does not matter; a node that stops writing (stopped, killed, cut off) is
 * dropped from the board after three missed writes.
 */
import { Redis, Script, randomHex, redisKeys } from "./redis";

/** What one node reports of itself. */
export interface NodeFigures {
  node: string;
  connections: number;
  users: number;
  accepted: number;
  /** True for the node that answers. */
  self: boolean;
}

export interface NodeBoard {
  /** Starts writing this node's figures, as `read` gives them, every `everyMs`. */
  start(read: () => Omit<NodeFigures, "node" | "self">): void;
  /** Every node that wrote within the last three periods, this one first; rejects after `READ_MS`. */
  all(): Promise<NodeFigures[]>;
  /** Stops writing and takes this node off the board. */
  close(): Promise<void>;
}

/** A read of the board may take this long: the admin page must answer while Redis does not. */
const READ_MS = 500;

/** KEYS: figures hash, times sorted set. ARGV: node, JSON. Files the figures under Redis's time. */
const WRITE = new Script(`
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[1])
return 1`);

/** KEYS: figures hash, times sorted set. ARGV: max age (ms). Drops the stale nodes, returns the rest's figures. */
const READ = new Script(`
local t = redis.call('TIME')
local cutoff = t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[1])
for _, n in ipairs(redis.call('ZRANGE', KEYS[2], '-inf', '(' .. cutoff, 'BYSCORE')) do
  redis.call('HDEL', KEYS[1], n)
  redis.call('ZREM', KEYS[2], n)
end
return redis.call('HVALS', KEYS[1])`);

const within = <T>(p: Promise<T>, what: string): Promise<T> =>
  Promise.race([p, Bun.sleep(READ_MS).then(() => Promise.reject(new Error(`Redis did not answer ${what} within ${READ_MS} ms`)))]);

/** A board under `prefix` in the Redis at `url`. */
export async function createNodeBoard(url: string, prefix: string, everyMs = 2_000): Promise<NodeBoard> {
  const keys = redisKeys(prefix);
  const ks = [keys.nodeFigures, keys.nodeFiguresAt];
  const node = randomHex(6);
  const redis = new Redis(url);
  await redis.connect();
  let timer: ReturnType<typeof setInterval> | undefined;
  let read: (() => Omit<NodeFigures, "node" | "self">) | undefined;
  const write = () => {
    if (!read) return;
    // Redis away: the board is advisory, and the next write catches up.
    WRITE.run(redis, ks, [node, JSON.stringify({ node, ...read() })]).catch(() => {});
  };
  return {
    start(r) {
      read = r;
      write();
      timer = setInterval(write, everyMs);
      (timer as { unref?: () => void }).unref?.();
    },
    async all() {
      const values = (await within(READ.run(redis, ks, [String(3 * everyMs)]), "the node board")) as string[];
      const out: NodeFigures[] = [];
      for (const v of values) {
        try {
          const f = JSON.parse(String(v)) as NodeFigures;
          out.push({ node: f.node, connections: f.connections, users: f.users, accepted: f.accepted, self: f.node === node });
        } catch {
          // not ours: skip it
        }
      }
      return out.sort((a, b) => (a.self ? -1 : b.self ? 1 : a.node < b.node ? -1 : 1));
    },
    async close() {
      clearInterval(timer);
      await within(Promise.all([redis.send("HDEL", [keys.nodeFigures, node]), redis.send("ZREM", [keys.nodeFiguresAt, node])]), "the board's removal").catch(
        () => {},
      );
      redis.close();
    },
  };
}
