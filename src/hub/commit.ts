/**
 * Group commit: every message accepted in one turn of the event loop goes to
 * the store in one append, which assigns the ids and answers retries of a
 * stored cid; then each sender gets its ack and the broker the batch. One
 * append is in flight at a time, so batches reach the broker in id order.
 */
import type { ServerWebSocket } from "bun";
import type { Broker } from "../broker/broker";
import type { Appended, CidHit, History, NewMessage, StoredMessage } from "../history/history";
import { encode, type ErrorFrame } from "../protocol";
import type { Observers } from "../metrics";

/**
 * Messages waiting for their batch's commit and who sent each: two parallel
 * lists, so a message costs no object of its own on the way in. `t` is
 * performance.now() when the first one arrived (the ack-latency histogram
 * observes a batch's oldest message).
 */
interface Pending {
  ms: NewMessage[];
  senders: ServerWebSocket<unknown>[];
  t: number;
}

const empty = (): Pending => ({ ms: [], senders: [], t: 0 });

/** What the committer reports to the hub. */
export interface CommitEvents {
  /** The ack for a stored message or a retry of one (`hit`). */
  ack(ws: ServerWebSocket<unknown>, cid: string, hit: CidHit): void;
  /** The message could not be stored: the sender is told `store_failed`. */
  failed(ws: ServerWebSocket<unknown>, data: string): void;
  /** One line for the log about a failed append (the hub rate-limits it). */
  log(line: string, err: unknown): void;
  /** The store started over (another epoch): the hub must make every socket resume. */
  epochChanged(): void;
}

/** Counters the committer keeps for /metrics. */
export interface CommitStats {
  accepted: number;
  byKind: { broadcast: number; direct: number; room: number };
  acks: number;
  duplicates: number;
  storeFailures: number;
  batches: number;
}

export class Committer {
  readonly stats: CommitStats = { accepted: 0, byKind: { broadcast: 0, direct: 0, room: 0 }, acks: 0, duplicates: 0, storeFailures: 0, batches: 0 };
  #pending: Pending = empty();
  /** A committed batch's emptied lists, for the next one: a synchronous commit then allocates none. */
  #spare: Pending | undefined;
  /** The lists a batch gives the broker, kept between batches: the broker reads them during the call and keeps neither. */
  readonly #stored: StoredMessage[] = [];
  readonly #frames: string[] = [];
  #queued = false;
  #inFlight: Promise<void> | undefined;

  constructor(
    readonly history: History,
    readonly broker: Broker,
    readonly events: CommitEvents,
    readonly observe?: Observers,
  ) {}

  /** Queues a message for the next batch. */
  add(ws: ServerWebSocket<unknown>, m: NewMessage): void {
    const p = this.#pending;
    if (p.ms.length === 0) p.t = performance.now();
    p.ms.push(m);
    p.senders.push(ws);
    if (!this.#queued && this.#inFlight === undefined) {
      this.#queued = true;
      setImmediate(this.#tick);
    }
  }

  /**
   * The turn's batch: with a store that appends synchronously, committed
   * here, with no promise or microtask between the append and the publish
   * (the chain of four promises per batch was garbage on every commit);
   * otherwise, and while a failed batch is retried, through `flush`.
   */
  readonly #tick = (): void => {
    const appendNow = this.history.appendNow;
    if (appendNow === undefined || this.#inFlight !== undefined) {
      void this.flush();
      return;
    }
    this.#queued = false;
    const batch = this.#pending;
    if (batch.ms.length === 0) return;
    this.#pending = this.#spare ?? empty();
    this.#spare = undefined;
    const started = performance.now();
    let results: Appended[];
    try {
      results = appendNow.call(this.history, batch.ms);
    } catch (err) {
      this.#track(this.#failed(batch, err));
      return;
    }
    this.#deliver(batch, results, started);
    // Delivered and acked: nothing holds the batch now (a failed one, retried after a wait, is never reused).
    batch.ms.length = 0;
    batch.senders.length = 0;
    this.#spare = batch;
  };

