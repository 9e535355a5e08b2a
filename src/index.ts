/**
 * The server's entry point: the only module that reads the environment,
 * listens and handles signals. `bun run src/index.ts`.
 */
import { createApp, type AuthDeps } from "./app";
import { ConfigError, loadConfig } from "./config";
import { startPruning } from "./history/retention";
import { openStores, type Stores } from "./stores";
import { createJwtVerifier } from "./auth/auth_jwt";
import { Accounts, ACCOUNTS_ISSUER } from "./auth/accounts";
import { createLogger, oneLine } from "./log";
import { createMetrics } from "./metrics";

const fail = (line: string): never => {
  console.error(`wirechat: ${line}`);
  process.exit(2);
};

let config: ReturnType<typeof loadConfig> | undefined;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  fail(err.message);
}
config = config!;
const log = createLogger({ level: config.logLevel, format: config.logFormat });
const metrics = createMetrics();

let store: Stores;
try {
  store = await openStores(config, log, metrics.observers);
} catch (err) {
  fail(config.redisUrl === undefined ? `cannot open DB_PATH=${JSON.stringify(config.dbPath)}: ${oneLine(err)}` : `cannot use REDIS_URL: ${oneLine(err)}`);
}
store = store!;
const { history } = store;

const { mode } = config.auth;
const auth: AuthDeps = { mode, revocations: store.revocations };
if (mode === "jwt") {
  auth.verifier = createJwtVerifier({
    mode,
    secrets: config.auth.jwtSecrets,
    jwksUrl: config.auth.jwksUrl,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    revocations: store.revocations,
  });
} else if (mode === "accounts") {
  const key = config.auth.authSecret === undefined ? await store.accounts.signingKey() : new TextEncoder().encode(config.auth.authSecret);
  auth.accounts = new Accounts({ store: store.accounts, revocations: store.revocations, key, tokenTtlMs: config.auth.tokenTtlMs });
  auth.verifier = createJwtVerifier({ mode, secrets: [key], issuer: ACCOUNTS_ISSUER, revocations: store.revocations });
} else {
  log.warn("AUTH=open: anyone can connect as anyone (usernames come from the URL); set AUTH=jwt or AUTH=accounts for identity");
}

const app = createApp({
  history,
  broker: store.broker,
  presence: store.presence,
  presenceGlobalMax: config.presenceGlobalMax,
  auth,
  replayLimit: config.replayLimit,
  msgRate: config.limits.msgRate,
  msgBurst: config.limits.msgBurst,
  maxConnectionsPerUser: config.limits.maxConnectionsPerUser,
  maxConnectionsPerIp: config.limits.maxConnectionsPerIp,
  replayConcurrency: config.limits.replayConcurrency,
  allowedOrigins: config.allowedOrigins,
  trustProxy: config.trustProxy,
  adminToken: config.adminToken,
  nodes: store.nodes,
  metricsToken: config.metricsToken,
  log,
  metrics,
  gcPace: config.gcPace,
});
await app.decorator.hub.ready;
const pruning = startPruning(history, config, undefined, log);
try {
  // Elysia turns reusePort on: a second server on a busy port would start and take half the connections.
  app.listen({ port: config.port, hostname: config.host, reusePort: false });
} catch (err) {
  if ((err as { code?: string }).code === "EADDRINUSE") fail(`port ${config.port} is in use`);
  fail(`cannot listen on ${config.host}:${config.port}: ${oneLine(err)}`);
}
const server = app.server!;
log.info(`wirechat listening on http://${server.hostname}:${server.port}`, { auth: mode, store: store.where });

let stopping = false;
/** Drains: refuse new connections (and /ready), commit what is pending, close every socket with 1001, then exit within the bound. */
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info("shutting down: draining connections", { signal });
  setTimeout(() => {
    log.error("shutdown took too long; exiting anyway", { timeoutMs: config.shutdownTimeoutMs });
    process.exit(1);
  }, config.shutdownTimeoutMs).unref();
  pruning.stop();
  await app.decorator.hub.shutdown();
  // Requests in flight get half the bound, then they are cut: one slow upload must not turn every shutdown into a timeout.
  const drained = await Promise.race([app.stop().then(() => true), Bun.sleep(config.shutdownTimeoutMs / 2).then(() => false)]);
  if (!drained) {
    log.warn("cutting HTTP requests still in flight after half the shutdown timeout", { timeoutMs: config.shutdownTimeoutMs });
    await server.stop(true);
  }
  await store.close();
  log.info("stopped");
  process.exit(0);
};
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
