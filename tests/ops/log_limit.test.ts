/**
 * `limitedErrors` (src/log.ts): a repeated error of one kind is logged at
 * most once per window; the next line after the window says how many were
 * left out. The function reads `Date.now()` and takes no clock, so time is
 * moved with bun:test's `setSystemTime` instead of waiting for it to pass.
 * Last, the hub's own limiter: a store that fails every append logs one line
 * per window however many senders it fails.
 */
import { afterEach, beforeEach, describe, expect, setSystemTime, test } from "bun:test";
import { createSqliteHistory } from "../../src/history/history_sqlite";
import { limitedErrors } from "../../src/log";
import type { ErrorFrame } from "../../src/protocol";
import { isError, recordingLogger, serverPerTest } from "../helpers";

const T0 = new Date("2030-01-01T00:00:00.000Z").getTime();
/** Moves Date.now() to `ms` after T0. */
const at = (ms: number) => setSystemTime(new Date(T0 + ms));

describe("limitedErrors", () => {
  beforeEach(() => at(0));
  afterEach(() => setSystemTime());

  test("limitedErrors: the first error of a kind is logged at error level with its fields and the kind", () => {
    const log = recordingLogger();
    const report = limitedErrors(log, 1000);
    report("store", "could not store", { user: "alice", error: "disk I/O error" });
    expect(log.lines).toEqual([{ level: "error", msg: "could not store", fields: { user: "alice", error: "disk I/O error", kind: "store" } }]);
  });

  test("limitedErrors: repeats within the window are suppressed, and the first line after it reports suppressed: <count>", () => {
    const log = recordingLogger();
    const report = limitedErrors(log, 1000);
    report("store", "could not store", { n: 0 });
    for (let i = 1; i <= 5; i++) {
      at(i * 100);
      report("store", "could not store", { n: i });
    }
    at(999); // still inside: the window is measured from the last line written (at 0)
    report("store", "could not store", { n: 6 });
    expect(log.lines).toHaveLength(1);

    at(1000);
    report("store", "could not store again", { n: 7 });
    expect(log.lines).toHaveLength(2);
    expect(log.lines[1]).toEqual({ level: "error", msg: "could not store again", fields: { n: 7, kind: "store", suppressed: 6 } });
  });

  test("limitedErrors: the count starts over after it is reported, and a quiet window reports no suppressed field", () => {
    const log = recordingLogger();
    const report = limitedErrors(log, 1000);
    report("replay", "a");
    at(10);
    report("replay", "a");
    at(1000);
    report("replay", "b"); // suppressed: 1; a new window starts at 1000
    at(1500);
    report("replay", "c");
    report("replay", "c");
    at(2000);
    report("replay", "d"); // suppressed: 2
    at(5000);
    report("replay", "e"); // nothing left out since 2000
    expect(log.lines.map((l) => [l.msg, l.fields?.suppressed])).toEqual([
      ["a", undefined],
      ["b", 1],
      ["d", 2],
      ["e", undefined],
    ]);
    expect(log.lines[3]!.fields).toEqual({ kind: "replay" });
  });

  test("limitedErrors: kinds are limited apart: one kind's flood does not hide another's first error", () => {
    const log = recordingLogger();
    const report = limitedErrors(log, 1000);
    for (let i = 0; i < 100; i++) report("cursor", "could not record a cursor");
    report("replay", "could not read a catch-up");
    at(1000);
    report("cursor", "could not record a cursor");
    report("replay", "could not read a catch-up");
    expect(log.lines.map((l) => l.fields)).toEqual([{ kind: "cursor" }, { kind: "replay" }, { kind: "cursor", suppressed: 99 }, { kind: "replay" }]);
  });

  test("limitedErrors: the default window is 10 s", () => {
    const log = recordingLogger();
    const report = limitedErrors(log);
    report("store", "x");
    at(9_999);
    report("store", "x");
    expect(log.lines).toHaveLength(1);
    at(10_000);
    report("store", "x");
    expect(log.lines.map((l) => l.fields)).toEqual([{ kind: "store" }, { kind: "store", suppressed: 1 }]);
  });

  test("limitedErrors: one limiter per call: two limiters do not share their windows", () => {
    const log = recordingLogger();
    const a = limitedErrors(log, 1000);
    const b = limitedErrors(log, 1000);
    a("store", "from a");
    b("store", "from b");
    a("store", "from a");
    expect(log.lines.map((l) => l.msg)).toEqual(["from a", "from b"]);
  });
});

describe("limitedErrors in the hub", () => {
  const t = serverPerTest();
  afterEach(() => setSystemTime());

  test("limitedErrors: a store failing every append logs one store line per 10 s window, then one with suppressed: <count>", async () => {
    const log = recordingLogger();
    const history = createSqliteHistory(":memory:");
    // Every append fails as a whole store would (SQLITE_IOERR): each message is answered store_failed.
    const ioError = () => Object.assign(new Error("disk I/O error"), { code: "SQLITE_IOERR" });
    history.append = () => Promise.reject(ioError());
    history.appendNow = () => {
      throw ioError();
    };
    t.start({ history, log, msgRate: 0 });
    const a = await t.join("/ws/alice");
    const failOnce = async (cid: string) => {
      a.send({ type: "broadcast", text: "doomed", cid });
      expect(await a.next<ErrorFrame>(isError)).toMatchObject({ code: "store_failed", cid });
    };
    // One at a time: each is a batch of its own, so each is one failed append.
    for (let i = 0; i < 5; i++) await failOnce(`w1-${i}`);
    const storeLines = () => log.lines.filter((l) => l.fields?.kind === "store");
    expect(storeLines()).toHaveLength(1);
    expect(storeLines()[0]).toMatchObject({ level: "error", fields: { kind: "store", error: "disk I/O error" } });
    expect(storeLines()[0]!.fields).not.toHaveProperty("suppressed");

    // The clock is real until here; frozen 10 s on only for the last failure (a frozen clock would also freeze waitUntil's deadline).
    setSystemTime(new Date(Date.now() + 10_000));
    await failOnce("w2-0");
    expect(storeLines()).toHaveLength(2);
    expect(storeLines()[1]!.fields).toMatchObject({ kind: "store", suppressed: 4 });
  });
});
