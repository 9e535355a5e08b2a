/**
 * The owner's side of the checkpointing worker (checkpointer.ts): the
 * store's own connection never checkpoints, so no commit on the event loop
 * ever waits for a checkpoint's fsyncs.
 */
import type { Database } from "bun:sqlite";
import type { CheckpointerMessage } from "./checkpointer";

/** How often the worker checkpoints the WAL into the database file. */
const CHECKPOINT_EVERY_MS = 1000;

/** Turns off `db`'s automatic checkpoints and starts a worker that checkpoints `path` every second; it does not keep the process alive. */
export function startCheckpointer(db: Database, path: string): Worker {
  db.run("PRAGMA wal_autocheckpoint = 0");
  const worker = new Worker(new URL("./checkpointer.ts", import.meta.url));
  worker.postMessage({ path, everyMs: CHECKPOINT_EVERY_MS } satisfies CheckpointerMessage);
  (worker as Worker & { unref?: () => void }).unref?.();
  return worker;
}

/** Asks the worker to stop (it closes its connection), waiting at most a second before ending it. */
export function stopCheckpointer(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      worker.terminate();
      resolve();
    };
    const timer = setTimeout(done, 1000);
    worker.onmessage = (e: MessageEvent) => {
      if (e.data === "stopped") done();
    };
    worker.postMessage("stop" satisfies CheckpointerMessage);
  });
}
