// node:fs: positional reads and writes, truncation and fdatasync have no web-standard API.
import { closeSync, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, truncateSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { StoredMessage } from "./history";
import { frameOf } from "./frame";
import { decodeRecord, recordLine, type MessageLog } from "./message_log";
import { lockLogDir, scanLog, segmentName, syncDir } from "./message_log_scan";
import { Starts } from "./starts";

/** A segment is closed and a new one begun past this size: retention frees disk a segment at a time. */
export const SEGMENT_BYTES = 64 * 1024 * 1024;
/** Lines read together come from one read of at most this many bytes... */
const SPAN_MAX = 1 << 20;
/** ...and with at most this many bytes of other lines between two of them. */
const GAP_MAX = 32 * 1024;
/** With sync "normal", how often written lines are handed to the disk (fdatasync, off the event loop). */
const SYNC_EVERY_MS = 1000;
/** Ids reserved ahead at a time: one small synchronous write and fdatasync per this many messages. */
const RESERVE_STEP = 1_000_000;

/** The append buffer: a batch's lines are written out each time it fills. */
const SCRATCH_KEEP = 256 * 1024;
/** Line offsets of a batch kept for the next one, up to this many. */
const LINE_STARTS_KEEP = 16_384;

/** Writes the first `len` bytes of `buf` at `pos`; returns `len`. */
function writeAll(fd: number, buf: Buffer, len: number, pos: number): number {
  for (let off = 0; off < len; ) off += writeSync(fd, buf, off, len - off, pos + off);
  return len;
}

interface Segment {
  first: number;
  path: string;
  fd: number;
  size: number;
  /** Bytes known to be on disk (fdatasync done). */
  synced: number;
  /** A background fdatasync is running; closed: the fd is gone, a late callback must not touch it. */
  syncing?: boolean;
  closed?: boolean;
}

export interface FileLogOptions {
  /** "full": fdatasync after every append; "normal": safe from a crash of the process, on disk within about a second. */
  sync: "normal" | "full";
  segmentBytes?: number;
  /** Called for every message found at open, in id order. */
  onRecord?: (m: StoredMessage) => void;
  /** Called when a torn tail (a crash mid-write) was cut off at open. */
  onRepair?: (what: string) => void;
}

/**
 * The message log in `dir`: JSON-lines segment files, cut back to whole
 * lines at open, held by this process alone (a second opener is refused).
 */
export function openFileLog(dir: string, opts: FileLogOptions): MessageLog {
  const segmentBytes = opts.segmentBytes ?? SEGMENT_BYTES;
  mkdirSync(dir, { recursive: true });
  const lock = lockLogDir(dir);
  const reservation = openReservation(dir);
  const starts = new Starts();
  let last = 0;
  const segs: Segment[] = [];
  try {
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
    for (const s of found) {
      // An empty segment holds nothing; its name may even be above ids a machine crash took from the one before.
      if (s.size === 0) unlinkSync(s.path);
      else segs.push({ ...s, fd: openSync(s.path, "r+"), synced: s.size });
    }
  } catch (err) {
    for (const s of segs) closeSync(s.fd);
    closeSync(reservation.fd);
    lock.release();
    throw err;
  }
  /** The bytes of the batch being appended, and where each of its lines starts in the segment. */
  let scratch: Buffer = Buffer.allocUnsafe(SCRATCH_KEEP);
  const lineStarts: number[] = [];
  /** Set when a failed write could not be undone: every later append fails until a restart repairs the file. */
  let broken: (Error & { code?: string }) | undefined;
  let closed = false;
  const timer = opts.sync === "normal" ? setInterval(() => syncAll(false), SYNC_EVERY_MS) : undefined;
  timer?.unref?.();

  /**
   * fdatasync of every segment with unsynced lines: in the background (one at
   * a time per segment), or here (`now`). A failed sync means lines may be
   * lost whatever a later sync says (Linux reports it once): the log stops taking appends.
   */
  function syncAll(now: boolean): void {
    for (const seg of segs) {
      if (seg.synced >= seg.size) continue;
      const size = seg.size;
      if (now) {
        fdatasyncSync(seg.fd);
        seg.synced = size;
      } else if (!seg.syncing) {
        seg.syncing = true;
        fdatasync(seg.fd, (err) => {
          seg.syncing = false;
          if (seg.closed) return;
          if (!err) seg.synced = Math.max(seg.synced, size);
          else
            broken ??= Object.assign(
              new Error(`message log ${seg.path} could not be synced to disk (${err.message}): written messages may be lost; restart the server`),
              { code: err.code ?? "EIO" },
            );
        });
      }
    }
  }
  const open = () => {
    if (closed) throw new Error("message log is closed");
  };
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
      if (!Number.isNaN(s)) return s > start ? s : seg.size;
    }
    return seg.size;
  };
  const begin = (first: number): Segment => {
    const path = join(dir, segmentName(first));
    const seg = { first, path, fd: openSync(path, "wx+"), size: 0, synced: 0 };
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
      open();
      if (broken) throw broken;
      if (batch.length === 0) return [];
      if (batch[0]!.id <= last) throw new Error(`message log: id ${batch[0]!.id} is not above the newest (${last})`);
      let seg = segs.at(-1);
      if (!seg || seg.size >= segmentBytes) seg = begin(batch[0]!.id);
      // Lines go into one buffer kept between appends, written out whenever it
      // is full: a batch costs no buffer of its own, a big one is not copied
      // into ever bigger ones (growing it took a twelfth of a busy server's
      // samples), and each line's offset is known as it is written.
      const at = seg.size;
      const fd = seg.fd;
      let len = 0;
      let done = 0;
      const frames: string[] = new Array(batch.length);
      try {
        for (let i = 0; i < batch.length; i++) {
          const m = batch[i]!;
          frames[i] = frameOf(m);
          const line = recordLine(frames[i]!, m.cid);
          // UTF-8 takes at most 3 bytes per UTF-16 unit; the newline one more.
          const most = line.length * 3 + 1;
          if (scratch.length - len < most) {
            done += writeAll(fd, scratch, len, at + done);
            len = 0;
            if (scratch.length < most) scratch = Buffer.allocUnsafe(most);
          }
          lineStarts[i] = at + done + len;
          len += scratch.write(line, len, "utf8");
          scratch[len++] = 10;
        }
        done += writeAll(fd, scratch, len, at + done);
        if (opts.sync === "full") fdatasyncSync(fd);
      } catch (err) {
        try {
          // Part of the batch may be in the file: cut it back to where the batch began.
          if (fstatSync(fd).size !== at) ftruncateSync(fd, at);
        } catch (undo) {
          broken = Object.assign(
            new Error(`message log ${seg.path} could not be cut back after a failed write (${(undo as Error).message}): restart the server`),
            {
              code: (err as { code?: string }).code ?? "EIO",
            },
          );
        }
        throw err;
      }
      seg.size = at + done;
      if (opts.sync === "full") seg.synced = seg.size;
      for (let i = 0; i < batch.length; i++) starts.set(batch[i]!.id, lineStarts[i]!);
      // A rare huge line or batch must not keep its buffer or offsets for good.
      if (scratch.length > SCRATCH_KEEP) scratch = Buffer.allocUnsafe(SCRATCH_KEEP);
      if (lineStarts.length > LINE_STARTS_KEEP) lineStarts.length = 0;
      last = batch[batch.length - 1]!.id;
      return frames;
    },
    read(ids) {
      open();
      const out: StoredMessage[] = [];
      let i = 0;
      while (i < ids.length) {
        const first = ids[i++]!;
        const seg = segmentOf(first);
        const s0 = starts.get(first);
        if (!seg || Number.isNaN(s0)) continue;
        // The following ids in the same segment whose lines lie close together: one read for the run.
        let lo = s0;
        let hi = endOf(first, s0, seg);
        const run: [number, number][] = [[lo, hi]];
        for (; i < ids.length; i++) {
          const s = starts.get(ids[i]!);
          if (Number.isNaN(s)) continue;
          if (segmentOf(ids[i]!) !== seg) break;
          const e = endOf(ids[i]!, s, seg);
          const gap = s >= hi ? s - hi : lo >= e ? lo - e : 0;
          if (gap > GAP_MAX || Math.max(hi, e) - Math.min(lo, s) > SPAN_MAX) break;
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
    held(after, limit) {
      open();
      const out: number[] = [];
      for (let id = Math.max(after + 1, starts.base); id <= last && out.length < limit; id++) if (!Number.isNaN(starts.get(id))) out.push(id);
      return out;
    },
    flush() {
      open();
      syncAll(true);
    },
    reserved: reservation.id,
    reserve(id) {
      if (id <= reservation.durable) return;
      open();
      writeReservation(reservation, id + RESERVE_STEP);
    },
    check() {
      open();
      if (broken) throw broken;
    },
    dropThrough(upTo) {
      open();
      // The newest segment stays: it is the one being written.
      while (segs.length > 1 && segs[1]!.first - 1 <= upTo) {
        const seg = segs.shift()!;
        seg.closed = true;
        closeSync(seg.fd);
        unlinkSync(seg.path);
      }
      if (segs.length > 0) starts.rebase(segs[0]!.first);
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      try {
        // A clean stop leaves nothing that only the page cache holds, and no ids reserved past the last.
        if (!broken) {
          syncAll(true);
          writeReservation(reservation, last);
        }
      } finally {
        for (const s of segs) {
          s.closed = true;
          closeSync(s.fd);
        }
        closeSync(reservation.fd);
        lock.release();
      }
    },
  } satisfies MessageLog;
}

/** The file `reserved` in the log's folder: the highest id that may have been given out, as 20 digits. */
interface Reservation {
  fd: number;
  /** As read at open. */
  id: number;
  /** As last written and synced. */
  durable: number;
}

function openReservation(dir: string): Reservation {
  const path = join(dir, "reserved");
  // Created if missing, then opened for writes in place: a fixed-width number overwritten, never truncated.
  closeSync(openSync(path, "a"));
  const fd = openSync(path, "r+");
  const buf = Buffer.alloc(20);
  const n = readSync(fd, buf, 0, 20, 0);
  const id = Number(buf.toString("latin1", 0, n).trim()) || 0;
  return { fd, id, durable: id };
}

/** Writes `id` in place (one sector) and syncs it before any id above the old reservation goes out. */
function writeReservation(r: Reservation, id: number): void {
  const buf = Buffer.from(String(id).padStart(20, "0"));
  writeSync(r.fd, buf, 0, buf.length, 0);
  fdatasyncSync(r.fd);
  r.durable = id;
}
