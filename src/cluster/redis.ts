/**
 * Redis plumbing of the cluster's stores: key names (one place that spells
 * them), a connection that fails fast while Redis is away and connects again
 * on the next command, Lua scripts run by digest.
 */
import { RedisClient } from "bun";

/** Every key of one data set, under `prefix` (`wc:` by default); see /work/cluster_contract.md. */
export function redisKeys(prefix: string) {
  return {
    epoch: `${prefix}epoch`,
    id: `${prefix}id`,
    /** Hash id → the message frame JSON. */
    messages: `${prefix}m`,
    /** Hash id → cid. */
    cids: `${prefix}c`,
    /** Sorted set of the ids filed under an index key of `keysOf`. */
    index: (key: string) => `${prefix}ix:${key}`,
    /** `<id>|<kind>|<to>|<at>` for a sender's cid, expiring after the cid window. */
    cid: (from: string, cid: string) => `${prefix}cid:${from}\n${cid}`,
    cursors: `${prefix}cursors`,
    /** Hash conversation (`@user`, `#room`, `*`) → the newest id `user` read. */
    reads: (user: string) => `${prefix}reads:${user}`,
    pruned: `${prefix}pruned`,
    prunedInbox: `${prefix}pruned_inbox`,
    /** Stream of committed messages, entry id `<id>-0`, fields `f` (frame) and `k` (topics joined by "\n"). */
    log: `${prefix}log`,
    /** Stream of volatile frames (typing), fields `t` (topic) and `d` (frame). */
    volatileLog: `${prefix}vlog`,
    /** Stream of presence changes, fields `n` (node) and `d` (JSON list of changes). */
    presenceLog: `${prefix}plog`,
    /** Sorted set node → its last heartbeat (epoch ms). */
    nodes: `${prefix}nodes`,
    /** Set of the users with a connection on `node`. */
    nodeUsers: (node: string) => `${prefix}pu:${node}`,
    /** Set of `room\nuser` with a connection in the room on `node`. */
    nodeRooms: (node: string) => `${prefix}pr:${node}`,
    /** Hash username → password hash (accounts mode). */
    accounts: `${prefix}accounts`,
    /** Hash user → epoch seconds before which their tokens are refused. */
    revoked: `${prefix}revoked`,
    /** Hash node → its figures for the admin page (JSON, see node_figures.ts). */
    nodeFigures: `${prefix}nodefigures`,
    /** Sorted set node → when it last wrote its figures (Redis time, ms). */
    nodeFiguresAt: `${prefix}nodefigures_at`,
    /** The accounts' HS256 key (base64). */
    accountsKey: `${prefix}secret:accounts_hs256`,
  } as const;
}

/**
 * A Redis connection that never queues: while Redis is unreachable a command
 * fails at once (a sender is told store_failed, and nothing it sent is applied
 * later behind its back); the next command connects again. A command in
 * flight when the connection breaks rejects too: it may or may not have been
 * applied, which a retry with the same cid resolves.
 */
export class Redis {
  readonly client: RedisClient;
  #closed = false;
  #connecting: Promise<void> | undefined;

  constructor(
    readonly url: string,
    connectionTimeout = 5_000,
  ) {
    this.client = new RedisClient(url, { connectionTimeout, autoReconnect: false, enableOfflineQueue: false });
  }

  /** Connects (again); concurrent callers share one attempt. */
  connect(): Promise<void> {
    this.#connecting ??= this.client.connect().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  async send(command: string, args: string[]): Promise<any> {
    if (this.#closed) throw Object.assign(new Error("the Redis connection is closed"), { code: "ERR_REDIS_CONNECTION_CLOSED" });
    if (!this.client.connected) await this.connect();
    return this.client.send(command, args);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.client.close();
  }
}

/** A Lua script run by its SHA-1 (EVALSHA); a server that does not know it (restarted, SCRIPT FLUSH) gets the source once. */
export class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = new Bun.CryptoHasher("sha1").update(source).digest("hex");
  }

  async run(redis: Redis, keys: string[], args: string[]): Promise<any> {
    const rest = [String(keys.length), ...keys, ...args];
    try {
      return await redis.send("EVALSHA", [this.sha, ...rest]);
    } catch (err) {
      // NOSCRIPT: the script did not run, so running it now cannot apply it twice.
      if (!/^NOSCRIPT/.test((err as Error).message ?? "")) throw err;
      return redis.send("EVAL", [this.source, ...rest]);
    }
  }
}

/** `bytes` random bytes as hex. */
export const randomHex = (bytes: number): string => Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
