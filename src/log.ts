/** Where the server's log lines go; one line per call, never a stack trace. */
export interface Logger {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

/** Lines to stdout (info) and stderr (warn, error), prefixed with `wirechat:`. */
export const consoleLogger: Logger = {
  info: (line) => console.log(`wirechat: ${line}`),
  warn: (line) => console.warn(`wirechat: warning: ${line}`),
  error: (line) => console.error(`wirechat: error: ${line}`),
};

/** One line of an error: its message with control characters escaped, so user input cannot forge a line. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  return JSON.stringify(text.slice(0, 500)).slice(1, -1);
}

/**
 * Logs a repeated error at most once per `everyMs` per kind; the next line
 * says how many were left out, so an attack cannot flood the log.
 */
export function limitedErrors(log: Logger, everyMs = 10_000): (kind: string, line: string) => void {
  const last = new Map<string, { at: number; skipped: number }>();
  return (kind, line) => {
    const now = Date.now();
    const s = last.get(kind);
    if (s && now - s.at < everyMs) {
      s.skipped++;
      return;
    }
    log.error(s && s.skipped > 0 ? `${line} (${s.skipped} more like it in the last ${Math.round((now - s.at) / 1000)} s)` : line);
    last.set(kind, { at: now, skipped: 0 });
  };
}
