/**
 * Logging: one JSON object per line (pino), or readable lines with
 * `LOG_FORMAT=pretty`. User input only ever goes into JSON string fields, so
 * it cannot forge a line; tokens, passwords and message texts are never
 * logged, and are redacted should a field of that name slip in.
 */
import pino from "pino";
import pretty from "pino-pretty";

/** Extra fields of a line: user, code, connection id, counts. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** Where the server's log lines go. */
export interface Logger {
  debug?(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** The last error lines, oldest first, redacted like the log (`createLogger` keeps 20; the admin page shows them). */
  recentErrors?(): KeptLine[];
}

/** An error line kept in memory. */
export interface KeptLine {
  time: string;
  msg: string;
  fields?: Record<string, string | number | boolean>;
}

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

export interface LogOptions {
  level?: LogLevel;
  /** `json` (default): one object per line; `pretty`: for a terminal. */
  format?: "json" | "pretty";
  /** Where lines go (default: stdout). */
  destination?: NodeJS.WritableStream;
}

const REDACT = ["token", "password", "text", "authorization", "*.token", "*.password", "*.text", "*.authorization"];

/** A pino logger behind the `Logger` interface. */
export function createLogger(o: LogOptions = {}): Logger {
  const stream =
    o.format === "pretty" ? pretty({ colorize: true, destination: o.destination ?? 1, sync: true }) : (o.destination ?? pino.destination({ sync: true }));
  const p = pino(
    {
      level: o.level ?? "info",
      base: { app: "wirechat" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: "[redacted]" },
    },
    stream,
  );
  const at = (level: "debug" | "info" | "warn" | "error") => (msg: string, fields?: LogFields) => (fields ? p[level](fields, msg) : p[level](msg));
  const kept: KeptLine[] = [];
  const error = at("error");
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error(msg, fields) {
      error(msg, fields);
      const line: KeptLine = { time: new Date().toISOString(), msg };
      if (fields)
        line.fields = Object.fromEntries(
          Object.entries(fields).flatMap(([k, v]) => (v === undefined ? [] : [[k, REDACT.includes(k.toLowerCase()) ? "[redacted]" : v]])),
        );
      if (kept.push(line) > KEEP_ERRORS) kept.shift();
    },
    recentErrors: () => kept.slice(),
  };
}

/** Error lines `createLogger` keeps for `recentErrors()`. */
const KEEP_ERRORS = 20;

/** The default: JSON lines at info level. */
export const consoleLogger: Logger = createLogger();

/** A logger that drops everything (tests that expect errors on purpose). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** One line of an error: its message, never a stack trace. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  return text.slice(0, 500);
}

/**
 * Logs a repeated error at most once per `everyMs` per kind; the next line
 * says how many were left out, so an attack cannot flood the log.
 */
export function limitedErrors(log: Logger, everyMs = 10_000): (kind: string, msg: string, fields?: LogFields) => void {
  const last = new Map<string, { at: number; skipped: number }>();
  return (kind, msg, fields) => {
    const now = Date.now();
    const s = last.get(kind);
    if (s && now - s.at < everyMs) {
      s.skipped++;
      return;
    }
    log.error(msg, s && s.skipped > 0 ? { ...fields, kind, suppressed: s.skipped } : { ...fields, kind });
    last.set(kind, { at: now, skipped: 0 });
  };
}
