import { frameOf } from "./frame";
import type { MessageKind } from "../protocol";
import type { StoredMessage } from "./history";

/**
 * The stored messages of the SQLite history, in id order: an append-only
 * log of JSON lines, one per message. The database keeps everything else
 * (cursors, read markers, retention marks, accounts). A message costs one
 * line in a file instead of a B-tree row: measured, a row was most of a
 * direct message's cost on the server's core.
 */
export interface MessageLog {
  /** The oldest id held (0 when empty); older ids may have been dropped. */
  readonly first: number;
  /** The newest id held (0 when empty). */
  readonly last: number;
  /**
   * Appends messages with ids above `last`, in increasing order, in one
   * write. Returns once the lines survive a crash of the process (and, with
   * sync "full", of the machine); throws with nothing appended. Returns
   * each message's frame (`frameOf`): its line is that frame, so the wire
   * and the log share one encode.
   */
  append(batch: readonly StoredMessage[]): string[];
  /** The messages with these ids that are held, in the order given. */
  read(ids: readonly number[]): StoredMessage[];
  /** The ids held above `after`, ascending, at most `limit` (ids may have gaps). */
  held(after: number, limit: number): number[];
  /** Throws when appends cannot work now (closed, or a failed write that could not be undone). */
  check(): void;
  /** Makes every appended line survive a crash of the machine too (fdatasync). */
  flush(): void;
  /**
   * The id reserved when the log was opened: after a stop that was not
   * clean, ids up to it may have been given out, so new ones go above it.
   */
  readonly reserved: number;
  /** Makes sure that, whatever crash comes, the log reopens with `reserved` >= `id`. */
  reserve(id: number): void;
  /** May forget messages with id <= `upTo` (a file log drops whole segments); never newer ones. */
  dropThrough(upTo: number): void;
  /** Makes what was appended durable and releases the log; idempotent. */
  close(): void;
}

/**
 * One line of the log: the message's frame (`frameOf`) with the sender's cid
 * as its last field. No newline inside: JSON escapes it.
 */
export const recordLine = (frame: string, cid: string | undefined): string =>
  cid === undefined ? frame : `${frame.slice(0, -1)},"cid":${JSON.stringify(cid)}}`;

/**
 * Parses one line; throws when it is not a stored message. Reads both line
 * forms: a frame with its cid (`recordLine`), and the stored message's own
 * fields, as logs written before the frame was the line hold them.
 */
export function decodeRecord(line: string): StoredMessage {
  const r = JSON.parse(line) as Partial<Record<keyof StoredMessage | "type", unknown>> | null;
  if (typeof r !== "object" || r === null || !Number.isSafeInteger(r.id) || typeof r.text !== "string" || typeof r.from !== "string") {
    throw new Error("not a stored message");
  }
  // A new object with the stored fields only: a frame's `type` is not one of them.
  const m: StoredMessage = { id: r.id as number, kind: r.kind as MessageKind, from: r.from, text: r.text, at: r.at as number };
  if (typeof r.to === "string") m.to = r.to;
  if (typeof r.cid === "string") m.cid = r.cid;
  return m;
}

/** A log for DB_PATH=:memory:, where nothing is on disk: the lines in an array. */
export function createMemoryLog(): MessageLog {
  let base = 0;
  const lines: (string | undefined)[] = [];
  let last = 0;
  return {
    get first() {
      for (let i = 0; i < lines.length; i++) if (lines[i] !== undefined) return base + i;
      return 0;
    },
    get last() {
      return last;
    },
    append(batch) {
      const frames: string[] = new Array(batch.length);
      for (let i = 0; i < batch.length; i++) {
        const m = batch[i]!;
        if (m.id <= last) throw new Error(`message log: id ${m.id} is not above the newest (${last})`);
        if (lines.length === 0) base = m.id;
        frames[i] = frameOf(m);
        lines[m.id - base] = recordLine(frames[i]!, m.cid);
        last = m.id;
      }
      return frames;
    },
    read(ids) {
      const out: StoredMessage[] = [];
      for (const id of ids) {
        const line = id >= base ? lines[id - base] : undefined;
        if (line !== undefined) out.push(decodeRecord(line));
      }
      return out;
    },
    held(after, limit) {
      const out: number[] = [];
      for (let i = Math.max(0, after + 1 - base); i < lines.length && out.length < limit; i++) if (lines[i] !== undefined) out.push(base + i);
      return out;
    },
    flush() {},
    reserved: 0,
    reserve() {},
    check() {},
    dropThrough(upTo) {
      const n = Math.min(Math.max(0, upTo - base + 1), lines.length);
      if (n === 0) return;
      lines.splice(0, n);
      base += n;
    },
    close() {},
  } satisfies MessageLog;
}
