import type { AuthMode } from "./protocol";

/** Identity settings (`AUTH` and the variables of its mode). */
export interface AuthConfig {
  mode: AuthMode;
  /** True when `AUTH` was not set: open mode by default, bound to loopback. */
  implicit: boolean;
  /** jwt: HS256 secrets, all accepted (rotation). */
  jwtSecrets: string[];
  /** jwt: a JWKS URL for RS256, ES256 and EdDSA keys. */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** accounts: the HS256 signing secret; unset: a key generated once and kept in the database. */
  authSecret?: string;
  /** accounts: token lifetime. */
  tokenTtlMs: number;
}

/** Abuse limits; 0 turns a limit off. */
export interface LimitsConfig {
  /** Messages per second per user, sustained, on this node. */
  msgRate: number;
  /** Messages a user may send at once before the rate applies. */
  msgBurst: number;
  maxConnectionsPerUser: number;
  maxConnectionsPerIp: number;
  /** Connects of one user replaying (`since`) at once. */
  replayConcurrency: number;
}

/** Server configuration; `loadConfig` is the only place that interprets the environment. */
export interface Config {
  port: number;
  host: string;
  auth: AuthConfig;
  limits: LimitsConfig;
  /** Browser origins allowed to connect; undefined: same host as the request's Host (or no Origin). */
  allowedOrigins?: string[] | "*";
  /** Proxy hops whose `X-Forwarded-For` entries are trusted (0: the socket's address). */
  trustProxy: number;
  /** Enables `/admin/*` with this bearer token. */
  adminToken?: string;
  /** When set, `/metrics` needs this bearer token. */
  metricsToken?: string;
  /** Cluster mode: history, fan-out, presence and identity live in this Redis. */
  redisUrl?: string;
  /** Prefix of every Redis key (several clusters may share one Redis). */
  redisPrefix: string;
  /** Up to this many users online, everyone hears of every join and leave. */
  presenceGlobalMax: number;
  /** Cluster mode: a node silent this long is gone, and its users offline. */
  presenceTtlMs: number;
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
  logFormat: "json" | "pretty";
  /** How long a graceful shutdown may take before the process exits anyway. */
  shutdownTimeoutMs: number;
  /** SQLite file for durable history; `:memory:` keeps it in memory (tests). */
  dbPath: string;
  /** `normal`: a commit survives a process crash; `full`: also an OS crash or power loss (an fsync per commit). */
  dbSync: "normal" | "full";
  /** How many messages a resume may replay before it reports `resumed:false`. */
  replayLimit: number;
  historyMaxMessages: number;
  historyMaxAgeMs: number;
  /** Messages between paced young-generation collections (src/hub/gc_pacer.ts); 0: the engine's own pacing. */
  gcPace: number;
}

export const DEFAULTS: Config = {
  port: 8000,
  host: "127.0.0.1",
  auth: { mode: "open", implicit: true, jwtSecrets: [], tokenTtlMs: 12 * 3600_000 },
  limits: { msgRate: 10, msgBurst: 50, maxConnectionsPerUser: 20, maxConnectionsPerIp: 0, replayConcurrency: 2 },
  trustProxy: 0,
  redisPrefix: "wc:",
  presenceGlobalMax: 500,
  presenceTtlMs: 10_000,
  logLevel: "info",
  logFormat: "json",
  shutdownTimeoutMs: 10_000,
  dbPath: "./data/wirechat.db",
  dbSync: "normal",
  replayLimit: 10_000,
  historyMaxMessages: 1_000_000,
  historyMaxAgeMs: 30 * 24 * 3600_000,
  gcPace: 4000,
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

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|::1|\[::1\])$/;

const optional = (env: Record<string, string | undefined>, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v ? v : undefined;
};

const urlVar = (env: Record<string, string | undefined>, name: string, protocols: string[]): string | undefined => {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  let u: URL | undefined;
  try {
    u = new URL(raw);
  } catch {}
  if (!u || !protocols.includes(u.protocol)) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}`);
  }
  return raw;
};

function authConfig(env: Record<string, string | undefined>): AuthConfig {
  const raw = optional(env, "AUTH")?.toLowerCase();
  if (raw !== undefined && raw !== "open" && raw !== "jwt" && raw !== "accounts") {
    throw new ConfigError(`AUTH=${JSON.stringify(env.AUTH)} is invalid: expected open, jwt or accounts`);
  }
  const mode = raw ?? "open";
  const jwtSecrets = (env.JWT_SECRET ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (jwtSecrets.some((s) => s.length < 32)) {
    throw new ConfigError("JWT_SECRET is invalid: each secret needs at least 32 characters");
  }
  const jwksUrl = urlVar(env, "JWT_JWKS_URL", ["https:", "http:"]);
  if (mode === "jwt" && jwtSecrets.length === 0 && jwksUrl === undefined) {
    throw new ConfigError("AUTH=jwt needs JWT_SECRET or JWT_JWKS_URL: set one to verify tokens");
  }
  const authSecret = optional(env, "AUTH_SECRET");
  if (authSecret !== undefined && authSecret.length < 32) {
    throw new ConfigError("AUTH_SECRET is invalid: it needs at least 32 characters");
  }
  return {
    mode,
    implicit: raw === undefined,
    jwtSecrets,
    jwksUrl,
    issuer: optional(env, "JWT_ISSUER"),
    audience: optional(env, "JWT_AUDIENCE"),
    authSecret,
    tokenTtlMs: durationVar(env, "TOKEN_TTL", DEFAULTS.auth.tokenTtlMs),
  };
}

function originsVar(env: Record<string, string | undefined>): string[] | "*" | undefined {
  const raw = optional(env, "ALLOWED_ORIGINS");
  if (raw === undefined) return undefined;
  if (raw === "*") return "*";
  return raw
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "")
    .map((o) => {
      let u: URL | undefined;
      try {
        u = new URL(o);
      } catch {}
      if (!u || (u.protocol !== "http:" && u.protocol !== "https:") || u.origin !== o.replace(/\/$/, "")) {
        throw new ConfigError(`ALLOWED_ORIGINS has ${JSON.stringify(o)}: expected origins such as https://chat.example.com, or *`);
      }
      return u.origin;
    });
}

