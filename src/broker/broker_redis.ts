import { Redis, randomHex, redisKeys } from "../cluster/redis";
import { Fanout } from "./fanout";
import type { Broker, BrokerHandlers, NodeCommand } from "./broker";
import type { Logger } from "../log";
import type { Observers } from "../metrics";

export interface RedisBrokerOptions {
  url: string;
  /** Key prefix shared with the Redis history (default `wc:`). */
  prefix?: string;
  /** Most volatile frames kept in their stream (default 10,000): they are at most once anyway. */
  volatileMax?: number;
  log: Logger;
  /** Delivery lag and Redis round trip histograms. */
  observers?: Observers;
}

/** Entries read per XREAD, and how long one blocks before it looks again. */
const READ_COUNT = 1000;
const BLOCK_MS = 2000;

type Entry = [id: string, fields: string[]];

/**
 * A broker for several nodes on one Redis. Every node tails the store's
 * message log (`{p}log`, whose entry ids are the message ids, written by the
 * Redis history in the same step that stores a message) and a stream of
 * volatile frames (`{p}vlog`) with XREAD on a connection of its own, and
 * publishes what it reads to its own sockets: one order on every node, and
 * no loss window, since after a lost connection it reads on from the last id
 * it delivered. Only what Redis itself no longer has (trimmed, or Redis
 * restarted empty) is reported to the hub as a gap.
 */
export async function createRedisBroker(o: RedisBrokerOptions): Promise<Broker> {
  const keys = redisKeys(o.prefix ?? "wc:");
  const logKey = keys.log;
  const vKey = keys.volatileLog;
  const volatileMax = String(o.volatileMax ?? 10_000);
  // A blocked XREAD holds its connection: commands go on another one.
  const tail = new Redis(o.url);
  const cmd = new Redis(o.url);
  await Promise.all([tail.connect(), cmd.connect()]);

  const out = new Fanout();
  // Tells this node's own commands apart in the shared stream.
  const node = randomHex(8);
  let handlers: BrokerHandlers | undefined;
  let through = 0;
  let vId = "0-0";
  let epoch = String((await cmd.send("GET", [keys.epoch])) ?? "");
  let closed = false;
  let failing = false;
  let loop: Promise<void> | undefined;
  let pinger: ReturnType<typeof setInterval> | undefined;

  const publishLocal = (topic: string, data: string) => out.event(topic, data);

  const field = (fields: string[], name: string) => {
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]!;
    return "";
  };

  /** Publishes a run of log entries, in order, and reports them delivered. */
  const deliver = (entries: Entry[]) => {
    const first = Number.parseInt(entries[0]![0], 10);
    // One read of the log is one batch: batching connections get an array per topic.
    out.messages(
      entries.map(([, fields]) => field(fields, "f")),
      entries.map(([, fields]) => field(fields, "k").split("\n")),
    );
    through = Number.parseInt(entries[entries.length - 1]![0], 10);
    // Once per read: how long the newest message took from its acceptance (on any node) to here.
    const at = Number(field(entries[entries.length - 1]![1], "a"));
    if (at > 0) o.observers?.deliveryLagSeconds.observe(Math.max(0, Date.now() - at) / 1000);
    handlers?.delivered(first, through);
  };

  /**
   * After a lost connection, or when ids jump: did Redis drop entries this
   * node never read? The store started over (another epoch), or the log was
   * trimmed past `through`.
   */
  const checkGap = async (): Promise<void> => {
    const now = String((await cmd.send("GET", [keys.epoch])) ?? "");
    if (now !== epoch) {
      const was = epoch;
      epoch = now;
      if (was !== "") {
        through = 0;
        handlers?.gap("the message store started over (Redis lost its data)");
      }
      return;
    }
    const info = (await cmd.send("XINFO", ["STREAM", logKey]).catch(() => null)) as Record<string, unknown> | null;
    const maxDeleted = info ? Number.parseInt(String(info["max-deleted-entry-id"] ?? "0-0"), 10) : 0;
    if (maxDeleted > through) {
      through = maxDeleted;
      handlers?.gap("this node fell behind the message log's retention");
    }
  };

  const runCommand = (json: string) => {
    let cmd: NodeCommand;
    try {
      cmd = JSON.parse(json) as NodeCommand;
    } catch {
      return o.log.error("redis broker: an unreadable node command in the stream", { length: json.length });
    }
    handlers?.command(cmd);
  };

  const run = async () => {
    while (!closed) {
      try {
        if (failing) await checkGap();
        const r = (await tail.send("XREAD", ["COUNT", String(READ_COUNT), "BLOCK", String(BLOCK_MS), "STREAMS", logKey, vKey, `${through}-0`, vId])) as Record<
          string,
          Entry[]
        > | null;
        if (failing) {
          failing = false;
          o.log.info("redis broker: connected again; delivery resumed from the last id delivered");
        }
        if (!r) continue;
        const log = r[logKey];
        if (log && log.length > 0) {
          const first = Number.parseInt(log[0]![0], 10);
          if (first > through + 1) await checkGap();
          deliver(log);
        }
        for (const [id, fields] of r[vKey] ?? []) {
          vId = id;
          const c = field(fields, "c");
          if (c !== "") {
            if (field(fields, "n") !== node) runCommand(c);
          } else if (field(fields, "x") === "1") handlers?.volatile(field(fields, "t"), field(fields, "d"));
          else publishLocal(field(fields, "t"), field(fields, "d"));
        }
      } catch (err) {
        if (closed) return;
        if (!failing) o.log.error("redis broker: reading the log failed; retrying", { error: (err as Error).message });
        failing = true;
        await Bun.sleep(200);
      }
    }
  };

  return {
    attach(s) {
      out.server = s;
    },
    async start(after, h) {
      handlers = h;
      out.onPressure = h.backpressure;
      through = after;
      // Volatile frames from before this node started are not news.
      const last = (await cmd.send("XREVRANGE", [vKey, "+", "-", "COUNT", "1"])) as Entry[] | null;
      vId = last?.[0]?.[0] ?? "0-0";
      loop = run();
      pinger = setInterval(() => {
        const t = performance.now();
        cmd.send("PING", []).then(
          () => o.observers?.redisSeconds.observe((performance.now() - t) / 1000),
          () => {},
        );
      }, 5_000);
      (pinger as { unref?: () => void }).unref?.();
    },
    committed() {
      // The log tail delivers this node's messages too, in the one order every node sees.
    },
    deliveredThrough: () => through,
    publishLocal,
    topicsChanged: () => out.topicsChanged(),
    publish(topic, data, droppable) {
      cmd.send("XADD", [vKey, "MAXLEN", "~", volatileMax, "*", "t", topic, "d", data, "x", droppable ? "1" : "0"]).catch(() => {
        // Volatile: at most once. A lost presence or typing frame is not a lost message.
      });
    },
    command(order) {
      cmd.send("XADD", [vKey, "MAXLEN", "~", volatileMax, "*", "c", JSON.stringify(order), "n", node]).catch((err: Error) => {
        o.log.error("redis broker: could not send a command to the other nodes", { error: err.message });
      });
    },
    counts: out,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(pinger);
      tail.close();
      cmd.close();
      await loop?.catch(() => {});
    },
  } satisfies Broker;
}
