/**
 * Opening the message log beside a SQLite database: the folder is claimed
 * for that database, and messages that an older wirechat (or a backup)
 * keeps in the database's `messages` table are moved into the log.
 */
import type { Database } from "bun:sqlite";
// node:fs: the log's folder and its epoch mark; no web-standard API writes a file synchronously.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { StoredMessage } from "./history";
import type { MessageLog } from "./message_log";
import { syncDir } from "./message_log_scan";
import type { MessageKind } from "../protocol";

interface Row {
  id: number;
  kind: MessageKind;
  sender: string;
  target: string | null;
  text: string;
  at: number;
  cid: string | null;
}

const toMessage = (r: Row): StoredMessage => {
  const m: StoredMessage = { id: r.id, kind: r.kind, from: r.sender, text: r.text, at: r.at };
  if (r.target !== null) m.to = r.target;
  if (r.cid !== null) m.cid = r.cid;
  return m;
};

const COLS = "id, kind, sender, target, text, at, cid";

/**
 * Creates the message log's folder, or checks that the one there belongs to
 * this database: a log left beside a new or restored file must not mix in.
 */
export function claimLogDir(dir: string, epoch: string, dbPath: string): string {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    syncDir(dirname(dir));
  }
  const mark = `${dir}/epoch`;
  // Empty: a crash right after the folder was made, before the mark reached the disk.
  const held = existsSync(mark) ? readFileSync(mark, "utf8").trim() : "";
  if (held === "") {
    writeFileSync(mark, epoch, { flush: true });
    syncDir(dir);
  } else if (held !== epoch) {
    throw new Error(
      `The message log ${dir} belongs to another database (epoch ${held}, ${dbPath} has ${epoch}): move it away, or restore both from one backup`,
    );
  }
  return dir;
}

/**
 * Moves messages that an older wirechat (or a backup) keeps in the
 * database's `messages` table into the log, then empties the table. A mark
 * in the database says a move is under way: after a crash the next start
 * goes on from where the log ends.
 */
export function moveLegacyRows(db: Database, log: MessageLog, dir: string, each: (m: StoredMessage) => void): void {
  const newest = (db.query("SELECT max(id) AS m FROM messages").get() as { m: number | null }).m;
  if (newest === null) return;
  const moving = db.query("SELECT 1 FROM meta WHERE key = 'legacy_move'").get() !== null;
  // Without a move under way, a log that already holds messages is of another time than the table.
  if (log.last !== 0 && !moving) {
    throw new Error(
      `The database holds messages in its table (a restored backup?) and the message log ${dir} holds messages too (up to id ${log.last}; the table up to ${newest}): remove the message log folder to restore a backup (docs/operations.md)`,
    );
  }
  // On disk before the first line goes to the log: a machine crash mid-move must find the mark.
  const sync = (db.query("PRAGMA synchronous").get() as { synchronous: number }).synchronous;
  db.run("PRAGMA synchronous = FULL");
  db.run("INSERT OR REPLACE INTO meta (key, value) VALUES ('legacy_move', 1)");
  db.run(`PRAGMA synchronous = ${sync}`);
  let batch: StoredMessage[] = [];
  const flush = () => {
    log.append(batch);
    for (const m of batch) each(m);
    batch = [];
  };
  for (const r of db.query(`SELECT ${COLS} FROM messages WHERE id > ? ORDER BY id`).iterate(log.last) as IterableIterator<Row>) {
    batch.push(toMessage(r));
    if (batch.length === 1000) flush();
  }
  if (batch.length > 0) flush();
  // The table is emptied only once the log holds its messages on disk.
  log.flush();
  db.transaction(() => {
    db.run("DELETE FROM messages");
    db.run("DELETE FROM meta WHERE key = 'legacy_move'");
  })();
}
