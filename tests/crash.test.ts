/**
 * Crash test: the server runs as a child process and is killed with SIGKILL
 * at a random moment while clients send with cids; after a restart on the same
 * file every acked message is stored exactly once and reaches every recipient
 * that resumes with `since`, in order.
 */
import { describe, expect, test } from "bun:test";
import { Signal, waitUntil } from "./helpers";
import { spawnServer } from "./spawn";
import { createSqliteHistory } from "../src/history/history_sqlite";
import { tempDir } from "./tmp";
import type { MessageFrame, SingleServerFrame as ServerFrame } from "../src/protocol";

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A bare socket that records acks and messages and can await a condition. */
class Peer {
  ws!: WebSocket;
  readonly acked = new Map<string, number>();
  readonly received: MessageFrame[] = [];
  closed = false;
  readonly #changed = new Signal();

  connect(url: string): Promise<void> {
    this.closed = false;
    this.ws = new WebSocket(url);
    this.ws.onmessage = (e) => {
      const f = JSON.parse(String(e.data)) as ServerFrame;
      if (f.type === "ack" && f.id !== undefined) this.acked.set(f.cid, f.id);
      if (f.type === "message") this.received.push(f);
      if (f.type === "error") throw new Error(`unexpected error frame ${JSON.stringify(f)}`);
      this.#changed.notify();
    };
    this.ws.onclose = () => {
      this.closed = true;
      this.#changed.notify();
    };
    return new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
  }

  /** Resolves once `cond` holds; false if the socket closed first. Throws after `ms`. */
  async until(cond: () => boolean, ms = 20_000): Promise<boolean> {
    const r = await waitUntil(() => (cond() ? { held: true } : this.closed ? { held: false } : undefined), "a peer's condition holds or its socket closes", {
      ms,
      signal: this.#changed,
    });
    return r.held;
  }

  lastId(): number {
    return this.received.length ? this.received[this.received.length - 1]!.id : 0;
  }
}

const SENDERS = 4;
const PER_SENDER = 500;
const WINDOW = 40;
const RECEIVERS = ["r0", "r1"];

/** The frame sender `s` sends as its message number `i`: a mix of broadcasts, directs and room messages. */
function frameOf(s: number, i: number) {
  const cid = `s${s}-${i}`;
  const text = `from s${s} #${i}`;
  switch (i % 3) {
    case 0:
      return { type: "broadcast", text, cid };
    case 1:
      return { type: "direct", to: RECEIVERS[i % 2]!, text, cid };
    default:
      return { type: "room", room: "lobby", text, cid };
  }
}

/** Sends frames `from`.. of sender `s` keeping at most WINDOW unacked; stops when the socket closes. */
async function pump(peer: Peer, s: number, from: number, upTo: number): Promise<void> {
  for (let i = from; i < upTo; i++) {
    if (i - WINDOW >= 0 && !(await peer.until(() => peer.acked.has(`s${s}-${i - WINDOW}`)))) return;
    if (peer.closed) return;
    peer.ws.send(JSON.stringify(frameOf(s, i)));
  }
  await peer.until(() => peer.acked.has(`s${s}-${upTo - 1}`));
}

