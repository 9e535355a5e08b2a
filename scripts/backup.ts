/**
 * `bun run backup <target-file>` (or `wirechat backup <target-file>` with the
 * compiled binary): copies the SQLite database at `DB_PATH` (default
 * `./data/wirechat.db`) to a new file while the server keeps running.
 *
 * The copy is `VACUUM INTO` on a connection of its own: one read transaction,
 * so the copy is the database as of one commit, compacted, and whole. In WAL
 * mode a reader never blocks the writer: the server keeps committing while
 * the copy is made. Then the messages, which the server keeps in its message
 * log beside the file (`<DB_PATH>-messages/`), are read from the log's whole
 * lines and written into the copy's `messages` table: every message acked
 * before the backup started is in it, and nothing half-written. The backup
 * is one self-contained file; a server started on it moves those messages
 * into a new log.
 *
 * The copy is written to a temporary file beside the target, synced, and
 * linked to the target name only when complete: the target never holds a
 * partial copy, and an existing target is never replaced (not even by a
 * backup racing this one). It is created readable by its owner only: it holds
 * the accounts' password hashes and the token signing key.
 *
 * Restore: stop the server, remove `DB_PATH`, its `-wal` and `-shm` files
 * and its `-messages` folder, copy the backup to `DB_PATH`, start
 * (docs/operations.md).
 */
