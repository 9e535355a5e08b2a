import { Database } from "bun:sqlite";
// No web-standard API creates a folder; node:fs is the one way here.
import { mkdirSync } from "node:fs";
import { CID_MEMORY_MAX, CID_WINDOW_MS, type Appended, type CidHit, type History, type NewMessage, type StoredMessage } from "./history";
import { indexKeys as keyOf, keysOf, readerKeys } from "../hub/routing";
import { IdIndex, mergeIds } from "./id_index";
import { CidIndex } from "./cid_index";
import { highestIdSeen, migrate, readEpoch } from "./sqlite_schema";
import { startCheckpointer, stopCheckpointer } from "./wal_checkpoints";
import { createMemoryLog, type MessageLog } from "./message_log";
import { openFileLog } from "./message_log_file";
import { claimLogDir, moveLegacyRows } from "./message_log_setup";
import { consoleLogger } from "../log";

/** The folder of the message log beside a database file. */
export const messageLogDir = (dbPath: string) => `${dbPath}-messages`;

/** `normal` (WAL) survives a crash of the process; `full` also fsyncs every commit. */
export type SyncMode = "full" | "normal";

/**
 * History in a SQLite file, WAL mode, with the messages themselves in an
 * append-only log beside it (`<file>-messages/`, see message_log.ts);
 * "normal" sync by default, "full" to survive an OS crash or power loss too.
 * Lookups by user, room and cid use in-memory indexes rebuilt from the log at
 * start. The schema is created and migrated here (`schema_version`);
 * messages of a database from before the log are moved into it at start.
 */
