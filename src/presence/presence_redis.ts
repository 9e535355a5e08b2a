import { Redis, Script, randomHex, redisKeys } from "../cluster/redis";

/** Removes the nodes whose last beat is older than ARGV[1], with their sets, in one step. */
const REAP = new Script(`
local gone = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[1], 'BYSCORE')
for _, n in ipairs(gone) do
  redis.call('ZREM', KEYS[1], n)
  redis.call('DEL', ARGV[2] .. n, ARGV[3] .. n)
end
return gone`);
import type { Logger } from "../log";
import type { Presence } from "./presence";
import { Coalescer, Tally } from "./tally";

export interface RedisPresenceOptions {
  url: string;
  prefix?: string;
  /** A node whose heartbeat is older than this is gone, and its users with it (default 10 s). */
  ttlMs?: number;
  tickMs?: number;
  log: Logger;
}

/** One change a node announces: a user or a room member came or went, or the node itself went. */
type Op = ["+u" | "-u", string] | ["+r" | "-r", string, string] | ["-n"];
type Entry = [id: string, fields: string[]];

/** Who is where: user (or `room\nuser`) → the nodes it has connections on. */
class View {
  readonly #m = new Map<string, Set<string>>();
  /** Adds `node` under `key`; true when the key was nowhere before. */
  add(key: string, node: string): boolean {
    let s = this.#m.get(key);
    if (!s) this.#m.set(key, (s = new Set()));
    const was = s.size;
    s.add(node);
    return was === 0;
  }
  /** Removes `node` from `key`; true when the key is nowhere now. */
  remove(key: string, node: string): boolean {
    const s = this.#m.get(key);
    if (!s?.delete(node)) return false;
    if (s.size > 0) return false;
    this.#m.delete(key);
    return true;
  }
  has = (key: string) => this.#m.has(key);
  keys = () => this.#m.keys();
  entries = () => this.#m.entries();
  get size() {
    return this.#m.size;
  }
}

/**
 * Presence for a cluster. Each node keeps its users in Redis (`{p}pu:<node>`,
 * `{p}pr:<node>`), announces changes on a stream (`{p}plog`) that every node
 * tails, and beats a heartbeat (`{p}nodes`). Every node keeps the whole
 * cluster's view and derives join/leave from it; a node that stops beating
 * for `ttlMs` is dropped with its users (within ttlMs plus a beat, under 2x
 * ttlMs). After a lost connection the view is rebuilt from the sets.
 */
