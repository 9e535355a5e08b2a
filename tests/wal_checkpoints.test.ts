import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, statSync } from "node:fs";
import { startCheckpointer, stopCheckpointer } from "../src/history/wal_checkpoints";
import { waitUntil } from "./helpers";
import { tempDir } from "./tmp";

/** A database in WAL mode. */
function walDatabase(path: string): Database {
  const db = new Database(path, { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  return db;
}

/** Appends `rows` rows of 1 KB in one transaction. */
function write(db: Database, rows: number): void {
  db.run("CREATE TABLE IF NOT EXISTS t (v TEXT NOT NULL)");
  const ins = db.query("INSERT INTO t (v) VALUES (?)");
  db.transaction(() => {
    for (let i = 0; i < rows; i++) ins.run("x".repeat(1024));
  })();
}

test("startCheckpointer: the worker moves the WAL into the database file; the owner's connection never checkpoints", async () => {
  const path = `${tempDir()}/wal.db`;
  const db = walDatabase(path);
  const worker = startCheckpointer(db, path);
  expect(db.query("PRAGMA wal_autocheckpoint").get()).toEqual({ wal_autocheckpoint: 0 });
  // 5 MB in one commit: past SQLite's default of 1,000 pages, a connection that checkpoints by itself would have moved
  // them into the file at this commit; here only the worker does, on its first tick a second later.
  write(db, 5000);
  expect(statSync(path).size).toBeLessThan(1024 * 1024);
  await waitUntil(() => statSync(path).size > 5000 * 1024, "the worker's checkpoint grew the database file past 5 MB", { ms: 10_000 });
  await stopCheckpointer(worker);
  db.close();
}, 15_000);

test("stopCheckpointer: resolves once the worker has closed its connection, so the owner's close leaves no WAL", async () => {
  const path = `${tempDir()}/stop.db`;
  const db = walDatabase(path);
  const worker = startCheckpointer(db, path);
  write(db, 2000);
  // A first checkpoint shows the worker's connection is open.
  await waitUntil(() => statSync(path).size > 2000 * 1024, "the worker's first checkpoint", { ms: 10_000 });
  write(db, 100);
  await stopCheckpointer(worker);
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  // SQLite removes the WAL when its last connection closes: one left open by the worker would keep it.
  expect(existsSync(`${path}-wal`)).toBe(false);
  const reopened = new Database(path, { readonly: true });
  expect(reopened.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 2100 });
  reopened.close();
}, 15_000);
