import type { History } from "./history";
import { consoleLogger, oneLine, type Logger } from "../log";

/** How much history to keep. */
export interface Retention {
  historyMaxMessages: number;
  historyMaxAgeMs: number;
}

const EVERY_MS = 60_000;
/** Rows removed per step; steps yield to the event loop so delivery never waits long. */
const STEP_ROWS = 500;

/** Prunes in the background, in small steps; returns a handle to stop it. */
export function startPruning(
  history: History,
  retention: Retention,
  everyMs = EVERY_MS,
  log: Logger = consoleLogger,
): { stop(): void; runNow(): Promise<number> } {
  let running: Promise<number> | undefined;
  const run = async (): Promise<number> => {
    let total = 0;
    for (;;) {
      const n = await history.prune(retention.historyMaxMessages, Date.now() - retention.historyMaxAgeMs, STEP_ROWS);
      total += n;
      if (n < STEP_ROWS) return total;
      await new Promise((r) => setTimeout(r, 1));
    }
  };
  const tick = () => {
    running ??= run()
      .catch((err) => (log.error("pruning history failed", { error: oneLine(err) }), 0))
      .finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(tick, everyMs);
  timer.unref?.();
  return {
    stop: () => clearInterval(timer),
    runNow: tick,
  };
}
