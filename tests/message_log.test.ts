/**
 * The message log under the SQLite history: the file log and the in-memory
 * one pass the same cases; the file log also repairs a torn tail, frees
 * whole segments, refuses a log of another database and takes in the
 * messages of a database written before the log existed.
 */
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import type { StoredMessage } from "../src/history/history";
import { createMemoryLog, type MessageLog } from "../src/history/message_log";
import { openFileLog } from "../src/history/message_log_file";
import { segmentName } from "../src/history/message_log_scan";
import { createSqliteHistory, messageLogDir } from "../src/history/history_sqlite";
import { migrate } from "../src/history/sqlite_schema";
import { tempDir } from "./tmp";

const msg = (id: number, text = `text ${id} é ✓`): StoredMessage => ({
  id,
  kind: "direct",
  from: "alice",
  to: "bob",
  text,
  at: 1_700_000_000_000 + id,
  cid: `c${id}`,
});
const ids = (ms: StoredMessage[]) => ms.map((m) => m.id);
/** Cuts the store's first log segment back to its first `n` lines, as a machine crash takes what only the page cache held. */
function keepLines(dbPath: string, n: number): void {
  const dir = messageLogDir(dbPath);
  const file = `${dir}/${segments(dir)[0]}`;
  const lines = readFileSync(file, "utf8").split("\n").slice(0, n);
  truncateSync(file, Buffer.byteLength(`${lines.join("\n")}\n`));
}
const segments = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith(".jsonl"))
    .sort();

const logs: { name: string; open: () => MessageLog }[] = [
  { name: "file", open: () => openFileLog(tempDir(), { sync: "normal", segmentBytes: 300 }) },
  { name: "memory", open: () => createMemoryLog() },
];

for (const impl of logs) {
  describe(`MessageLog (${impl.name})`, () => {
    test("append then read: the messages as given, in the order asked, skipping ids not held", () => {
      const log = impl.open();
      log.append([msg(1), msg(2), msg(3)]);
      log.append([msg(5)]);
      expect(log.read([3, 1, 4, 5, 9])).toEqual([msg(3), msg(1), msg(5)]);
      expect([log.first, log.last]).toEqual([1, 5]);
      log.close();
    });

    test("append of a batch bigger than the append buffer, in 3- and 4-byte characters, reads back whole, and so do batches after it", () => {
      const log = impl.open();
      // 300 lines of about 3 KB of UTF-8 each: about 1 MB, four times the buffer kept between appends.
      const big = Array.from({ length: 300 }, (_, i) => msg(i + 1, `${i} ${"✓".repeat(800)}😀${"é".repeat(i)}`));
      log.append(big);
      log.append([msg(301), msg(302, "😀")]);
      const all = Array.from({ length: 302 }, (_, i) => i + 1);
      expect(log.read(all)).toEqual([...big, msg(301), msg(302, "😀")]);
      expect(log.read([302, 150, 1])).toEqual([msg(302, "😀"), big[149]!, big[0]!]);
      log.close();
    });

    test("append refuses an id that is not above the newest, and keeps what it had", () => {
      const log = impl.open();
      log.append([msg(1), msg(2)]);
      expect(() => log.append([msg(2)])).toThrow("not above the newest");
      expect(ids(log.read([1, 2, 3]))).toEqual([1, 2]);
      log.close();
    });

    test("dropThrough never forgets a newer message", () => {
      const log = impl.open();
      for (let id = 1; id <= 40; id++) log.append([msg(id)]);
      log.dropThrough(25);
      const kept = ids(log.read(Array.from({ length: 40 }, (_, i) => i + 1)));
      expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 41 - kept.length + i));
      expect(kept.length).toBeGreaterThanOrEqual(15);
      expect(log.first).toBe(kept[0]!);
      log.close();
    });
  });
}

