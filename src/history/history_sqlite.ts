import { Database, type Statement } from "bun:sqlite";
// No web-standard API creates a folder; node:fs is the one way here.
import { mkdirSync } from "node:fs";
import type { History, Reader, StoredMessage } from "./history";
import type { MessageKind } from "../protocol";

/** Schema migrations, applied in order; the index + 1 is the schema version. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE messages (
     id INTEGER PRIMARY KEY,
     kind TEXT NOT NULL,
     sender TEXT NOT NULL,
     target TEXT,
     text TEXT NOT NULL,
     at INTEGER NOT NULL,
     cid TEXT
   );
   CREATE INDEX messages_target ON messages (target, id) WHERE target IS NOT NULL;
   CREATE INDEX messages_cid ON messages (sender, cid) WHERE cid IS NOT NULL;
   CREATE TABLE cursors (user TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`,
];

interface Row { id: number; kind: MessageKind; sender: string; target: string | null; text: string; at: number; cid: string | null }

const toMessage = (r: Row): StoredMessage => {
  const m: StoredMessage = { id: r.id, kind: r.kind, from: r.sender, text: r.text, at: r.at };
  if (r.target !== null) m.to = r.target;
  if (r.cid !== null) m.cid = r.cid;
  return m;
};

const COLS = "id, kind, sender, target, text, at, cid";

/**
 * History in a SQLite file (WAL mode, synchronous=FULL: a commit survives a
 * crash of the process and of the machine). The schema is created and
 * migrated here, tracked in `schema_version`.
 */
export function createSqliteHistory(path: string): History {
  if (path !== ":memory:") {
    const dir = path.slice(0, Math.max(path.lastIndexOf("/"), 0));
    if (dir) mkdirSync(dir, { recursive: true });
  }
  const db = new Database(path, { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = FULL");
  db.run("PRAGMA busy_timeout = 2000");
  migrate(db);

  const meta = (key: string) => (db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: number } | null)?.value ?? 0;
  const setMeta = db.query("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, ?2)");
  let last = Math.max(meta("last_id"), (db.query("SELECT max(id) AS m FROM messages").get() as { m: number | null }).m ?? 0);
  let pruned = meta("pruned_through");

  const insert = db.query(`INSERT INTO messages (${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)`);
  const appendTx = db.transaction((batch: readonly StoredMessage[]) => {
    for (const m of batch) insert.run(m.id, m.kind, m.from, m.to ?? null, m.text, m.at, m.cid ?? null);
    setMeta.run("last_id", batch[batch.length - 1]!.id);
  });
  const byCid = db.query(`SELECT ${COLS} FROM messages WHERE sender = ? AND cid = ? AND at >= ? ORDER BY id LIMIT 1`);
  const inboxQ = db.query(`SELECT ${COLS} FROM messages WHERE target = ? AND kind = 'direct' AND id > ? ORDER BY id LIMIT ?`);
  const pageB = db.query(`SELECT ${COLS} FROM messages WHERE kind = 'broadcast' AND id < ? ORDER BY id DESC LIMIT ?`);
  const pageR = db.query(`SELECT ${COLS} FROM messages WHERE target = ? AND kind = 'room' AND id < ? ORDER BY id DESC LIMIT ?`);
  const cursorQ = db.query("SELECT id FROM cursors WHERE user = ?");
  const setCursorQ = db.query("INSERT INTO cursors (user, id) VALUES (?1, ?2) ON CONFLICT (user) DO UPDATE SET id = max(id, ?2)");
  const visibleCache = new Map<string, Statement>();

  const visibleQuery = (rooms: number, newest: boolean) => {
    const key = `${rooms}:${newest}`;
    let q = visibleCache.get(key);
    if (!q) {
      // Room names are bound as parameters; only their count shapes the SQL.
      const roomList = Array.from({ length: rooms }, () => "?").join(", ");
      const roomClause = rooms > 0 ? ` OR (kind = 'room' AND target IN (${roomList}))` : "";
      q = db.query(
        `SELECT ${COLS} FROM messages WHERE id > ? AND id <= ? AND (kind = 'broadcast'` +
          ` OR (kind = 'direct' AND (target = ? OR sender = ?))${roomClause})` +
          ` ORDER BY id ${newest ? "DESC" : "ASC"} LIMIT ?`,
      );
      if (visibleCache.size < 64) visibleCache.set(key, q);
    }
    return q;
  };

  let closed = false;
  return {
    lastId: () => last,
    prunedThrough: () => pruned,
    append(batch) {
      if (batch.length === 0) return;
      appendTx(batch);
      last = Math.max(last, batch[batch.length - 1]!.id);
    },
    findByCid(from, cid, notBefore) {
      const r = byCid.get(from, cid, notBefore) as Row | null;
      return r ? toMessage(r) : undefined;
    },
    visible(reader: Reader, after, upTo, limit, newest = false) {
      const rooms = [...reader.rooms];
      const rows = visibleQuery(rooms.length, newest).all(after, upTo, reader.user, reader.user, ...rooms, limit) as Row[];
      if (newest) rows.reverse();
      return rows.map(toMessage);
    },
    inbox: (user, after, limit) => (inboxQ.all(user, after, limit) as Row[]).map(toMessage),
    page(room, before, limit) {
      const rows = room === undefined ? pageB.all(before, limit) : pageR.all(room, before, limit);
      return (rows as Row[]).map(toMessage);
    },
    cursor: (user) => (cursorQ.get(user) as { id: number } | null)?.id ?? 0,
    setCursor(user, id) {
      setCursorQ.run(user, id);
    },
    prune(maxMessages, minAt, maxRows) {
      const oldest = db.query("SELECT id, at FROM messages ORDER BY id LIMIT 1").get() as { id: number; at: number } | null;
      if (!oldest) return 0;
      const keepFrom = db.query("SELECT id FROM messages ORDER BY id DESC LIMIT 1 OFFSET ?").get(maxMessages - 1) as { id: number } | null;
      let cut = keepFrom ? keepFrom.id - 1 : 0;
      if (oldest.at < minAt) {
        const young = db.query("SELECT id FROM messages WHERE at >= ? ORDER BY id LIMIT 1").get(minAt) as { id: number } | null;
        cut = Math.max(cut, young ? young.id - 1 : last);
      }
      if (cut < oldest.id) return 0;
      const top = db.query("SELECT id FROM messages WHERE id <= ? ORDER BY id LIMIT 1 OFFSET ?").get(cut, maxRows - 1) as { id: number } | null;
      const upTo = top ? top.id : cut;
      const removed = db.transaction(() => {
        const n = db.query("DELETE FROM messages WHERE id <= ?").run(upTo).changes;
        setMeta.run("pruned_through", upTo);
        return n;
      })();
      pruned = Math.max(pruned, upTo);
      return removed;
    },
    close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  } satisfies History;
}

function migrate(db: Database): void {
  db.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const row = db.query("SELECT version FROM schema_version").get() as { version: number } | null;
  const from = row?.version ?? 0;
  if (from > MIGRATIONS.length) {
    throw new Error(`Database schema version ${from} is newer than this wirechat (${MIGRATIONS.length}): upgrade wirechat`);
  }
  db.transaction(() => {
    for (let v = from; v < MIGRATIONS.length; v++) db.run(MIGRATIONS[v]!);
    if (row) db.run("UPDATE schema_version SET version = ?", [MIGRATIONS.length]);
    else db.run("INSERT INTO schema_version (version) VALUES (?)", [MIGRATIONS.length]);
  })();
}