  /** Commits what is pending now; resolves once it and anything in flight is done. */
  readonly flush = async (): Promise<void> => {
    this.#queued = false;
    while (this.#inFlight) await this.#inFlight;
    const batch = this.#pending;
    if (batch.ms.length === 0) return;
    this.#pending = empty();
    return this.#track(this.#commit(batch));
  };

  /** Holds `work` as the one commit in flight; what arrives meanwhile is the next batch. */
  #track(work: Promise<void>): Promise<void> {
    this.#inFlight = work.finally(() => {
      this.#inFlight = undefined;
      if (this.#pending.ms.length > 0 && !this.#queued) {
        this.#queued = true;
        setImmediate(this.#tick);
      }
    });
    return this.#inFlight;
  }

  async #commit(batch: Pending): Promise<void> {
    let results: Appended[];
    const started = performance.now();
    try {
      results = await this.history.append(batch.ms);
    } catch (err) {
      return this.#failed(batch, err);
    }
    this.#deliver(batch, results, started);
  }

  /** A failed append: a store-wide error fails the batch; otherwise each message is tried alone, so the others are stored. */
  async #failed(batch: Pending, err: unknown): Promise<void> {
    const { ms, senders } = batch;
    this.events.log(`storing a batch of ${ms.length} messages failed`, err);
    if ((err as { code?: unknown }).code === "EPOCH") this.events.epochChanged();
    if (ms.length === 1 || storeWide(err)) return this.#fail(batch);
    for (let i = 0; i < ms.length; i++) await this.#commit({ ms: [ms[i]!], senders: [senders[i]!], t: batch.t });
  }

  /** Acks the stored batch and hands it to the broker. */
  #deliver(batch: Pending, results: Appended[], started: number): void {
    const { ms, senders } = batch;
    this.stats.batches++;
    const o = this.observe;
    if (o) {
      const now = performance.now();
      o.commitSeconds.observe((now - started) / 1000);
      o.ackSeconds.observe((now - batch.t) / 1000);
      o.batchSize.observe(ms.length);
    }
    const stored = this.#stored;
    const frames = this.#frames;
    try {
      this.#publish(ms, senders, results, stored, frames);
    } finally {
      stored.length = frames.length = 0;
    }
  }

  /** Acks each message of the batch and hands the stored ones to the broker. */
  #publish(ms: NewMessage[], senders: ServerWebSocket<unknown>[], results: Appended[], stored: StoredMessage[], frames: string[]): void {
    for (let i = 0; i < ms.length; i++) {
      const r = results[i]!;
      const cid = ms[i]!.cid;
      if (r.duplicate) {
        this.stats.duplicates++;
        this.stats.acks++;
        this.events.ack(senders[i]!, cid!, r.duplicate);
        continue;
      }
      stored.push(r.stored);
      this.stats.byKind[r.stored.kind]++;
      frames.push(r.frame);
      if (cid !== undefined) {
        this.stats.acks++;
        this.events.ack(senders[i]!, cid, r.stored);
      }
    }
    this.stats.accepted += stored.length;
    if (stored.length > 0) this.broker.committed(stored, frames);
  }

  #fail(batch: Pending): void {
    this.stats.storeFailures += batch.ms.length;
    for (let i = 0; i < batch.ms.length; i++) {
      const frame: ErrorFrame = { type: "error", code: "store_failed", message: "The server could not store the message: send it again later" };
      const cid = batch.ms[i]!.cid;
      if (cid !== undefined) frame.cid = cid;
      this.events.failed(batch.senders[i]!, encode(frame));
    }
  }
}

/** Errors of the whole store (locked, full, I/O, another epoch), not of one message: retrying apart would only wait longer. */
function storeWide(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    typeof code === "string" &&
    (code === "EPOCH" ||
      /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|NOMEM|CORRUPT|NOTADB)/.test(code) ||
      /^(ECONN|ETIMEDOUT|ERR_REDIS)/.test(code) ||
      // The message log's file: a full, failing, read-only or refusing disk.
      /^(ENOSPC|EDQUOT|EFBIG|EIO|EROFS|EPERM|EACCES|EBADF)$/.test(code))
  );
}