export async function createRedisPresence(o: RedisPresenceOptions): Promise<Presence> {
  const keys = redisKeys(o.prefix ?? "wc:");
  const ttl = o.ttlMs ?? 10_000;
  const node = randomHex(6);
  const nodesKey = keys.nodes;
  const logKey = keys.presenceLog;
  const usersOf = keys.nodeUsers;
  const roomsOf = keys.nodeRooms;
  const cmd = new Redis(o.url);
  const tail = new Redis(o.url);
  await Promise.all([cmd.connect(), tail.connect()]);

  const mine = new Tally<string>();
  const myRooms = new Tally<string>(); // `room\nuser`
  const online = new View();
  const members = new View(); // `room\nuser`
  const changes = new Coalescer(o.tickMs ?? 20);
  let pending: Op[] = [];
  let flushing = false;
  let closed = false;
  let lastId = "0-0";
  /** Until then no other node is taken for dead (this node just reconnected). */
  let graceUntil = 0;
  /** Redis failed since the last success: the next success starts a grace period. */
  let degraded = false;
  const recovered = (now: number) => {
    if (!degraded) return;
    degraded = false;
    // Two TTLs: every other node gets time to reconnect and beat, even on a loaded machine.
    graceUntil = now + 2 * ttl;
  };

  const apply = (from: string, op: Op) => {
    if (op[0] === "+u" && online.add(op[1], from)) changes.user(op[1], "join");
    else if (op[0] === "-u" && online.remove(op[1], from)) changes.user(op[1], "leave");
    else if (op[0] === "+r" && members.add(`${op[1]}\n${op[2]}`, from)) changes.room(op[1], op[2], "join");
    else if (op[0] === "-r" && members.remove(`${op[1]}\n${op[2]}`, from)) changes.room(op[1], op[2], "leave");
    else if (op[0] === "-n") dropNode(from);
  };

  const dropNode = (gone: string) => {
    for (const [user, nodes] of [...online.entries()]) if (nodes.has(gone)) apply(gone, ["-u", user]);
    for (const [key, nodes] of [...members.entries()]) {
      if (!nodes.has(gone)) continue;
      const [room, user] = key.split("\n") as [string, string];
      apply(gone, ["-r", room, user]);
    }
  };

  /** Writes this node's changes of the tick to its sets and the stream, in one MULTI. */
  const flushOps = async () => {
    if (flushing || pending.length === 0) return;
    flushing = true;
    const ops = pending;
    pending = [];
    try {
      // Sent without waiting in between, so nothing else on this connection lands inside the MULTI.
      const replies: Promise<unknown>[] = [cmd.send("MULTI", [])];
      for (const op of ops) {
        if (op[0] === "+u") replies.push(cmd.send("SADD", [usersOf(node), op[1]]));
        else if (op[0] === "-u") replies.push(cmd.send("SREM", [usersOf(node), op[1]]));
        else if (op[0] === "+r") replies.push(cmd.send("SADD", [roomsOf(node), `${op[1]}\n${op[2]}`]));
        else if (op[0] === "-r") replies.push(cmd.send("SREM", [roomsOf(node), `${op[1]}\n${op[2]}`]));
      }
      replies.push(cmd.send("XADD", [logKey, "MAXLEN", "~", "100000", "*", "n", node, "d", JSON.stringify(ops)]));
      replies.push(cmd.send("EXEC", []));
      await Promise.all(replies);
    } catch (err) {
      // Redis is away: the resync after it comes back rewrites this node's sets whole.
      o.log.warn("redis presence: could not write changes; they are rewritten on reconnect", { changes: ops.length, error: (err as Error).message });
    } finally {
      flushing = false;
      if (pending.length > 0) queueMicrotask(() => void flushOps());
    }
  };
  const local = (op: Op) => {
    apply(node, op);
    pending.push(op);
    if (pending.length === 1) setTimeout(() => void flushOps(), 0);
  };

  /** Rebuilds the view from every live node's sets, and writes this node's own again (Redis may have lost them). */
  const resync = async () => {
    const now = Date.now();
    const own = [...mine.keys()];
    const ownRooms = [...myRooms.keys()];
    // One MULTI (sent without waiting in between): no other node ever reads this node's sets half-written.
    const replies: Promise<unknown>[] = [cmd.send("MULTI", []), cmd.send("DEL", [usersOf(node), roomsOf(node)])];
    if (own.length > 0) replies.push(cmd.send("SADD", [usersOf(node), ...own]));
    if (ownRooms.length > 0) replies.push(cmd.send("SADD", [roomsOf(node), ...ownRooms]));
    replies.push(cmd.send("ZADD", [nodesKey, String(now), node]));
    // Announced too: a node that read the sets before they were written again learns them from the stream.
    const ops: Op[] = own.map((u): Op => ["+u", u]);
    for (const key of ownRooms) ops.push(["+r", ...(key.split("\n") as [string, string])]);
    if (ops.length > 0) replies.push(cmd.send("XADD", [logKey, "MAXLEN", "~", "100000", "*", "n", node, "d", JSON.stringify(ops)]));
    replies.push(cmd.send("EXEC", []));
    await Promise.all(replies);
    const last = (await cmd.send("XREVRANGE", [logKey, "+", "-", "COUNT", "1"])) as Entry[] | null;
    lastId = last?.[0]?.[0] ?? "0-0";
    // Right after an outage every heartbeat is old: trust the sets of every registered node until they had a TTL to beat.
    const since = now < graceUntil ? "-inf" : String(now - ttl);
    const nodes = ((await cmd.send("ZRANGE", [nodesKey, since, "+inf", "BYSCORE"])) as string[]).filter((n) => n !== node);
    const seenUsers = new Set<string>(own.map((u) => `${node}\t${u}`));
    const seenRooms = new Set<string>(ownRooms.map((k) => `${node}\t${k}`));
    for (const n of nodes) {
      for (const u of (await cmd.send("SMEMBERS", [usersOf(n)])) as string[]) seenUsers.add(`${n}\t${u}`);
      for (const k of (await cmd.send("SMEMBERS", [roomsOf(n)])) as string[]) seenRooms.add(`${n}\t${k}`);
    }
    // Remove what is no longer there, then add what is.
    for (const [user, ns] of [...online.entries()]) for (const n of [...ns]) if (!seenUsers.has(`${n}\t${user}`)) apply(n, ["-u", user]);
    for (const [key, ns] of [...members.entries()]) {
      for (const n of [...ns]) {
        if (seenRooms.has(`${n}\t${key}`)) continue;
        const [room, user] = key.split("\n") as [string, string];
        apply(n, ["-r", room, user]);
      }
    }
    for (const s of seenUsers) {
      const [n, u] = s.split("\t") as [string, string];
      apply(n, ["+u", u]);
    }
    for (const s of seenRooms) {
      const [n, key] = s.split("\t") as [string, string];
      const [room, user] = key.split("\n") as [string, string];
      apply(n, ["+r", room, user]);
    }
  };

  /** Beats, and drops nodes whose beat is older than the TTL. */
  /**
   * Beats, then drops from this node's view every node that is not live:
   * stale in `{p}nodes` (removed by whoever saw it first) or absent from it.
   * A node that finds itself removed (taken for dead while frozen or cut
   * off) writes its sets again and announces its users.
   */
  const beat = async () => {
    const now = Date.now();
    const added = Number(await cmd.send("ZADD", [nodesKey, String(now), node]));
    recovered(now);
    if (added === 1) {
      // resync writes this node's sets again and announces its users.
      await resync();
      o.log.warn("redis presence: this node had been taken for dead; its users are announced again", { users: mine.size });
    }
    // Right after Redis came back every heartbeat is old: wait a TTL for the others to beat again.
    if (now < graceUntil) return;
    // Only nodes whose entry is gone are dropped: a node sees its own removal
    // (its next ZADD adds it) and announces its users again, so no view can
    // lose a node that is still beating.
    await REAP.run(cmd, [nodesKey], [String(now - ttl), keys.nodeUsers(""), keys.nodeRooms("")]);
    const registered = new Set((await cmd.send("ZRANGE", [nodesKey, "0", "-1"])) as string[]);
    const known = new Set<string>();
    for (const [, nodes] of online.entries()) for (const n of nodes) known.add(n);
    for (const [, nodes] of members.entries()) for (const n of nodes) known.add(n);
    for (const n of known) if (n !== node && !registered.has(n)) dropNode(n);
  };

  let failing = false;
  const run = async () => {
    while (!closed) {
      try {
        if (failing) {
          await cmd.send("PING", []);
          recovered(Date.now());
          await resync();
          failing = false;
          o.log.info("redis presence: connected again; presence rebuilt");
        }
        const r = (await tail.send("XREAD", ["COUNT", "1000", "BLOCK", "2000", "STREAMS", logKey, lastId])) as Record<string, Entry[]> | null;
        for (const [id, fields] of r?.[logKey] ?? []) {
          lastId = id;
          const from = fields[fields.indexOf("n") + 1]!;
          if (from === node) continue;
          for (const op of JSON.parse(fields[fields.indexOf("d") + 1]!) as Op[]) apply(from, op);
        }
      } catch (err) {
        if (closed) return;
        if (!failing) o.log.error("redis presence: reading changes failed; retrying", { error: (err as Error).message });
        failing = true;
        degraded = true;
        await Bun.sleep(200);
      }
    }
  };

  await resync();
  const loop = run();
  const beating = setInterval(
    () =>
      void beat().catch(() => {
        failing = true;
        degraded = true;
      }),
    Math.max(100, Math.floor(ttl / 3)),
  );

  return {
    add(user) {
      if (mine.add(user)) local(["+u", user]);
    },
    remove(user) {
      if (mine.remove(user)) local(["-u", user]);
    },
    addRoom(user, room) {
      if (myRooms.add(`${room}\n${user}`)) local(["+r", room, user]);
    },
    removeRoom(user, room) {
      if (myRooms.remove(`${room}\n${user}`)) local(["-r", room, user]);
    },
    isOnline: (user) => online.has(user),
    count: () => online.size,
    users: () => [...online.keys()],
    roomUsers(room) {
      const out: string[] = [];
      const prefix = `${room}\n`;
      for (const key of members.keys()) if (key.startsWith(prefix)) out.push(key.slice(prefix.length));
      return out;
    },
    localCount: () => mine.size,
    onChanges: (handler) => changes.onChanges(handler),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(beating);
      changes.stop();
      await cmd.send("DEL", [usersOf(node), roomsOf(node)]).catch(() => {});
      await cmd.send("ZREM", [nodesKey, node]).catch(() => {});
      await cmd.send("XADD", [logKey, "MAXLEN", "~", "100000", "*", "n", node, "d", JSON.stringify([["-n"]])]).catch(() => {});
      tail.close();
      cmd.close();
      await loop.catch(() => {});
    },
  } satisfies Presence;
}
