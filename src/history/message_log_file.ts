// node:fs: positional reads and writes, truncation and fdatasync have no web-standard API.
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { StoredMessage } from "./history";
import { decodeRecord, encodeRecord, type MessageLog } from "./message_log";
import { scanLog, segmentName, Starts } from "./message_log_scan";

/** A segment is closed and a new one begun past this size: retention frees disk a segment at a time. */
export const SEGMENT_BYTES = 64 * 1024 * 1024;
/** Ids read close together in one file come from one read of at most this many bytes. */
const SPAN_MAX = 1 << 20;
interface Segment {
  first: number;
  path: string;
  fd: number;
  size: number;
}

export interface FileLogOptions {
  /** "full": fdatasync after every append; "normal": the lines are safe from a crash of the process. */
  sync: "normal" | "full";
  segmentBytes?: number;
  /** Called for every message found at open, in id order. */
  onRecord?: (m: StoredMessage) => void;
  /** Called when a torn tail (a crash mid-write) was cut off at open. */
  onRepair?: (what: string) => void;
}

/** The message log in `dir`: JSON-lines segment files, cut back to whole lines at open. */
export function openFileLog(dir: string, opts: FileLogOptions): MessageLog {
  const segmentBytes = opts.segmentBytes ?? SEGMENT_BYTES;
  mkdirSync(dir, { recursive: true });
  const starts = new Starts();
  let last = 0;
  const found = scanLog(
    dir,
    (m, _segment, start) => {
      starts.set(m.id, start);
      last = m.id;
      opts.onRecord?.(m);
    },
    (path, size) => {
      truncateSync(path, size);
      opts.onRepair?.(`cut a torn write off ${path} at byte ${size}`);
    },
  );
  const segs: Segment[] = found.map((s) => ({ ...s, fd: openSync(s.path, "r+") }));
  /** Set when a failed write could not be undone: every later append fails until a restart repairs the file. */
  let broken: Error | undefined;
  let closed = false;

  const segmentOf = (id: number): Segment | undefined => {
    let lo = 0;
    let hi = segs.length - 1;
    if (hi < 0 || id < segs[0]!.first) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (segs[mid]!.first <= id) lo = mid;
      else hi = mid - 1;
    }
    return segs[lo];
  };
  /** Where the line of `id` ends: where the next held id starts, if in the same segment, else at the segment's end. */
  const endOf = (id: number, start: number, seg: Segment): number => {
    for (let next = id + 1; next <= last; next++) {
      const s = starts.get(next);
      if (Number.isNaN(s)) continue;
      return s > start ? s : seg.size;
    }
    return seg.size;
  };
  const begin = (first: number): Segment => {
    const prev = segs.at(-1);
    // The finished segment's lines already survive a process crash; fdatasync in the background makes them survive the machine's.
    if (prev) fdatasync(prev.fd, () => {});
    const path = join(dir, segmentName(first));
    const seg = { first, path, fd: openSync(path, "wx+"), size: 0 };
    if (opts.sync === "full") syncDir(dir);
    segs.push(seg);
    return seg;
  };

  return {
    get first() {
      return Number.isNaN(starts.get(starts.base)) ? 0 : starts.base;
    },
    get last() {
      return last;
    },
    append(batch) {
      if (closed) throw new Error("message log is closed");
      if (broken) throw broken;
      if (batch.length === 0) return;
      if (batch[0]!.id <= last) throw new Error(`message log: id ${batch[0]!.id} is not above the newest (${last})`);
      let seg = segs.at(-1);
      if (!seg || seg.size >= segmentBytes) seg = begin(batch[0]!.id);
      let text = "";
      for (const m of batch) text += `${encodeRecord(m)}\n`;
      const buf = Buffer.from(text);
      const at = seg.size;
      try {
        for (let off = 0; off < buf.length; ) off += writeSync(seg.fd, buf, off, buf.length - off, at + off);
        if (opts.sync === "full") fdatasyncSync(seg.fd);
      } catch (err) {
        try {
          // Part of the batch may be in the file: cut it back to where the batch began.
          if (fstatSync(seg.fd).size !== at) ftruncateSync(seg.fd, at);
        } catch (undo) {
          broken = new Error(`message log ${seg.path} could not be cut back after a failed write (${(undo as Error).message}): restart the server`);
        }
        throw err;
      }
      seg.size = at + buf.length;
      let pos = 0;
      for (const m of batch) {
        starts.set(m.id, at + pos);
        pos = buf.indexOf(10, pos) + 1;
      }
      last = batch[batch.length - 1]!.id;
    },
    read(ids) {
      const out: StoredMessage[] = [];
      let i = 0;
      while (i < ids.length) {
        const first = ids[i++]!;
        const seg = segmentOf(first);
        const s0 = starts.get(first);
        if (!seg || Number.isNaN(s0)) continue;
        // The following ids in the same segment whose lines lie within SPAN_MAX bytes: one read for the run.
        let lo = s0;
        let hi = endOf(first, s0, seg);
        const run: [number, number][] = [[lo, hi]];
        for (; i < ids.length; i++) {
          const id = ids[i]!;
          const s = starts.get(id);
          if (Number.isNaN(s)) continue;
          if (segmentOf(id) !== seg) break;
          const e = endOf(id, s, seg);
          if (Math.max(hi, e) - Math.min(lo, s) > SPAN_MAX) break;
          lo = Math.min(lo, s);
          hi = Math.max(hi, e);
          run.push([s, e]);
        }
        const buf = Buffer.allocUnsafe(hi - lo);
        for (let off = 0; off < buf.length; ) {
          const n = readSync(seg.fd, buf, off, buf.length - off, lo + off);
          if (n === 0) throw new Error(`message log ${seg.path} is shorter than expected`);
          off += n;
        }
        for (const [s, e] of run) out.push(decodeRecord(buf.toString("utf8", s - lo, e - lo - 1)));
      }
      return out;
    },
    flush() {
      const seg = segs.at(-1);
      if (seg) fdatasyncSync(seg.fd);
    },
    dropThrough(upTo) {
      // The newest segment stays: it is the one being written.
      while (segs.length > 1 && segs[1]!.first - 1 <= upTo) {
        const seg = segs.shift()!;
        closeSync(seg.fd);
        unlinkSync(seg.path);
      }
      if (segs.length > 0) starts.rebase(segs[0]!.first);
    },
    close() {
      if (closed) return;
      closed = true;
      const seg = segs.at(-1);
      try {
        // A clean stop leaves nothing that only the page cache holds.
        if (seg && !broken) fdatasyncSync(seg.fd);
      } finally {
        for (const s of segs) closeSync(s.fd);
      }
    },
  } satisfies MessageLog;
}

/** Makes a new name in `dir` durable (best effort: not every file system syncs folders). */
function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {}
}