describe("openFileLog", () => {
  test("reopens with every message, in id order, across segments", () => {
    const dir = tempDir();
    const log = openFileLog(dir, { sync: "full", segmentBytes: 300 });
    for (let id = 1; id <= 30; id += 3) log.append([msg(id), msg(id + 1), msg(id + 2)]);
    log.close();
    expect(segments(dir).length).toBeGreaterThan(3);
    const seen: number[] = [];
    const again = openFileLog(dir, { sync: "normal", segmentBytes: 300, onRecord: (m) => seen.push(m.id) });
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(again.read([30, 1, 17])).toEqual([msg(30), msg(1), msg(17)]);
    again.append([msg(31)]);
    expect(again.read([31])).toEqual([msg(31)]);
    again.close();
  });

  test("a torn last line (a crash mid-write) is cut off at open, and the next append follows the last whole line", () => {
    const dir = tempDir();
    const log = openFileLog(dir, { sync: "normal" });
    log.append([msg(1), msg(2)]);
    log.close();
    const file = `${dir}/${segments(dir).at(-1)}`;
    const whole = statSync(file).size;
    appendFileSync(file, '{"id":3,"kind":"direct","from":"al');
    const repairs: string[] = [];
    const again = openFileLog(dir, { sync: "normal", onRepair: (what) => repairs.push(what) });
    expect(repairs).toEqual([`cut a torn write off ${file} at byte ${whole}`]);
    expect(statSync(file).size).toBe(whole);
    expect(again.last).toBe(2);
    again.append([msg(3)]);
    expect(again.read([1, 2, 3])).toEqual([msg(1), msg(2), msg(3)]);
    again.close();
    expect(
      readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l).id),
    ).toEqual([1, 2, 3]);
  });

  test("append returns each message's frame; its line is that frame with the cid as the last field", () => {
    const dir = tempDir();
    const log = openFileLog(dir, { sync: "normal" });
    const noCid: StoredMessage = { id: 2, kind: "broadcast", from: "carol", text: 'say "hi"\n', at: 5 };
    const frames = log.append([msg(1), noCid]);
    log.close();
    const frame1 = JSON.stringify({ type: "message", id: 1, kind: "direct", from: "alice", to: "bob", text: msg(1).text, at: msg(1).at });
    const frame2 = JSON.stringify({ type: "message", id: 2, kind: "broadcast", from: "carol", text: 'say "hi"\n', at: 5 });
    expect(frames).toEqual([frame1, frame2]);
    const lines = readFileSync(`${dir}/${segments(dir)[0]}`, "utf8").split("\n");
    expect(lines).toEqual([`${frame1.slice(0, -1)},"cid":"c1"}`, frame2, ""]);
  });

  test("a log whose lines hold the stored fields (written before the frame was the line) reads, reopens and takes new lines", () => {
    const dir = tempDir();
    const log = openFileLog(dir, { sync: "normal" });
    log.append([msg(1)]);
    log.close();
    // The earlier line form: the stored message's own fields, cid included, no "type".
    appendFileSync(`${dir}/${segments(dir)[0]}`, `${JSON.stringify(msg(2))}\n${JSON.stringify({ ...msg(3), cid: undefined })}\n`);
    const seen: StoredMessage[] = [];
    const again = openFileLog(dir, { sync: "normal", onRecord: (m) => seen.push(m) });
    const noCid3 = { ...msg(3) };
    delete noCid3.cid;
    expect(seen).toEqual([msg(1), msg(2), noCid3]);
    again.append([msg(4)]);
    const read = again.read([1, 2, 3, 4]);
    expect(read).toEqual([msg(1), msg(2), noCid3, msg(4)]);
    // No frame field leaks into a stored message, whichever line form it came from.
    expect(read.map((m) => Object.keys(m).sort())).toEqual([
      ["at", "cid", "from", "id", "kind", "text", "to"],
      ["at", "cid", "from", "id", "kind", "text", "to"],
      ["at", "from", "id", "kind", "text", "to"],
      ["at", "cid", "from", "id", "kind", "text", "to"],
    ]);
    again.close();
  });

  test("dropThrough deletes whole segments, never the one being written", () => {
    const dir = tempDir();
    const log = openFileLog(dir, { sync: "normal", segmentBytes: 300 });
    for (let id = 1; id <= 20; id++) log.append([msg(id)]);
    const before = segments(dir);
    log.dropThrough(1_000);
    expect(segments(dir)).toEqual([before.at(-1)!]);
    expect(log.last).toBe(20);
    log.append([msg(21)]);
    expect(ids(log.read([20, 21]))).toContain(21);
    log.close();
  });
});