export function createSqliteHistory(path: string, sync: SyncMode = "normal", segmentBytes?: number): History {
  if (path !== ":memory:") {
    const dir = path.slice(0, Math.max(path.lastIndexOf("/"), 0));
    if (dir) mkdirSync(dir, { recursive: true });
  }
  const db = new Database(path, { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run(`PRAGMA synchronous = ${sync === "full" ? "FULL" : "NORMAL"}`);
  // Short: a commit waits on the event loop; an outside lock should fail it fast (store_failed), not stall delivery.
  db.run("PRAGMA busy_timeout = 250");
  migrate(db);

  const index = new IdIndex();
  /** `${sender}\n${cid}` → its message, for cids of the last CID_WINDOW_MS. */
  const cids = new CidIndex(CID_MEMORY_MAX);
  /** Remembers a stored message's cid (`key`: sender and cid) for de-duplication. */
  const rememberCid = (m: StoredMessage, key: string, windowStart: number, hash?: number) => {
    if (m.at >= windowStart) cids.remember(key, { id: m.id, kind: m.kind, to: m.to }, m.at, hash);
  };
  const remember = (m: StoredMessage, windowStart: number) => {
    index.addAll(keysOf(m), m.id);
    if (m.cid !== undefined) rememberCid(m, `${m.from}\n${m.cid}`, windowStart);
  };

  const meta = (key: string) => (db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: number } | null)?.value ?? 0;
  const setMeta = db.query("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, ?2)");
  let pruned = meta("pruned_through");
  const epoch = readEpoch(db);

  /** Messages held with an id above `pruned`: kept here so that pruning by count never has to count. */
  let rows = 0;
  const loaded = (m: StoredMessage, windowStart: number) => {
    // A pruned message may still be in the log (it frees whole segments): its cid is still worth knowing.
    if (m.id > pruned) {
      remember(m, windowStart);
      rows++;
    } else if (m.cid !== undefined) rememberCid(m, `${m.from}\n${m.cid}`, windowStart);
  };
  const startWindow = Date.now() - CID_WINDOW_MS;
  let opened: MessageLog | undefined;
  try {
    opened =
      path === ":memory:"
        ? createMemoryLog()
        : openFileLog(claimLogDir(messageLogDir(path), epoch, path), {
            sync,
            segmentBytes,
            onRecord: (m) => loaded(m, startWindow),
            onRepair: (what) => consoleLogger.warn(`message log: ${what} (a crash cut that write short; it was never acknowledged)`),
          });
    moveLegacyRows(db, opened, messageLogDir(path), (m) => loaded(m, startWindow));
  } catch (err) {
    // A store that cannot start holds nothing open.
    try {
      opened?.close();
    } finally {
      db.close();
    }
    throw err;
  }
  const log: MessageLog = opened;
  let last = Math.max(meta("last_id"), log.last);
  // With DB_SYNC=normal a machine crash may take the log's last lines, whose ids clients may hold and
  // cursors or read markers may name: new ids continue after every id that may have gone out, never reuse one.
  const seen = Math.max(highestIdSeen(db), log.reserved);
  if (seen > last) {
    consoleLogger.warn(
      `the last run did not stop cleanly: the message log ends at id ${log.last}, and new ids continue after ${seen}, past any id it may have given out`,
    );
    last = seen;
  }
  const checkpointer = path === ":memory:" ? undefined : startCheckpointer(db, path);
  // A prune's segment deletion may have reached the disk while its mark did not.
  if (log.first > pruned + 1) pruned = log.first - 1;

  /** Reads messages by id, in the order of `ids`; pruned ones are gone even while their segment is kept. */
  const fetch = (ids: number[]): StoredMessage[] => log.read(pruned === 0 ? ids : ids.filter((id) => id > pruned));
  const cursorQ = db.query("SELECT id FROM cursors WHERE user = ?");
  const prunedInboxQ = db.query("SELECT id FROM pruned_inbox WHERE user = ?");
  const readsQ = db.query("SELECT conv, id FROM reads WHERE user = ?");
  const setReadQ = db.query("INSERT INTO reads (user, conv, id) VALUES (?1, ?2, ?3) ON CONFLICT (user, conv) DO UPDATE SET id = max(id, ?3) RETURNING id");
  // Before rows go, note per recipient the newest direct message pruned: their inbox replay must say it is incomplete.
  const notePrunedInbox = db.query("INSERT INTO pruned_inbox (user, id) VALUES (?1, ?2) ON CONFLICT (user) DO UPDATE SET id = max(id, ?2)");
  const setCursorQ = db.query("INSERT INTO cursors (user, id) VALUES (?1, ?2) ON CONFLICT (user) DO UPDATE SET id = max(id, ?2)");

  /**
   * appendSync's lists, kept between calls and emptied after each: it runs
   * to its end before another call can begin (nothing in it awaits), and a
   * commit then allocates no lists beyond what it returns. An emptied array
   * keeps its storage: after a burst they hold 8 bytes a slot of the
   * largest batch, and no message (see the README on dropping them).
   */
  const rows_: StoredMessage[] = [];
  /** Where each of rows_ goes in `out`, once the log has made its frame. */
  const slots: number[] = [];
  /** The cid key of each of rows_ (undefined: no cid) and its hash, made once per message. */
  const keys: (string | undefined)[] = [];
  const hashes: number[] = [];
  /**
   * Gives the new messages their ids and appends them to the log in one
   * write; only once it is written do the counters, indexes and cids move,
   * so a failed batch leaves no trace.
   */
  const appendSync = (batch: readonly NewMessage[]): Appended[] => {
    try {
      return appendInto(batch);
    } finally {
      // Holds no message past its commit, even when the write failed.
      rows_.length = slots.length = keys.length = hashes.length = 0;
    }
  };
  const appendInto = (batch: readonly NewMessage[]): Appended[] => {
    const out: Appended[] = new Array(batch.length);
    let seen: Map<string, CidHit> | undefined;
    let id = last;
    const window = Date.now() - CID_WINDOW_MS;
    for (let i = 0; i < batch.length; i++) {
      const n = batch[i]!;
      const key = n.cid === undefined ? undefined : `${n.from}\n${n.cid}`;
      const hash = key === undefined ? 0 : cids.hash(key);
      if (key !== undefined) {
        const dup = seen?.get(key) ?? cids.find(key, window, hash);
        if (dup) {
          out[i] = { duplicate: dup };
          continue;
        }
        (seen ??= new Map()).set(key, { id: id + 1, kind: n.kind, to: n.to });
      }
      // One shape, every field in the literal (see the hub's #accept).
      const m: StoredMessage = { id: ++id, kind: n.kind, from: n.from, to: n.to, text: n.text, at: n.at, cid: n.cid };
      rows_.push(m);
      keys.push(key);
      hashes.push(hash);
      slots.push(i);
    }
    if (rows_.length === 0) return out;
    log.reserve(id);
    const frames = log.append(rows_);
    rows += rows_.length;
    for (let i = 0; i < rows_.length; i++) {
      const m = rows_[i]!;
      out[slots[i]!] = { stored: m, frame: frames[i]! };
      index.addAll(keysOf(m), m.id);
      const key = keys[i];
      if (key !== undefined) rememberCid(m, key, window, hashes[i]);
    }
    last = id;
    return out;
  };

  /** Runs a synchronous read as the interface's promise: a throw becomes a rejection. */
  const later = <T>(f: () => T): Promise<T> => {
    try {
      return Promise.resolve(f());
    } catch (err) {
      return Promise.reject(err);
    }
  };

  let closed = false;
  return {
    epoch,
    refreshEpoch: () => Promise.resolve(epoch),
    lastId: () => last,
    newest: () => Promise.resolve(last),
    prunedThrough: () => Promise.resolve(pruned),
    append: (batch) => later(() => appendSync(batch)),
    appendNow: appendSync,
    findByCid: (from, cid, notBefore) => Promise.resolve(cids.find(`${from}\n${cid}`, notBefore)),
    visible: (reader, after, upTo, limit, newest = false) =>
      later(() =>
        fetch(
          mergeIds(
            readerKeys(reader.user, reader.rooms).map((k) => index.range(k, after, upTo, limit, newest)),
            limit,
            newest,
          ),
        ),
      ),
    inbox: (user, after, upTo, limit, newest = false) => later(() => fetch(index.range(keyOf.to(user), after, upTo, limit, newest))),
    conversation: (a, b, before, limit) => later(() => fetch(index.before(keyOf.pair(a, b), before, limit))),
    prunedInbox: (user) => later(() => (prunedInboxQ.get(user) as { id: number } | null)?.id ?? 0),
    page: (room, before, limit) => later(() => fetch(index.before(room === undefined ? keyOf.broadcast : keyOf.room(room), before, limit))),
    get: (ids) => later(() => fetch([...new Set(ids)].sort((a, b) => a - b))),
    reads: (user) => later(() => Object.fromEntries((readsQ.all(user) as { conv: string; id: number }[]).map((r) => [r.conv, r.id]))),
    setRead: (user, conv, id) => later(() => (setReadQ.get(user, conv, id) as { id: number }).id),
    unread: (user, rooms, markers, cap) => later(() => unreadSync(user, rooms, markers, cap)),
    cursor: (user) => later(() => (cursorQ.get(user) as { id: number } | null)?.id ?? 0),
    setCursor: (user, id) => later(() => void setCursorQ.run(user, id)),
    prune: (maxMessages, minAt, maxRows) => later(() => pruneSync(maxMessages, minAt, maxRows)),
    // Takes the write lock and lets it go: writable, not locked by another process, not read-only.
    check: () =>
      later(() => {
        log.check();
        db.transaction(() => {}).immediate();
      }),
    async close() {
      if (closed) return;
      closed = true;
      // The worker checkpoints once more and closes its connection: a clean stop leaves no WAL behind.
      if (checkpointer) await stopCheckpointer(checkpointer);
      try {
        db.run("PRAGMA wal_checkpoint(TRUNCATE)");
      } catch {
        // Busy (another reader): the next start checkpoints it.
      }
      db.close();
      log.close();
    },
  } satisfies History;

  function unreadSync(user: string, rooms: Iterable<string>, markers: Record<string, number>, cap: number) {
    const out: Record<string, { count: number; lastId: number }> = {};
    // The user's own messages are not unread: count among the newest `cap` after the marker, by sender.
    const note = (conv: string, key: string) => {
      let count = 0;
      let last = 0;
      for (const m of fetch(index.range(key, markers[conv] ?? 0, Number.MAX_SAFE_INTEGER, cap, true))) {
        if (m.from === user) continue;
        count++;
        last = Math.max(last, m.id);
      }
      if (count > 0) out[conv] = { count, lastId: last };
    };
    note("*", keyOf.broadcast);
    for (const room of rooms) note(`#${room}`, keyOf.room(room));
    // Direct conversations: among the newest `cap` messages to the user, those after each partner's marker.
    for (const m of fetch(index.range(keyOf.to(user), 0, Number.MAX_SAFE_INTEGER, cap, true))) {
      if (m.from === user || m.id <= (markers[`@${m.from}`] ?? 0)) continue;
      const c = (out[`@${m.from}`] ??= { count: 0, lastId: 0 });
      c.count++;
      c.lastId = Math.max(c.lastId, m.id);
    }
    return out;
  }

  function pruneSync(maxMessages: number, minAt: number, maxRows: number): number {
    // Cids leave by their own window, not with pruning: a late retry of a pruned message is still known.
    cids.forget(Date.now() - CID_WINDOW_MS);
    if (rows === 0) return 0;
    // Only the oldest `maxRows` messages are read: a step costs the same however
    // much history is kept, so pruning never holds up delivery for long.
    const ids = log.held(pruned, maxRows);
    if (rows <= maxMessages) {
      const oldest = log.read(ids.slice(0, 1))[0];
      if (oldest === undefined || oldest.at >= minAt) return 0;
    }
    const oldest = log.read(ids);
    let n = Math.min(Math.max(0, rows - maxMessages), oldest.length);
    while (n < oldest.length && oldest[n]!.at < minAt) n++;
    if (n === 0) return 0;
    const upTo = oldest[n - 1]!.id;
    // Per recipient, the newest direct message pruned: their inbox replay must say it is incomplete.
    const inbox = new Map<string, number>();
    for (let i = 0; i < n; i++) if (oldest[i]!.kind === "direct") inbox.set(oldest[i]!.to!, oldest[i]!.id);
    db.transaction(() => {
      for (const [user, id] of inbox) notePrunedInbox.run(user, id);
      setMeta.run("pruned_through", upTo);
      // The log keeps its newest segment, but note the newest id too: ids never go back.
      setMeta.run("last_id", last);
    })();
    rows -= n;
    pruned = Math.max(pruned, upTo);
    index.dropThrough(upTo);
    log.dropThrough(upTo);
    return n;
  }
}
