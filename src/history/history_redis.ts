/**
 * History in Redis, shared by every node of a cluster (layout:
 * /work/cluster_contract.md). Appends and pruning are Lua scripts, so each is
 * one atomic step; reads are ZRANGE BYSCORE with LIMIT on the index sorted
 * sets, then HMGET of the frames.
 */
import type { Appended, CidHit, History, NewMessage, StoredMessage } from "./history";
import { indexKeys, keysOf, readerKeys, topicsOf } from "../hub/routing";
import { mergeIds } from "./id_index";
import { toFrame } from "./frame";
import { encode, type MessageFrame, type MessageKind } from "../protocol";
import { Redis, randomHex, redisKeys } from "../cluster/redis";
import { APPEND, PRUNE, RAISE, SET_CURSOR } from "./redis_scripts";

export interface RedisHistoryOptions {
  url: string;
  /** Key prefix, `wc:` by default: several data sets can share one Redis. */
  prefix?: string;
  /** Entries kept in the log stream (`MAXLEN ~`), 100,000 by default. */
  logMax?: number;
}

export interface RedisHistory extends History {
  /** Its connection (a blocking XREAD needs one of its own: `new Redis(url)`). */
  readonly redis: Redis;
  readonly prefix: string;
  readonly keys: ReturnType<typeof redisKeys>;
}

/** A message frame up to its id: the append script writes the real id after it, as the answer here does. */
const BEFORE_ID = '{"type":"message","id":';
/** A frame starts with this when its id is 0: the script writes the real id in its place. */
const HEAD = `${BEFORE_ID}0`;
/** Attempts of one prune step when other nodes prune at the same time. */
const PRUNE_ATTEMPTS = 5;

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const bound = (x: number): string => (x === Infinity ? "+inf" : x === -Infinity ? "-inf" : String(x));

/** The frame JSON after `{"type":"message","id":N`: every node sends the same bytes clients receive. */
function restOf(m: NewMessage): string {
  const frame = encode(toFrame({ ...m, id: 0 }));
  if (!frame.startsWith(HEAD)) throw new Error(`a message frame must start with ${HEAD}: ${frame.slice(0, 40)}`);
  return frame.slice(HEAD.length);
}

function stored(id: number, n: NewMessage): StoredMessage {
  const m: StoredMessage = { id, kind: n.kind, from: n.from, text: n.text, at: n.at };
  if (n.to !== undefined) m.to = n.to;
  if (n.cid !== undefined) m.cid = n.cid;
  return m;
}

