import { Database } from "bun:sqlite";
import { migrate } from "../history/sqlite_schema";
import type { AccountStore, Revocations } from "./store";

/**
 * Accounts, revocations and the signing key in the history's SQLite file
 * (its own connection; WAL lets it share the file with the history's).
 */
export function createSqliteAuthStore(path: string): { accounts: AccountStore; revocations: Revocations; close(): void } {
  const db = new Database(path, { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA busy_timeout = 1000");
  migrate(db);
  const insertAccount = db.query("INSERT INTO accounts (username, hash, created_at) VALUES (?, ?, ?) ON CONFLICT (username) DO NOTHING");
  const hashQ = db.query("SELECT hash FROM accounts WHERE username = ?");
  const revokeQ = db.query("INSERT INTO revocations (user, before) VALUES (?1, ?2) ON CONFLICT (user) DO UPDATE SET before = max(before, ?2)");
  const revokedQ = db.query("SELECT before FROM revocations WHERE user = ?");
  /** Revocations are read on every token check: keep them in memory (they are few). */
  const revoked = new Map<string, number>();
  for (const r of db.query("SELECT user, before FROM revocations").all() as { user: string; before: number }[]) revoked.set(r.user, r.before);
  let key: Uint8Array | undefined;

  const accounts: AccountStore = {
    create: async (username, passwordHash) => insertAccount.run(username, passwordHash, Date.now()).changes === 1,
    passwordHash: async (username) => (hashQ.get(username) as { hash: string } | null)?.hash,
    async signingKey() {
      if (key) return key;
      // INSERT OR IGNORE then read: two processes on one file agree on one key.
      db.query("INSERT OR IGNORE INTO secrets (key, value) VALUES ('accounts_hs256', ?)").run(crypto.getRandomValues(new Uint8Array(32)));
      const row = db.query("SELECT value FROM secrets WHERE key = 'accounts_hs256'").get() as { value: Uint8Array };
      return (key = new Uint8Array(row.value));
    },
  } satisfies AccountStore;

  const revocations: Revocations = {
    async revoke(user, nowMs) {
      const before = Math.ceil(nowMs / 1000);
      revokeQ.run(user, before);
      const row = revokedQ.get(user) as { before: number };
      revoked.set(user, row.before);
      return row.before;
    },
    revokedBefore: async (user) => revoked.get(user) ?? 0,
  } satisfies Revocations;

  return { accounts, revocations, close: () => db.close() };
}
