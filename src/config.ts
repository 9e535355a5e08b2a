/** Server configuration; `loadConfig` is the only place that interprets the environment. */
export interface Config {
  port: number;
  host: string;
  /** SQLite file for durable history; `:memory:` keeps it in memory (tests). */
  dbPath: string;
  /** `normal`: a commit survives a process crash; `full`: also an OS crash or power loss (an fsync per commit). */
  dbSync: "normal" | "full";
  /** How many messages a resume may replay before it reports `resumed:false`. */
  replayLimit: number;
  historyMaxMessages: number;
  historyMaxAgeMs: number;
}

export const DEFAULTS: Config = {
  port: 8000,
  host: "0.0.0.0",
  dbPath: "./data/wirechat.db",
  dbSync: "normal",
  replayLimit: 10_000,
  historyMaxMessages: 1_000_000,
  historyMaxAgeMs: 30 * 24 * 3600_000,
};

/** Thrown by `loadConfig` with one line naming the variable. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const intVar = (env: Record<string, string | undefined>, name: string, fallback: number, min: number, max: number): number => {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected a whole number from ${min} to ${max}`);
  }
  return n;
};

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** Parses a duration such as `30d`, `12h`, `90m`, `45s` or `500ms`. */
const durationVar = (env: Record<string, string | undefined>, name: string, fallback: number): number => {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(raw.trim());
  const ms = m ? Number(m[1]) * UNITS[m[2]!]! : NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected a duration such as 30d, 12h, 90m or 45s`);
  }
  return ms;
};

/** Builds the configuration from environment variables; pure, throws ConfigError. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const host = env.HOST?.trim() || DEFAULTS.host;
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) {
    throw new ConfigError(`HOST=${JSON.stringify(env.HOST)} is invalid: expected a hostname or IP address`);
  }
  const dbPath = env.DB_PATH === undefined || env.DB_PATH === "" ? DEFAULTS.dbPath : env.DB_PATH;
  if (dbPath.includes("\0")) throw new ConfigError(`DB_PATH is invalid: it contains a NUL character`);
  const dbSync = (env.DB_SYNC ?? "").trim().toLowerCase() || DEFAULTS.dbSync;
  if (dbSync !== "normal" && dbSync !== "full") {
    throw new ConfigError(`DB_SYNC=${JSON.stringify(env.DB_SYNC)} is invalid: expected normal or full`);
  }
  return {
    port: intVar(env, "PORT", DEFAULTS.port, 0, 65535),
    host,
    dbPath,
    dbSync,
    replayLimit: intVar(env, "REPLAY_LIMIT", DEFAULTS.replayLimit, 1, 1_000_000),
    historyMaxMessages: intVar(env, "HISTORY_MAX_MESSAGES", DEFAULTS.historyMaxMessages, 1, 1_000_000_000),
    historyMaxAgeMs: durationVar(env, "HISTORY_MAX_AGE", DEFAULTS.historyMaxAgeMs),
  };
}