/** Opens the history under `prefix`: takes the data set's epoch, or makes one when it is empty. */
export async function createRedisHistory(opts: RedisHistoryOptions): Promise<RedisHistory> {
  const prefix = opts.prefix ?? "wc:";
  const logMax = String(opts.logMax ?? 100_000);
  const k = redisKeys(prefix);
  const redis = new Redis(opts.url);
  await redis.connect();
  let epoch = "";
  let last = 0;
  let closed = false;

  /**
   * Takes the data set's epoch, making one when it has none (it started
   * empty). When it changed, `lastId()` follows the new data set, whose ids
   * start again. `append` calls it before rejecting with code EPOCH.
   */
  const refreshEpoch = async (): Promise<string> => {
    await redis.send("SET", [k.epoch, randomHex(16), "NX"]);
    const [now, top] = await Promise.all([redis.send("GET", [k.epoch]), redis.send("GET", [k.id])]);
    if (now !== epoch) {
      epoch = String(now);
      last = num(top);
    }
    return epoch;
  };
  try {
    await refreshEpoch();
  } catch (err) {
    redis.close();
    throw err;
  }

  /** Ids under one index key with `after` < id <= `upTo`: the oldest `limit`, or the newest, ascending. */
  const range = async (key: string, after: number, upTo: number, limit: number, newest: boolean): Promise<number[]> => {
    if (limit <= 0 || upTo <= after) return [];
    const lo = `(${bound(after)}`;
    const hi = bound(upTo);
    const args = newest ? [k.index(key), hi, lo, "BYSCORE", "REV"] : [k.index(key), lo, hi, "BYSCORE"];
    const ids = ((await redis.send("ZRANGE", [...args, "LIMIT", "0", String(limit)])) as string[]).map(Number);
    return newest ? ids.reverse() : ids;
  };
  /** Ids under one index key below `before`, newest first. */
  const before = async (key: string, before: number, limit: number): Promise<number[]> => {
    if (limit <= 0) return [];
    const ids = (await redis.send("ZRANGE", [k.index(key), `(${bound(before)}`, "-inf", "BYSCORE", "REV", "LIMIT", "0", String(limit)])) as string[];
    return ids.map(Number);
  };
  /** The messages of `ids`, in that order; one pruned meanwhile is left out. */
  const fetch = async (ids: number[]): Promise<StoredMessage[]> => {
    if (ids.length === 0) return [];
    const fields = ids.map(String);
    const [frames, cids] = (await Promise.all([redis.send("HMGET", [k.messages, ...fields]), redis.send("HMGET", [k.cids, ...fields])])) as (string | null)[][];
    const out: StoredMessage[] = [];
    for (let i = 0; i < ids.length; i++) {
      const frame = frames![i];
      if (frame === null || frame === undefined) continue;
      const f = JSON.parse(frame) as MessageFrame;
      const m: StoredMessage = { id: f.id, kind: f.kind, from: f.from, text: f.text, at: f.at };
      if (f.to !== undefined) m.to = f.to;
      const cid = cids![i];
      if (cid !== null && cid !== undefined) m.cid = cid;
      out.push(m);
    }
    return out;
  };

  const append = async (batch: readonly NewMessage[]): Promise<Appended[]> => {
    if (batch.length === 0) return [];
    const args = [epoch, logMax];
    /** Each message's frame after its id (`restOf`), for the answer's frames. */
    const rests: string[] = [];
    for (const n of batch) {
      const rest = restOf(n);
      rests.push(rest);
      args.push(n.kind, n.from, n.to ?? "", n.cid ?? "", String(n.at), rest, topicsOf(n).join("\n"), keysOf(n).join(" "));
    }
    let results: (number | [string, number, string, string])[];
    try {
      results = await APPEND.run(redis, [prefix], args);
    } catch (err) {
      if (!/^EPOCH/.test((err as Error).message ?? "")) throw err;
      await refreshEpoch().catch(() => {});
      throw Object.assign(new Error("the message store started over: its epoch changed"), { code: "EPOCH" });
    }
    return results.map((r, i): Appended => {
      if (typeof r === "number") {
        if (r > last) last = r;
        return { stored: stored(r, batch[i]!), frame: `${BEFORE_ID}${r}${rests[i]!}` };
      }
      return { duplicate: { id: Number(r[1]), kind: r[2] as MessageKind, to: r[3] === "" ? undefined : r[3] } };
    });
  };

  const findByCid = async (from: string, cid: string, notBefore: number): Promise<CidHit | undefined> => {
    const v = (await redis.send("GET", [k.cid(from, cid)])) as string | null;
    const m = v === null ? null : /^(\d+)\|([^|]*)\|(.*)\|([^|]*)$/.exec(v);
    if (!m || Number(m[4]) < notBefore) return undefined;
    return { id: Number(m[1]), kind: m[2] as MessageKind, to: m[3] === "" ? undefined : m[3] };
  };

  /** One prune step: reads the oldest ids after prunedThrough (ids are dense), then removes them if no other node pruned meanwhile. */
  const pruneStep = async (maxMessages: number, minAt: number, maxRows: number): Promise<number | undefined> => {
    const [p, top, count] = (await Promise.all([redis.send("GET", [k.pruned]), redis.send("GET", [k.id]), redis.send("HLEN", [k.messages])])).map(num) as [
      number,
      number,
      number,
    ];
    const hi = Math.min(p + maxRows, top);
    if (hi <= p) return 0;
    const ids = Array.from({ length: hi - p }, (_, i) => String(p + 1 + i));
    const frames = (await redis.send("HMGET", [k.messages, ...ids])) as (string | null)[];
    const removed: string[] = [];
    const keys = new Set<string>();
    const inbox = new Map<string, string>();
    let through = p;
    for (let i = 0; i < ids.length; i++) {
      const frame = frames[i];
      if (frame !== null && frame !== undefined) {
        const f = JSON.parse(frame) as MessageFrame;
        if (count - removed.length <= maxMessages && f.at >= minAt) break;
        removed.push(ids[i]!);
        for (const key of keysOf(f)) keys.add(key);
        if (f.kind === "direct") inbox.set(f.to!, ids[i]!);
      } // else an id no message kept (a failed script): it is passed like a pruned one
      through = p + 1 + i;
    }
    if (through === p) return 0;
    const args = [epoch, String(p), String(through), String(keys.size), ...keys, String(inbox.size), ...[...inbox].flat(), ...removed];
    const n = num(await PRUNE.run(redis, [prefix], args));
    return n < 0 ? undefined : n;
  };

  return {
    get epoch() {
      return epoch;
    },
    redis,
    prefix,
    keys: k,
    refreshEpoch,
    lastId: () => last,
    newest: async () => num(await redis.send("GET", [k.id])),
    append,
    findByCid,
    async visible(reader, after, upTo, limit, newest = false) {
      const lists = await Promise.all(readerKeys(reader.user, reader.rooms).map((key) => range(key, after, upTo, limit, newest)));
      return fetch(mergeIds(lists, limit, newest));
    },
    inbox: async (user, after, upTo, limit, newest = false) => fetch(await range(indexKeys.to(user), after, upTo, limit, newest)),
    conversation: async (a, b, beforeId, limit) => fetch(await before(indexKeys.pair(a, b), beforeId, limit)),
    page: async (room, beforeId, limit) => fetch(await before(room === undefined ? indexKeys.broadcast : indexKeys.room(room), beforeId, limit)),
    prunedThrough: async () => num(await redis.send("GET", [k.pruned])),
    prunedInbox: async (user) => num(await redis.send("HGET", [k.prunedInbox, user])),
    cursor: async (user) => num(await redis.send("HGET", [k.cursors, user])),
    setCursor: async (user, id) => void (await SET_CURSOR.run(redis, [k.cursors], [user, String(id)])),
    check: async () => void (await redis.send("PING", [])),
    get: async (ids) => fetch([...ids].sort((a, b) => a - b)),
    async reads(user) {
      const flat = (await redis.send("HGETALL", [k.reads(user)])) as Record<string, string> | string[] | null;
      const entries = Array.isArray(flat) ? Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!]) : Object.entries(flat ?? {});
      return Object.fromEntries(entries.map(([c, id]) => [c, Number(id)]));
    },
    setRead: async (user, conv, id) => num(await RAISE.run(redis, [k.reads(user)], [conv, String(id)])),
    async unread(user, rooms, markers, cap) {
      const out: Record<string, { count: number; lastId: number }> = {};
      // The user's own messages are not unread: count among the newest `cap` after the marker, by sender.
      const note = async (conv: string, key: string) => {
        const others = (await fetch(await range(key, markers[conv] ?? 0, Infinity, cap, true))).filter((m) => m.from !== user);
        if (others.length > 0) out[conv] = { count: others.length, lastId: others[others.length - 1]!.id };
      };
      await Promise.all([note("*", indexKeys.broadcast), ...[...rooms].map((r) => note(`#${r}`, indexKeys.room(r)))]);
      // Direct conversations: among the newest `cap` messages to the user, those after each partner's marker.
      for (const m of await fetch(await range(indexKeys.to(user), 0, Infinity, cap, true))) {
        if (m.from === user || m.id <= (markers[`@${m.from}`] ?? 0)) continue;
        const c = (out[`@${m.from}`] ??= { count: 0, lastId: 0 });
        c.count++;
        c.lastId = Math.max(c.lastId, m.id);
      }
      return out;
    },
    async prune(maxMessages, minAt, maxRows) {
      for (let i = 0; i < PRUNE_ATTEMPTS; i++) {
        const n = await pruneStep(maxMessages, minAt, maxRows);
        if (n !== undefined) return n;
      }
      return 0;
    },
    async close() {
      if (closed) return;
      closed = true;
      redis.close();
    },
  } satisfies RedisHistory;
}