/** Builds the configuration from environment variables; pure, throws ConfigError. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const auth = authConfig(env);
  const host = env.HOST?.trim() || DEFAULTS.host;
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) {
    throw new ConfigError(`HOST=${JSON.stringify(env.HOST)} is invalid: expected a hostname or IP address`);
  }
  // Anyone can connect as anyone in open mode: exposing that must be a written choice.
  if (auth.implicit && !LOOPBACK.test(host)) {
    throw new ConfigError(`HOST=${host} with AUTH unset: anyone could connect as anyone; set AUTH=open to allow it, or AUTH=jwt or AUTH=accounts`);
  }
  const dbPath = env.DB_PATH === undefined || env.DB_PATH === "" ? DEFAULTS.dbPath : env.DB_PATH;
  if (dbPath.includes("\0")) throw new ConfigError(`DB_PATH is invalid: it contains a NUL character`);
  const dbSync = (env.DB_SYNC ?? "").trim().toLowerCase() || DEFAULTS.dbSync;
  if (dbSync !== "normal" && dbSync !== "full") {
    throw new ConfigError(`DB_SYNC=${JSON.stringify(env.DB_SYNC)} is invalid: expected normal or full`);
  }
  const msgRate = intVar(env, "MSG_RATE", DEFAULTS.limits.msgRate, 0, 1_000_000);
  return {
    port: intVar(env, "PORT", DEFAULTS.port, 0, 65535),
    host,
    auth,
    limits: {
      msgRate,
      msgBurst: intVar(env, "MSG_BURST", DEFAULTS.limits.msgBurst, 1, 1_000_000),
      maxConnectionsPerUser: intVar(env, "MAX_CONNECTIONS_PER_USER", DEFAULTS.limits.maxConnectionsPerUser, 0, 1_000_000),
      maxConnectionsPerIp: intVar(env, "MAX_CONNECTIONS_PER_IP", DEFAULTS.limits.maxConnectionsPerIp, 0, 1_000_000),
      replayConcurrency: intVar(env, "REPLAY_CONCURRENCY", DEFAULTS.limits.replayConcurrency, 0, 10_000),
    },
    allowedOrigins: originsVar(env),
    trustProxy: trustProxyVar(env),
    adminToken: secretVar(env, "ADMIN_TOKEN"),
    metricsToken: secretVar(env, "METRICS_TOKEN"),
    redisUrl: urlVar(env, "REDIS_URL", ["redis:", "rediss:"]),
    redisPrefix: prefixVar(env),
    presenceGlobalMax: intVar(env, "PRESENCE_GLOBAL_MAX", DEFAULTS.presenceGlobalMax, 0, 1_000_000),
    presenceTtlMs: durationVar(env, "PRESENCE_TTL", DEFAULTS.presenceTtlMs),
    logLevel: choiceVar(env, "LOG_LEVEL", ["debug", "info", "warn", "error", "silent"] as const, DEFAULTS.logLevel),
    logFormat: choiceVar(env, "LOG_FORMAT", ["json", "pretty"] as const, DEFAULTS.logFormat),
    shutdownTimeoutMs: durationVar(env, "SHUTDOWN_TIMEOUT", DEFAULTS.shutdownTimeoutMs),
    dbPath,
    dbSync,
    replayLimit: intVar(env, "REPLAY_LIMIT", DEFAULTS.replayLimit, 1, 1_000_000),
    historyMaxMessages: intVar(env, "HISTORY_MAX_MESSAGES", DEFAULTS.historyMaxMessages, 1, 1_000_000_000),
    historyMaxAgeMs: durationVar(env, "HISTORY_MAX_AGE", DEFAULTS.historyMaxAgeMs),
    gcPace: intVar(env, "GC_PACE", DEFAULTS.gcPace, 0, 1_000_000),
  };
}

function trustProxyVar(env: Record<string, string | undefined>): number {
  const raw = optional(env, "TRUST_PROXY")?.toLowerCase();
  if (raw === "true") return 1;
  if (raw === "false") return 0;
  return intVar(env, "TRUST_PROXY", DEFAULTS.trustProxy, 0, 10);
}

function secretVar(env: Record<string, string | undefined>, name: string): string | undefined {
  const v = optional(env, name);
  if (v !== undefined && v.length < 16) throw new ConfigError(`${name} is invalid: use at least 16 characters`);
  return v;
}

function prefixVar(env: Record<string, string | undefined>): string {
  const v = optional(env, "REDIS_PREFIX") ?? DEFAULTS.redisPrefix;
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(v)) throw new ConfigError(`REDIS_PREFIX=${JSON.stringify(v)} is invalid: use 1 to 64 letters, digits, _ . : or -`);
  return v;
}

function choiceVar<T extends string>(env: Record<string, string | undefined>, name: string, choices: readonly T[], fallback: T): T {
  const v = optional(env, name)?.toLowerCase();
  if (v === undefined) return fallback;
  if (!(choices as readonly string[]).includes(v)) throw new ConfigError(`${name}=${JSON.stringify(env[name])} is invalid: expected ${choices.join(", ")}`);
  return v as T;
}