import { Database } from "bun:sqlite";
// node:fs: no web-standard API links, syncs or removes a file.
import { closeSync, existsSync, fsyncSync, linkSync, openSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { DEFAULTS } from "../src/config.ts";
import { messageLogDir } from "../src/history/history_sqlite.ts";
import { scanLog, syncDir } from "../src/history/message_log_scan.ts";
import type { StoredMessage } from "../src/history/history.ts";

/** What a backup wrote. */
export interface BackupResult {
  target: string;
  bytes: number;
  messages: number;
  /** The newest message id in the copy (0 when it holds none). */
  lastId: number;
  ms: number;
}

/** Thrown with a one-line reason a backup was not made. */
export class BackupError extends Error {
  override readonly name = "BackupError";
}

/** Copies the database at `source` to the new file `target`, consistently, while its server runs. */
export function backup(source: string, target: string): BackupResult {
  const started = performance.now();
  if (source === ":memory:") throw new BackupError("DB_PATH=:memory: keeps nothing on disk to back up");
  if (!existsSync(source)) throw new BackupError(`no database at DB_PATH=${source}`);
  target = resolve(target);
  if (existsSync(target)) throw new BackupError(`${target} exists: a backup never replaces a file; choose a new name`);
  if (!existsSync(dirname(target))) throw new BackupError(`the folder ${dirname(target)} does not exist`);

  // Beside the target (same file system, so it can be linked there), hidden, unique.
  const partial = join(dirname(target), `.${basename(target)}.partial-${process.pid}-${crypto.randomUUID().slice(0, 8)}`);
  // VACUUM INTO accepts an empty file: creating it first sets its mode.
  closeSync(openSync(partial, "wx", 0o600));
  let db: Database | undefined;
  try {
    // Read-only: the backup never writes to the server's database. The server
    // keeps its WAL and shared-memory files, so a read-only reader can use them.
    db = new Database(source, { readonly: true });
    // A writer holds the lock only briefly (one group commit): wait it out.
    db.run("PRAGMA busy_timeout = 5000");
    db.run("VACUUM INTO ?", [partial]);
    db.close();
    db = undefined;
    copyLog(source, partial);

    // Check the copy before it gets the target's name.
    const copy = new Database(partial, { readonly: true });
    let messages: number;
    let lastId: number;
    try {
      const check = copy.query("PRAGMA quick_check").all() as { quick_check: string }[];
      if (check.length !== 1 || check[0]!.quick_check !== "ok") {
        throw new BackupError(
          `the copy failed its integrity check: ${check
            .map((r) => r.quick_check)
            .join("; ")
            .slice(0, 300)}`,
        );
      }
      const row = copy.query("SELECT count(*) AS n, coalesce(max(id), 0) AS last FROM messages").get() as { n: number; last: number };
      messages = row.n;
      lastId = row.last;
    } catch (err) {
      if (err instanceof BackupError) throw err;
      throw new BackupError(`${source} does not look like a wirechat database: ${(err as Error).message}`);
    } finally {
      copy.close();
    }

    // On disk before it is named: a crash right after never leaves a named, incomplete backup.
    const fd = openSync(partial, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      // link, not rename: it fails when the target exists, rename would replace it.
      linkSync(partial, target);
    } catch (err) {
      if ((err as { code?: string }).code === "EEXIST") throw new BackupError(`${target} exists: a backup never replaces a file; choose a new name`);
      throw err;
    }
    syncDir(dirname(target));
    return { target, bytes: statSync(target).size, messages, lastId, ms: Math.round(performance.now() - started) };
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(`backup of ${source} failed: ${(err as Error).message}`);
  } finally {
    db?.close();
    rmSync(partial, { force: true });
  }
}

/**
 * Writes the messages of the server's log into the copy's `messages` table:
 * those above what the copy says was pruned, read after the copy was made,
 * so none acked before it is missing. Retention may have removed messages
 * meanwhile: the copy then takes the server's pruned marks (overall and per
 * inbox) as they are after the read, so a replay from below them says it is
 * incomplete instead of skipping silently.
 */
function copyLog(source: string, copyPath: string): void {
  const dir = messageLogDir(source);
  if (!existsSync(dir)) return;
  const copy = new Database(copyPath);
  try {
    const meta = (key: string) => (copy.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: number } | null)?.value ?? 0;
    const pruned = meta("pruned_through");
    const insert = copy.query("INSERT OR IGNORE INTO messages (id, kind, sender, target, text, at, cid) VALUES (?, ?, ?, ?, ?, ?, ?)");
    const setMeta = copy.query("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, ?2)");
    copy.transaction(() => {
      let first = 0;
      let last = 0;
      scanLog(dir, (m: StoredMessage) => {
        if (m.id <= pruned) return;
        if (first === 0) first = m.id;
        last = m.id;
        insert.run(m.id, m.kind, m.from, m.to ?? null, m.text, m.at, m.cid ?? null);
      });
      if (first > pruned + 1) setMeta.run("pruned_through", first - 1);
      // The copy's table is complete: no move into a log is under way in it.
      copy.run("DELETE FROM meta WHERE key = 'legacy_move'");
      if (last > 0) setMeta.run("last_id", last);
      const live = new Database(source, { readonly: true });
      try {
        live.run("PRAGMA busy_timeout = 5000");
        const marks = live.query("SELECT key, value FROM meta WHERE key = 'pruned_through'").all() as { key: string; value: number }[];
        for (const { key, value } of marks) setMeta.run(key, value);
        const inbox = copy.query("INSERT INTO pruned_inbox (user, id) VALUES (?1, ?2) ON CONFLICT (user) DO UPDATE SET id = max(id, ?2)");
        for (const r of live.query("SELECT user, id FROM pruned_inbox").all() as { user: string; id: number }[]) inbox.run(r.user, r.id);
      } finally {
        live.close();
      }
    })();
  } finally {
    copy.close();
  }
}

const USAGE = "usage: bun run backup <target-file>   (copies DB_PATH, default ./data/wirechat.db, while the server runs)";

/** The command line: prints one line and returns the exit code (0 done, 1 failed, 2 usage). */
export function backupCommand(args: string[], env: Record<string, string | undefined>): number {
  if (args.length !== 1 || args[0]!.startsWith("-")) {
    console.error(USAGE);
    return 2;
  }
  if (env.REDIS_URL?.trim()) {
    console.error(
      "backup: REDIS_URL is set: in cluster mode history lives in Redis; back up Redis instead (appendonly files or an RDB snapshot, see docs/operations.md)",
    );
    return 2;
  }
  const source = env.DB_PATH || DEFAULTS.dbPath;
  try {
    const r = backup(source, args[0]!);
    console.log(`backup: wrote ${r.target} from ${source}: ${r.messages} messages (newest id ${r.lastId}), ${r.bytes} bytes, ${r.ms} ms`);
    return 0;
  } catch (err) {
    console.error(`backup: ${err instanceof BackupError ? err.message : String(err)}`);
    return 1;
  }
}

if (import.meta.main) process.exit(backupCommand(process.argv.slice(2), process.env));
