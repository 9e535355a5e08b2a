/** Which sockets are falling behind: Bun's publish status names none of them. */
import type { ServerWebSocket } from "bun";
import type { Connection } from "./connection";

/** Unsent bytes past which Bun drops a send and closes the socket (the app's `backpressureLimit`). */
export const BACKPRESSURE_LIMIT = 1024 * 1024;
/** How often, at most, a publish that met backpressure makes the hub look at every socket's buffer. */
const FULL_SCAN_MS = 10;
/** A socket this far behind is looked at again on every turn that meets backpressure. */
const SUSPECT_BYTES = 16 * 1024;

/**
 * Marks sockets that a coming 1006 close will have closed for backpressure.
 * Bun closes a socket whose buffer passes the limit with 1006 and an empty
 * buffer, like a vanished peer, and its one status per publish does not say
 * which socket: sockets past half the limit are marked (`overflowed`; drain
 * clears it). Once per turn: every socket after a drop or when the last full
 * look is FULL_SCAN_MS old, else only the sockets that look found behind (a
 * status of -1 comes back while any subscriber has anything queued: one slow
 * client must not make every turn look at every socket).
 */
export class OverflowWatch {
  #scheduled = false;
  /** When every socket's buffer was last looked at. */
  #fullScanAt = 0;
  /** The sockets then behind by SUSPECT_BYTES or more. */
  readonly #suspects = new Set<ServerWebSocket<Connection>>();

  /** `sockets`: every open socket of this node. */
  constructor(private readonly sockets: ReadonlySet<ServerWebSocket<Connection>>) {}

  /** A publish met backpressure (`dropped`: Bun dropped a send): look at the buffers before this turn ends. */
  note(dropped: boolean): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      const now = performance.now();
      const full = dropped || now - this.#fullScanAt >= FULL_SCAN_MS;
      if (full) this.#fullScanAt = now;
      for (const ws of full ? this.sockets : this.#suspects) {
        const behind = ws.getBufferedAmount();
        if (behind >= BACKPRESSURE_LIMIT / 2) ws.data.overflowed = true;
        if (behind >= SUSPECT_BYTES) this.#suspects.add(ws);
        else this.#suspects.delete(ws);
      }
    });
  }

  /** The socket drained or closed: it is no longer a suspect. */
  forget(ws: ServerWebSocket<Connection>): void {
    this.#suspects.delete(ws);
  }
}
