/**
 * `bun run scripts/sizing.ts [--bin build/wirechat] [--messages 1000000] [--connections 5000] [--reps 3]`:
 * measures the figures of docs/operations.md "Sizing" on this machine and
 * prints them as JSON.
 *
 * - Memory per idle connection: a fresh server; its VmRSS, then the
 *   benchmark's C client (bench/native/wsload.c, `--mode idle`) opens
 *   `--connections` WebSockets as distinct users and holds them; one second
 *   after it reports every welcome received and the server quiet, VmRSS
 *   again: (after − before) / connections. The benchmark's `idle` scenario,
 *   against the server as deployed (the binary with `--bin`). Repeated
 *   `--reps` times, a fresh server each time.
 * - Disk per million messages: a fresh server with `MSG_RATE=0` and
 *   retention above the count; 8 clients send `--messages` messages of 100
 *   characters with a cid each (as the SDK does), a third each broadcast,
 *   room and direct, every one acked. Then the server's VmRSS (history
 *   indexes in memory), a clean stop, the size of the message log
 *   (`<DB_PATH>-messages/`) and of the database file once its WAL is
 *   checkpointed into it, and of a backup (`VACUUM INTO` plus the log's
 *   messages, one file)
 *   (scripts/backup.ts). Then a
 *   start on that file: seconds to the listening line and VmRSS once
 *   listening. `--no-cid` sends without cids: the store then remembers no
 *   cids in memory, as for messages older than the 24 h retry window.
 */
import { Database } from "bun:sqlite";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildNative } from "../bench/lib/native.ts";
import { backup } from "./backup.ts";
import { messageLogDir } from "../src/history/history_sqlite.ts";

const root = join(import.meta.dir, "..");
const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    bin: { type: "string" },
    messages: { type: "string" },
    connections: { type: "string" },
    reps: { type: "string" },
    skip: { type: "string" },
    "no-cid": { type: "boolean" },
  },
});
const MESSAGES = Number(values.messages ?? 1_000_000);
const CONNECTIONS = Number(values.connections ?? 5000);
const REPS = Number(values.reps ?? 3);
const command = values.bin ? [join(process.cwd(), values.bin)] : [process.execPath, "run", join(root, "src/index.ts")];
const work = join(tmpdir(), `wirechat-sizing-${process.pid}`);
process.on("exit", () => rmSync(work, { recursive: true, force: true }));

