import type { Database } from "bun:sqlite";

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
   CREATE TABLE cursors (user TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`,
  // Identity (accounts, revocations, the accounts' signing key) and, per
  // user, the newest direct message to them that pruning removed.
  `CREATE TABLE accounts (username TEXT PRIMARY KEY, hash TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE revocations (user TEXT PRIMARY KEY, before INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE secrets (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
   CREATE TABLE pruned_inbox (user TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;`,
  // Read markers: per user and conversation (`@user`, `#room`, `*`), the newest id read.
  `CREATE TABLE reads (user TEXT NOT NULL, conv TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (user, conv)) WITHOUT ROWID;`,
  // Messages live in the message log beside the file (<file>-messages/); the table only brings
  // older data in. A wirechat from before the log refuses this version instead of missing them.
  `INSERT OR IGNORE INTO meta (key, value) VALUES ('message_log', 1);`,
];

/** Creates or upgrades the schema in one transaction; refuses a newer one than it knows. */
export function migrate(db: Database): void {
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

/** The store's epoch: made once, when the store is created empty, and kept with it. */
export function readEpoch(db: Database): string {
  const fresh = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
  db.query("INSERT OR IGNORE INTO secrets (key, value) VALUES ('epoch', ?)").run(fresh);
  return String((db.query("SELECT value FROM secrets WHERE key = 'epoch'").get() as { value: string }).value);
}

/** The highest message id the database names anywhere: inbox cursors, read markers, retention marks. */
export function highestIdSeen(db: Database): number {
  const q = (sql: string) => (db.query(sql).get() as { m: number | null }).m ?? 0;
  return Math.max(
    q("SELECT max(id) AS m FROM cursors"),
    q("SELECT max(id) AS m FROM reads"),
    q("SELECT max(id) AS m FROM pruned_inbox"),
    q("SELECT max(value) AS m FROM meta WHERE key IN ('last_id', 'pruned_through')"),
  );
}