describe("createSqliteHistory and its message log", () => {
  test("messages of a database from before the log move into the log, once, and the table is emptied", async () => {
    const path = `${tempDir()}/old.db`;
    const old = new Database(path, { create: true });
    migrate(old);
    const insert = old.query("INSERT INTO messages (id, kind, sender, target, text, at, cid) VALUES (?, ?, ?, ?, ?, ?, ?)");
    // Sent within the last hour: their cids are still in the retry window.
    const at = Date.now() - 3_600_000;
    old.transaction(() => {
      for (let id = 1; id <= 2_500; id++) insert.run(id, "direct", "alice", "bob", `old ${id}`, at + id, `c${id}`);
    })();
    old.close();

    const h = createSqliteHistory(path);
    expect(h.lastId()).toBe(2_500);
    expect((await h.inbox("bob", 0, 2_500, 3)).map((m) => m.text)).toEqual(["old 1", "old 2", "old 3"]);
    expect(await h.findByCid("alice", "c2500", 0)).toMatchObject({ id: 2_500 });
    const [next] = await h.append([{ kind: "broadcast", from: "carol", text: "new", at: Date.now() }]);
    expect(next!.stored!.id).toBe(2_501);
    await h.close();

    const file = new Database(path, { readonly: true });
    expect((file.query("SELECT count(*) AS n FROM messages").get() as { n: number }).n).toBe(0);
    file.close();
    const again = createSqliteHistory(path);
    expect(again.lastId()).toBe(2_501);
    expect((await again.get([1, 2_500, 2_501])).map((m) => m.text)).toEqual(["old 1", "old 2500", "new"]);
    await again.close();
  });

  for (const [moved, what] of [
    [3, "after the last batch, before the table was emptied"],
    [2, "between two batches"],
  ] as const) {
    test(`a crash while moving the old messages (${what}) goes on at the next start, storing each message once`, async () => {
      const path = `${tempDir()}/half.db`;
      const h = createSqliteHistory(path);
      await h.append(Array.from({ length: moved }, (_, i) => ({ kind: "broadcast" as const, from: "alice", text: `m${i + 1}`, at: Date.now() })));
      await h.close();
      // As if a move of three rows had written `moved` of them to the log and died: all three still in the table, and the move's mark.
      const file = new Database(path);
      const insert = file.query("INSERT INTO messages (id, kind, sender, target, text, at, cid) VALUES (?, 'broadcast', 'alice', NULL, ?, ?, NULL)");
      for (const i of [1, 2, 3]) insert.run(i, `m${i}`, Date.now());
      file.run("INSERT INTO meta (key, value) VALUES ('legacy_move', 1)");
      file.close();
      const again = createSqliteHistory(path);
      expect((await again.page(undefined, 100, 10)).map((m) => m.text)).toEqual(["m3", "m2", "m1"]);
      expect(again.lastId()).toBe(3);
      await again.close();
      const after = new Database(path, { readonly: true });
      expect(after.query("SELECT count(*) AS n FROM messages").get()).toEqual({ n: 0 });
      expect(after.query("SELECT count(*) AS n FROM meta WHERE key = 'legacy_move'").get()).toEqual({ n: 0 });
      after.close();
    });
  }

  test("a restored backup with the old message log left beside it is refused with what to do", async () => {
    const path = `${tempDir()}/restored.db`;
    const h = createSqliteHistory(path);
    await h.append([1, 2, 3, 4].map((i) => ({ kind: "broadcast" as const, from: "alice", text: `m${i}`, at: Date.now() })));
    await h.close();
    // A backup holds its messages in the table; this one was taken when the log ended at id 2.
    const file = new Database(path);
    const insert = file.query("INSERT INTO messages (id, kind, sender, target, text, at, cid) VALUES (?, 'broadcast', 'alice', NULL, ?, ?, NULL)");
    for (const i of [1, 2]) insert.run(i, `m${i}`, Date.now());
    file.close();
    expect(() => createSqliteHistory(path)).toThrow(/holds messages too \(up to id 4; the table up to 2\): remove the message log folder to restore a backup/);
  });

  test("a message log left beside another database is refused with what to do", async () => {
    const dir = tempDir();
    const a = createSqliteHistory(`${dir}/a.db`);
    await a.append([{ kind: "broadcast", from: "alice", text: "in a", at: Date.now() }]);
    await a.close();
    const { renameSync } = await import("node:fs");
    renameSync(messageLogDir(`${dir}/a.db`), messageLogDir(`${dir}/b.db`));
    expect(() => createSqliteHistory(`${dir}/b.db`)).toThrow(/belongs to another database .*: move it away, or restore both from one backup/);
    expect(existsSync(messageLogDir(`${dir}/b.db`))).toBe(true);
  });

  test("a second store on the same DB_PATH is refused while the first is open", async () => {
    const path = `${tempDir()}/one.db`;
    const first = createSqliteHistory(path);
    expect(() => createSqliteHistory(path)).toThrow(/Another process is using the message log .*: stop it before starting another on the same DB_PATH/);
    await first.close();
    await createSqliteHistory(path).close();
  });

  test("after a machine crash took the log's last lines, new ids continue after every id the database has seen", async () => {
    const path = `${tempDir()}/lost.db`;
    const h = createSqliteHistory(path);
    await h.append([1, 2, 3, 4].map((i) => ({ kind: "direct" as const, from: "alice", to: "bob", text: `d${i}`, at: Date.now() })));
    await h.setCursor("bob", 4);
    await h.close();
    // The page cache held lines 3 and 4; the database's cursor reached the disk.
    keepLines(path, 2);
    const again = createSqliteHistory(path);
    expect(again.lastId()).toBe(4);
    const [r] = await again.append([{ kind: "direct", from: "alice", to: "bob", text: "new", at: Date.now() }]);
    expect(r!.stored!.id).toBe(5);
    expect((await again.inbox("bob", await again.cursor("bob"), 100, 10)).map((m) => m.text)).toEqual(["new"]);
    await again.close();
  });

  test("retention goes on past a gap in the ids", async () => {
    const path = `${tempDir()}/gap.db`;
    const h = createSqliteHistory(path);
    const send = (n: number) => h.append(Array.from({ length: n }, (_, i) => ({ kind: "broadcast" as const, from: "alice", text: `m${i}`, at: Date.now() })));
    await send(10);
    // Ids 11 to 5000 were lost in a machine crash (the cursor names 5000): a gap wider than a pruning step.
    await h.setCursor("bob", 5000);
    await h.close();
    const again = createSqliteHistory(path);
    await again.append(Array.from({ length: 10 }, (_, i) => ({ kind: "broadcast" as const, from: "alice", text: `n${i}`, at: Date.now() })));
    let removed = 0;
    for (let n = -1; n !== 0; removed += n) n = await again.prune(5, 0, 2_000);
    expect(removed).toBe(15);
    expect((await again.page(undefined, Number.MAX_SAFE_INTEGER, 100)).map((m) => m.id)).toEqual([5010, 5009, 5008, 5007, 5006]);
    await again.close();
  });

  test("an empty segment left by a crash, named above the ids before it, is removed at open", async () => {
    const path = `${tempDir()}/empty.db`;
    const h = createSqliteHistory(path);
    await h.append([1, 2].map((i) => ({ kind: "broadcast" as const, from: "alice", text: `m${i}`, at: Date.now() })));
    await h.close();
    writeFileSync(`${messageLogDir(path)}/${segmentName(10)}`, "");
    const again = createSqliteHistory(path);
    await again.append([{ kind: "broadcast", from: "alice", text: "m3", at: Date.now() }]);
    expect((await again.get([1, 2, 3, 3])).map((m) => m.text)).toEqual(["m1", "m2", "m3"]);
    expect(existsSync(`${messageLogDir(path)}/${segmentName(10)}`)).toBe(false);
    await again.close();
  });

  test("after a stop that was not clean, new ids go above every id that may have gone out, even ones the database never named", async () => {
    const path = `${tempDir()}/unclean.db`;
    // A process that appends and dies without closing the store.
    const child = Bun.spawnSync(
      [
        process.execPath,
        "-e",
        `const { createSqliteHistory } = await import(${JSON.stringify(`${import.meta.dir}/../src/history/history_sqlite.ts`)});
         const h = createSqliteHistory(${JSON.stringify(path)});
         await h.append([1, 2, 3, 4].map((i) => ({ kind: "broadcast", from: "alice", text: "m" + i, at: Date.now() })));
         process.exit(0);`,
      ],
      { stderr: "pipe" },
    );
    expect(child.stderr.toString()).toBe("");
    // A machine crash takes lines 3 and 4 that clients already received: nothing in the database names them.
    keepLines(path, 2);
    const again = createSqliteHistory(path);
    expect(again.lastId()).toBeGreaterThan(4);
    const [r] = await again.append([{ kind: "broadcast", from: "alice", text: "new", at: Date.now() }]);
    expect(r!.stored!.id).toBeGreaterThan(4);
    await again.close();
    // A clean stop reserves nothing past the last id: the next start continues right after it.
    const third = createSqliteHistory(path);
    expect(third.lastId()).toBe(r!.stored!.id);
    await third.close();
  });
});

