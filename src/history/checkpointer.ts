/**
 * A worker thread that checkpoints a SQLite WAL file through its own
 * connection. In WAL mode a checkpoint runs beside the writer, so its fsyncs
 * never stall the server's event loop (an automatic checkpoint would, inside
 * whichever commit crossed the threshold).
 */
import { Database } from "bun:sqlite";

declare const self: Worker;

/** What the owner posts: start checkpointing `path` every `everyMs`, or stop. */
export type CheckpointerMessage = { path: string; everyMs: number } | "stop";

let db: Database | undefined;
let timer: Timer | undefined;

self.onmessage = (e: MessageEvent<CheckpointerMessage>) => {
  if (e.data === "stop") {
    clearInterval(timer);
    db?.close();
    db = undefined;
    self.postMessage("stopped");
    return;
  }
  db = new Database(e.data.path);
  db.run("PRAGMA busy_timeout = 1000");
  timer = setInterval(() => {
    try {
      db?.run("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (err) {
      // A busy database is checkpointed next time; nothing is lost meanwhile.
      console.error(
        JSON.stringify({
          level: "warn",
          time: new Date().toISOString(),
          app: "wirechat",
          msg: "WAL checkpoint failed; retried next time",
          error: (err as Error).message,
        }),
      );
    }
  }, e.data.everyMs);
};
