/**
 * The frames a client sent and awaits answers for: each one's Promise, its
 * ack deadline, and what a `rate_limited` answer does to it (it is written
 * again, same cid, once the server said it may be, instead of failing).
 */
import type { AckFrame, ErrorFrame } from "../protocol.js";
import { ChatClientError } from "./errors.js";
import type { OutgoingFrame } from "./types.js";

interface Pending {
  frame: OutgoingFrame;
  resolve(ack: AckFrame): void;
  reject(err: ChatClientError): void;
  promise: Promise<AckFrame>;
  /** Written on the current connection, its answer still to come. */
  inFlight: boolean;
  /** How many times the server answered it with `rate_limited`. */
  limited: number;
  /** Written one at a time, at the pace, while throttled. */
  paced?: boolean;
  /** The ack deadline of its last write. */
  timer?: ReturnType<typeof setTimeout>;
}

/** How the outbox behaves. */
export interface OutboxOptions {
  /** How long a written frame waits for its ack before it rejects with `timeout`. */
  ackTimeoutMs: number;
  /** `rate_limited` answers one frame may get before it rejects with that error. */
  rateLimitRetries: number;
  /** A frame the server refused for good (not rate_limited): e.g. a join, whose room is then not joined. */
  onRefused(frame: OutgoingFrame): void;
}

/** Without a `retryAfterMs` in a `rate_limited` answer, wait this long. */
const DEFAULT_RETRY_MS = 1000;

/**
 * Pending frames in the order the app sent them. Frames wait while there is
 * no connection (or no welcome yet) and are written in order once there is.
 * After a `rate_limited` answer the outbox holds back until `retryAfterMs`,
 * then writes one frame at a time, each the pace the server asked for after
 * the last ack, so that a burst drains at the server's rate without each
 * frame being refused again; with nothing left to send it writes freely again.
 */
export class Outbox {
  readonly #pending = new Map<string, Pending>(); // insertion order = the order the app sent in
  #write: ((data: string) => boolean) | undefined;
  /** Nothing is written before this time (epoch ms). */
  #holdUntil = 0;
  #holdTimer: ReturnType<typeof setTimeout> | undefined;
  /** Set while throttled: one frame in flight at a time, this far apart. */
  #paceMs: number | undefined;

  constructor(readonly opts: OutboxOptions) {}

  /** Queues a frame; resolves with its ack. A frame whose cid is still pending shares that one's answer. */
  submit<A extends AckFrame>(frame: OutgoingFrame): Promise<A> {
    const same = this.#pending.get(frame.cid);
    if (same) return same.promise as Promise<A>;
    const p = { frame, inFlight: false, limited: 0 } as Pending;
    p.promise = new Promise<AckFrame>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    this.#pending.set(frame.cid, p);
    // The common case writes at once; a hold or a throttle decides in #flush.
    if (this.#write && this.#paceMs === undefined && this.#holdUntil <= Date.now()) this.#send(p);
    else this.#flush();
    return p.promise as Promise<A>;
  }

  /** A connection is ready (its welcome arrived): write what waits, in order. */
  attach(write: (data: string) => boolean): void {
    this.#write = write;
    this.#flush();
  }

  /**
   * The connection is gone. What was on the wire is written again, with the
   * same cid, after the next welcome: the server answers a repeat with the
   * first ack.
   */
  detach(): void {
    this.#write = undefined;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.inFlight = false;
    }
  }

  /** Settles the frame an ack answers; false when none is pending (timed out earlier, a retry's second answer). */
  ack(f: AckFrame): boolean {
    const p = this.#take(f.cid);
    if (!p) return false;
    p.resolve(f);
    if (this.#paceMs !== undefined) this.#paced();
    return true;
  }

  /** Handles an error frame that answers a pending frame; false when it answers none. */
  error(f: ErrorFrame): boolean {
    const p = f.cid === undefined ? undefined : this.#pending.get(f.cid);
    if (!p) return false;
    if (f.code === "rate_limited" && p.limited < this.opts.rateLimitRetries) {
      p.limited++;
      p.inFlight = false;
      clearTimeout(p.timer);
      const wait = f.retryAfterMs ?? DEFAULT_RETRY_MS;
      // Refused frames that were on the wire together each say how long until
      // the next one is allowed; a paced frame refused says the pace is short
      // by that much. The server closes a client refused again and again
      // (4008), so the pace only grows.
      this.#paceMs = p.paced ? (this.#paceMs ?? 0) + wait : Math.max(this.#paceMs ?? 0, wait);
      this.#hold(wait);
      this.#flush();
      return true;
    }
    this.#take(p.frame.cid);
    this.opts.onRefused(p.frame);
    p.reject(new ChatClientError(f.code, f.message, f.cid, f.retryAfterMs));
    if (this.#paceMs !== undefined) this.#flush();
    return true;
  }

  /** Rejects everything pending with `err` and forgets it. */
  rejectAll(err: (cid: string) => ChatClientError): void {
    clearTimeout(this.#holdTimer);
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(err(p.frame.cid));
    }
  }

  #take(cid: string): Pending | undefined {
    const p = this.#pending.get(cid);
    if (!p) return undefined;
    this.#pending.delete(cid);
    clearTimeout(p.timer);
    return p;
  }

  #hold(ms: number) {
    this.#holdUntil = Math.max(this.#holdUntil, Date.now() + ms);
  }

  /** Throttled and the frame in flight was answered: the next one after the pace. */
  #paced() {
    this.#hold(this.#paceMs!);
    this.#flush();
  }

  /** Writes what may be written now; otherwise wakes up when it may. */
  #flush() {
    if (!this.#write) return;
    const wait = this.#holdUntil - Date.now();
    if (wait > 0) {
      clearTimeout(this.#holdTimer);
      this.#holdTimer = setTimeout(() => {
        this.#holdUntil = 0; // a timer may fire a millisecond early by Date.now()
        this.#flush();
      }, wait);
      return;
    }
    const all = [...this.#pending.values()];
    const waiting = all.filter((p) => !p.inFlight);
    if (this.#paceMs !== undefined) {
      // Throttled: the next frame goes once the one in flight is answered.
      if (all.some((p) => p.inFlight)) return;
      if (waiting.length > 0) {
        waiting[0]!.paced = true;
        return this.#send(waiting[0]!);
      }
      this.#paceMs = undefined; // drained: back to writing at once
      return;
    }
    for (const p of waiting) this.#send(p);
  }

  #send(p: Pending) {
    // Not written: the socket is going away, and its close event puts the frame back in line.
    if (!this.#write!(JSON.stringify(p.frame))) return;
    p.inFlight = true;
    clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      this.#take(p.frame.cid);
      p.reject(new ChatClientError("timeout", `No ack within ${this.opts.ackTimeoutMs} ms`, p.frame.cid));
      if (this.#paceMs !== undefined) this.#flush();
    }, this.opts.ackTimeoutMs);
  }
}
