/** A store that fails (here: SQLite locked by another connection) answers store_failed, logs one line, and the server keeps running. */
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { isAck, isError, isMessage, recordingLogger, serverPerTest } from "./helpers";
import { createSqliteHistory } from "../src/history/history_sqlite";
import { tempDir } from "./tmp";
import type { AckFrame, ErrorFrame, MessageFrame } from "../src/protocol";

const t = serverPerTest();
const { join } = t;

describe("store_failed", () => {
  test("a locked database answers store_failed without an ack, logs one line, and the server keeps running", async () => {
    const path = `${tempDir()}/locked.db`;
    const log = recordingLogger();
    t.start({ history: createSqliteHistory(path), log });
    const a = await join("/ws/alice");
    const b = await join("/ws/bob");
    const locker = new Database(path);
    locker.run("PRAGMA busy_timeout = 0");
    locker.run("BEGIN IMMEDIATE");
    locker.run("INSERT INTO meta (key, value) VALUES ('lock', 1)");
    a.send({ type: "broadcast", text: "doomed", cid: "x" });
    const e = await a.next<ErrorFrame>(isError, 10_000);
    expect(e).toMatchObject({ code: "store_failed", cid: "x" });
    locker.run("ROLLBACK");
    locker.close();
    a.send({ type: "broadcast", text: "doomed", cid: "x" });
    const ack = await a.next<AckFrame>(isAck("x"));
    expect(ack.id).toBeGreaterThan(0);
    expect((await b.next<MessageFrame>(isMessage)).text).toBe("doomed");
    expect(a.frames.filter((f) => f.type === "ack")).toEqual([]);
    // The expected SQLITE_BUSY is one error line, kept here instead of printed, without a stack trace.
    expect(log.lines).toEqual([
      { level: "error", msg: expect.any(String), fields: expect.objectContaining({ kind: "store", error: expect.stringContaining("database is locked") }) },
    ]);
    expect(log.lines[0]!.msg).not.toContain("\n");
    expect(String(log.lines[0]!.fields!.error)).not.toContain("\n    at ");
  }, 15_000);
});