async function crashRun(seed: number) {
  const random = rng(seed);
  const db = `${tempDir()}/crash.db`;
  let server = await spawnServer({ DB_PATH: db, MSG_RATE: "0" });
  const senders = Array.from({ length: SENDERS }, () => new Peer());
  const receivers = RECEIVERS.map(() => new Peer());
  await Promise.all(receivers.map((r, k) => r.connect(`${server.ws}/ws/${RECEIVERS[k]}?rooms=lobby&since=0`)));
  await Promise.all(senders.map((p, s) => p.connect(`${server.ws}/ws/s${s}?rooms=lobby`)));

  // Kill after a random number of acks, somewhere in the run.
  const killAfter = Math.floor(random() * SENDERS * PER_SENDER * 0.8) + 50;
  const totalAcks = () => senders.reduce((n, p) => n + p.acked.size, 0);
  const pumps = senders.map((p, s) => pump(p, s, 0, PER_SENDER));
  await senders[0]!.until(() => totalAcks() >= killAfter || senders.every((p) => p.acked.size === PER_SENDER), 30_000);
  server.proc.kill("SIGKILL");
  await server.proc.exited;
  await Promise.all(pumps.map((p) => p.catch(() => undefined)));
  const ackedBefore = new Map<string, number>();
  for (const p of senders) for (const [cid, id] of p.acked) ackedBefore.set(cid, id);
  const seenBefore = receivers.map((r) => r.lastId());

  // Restart on the same file; senders resend everything not acked, same cids.
  server = await spawnServer({ DB_PATH: db, MSG_RATE: "0" });
  try {
    await Promise.all(receivers.map((r, k) => r.connect(`${server.ws}/ws/${RECEIVERS[k]}?rooms=lobby&since=${seenBefore[k]}`)));
    await Promise.all(senders.map((p, s) => p.connect(`${server.ws}/ws/s${s}?rooms=lobby`)));
    await Promise.all(
      senders.map(async (p, s) => {
        const first = Array.from({ length: PER_SENDER }, (_, i) => i).find((i) => !p.acked.has(`s${s}-${i}`)) ?? PER_SENDER;
        // Resend acked ones too from the first gap on: a retry must get the same id back.
        if (first < PER_SENDER) await pump(p, s, first, PER_SENDER);
      }),
    );
    for (const [cid, id] of ackedBefore) {
      const s = Number(cid.slice(1, cid.indexOf("-")));
      expect(senders[s]!.acked.get(cid)).toBe(id);
    }
    const allAcks = new Map<string, number>();
    for (const p of senders) for (const [cid, id] of p.acked) allAcks.set(cid, id);
    expect(allAcks.size).toBe(SENDERS * PER_SENDER);

    // Every recipient gets each message meant for it exactly once, in id order.
    for (const [k, name] of RECEIVERS.entries()) {
      const expected = [...allAcks]
        .filter(([cid]) => {
          const [s, i] = cid.slice(1).split("-").map(Number) as [number, number];
          const f = frameOf(s, i);
          return f.type !== "direct" || f.to === name;
        })
        .map(([, id]) => id)
        .sort((a, b) => a - b);
      const r = receivers[k]!;
      const fromSenders = () => r.received.filter((m) => m.from.startsWith("s"));
      await r.until(() => fromSenders().length >= expected.length, 30_000);
      const got = fromSenders().map((m) => m.id);
      expect(got).toEqual(expected);
    }
    for (const p of senders.concat(receivers)) p.ws.close();
  } finally {
    server.proc.kill("SIGTERM");
    await server.proc.exited;
  }

  // The store itself, opened as the next start opens it: each cid stored once, under the id its ack named.
  const store = createSqliteHistory(db);
  const rows = (await store.get(Array.from({ length: store.lastId() }, (_, i) => i + 1))).filter((m) => m.cid !== undefined);
  await store.close();
  expect(rows.length).toBe(SENDERS * PER_SENDER);
  const byCid = new Map(rows.map((r) => [r.cid, r.id]));
  expect(byCid.size).toBe(rows.length);
  for (const [cid, id] of ackedBefore) expect(byCid.get(cid)).toBe(id);
  return { killAfter, ackedBeforeCrash: ackedBefore.size };
}

describe("crash test", () => {
  for (const seed of [1, 7, 42, 1234, 99991]) {
    test(`SIGKILL at a random moment loses no acked message (seed ${seed})`, async () => {
      const r = await crashRun(seed);
      // The kill really landed mid-run: some messages were acked, some not yet.
      expect(r.ackedBeforeCrash).toBeGreaterThan(0);
      expect(r.ackedBeforeCrash).toBeLessThan(SENDERS * PER_SENDER);
    }, 90_000);
  }
});
