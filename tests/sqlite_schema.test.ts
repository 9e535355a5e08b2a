import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { createSqliteHistory } from "../src/history/history_sqlite";
import { tempDir } from "./tmp";

test("createSqliteHistory: creates the schema once and records its version", async () => {
  const path = `${tempDir()}/schema.db`;
  await createSqliteHistory(path).close();
  await createSqliteHistory(path).close();
  const db = new Database(path, { readonly: true });
  expect(db.query("SELECT version FROM schema_version").all()).toEqual([{ version: 4 }]);
  db.close();
});

test("createSqliteHistory: refuses a database from a newer wirechat", () => {
  const path = `${tempDir()}/newer.db`;
  const db = new Database(path, { create: true });
  db.run("CREATE TABLE schema_version (version INTEGER NOT NULL)");
  db.run("INSERT INTO schema_version (version) VALUES (99)");
  db.close();
  expect(() => createSqliteHistory(path)).toThrow("Database schema version 99 is newer than this wirechat (4): upgrade wirechat");
});
