/**
 * The message log's files as they lie on disk: segment names, reading back
 * their whole lines (at open, and by the backup while a server writes), the
 * id → offset table, the folder's lock.
 */
import { Database } from "bun:sqlite";
// node:fs: the server's own files; no web-standard API lists a folder or syncs one.
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { StoredMessage } from "./history";
import { decodeRecord } from "./message_log";

const SEGMENT_NAME = /^(\d{16})\.jsonl$/;
/** A segment is named after the first id it may hold, so the names sort in id order. */
export const segmentName = (first: number) => `${String(first).padStart(16, "0")}.jsonl`;

/**
 * Reads the whole lines of the segments in `dir`, in id order. A line that is
 * incomplete or not a message ends its segment: the rest was a write a crash
 * cut short. `cut` is told where each such segment ends.
 */
export function scanLog(
  dir: string,
  each: (m: StoredMessage, segment: number, start: number) => void,
  cut?: (path: string, size: number) => void,
): { first: number; path: string; size: number }[] {
  const names = readdirSync(dir)
    .filter((n) => SEGMENT_NAME.test(n))
    .sort();
  const out: { first: number; path: string; size: number }[] = [];
  let prev = 0;
  for (const name of names) {
    const path = join(dir, name);
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      // Dropped by retention while a backup reads the log.
      if ((err as { code?: string }).code === "ENOENT") continue;
      throw err;
    }
    let pos = 0;
    while (pos < data.length) {
      const nl = data.indexOf(10, pos);
      if (nl < 0) break;
      let m: StoredMessage;
      try {
        m = decodeRecord(data.toString("utf8", pos, nl));
      } catch {
        break;
      }
      if (m.id <= prev) throw new Error(`message log ${path} is damaged: id ${m.id} at byte ${pos} is not above ${prev}; restore from a backup`);
      each(m, out.length, pos);
      prev = m.id;
      pos = nl + 1;
    }
    if (pos < data.length) cut?.(path, pos);
    out.push({ first: Number(SEGMENT_NAME.exec(name)![1]), path, size: pos });
  }
  return out;
}

/**
 * Holds the log's folder for this process until `release`: SQLite's own
 * exclusive lock on a file in it, so a second server (or any store) opened
 * on the same DB_PATH is refused instead of writing over the first one's lines.
 */
export function lockLogDir(dir: string): { release(): void } {
  const db = new Database(join(dir, "lock"), { create: true });
  try {
    // Exclusive locking mode keeps the lock after the transaction, until the connection closes.
    db.run("PRAGMA locking_mode = EXCLUSIVE");
    db.run("BEGIN EXCLUSIVE");
    db.run("COMMIT");
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") {
      throw new Error(`Another process is using the message log ${dir}: stop it before starting another on the same DB_PATH`);
    }
    throw err;
  }
  return { release: () => db.close() };
}

/** Makes new names in `dir` durable (best effort: not every file system syncs folders). */
export function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {}
}
