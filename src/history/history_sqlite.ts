import { Database, type SQLQueryBindings, type Statement } from "bun:sqlite";
// No web-standard API creates a folder; node:fs is the one way here.
import { mkdirSync } from "node:fs";
import { CID_MEMORY_MAX, CID_WINDOW_MS, type Appended, type CidHit, type History, type NewMessage, type StoredMessage } from "./history";
import { indexKeys as keyOf, keysOf, readerKeys } from "../hub/routing";
import { IdIndex, mergeIds } from "./id_index";
import { migrate } from "./sqlite_schema";
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
/** Rows per INSERT and ids per SELECT: running one statement per row costs more than the row. */
const CHUNK = 128;

/** How often the worker checkpoints the WAL into the database file. */
const CHECKPOINT_EVERY_MS = 1000;

/** `normal` (WAL) survives a crash of the process; `full` also fsyncs every commit. */
export type SyncMode = "full" | "normal";

/**
 * History in a SQLite file, WAL mode; "normal" sync by default, "full" to
 * survive an OS crash or power loss too. Rows are only ever appended in id
 * order; lookups by user, room and cid use in-memory indexes rebuilt from the
 * file at start. The schema is created and migrated here (`schema_version`).
 */
export function createSqliteHistory(path: string, sync: SyncMode = "normal"): History {
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
  const checkpointer = path === ":memory:" ? undefined : startCheckpointer(db, path);

  const index = new IdIndex();
  /** `${sender}\n${cid}` → its message, in id order, for cids of the last CID_WINDOW_MS. */
  const cids = new Map<string, CidHit & { at: number }>();
  const remember = (id: number, kind: MessageKind, from: string, to: string | null, at: number, cid: string | null) => {
    for (const key of keysOf({ kind, from, to: to ?? undefined })) index.add(key, id);
    if (cid !== null && at >= Date.now() - CID_WINDOW_MS) {
      const key = `${from}\n${cid}`;
      cids.delete(key); // a cid reused after the window: keep the map in id order
      cids.set(key, { id, kind, to: to ?? undefined, at });
      if (cids.size > CID_MEMORY_MAX) cids.delete(cids.keys().next().value!);
    }
  };
  /** Rows stored now: kept here so that pruning by count never has to count. */
  let rows = 0;
  for (const r of db.query("SELECT id, kind, sender, target, at, cid FROM messages ORDER BY id").iterate() as IterableIterator<Row>) {
    remember(r.id, r.kind, r.sender, r.target, r.at, r.cid);
    rows++;
  }
  const oldestQ = db.query("SELECT id, at FROM messages ORDER BY id LIMIT ?");

  const meta = (key: string) => (db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: number } | null)?.value ?? 0;
  const setMeta = db.query("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, ?2)");
  let last = Math.max(meta("last_id"), (db.query("SELECT max(id) AS m FROM messages").get() as { m: number | null }).m ?? 0);
  let pruned = meta("pruned_through");

  const inserts: Statement[] = [];
  const insertOf = (n: number) => (inserts[n] ??= db.query(`INSERT INTO messages (${COLS}) VALUES ${Array(n).fill("(?, ?, ?, ?, ?, ?, ?)").join(", ")}`));
  const epoch = readEpoch(db);
  const appendTx = db.transaction((batch: readonly StoredMessage[]) => {
    for (let i = 0; i < batch.length; i += CHUNK) {
      const n = Math.min(CHUNK, batch.length - i);
      const params: (string | number | null)[] = new Array(n * 7);
      for (let j = 0; j < n; j++) {
        const m = batch[i + j]!;
        const k = j * 7;
        params[k] = m.id;
        params[k + 1] = m.kind;
        params[k + 2] = m.from;
        params[k + 3] = m.to ?? null;
        params[k + 4] = m.text;
        params[k + 5] = m.at;
        params[k + 6] = m.cid ?? null;
      }
      // An array binds positionally, without spreading hundreds of arguments.
      insertOf(n).run(params as unknown as SQLQueryBindings);
    }
  });

  const selects: Statement[] = [];
  const selectOf = (n: number) => (selects[n] ??= db.query(`SELECT ${COLS} FROM messages WHERE id IN (${Array(n).fill("?").join(", ")}) ORDER BY id`));
  /** Reads rows by id, in the order of `ids` (ascending or descending). */
  const fetch = (ids: number[]): StoredMessage[] => {
    const out: StoredMessage[] = [];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const part = ids.slice(i, i + CHUNK);
      const rows = (selectOf(part.length).all(...part) as Row[]).map(toMessage);
      if (part.length > 1 && part[0]! > part[1]!) rows.reverse();
      out.push(...rows);
    }
    return out;
  };
  const cursorQ = db.query("SELECT id FROM cursors WHERE user = ?");
  const prunedInboxQ = db.query("SELECT id FROM pruned_inbox WHERE user = ?");
  const readsQ = db.query("SELECT conv, id FROM reads WHERE user = ?");
  const setReadQ = db.query("INSERT INTO reads (user, conv, id) VALUES (?1, ?2, ?3) ON CONFLICT (user, conv) DO UPDATE SET id = max(id, ?3) RETURNING id");
  // Before rows go, note per recipient the newest direct message pruned: their inbox replay must say it is incomplete.
  const notePrunedInbox = db.query(`INSERT INTO pruned_inbox (user, id)
    SELECT target, max(id) FROM messages WHERE id <= ?1 AND kind = 'direct' GROUP BY target
    ON CONFLICT (user) DO UPDATE SET id = max(id, excluded.id)`);
  const setCursorQ = db.query("INSERT INTO cursors (user, id) VALUES (?1, ?2) ON CONFLICT (user) DO UPDATE SET id = max(id, ?2)");

  /** Finds a remembered cid: the store's de-duplication, within the window. */
  const findCid = (from: string, cid: string, notBefore: number): CidHit | undefined => {
    const hit = cids.get(`${from}\n${cid}`);
    if (hit === undefined || hit.at < notBefore) return undefined;
    return { id: hit.id, kind: hit.kind, to: hit.to };
  };

  /**
   * Gives the new messages their ids and commits them in one transaction;
   * only once it committed do the counters, indexes and cids move, so a
   * failed batch leaves no trace.
   */
  const appendSync = (batch: readonly NewMessage[]): Appended[] => {
    const out: Appended[] = new Array(batch.length);
    const rows_: StoredMessage[] = [];
    let seen: Map<string, CidHit> | undefined;
    let id = last;
    const window = Date.now() - CID_WINDOW_MS;
    for (let i = 0; i < batch.length; i++) {
      const n = batch[i]!;
      if (n.cid !== undefined) {
        const key = `${n.from}\n${n.cid}`;
        const dup = seen?.get(key) ?? findCid(n.from, n.cid, window);
        if (dup) {
          out[i] = { duplicate: dup };
          continue;
        }
        (seen ??= new Map()).set(key, { id: id + 1, kind: n.kind, to: n.to });
      }
      const m: StoredMessage = { id: ++id, kind: n.kind, from: n.from, text: n.text, at: n.at };
      if (n.to !== undefined) m.to = n.to;
      if (n.cid !== undefined) m.cid = n.cid;
      rows_.push(m);
      out[i] = { stored: m };
    }
    if (rows_.length === 0) return out;
    appendTx(rows_);
    rows += rows_.length;
    for (const m of rows_) remember(m.id, m.kind, m.from, m.to ?? null, m.at, m.cid ?? null);
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
    findByCid: (from, cid, notBefore) => Promise.resolve(findCid(from, cid, notBefore)),
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
    get: (ids) => later(() => fetch([...ids].sort((a, b) => a - b))),
    reads: (user) => later(() => Object.fromEntries((readsQ.all(user) as { conv: string; id: number }[]).map((r) => [r.conv, r.id]))),
    setRead: (user, conv, id) => later(() => (setReadQ.get(user, conv, id) as { id: number }).id),
    unread: (user, rooms, markers, cap) => later(() => unreadSync(user, rooms, markers, cap)),
    cursor: (user) => later(() => (cursorQ.get(user) as { id: number } | null)?.id ?? 0),
    setCursor: (user, id) => later(() => void setCursorQ.run(user, id)),
    prune: (maxMessages, minAt, maxRows) => later(() => pruneSync(maxMessages, minAt, maxRows)),
    // Takes the write lock and lets it go: writable, not locked by another process, not read-only.
    check: () => later(() => void db.transaction(() => {}).immediate()),
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
    forgetCids();
    // Only the oldest `maxRows` rows are read: a step costs the same however
    // much history is kept, so pruning never holds up delivery for long.
    const oldest = oldestQ.all(maxRows) as { id: number; at: number }[];
    let n = Math.min(Math.max(0, rows - maxMessages), oldest.length);
    while (n < oldest.length && oldest[n]!.at < minAt) n++;
    if (n === 0) return 0;
    const upTo = oldest[n - 1]!.id;
    const removed = db.transaction(() => {
      notePrunedInbox.run(upTo);
      const deleted = db.query("DELETE FROM messages WHERE id <= ?").run(upTo).changes;
      setMeta.run("pruned_through", upTo);
      // max(id) alone would go back once everything is pruned: keep the newest id.
      setMeta.run("last_id", last);
      return deleted;
    })();
    rows -= removed;
    pruned = Math.max(pruned, upTo);
    index.dropThrough(upTo);
    return removed;
  }

  /** Drops remembered cids, oldest first, that left the window; pruning does not, so a late retry is still known. */
  function forgetCids() {
    const minAt = Date.now() - CID_WINDOW_MS;
    for (const [key, c] of cids) {
      if (c.at >= minAt) break;
      cids.delete(key);
    }
  }
}

/** Checkpoints from a worker thread: this connection never checkpoints by itself. */
/** Asks the worker to stop (it closes its connection), waiting at most a second before ending it. */
function stopCheckpointer(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      worker.terminate();
      resolve();
    };
    const timer = setTimeout(done, 1000);
    worker.onmessage = (e: MessageEvent) => {
      if (e.data === "stopped") done();
    };
    worker.postMessage("stop");
  });
}

function startCheckpointer(db: Database, path: string): Worker {
  db.run("PRAGMA wal_autocheckpoint = 0");
  const worker = new Worker(new URL("./checkpointer.ts", import.meta.url));
  worker.postMessage({ path, everyMs: CHECKPOINT_EVERY_MS });
  (worker as Worker & { unref?: () => void }).unref?.();
  return worker;
}

/** The store's epoch: made once, when the store is created empty, and kept with it. */
function readEpoch(db: Database): string {
  const fresh = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
  db.query("INSERT OR IGNORE INTO secrets (key, value) VALUES ('epoch', ?)").run(fresh);
  return String((db.query("SELECT value FROM secrets WHERE key = 'epoch'").get() as { value: string }).value);
}