const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function start(env: Record<string, string>) {
  const t0 = performance.now();
  const proc = Bun.spawn(command, {
    cwd: work,
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "warn", ...env },
    stdout: "pipe",
    stderr: "inherit",
  });
  let out = "";
  const dec = new TextDecoder();
  const reader = proc.stdout.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited: ${out}`);
    out += dec.decode(value);
    const m = /listening on http:\/\/[^:]+:(\d+)/.exec(out);
    if (m) {
      reader.releaseLock();
      void proc.stdout.pipeTo(new WritableStream());
      return { proc, port: Number(m[1]), startS: (performance.now() - t0) / 1000 };
    }
  }
}

async function idleMemory() {
  const { wsload } = buildNative(join(root, "bench"));
  const runs: { before: number; after: number; perConnection: number }[] = [];
  for (let i = 0; i < REPS; i++) {
    const s = await start({ LOG_LEVEL: "info", DB_PATH: join(work, `idle-${i}.db`) });
    await sleep(1000); // let the fresh process settle before the baseline reading (as the benchmark does)
    const before = rss(s.proc.pid);
    const client = Bun.spawn([wsload, "--port", String(s.port), "--n", String(CONNECTIONS), "--mode", "idle", "--hold", "120", "--ready-on-frame"], {
      stdout: "pipe",
      stderr: "inherit",
    });
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of client.stdout) {
      buf += dec.decode(chunk);
      if (buf.includes('"event":"ready"')) break;
      if (buf.includes('"event":"result"')) throw new Error(`wsload: ${buf}`);
    }
    await sleep(1000);
    const after = rss(s.proc.pid);
    runs.push({ before, after, perConnection: Math.round((after - before) / CONNECTIONS) });
    client.kill("SIGKILL");
    await client.exited;
    s.proc.kill("SIGTERM");
    await s.proc.exited;
  }
  return { connections: CONNECTIONS, medianBytesPerConnection: median(runs.map((r) => r.perConnection)), runs };
}

async function disk() {
  const db = join(work, "million.db");
  const s = await start({ LOG_LEVEL: "info", DB_PATH: db, MSG_RATE: "0", HISTORY_MAX_MESSAGES: String(MESSAGES * 2) });
  const K = 8;
  // Unacked messages per sender. Every client also receives the others' broadcasts: 8 windows of
  // them must fit in its 1 MiB backpressure limit, or the server (rightly) closes it as a slow consumer.
  const WINDOW = 250;
  const text = (i: number) =>
    `${i.toString(36).padStart(8, "0")} ${"The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs!!".padEnd(91, ".")}`;
  if (text(0).length !== 100) throw new Error(`text is ${text(0).length} characters`);
  const t0 = performance.now();
  await Promise.all(
    Array.from(
      { length: K },
      (_, k) =>
        new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws/user${k}?rooms=room${k}`);
          const share = Math.floor(MESSAGES / K) + (k < MESSAGES % K ? 1 : 0);
          let sent = 0;
          let acked = 0;
          const send = () => {
            while (sent < share && sent - acked < WINDOW) {
              const n = sent++;
              const cid = values["no-cid"] ? undefined : `c${n}`;
              const kind = (n + k) % 3;
              ws.send(
                JSON.stringify(
                  kind === 0
                    ? { type: "broadcast", text: text(n), cid }
                    : kind === 1
                      ? { type: "room", room: `room${k}`, text: text(n), cid }
                      : { type: "direct", to: `user${(k + 1) % K}`, text: text(n), cid },
                ),
              );
            }
          };
          ws.onmessage = (e) => {
            const data = String(e.data);
            if (data.startsWith('{"type":"welcome"')) return send();
            // Without cids there are no acks: the sender's own copy (an echo, in all three kinds) says it was stored.
            const mine = values["no-cid"] ? data.startsWith('{"type":"message"') && data.includes(`"from":"user${k}"`) : data.startsWith('{"type":"ack"');
            if (!mine) return;
            if (++acked === share) {
              ws.close();
              resolve();
            } else send();
          };
          ws.onerror = () => reject(new Error("socket error"));
          ws.onclose = (e) => acked < share && reject(new Error(`user${k}: closed with ${e.code} after ${acked} of ${share}`));
        }),
    ),
  );
  const sendS = (performance.now() - t0) / 1000;
  const rssWithHistory = rss(s.proc.pid);
  s.proc.kill("SIGTERM");
  await s.proc.exited;
  const size = (p: string) => {
    try {
      return statSync(p).size;
    } catch {
      return 0;
    }
  };
  const wal = size(`${db}-wal`);
  // What the stop left in the WAL goes into the file at the next open; do it now, to measure the file alone.
  const c = new Database(db);
  c.run("PRAGMA wal_checkpoint(TRUNCATE)");
  c.close();
  const file = size(db);
  const log = readdirSync(messageLogDir(db)).reduce((sum, name) => sum + size(join(messageLogDir(db), name)), 0);
  const copy = backup(db, join(work, "million-backup.db"));
  // A start on that file rebuilds the in-memory lookups.
  const again = await start({ LOG_LEVEL: "info", DB_PATH: db, HISTORY_MAX_MESSAGES: String(MESSAGES * 2) });
  const rssAfterStart = rss(again.proc.pid);
  again.proc.kill("SIGTERM");
  await again.proc.exited;
  return {
    messages: MESSAGES,
    textCharacters: 100,
    cids: !values["no-cid"],
    sendSeconds: +sendS.toFixed(1),
    walBytesAfterStop: wal,
    fileBytes: file,
    messageLogBytes: log,
    bytesPerMessage: +((file + log) / MESSAGES).toFixed(1),
    backupBytes: copy.bytes,
    backupMs: copy.ms,
    rssWithHistoryBytes: rssWithHistory,
    restartSeconds: +again.startS.toFixed(2),
    rssAfterRestartBytes: rssAfterStart,
  };
}

Bun.spawnSync(["mkdir", "-p", work]);
const skip = new Set((values.skip ?? "").split(","));
const result = {
  date: new Date().toISOString(),
  server: values.bin ? `binary ${values.bin}` : "bun run src/index.ts",
  bun: Bun.version,
  machine: {
    nproc: navigator.hardwareConcurrency,
    memTotalGiB: +(Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))![1]) / 1024 / 1024).toFixed(1),
  },
  idle: skip.has("idle") ? undefined : await idleMemory(),
  disk: skip.has("disk") ? undefined : await disk(),
};
console.log(JSON.stringify(result, null, 2));
