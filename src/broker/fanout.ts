/**
 * The last step of every fan-out: `server.publish` on this node, with the
 * counts /metrics reports. Clients that connect with `?batch=1` subscribe to
 * `batch:`-prefixed topics and receive each commit batch's messages of a
 * topic as one JSON array frame, encoded once per topic and batch; every
 * other frame (presence, receipts) goes to both kinds of subscribers as is.
 */
import type { Server } from "bun";
import { isDirect, topics } from "../hub/routing";

/** The topic a batching connection subscribes to instead of `topic`. */
export const batchTopic = (topic: string) => `batch:${topic}`;
/** Batch topics already built: a busy fan-out looks them up instead of building and hashing a new string per publish. */
const batchTopics = new Map<string, string>();
const BATCH_TOPICS_MAX = 50_000;
function batchTopicOf(topic: string): string {
  let t = batchTopics.get(topic);
  if (t === undefined) {
    if (batchTopics.size >= BATCH_TOPICS_MAX) batchTopics.clear();
    batchTopics.set(topic, (t = batchTopic(topic)));
  }
  return t;
}
/** Every connection without `?batch=1` is in this topic: no subscriber, no single frames to send. */
const ANY_PLAIN = topics.all;
/** Every batching connection is in this topic: no subscriber, no arrays to build. */
const ANY_BATCH = batchTopic(topics.all);

/** What this node's publishes did, for /metrics. */
export interface PublishCounts {
  /** Frames sent (one per subscriber), and their bytes. */
  framesOut: number;
  bytesOut: number;
  /** Publishes Bun reported as dropped for some subscriber. */
  dropped: number;
  /** Publishes that met backpressure (queued) for some subscriber. */
  backpressured: number;
}

/** Topics whose counts are kept at once; past it they are asked again. */
const COUNTS_MAX = 50_000;

export class Fanout implements PublishCounts {
  server: Server<unknown> | undefined;
  /** Called when Bun queued or dropped a frame for some subscriber: past the limit, Bun closes that socket (closeOnBackpressureLimit). */
  onPressure: ((dropped: boolean) => void) | undefined;
  framesOut = 0;
  bytesOut = 0;
  /** Publishes Bun reported as dropped for some subscriber. */
  dropped = 0;
  /** Publishes that met backpressure (queued) for some subscriber. */
  backpressured = 0;
  /** Subscribers per topic, as Bun last said: cleared on every subscription change. */
  readonly #counts = new Map<string, number>();

  /**
   * A frame to `topic`, for connections with and without `?batch=1`. The
   * batch variant is asked about itself, not `batch:all`: a batching socket
   * may watch a user (watch:x) while its replay runs, before it is in
   * `batch:all`.
   */
  event(topic: string, data: string): void {
    this.#publish(topic, data);
    const batched = batchTopicOf(topic);
    if (this.#has(batched)) this.#publish(batched, data);
  }

  /**
   * A commit batch's messages, in id order: message i is `frames[i]`, for
   * the topics `routes[i]` (two lists, so a message costs no object of its
   * own here). One frame each for connections without `?batch=1`, and for
   * batching ones one array per topic and run. A run ends where the topics
   * change, so a connection in several topics still gets every id in order
   * (a resume from the newest id it saw must not skip an older one in a
   * later array). Direct messages make one run whatever their users: a
   * connection is in exactly one user topic, so it gets all of its direct
   * messages of the run in one array, in order. Who is subscribed is asked
   * once per batch, not per message. Keeps neither list (callers reuse them).
   */
  messages(frames: readonly string[], routes: readonly (readonly string[])[]): void {
    const plain = this.#has(ANY_PLAIN);
    const batching = this.#has(ANY_BATCH);
    if (frames.length === 1) return this.#one(frames[0]!, routes[0]!, plain, batching);
    let run: Map<string, string[]> | undefined;
    let runKey: readonly string[] | "direct" | undefined;
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!;
      const to = routes[i]!;
      if (plain) for (const topic of to) this.#publish(topic, frame);
      if (!batching) continue;
      const key = isDirect(to) ? "direct" : to;
      if (runKey === undefined || !sameRun(runKey, key)) {
        if (run) this.#flush(run);
        run = new Map();
        runKey = key;
      }
      for (const topic of to) {
        const list = run!.get(topic);
        if (list) list.push(frame);
        else run!.set(topic, [frame]);
      }
    }
    if (run) this.#flush(run);
  }

  /**
   * A batch of one message, as most are below a few thousand a second: each
   * topic gets it in both modes before the next topic, so a direct message
   * reaches its recipient, batching or not, before the sender's echo (plain
   * first and arrays after made every batching recipient of a plain sender
   * wait for the echo's send), and no run map is built for it. A batch of
   * several still sends its single frames first: an array can go only once
   * its run has ended.
   */
  #one(frame: string, to: readonly string[], plain: boolean, batching: boolean): void {
    for (const topic of to) {
      if (plain) this.#publish(topic, frame);
      if (batching) this.#publish(batchTopicOf(topic), frame);
    }
  }

  /**
   * The frames are JSON already: an array is made by joining, never by
   * encoding again. A topic with one frame in the run gets the frame itself:
   * at low rates batching then sends exactly what it would without.
   */
  #flush(run: Map<string, string[]>): void {
    for (const [topic, frames] of run) this.#publish(batchTopicOf(topic), frames.length === 1 ? frames[0]! : `[${frames.join(",")}]`);
  }

  /** The hub saw a socket subscribe, unsubscribe or close: the counts kept are stale. */
  topicsChanged(): void {
    this.#counts.clear();
  }

  /** Whether anyone is subscribed to `topic` (every connection is in `all` or its batch variant). */
  #has(topic: string): boolean {
    return this.server !== undefined && this.#subscribers(this.server, topic) > 0;
  }

  /**
   * How many sockets are in `topic`, as Bun said when last asked since the
   * last change (`topicsChanged`). Asking Bun on every publish cost about a
   * tenth of a direct message (measured: direct N=64 went 1.107x faster
   * without it); subscriptions change far less often than messages go out.
   */
  #subscribers(server: Server<unknown>, topic: string): number {
    let n = this.#counts.get(topic);
    if (n === undefined) {
      if (this.#counts.size >= COUNTS_MAX) this.#counts.clear();
      this.#counts.set(topic, (n = server.subscriberCount(topic)));
    }
    return n;
  }

  #publish(topic: string, data: string): void {
    const server = this.server;
    // Before attach there is no socket to deliver to.
    if (!server) return;
    const status = server.publish(topic, data, false);
    // 0 means "no subscribers" or "dropped for some": only Bun can tell which.
    const subscribers = status === 0 ? server.subscriberCount(topic) : this.#subscribers(server, topic);
    this.framesOut += subscribers;
    // A positive status is the bytes of one copy.
    this.bytesOut += subscribers * (status > 0 ? status : data.length);
    if (status === 0 && subscribers > 0) {
      this.dropped++;
      this.onPressure?.(true);
    } else if (status === -1) {
      this.backpressured++;
      this.onPressure?.(false);
    }
  }
}

function sameRun(a: readonly string[] | "direct", b: readonly string[] | "direct"): boolean {
  if (a === "direct" || b === "direct") return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