describe("openFileLog: batches bigger than the append buffer", () => {
  test("a batch of about 1 MB with a line of 420 KB among smaller ones is written whole: every line reads back, also after reopening", () => {
    const dir = tempDir();
    const log = openFileLog(dir, { sync: "normal" });
    log.append([msg(1)]);
    const big = Array.from({ length: 3000 }, (_, i) => msg(2 + i, `${i} ${"y".repeat(200)} é ✓`));
    // 3 bytes a character in UTF-8: the most the buffer is sized for.
    big[1500] = msg(1502, "✓".repeat(140_000));
    log.append(big);
    log.append([msg(3002)]);
    const all = [msg(1), ...big, msg(3002)];
    expect(log.read(all.map((m) => m.id))).toEqual(all);
    log.close();
    const seen: number[] = [];
    const again = openFileLog(dir, { sync: "normal", onRecord: (m) => seen.push(m.id) });
    expect(seen).toEqual(all.map((m) => m.id));
    expect(again.read([1501, 1502, 1503])).toEqual([big[1499]!, big[1500]!, big[1501]!]);
    again.close();
  });

  test("a batch whose write fails after part of it reached the file (file size limit, EFBIG) leaves no trace; the log goes on", () => {
    const dir = tempDir();
    // ulimit -f counts 1024-byte blocks: 400 KB, less than the batch, more than the append buffer.
    const r = Bun.spawnSync(["bash", "-c", `trap '' XFSZ; ulimit -f 400; exec "${process.execPath}" tests/fixtures/log_efbig.ts "${dir}"`], { stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    const out = JSON.parse(r.stdout.toString()) as { before: number; after: number; error: string; last: number; read: number[] };
    expect(out.error).toBe("EFBIG");
    expect(out.after).toBe(out.before);
    expect(out.last).toBe(5000);
    expect(out.read).toEqual([1, 5000]);
    const seen: number[] = [];
    openFileLog(dir, { sync: "normal", onRecord: (m) => seen.push(m.id) }).close();
    expect(seen).toEqual([1, 5000]);
  });
});
