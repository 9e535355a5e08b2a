import type { NodeBoard } from "./cluster/node_figures";
import { Elysia } from "elysia";
import type { Broker } from "./broker/broker";
import { createLocalBroker } from "./broker/broker_local";
import type { History } from "./history/history";
import type { TokenVerifier } from "./auth/auth";
import type { Accounts } from "./auth/accounts";
import type { Revocations } from "./auth/store";
import { ChatError } from "./errors";
import { Hub } from "./hub/hub";
import { BACKPRESSURE_LIMIT } from "./hub/backpressure";
import { GcPacer } from "./hub/gc_pacer";
import type { Presence } from "./presence/presence";
import { createLocalPresence } from "./presence/presence_local";
import { AuthModeBody, LIMITS, type AuthMode } from "./protocol";
import { createMetrics } from "./metrics";
import { webPage } from "./web/page";
import { createGate, refusal } from "./http/gate";
import { opsRoutes } from "./http/ops";
import { readRoutes } from "./http/reads";
import { socketRoutes } from "./http/sockets";
import { accountRoutes } from "./http/accounts";
import { adminRoutes } from "./http/admin";
import { consoleLogger, limitedErrors, oneLine, type Logger } from "./log";
import { assertElysiaDispatch } from "./hub/dispatch";

/** Identity: the mode and what it needs (see src/auth). Default: open. */
export interface AuthDeps {
  mode: AuthMode;
  /** jwt and accounts: verifies bearer tokens. */
  verifier?: TokenVerifier;
  /** accounts: register, log in, refresh. */
  accounts?: Accounts;
  /** Token revocations (admin revoke); required for the admin API. */
  revocations?: Revocations;
}

/** What the app is built from; `src/index.ts` makes them from the environment. */
export interface AppDeps {
  history: History;
  /** Fan-out; defaults to this node's own Bun pub/sub. */
  broker?: Broker;
  /** Who is online; defaults to this node's own count. */
  presence?: Presence;
  /** Users online up to which everyone hears of every join and leave (default 500). */
  presenceGlobalMax?: number;
  /** Most messages a connect replays before it answers `resumed:false` (default 10,000). */
  replayLimit?: number;
  /** See HubDeps.closeGraceMs (default 2,000 ms). */
  closeGraceMs?: number;
  auth?: AuthDeps;
  /** Per-user messages per second (default 0: off here; `src/index.ts` applies MSG_RATE's default 10) and burst. */
  msgRate?: number;
  msgBurst?: number;
  /** Default 20; 0: no limit. */
  maxConnectionsPerUser?: number;
  /** Default 0: no limit. */
  maxConnectionsPerIp?: number;
  /** Connects of one user replaying with `since` at once (default 2; 0: no limit). */
  replayConcurrency?: number;
  /** Browser origins allowed to connect; default: the request's own host. */
  allowedOrigins?: readonly string[] | "*";
  /** Proxy hops whose X-Forwarded-For is trusted (default 0). */
  trustProxy?: number;
  /** Enables `/admin/*` with this bearer token. */
  adminToken?: string;
  /** Every node's figures for the admin page (cluster mode); this node writes its own there. */
  nodes?: NodeBoard;
  /** When set, `/metrics` needs this bearer token. */
  metricsToken?: string;
  log?: Logger;
  /** The metrics registry (default: a new one); `index.ts` shares it with the Redis broker. */
  metrics?: ReturnType<typeof createMetrics>;
  /** Messages between paced young-generation collections (see GcPacer; default 0: off here, `src/index.ts` passes GC_PACE, whose default is in src/config.ts). */
  gcPace?: number;
}

/** Bun socket options: they only take effect at the app level, not per route. */
const websocket = {
  maxPayloadLength: LIMITS.frameBytesMax,
  // A consumer this far behind is closed, and catches up with `since`.
  backpressureLimit: BACKPRESSURE_LIMIT,
  closeOnBackpressureLimit: true,
  idleTimeout: 120,
  sendPings: true,
  perMessageDeflate: false,
} as const;

/**
 * Builds the wirechat HTTP and WebSocket app. It does not listen: the caller
 * does (`app.listen`), and stops it with `app.decorator.hub.shutdown()` first.
 */
export function createApp(deps: AppDeps) {
  assertElysiaDispatch();
  const broker = deps.broker ?? createLocalBroker();
  const presence = deps.presence ?? createLocalPresence();
  const auth = deps.auth ?? { mode: "open" };
  const log = deps.log ?? consoleLogger;
  const metrics = deps.metrics ?? createMetrics();
  const hub = new Hub({
    history: deps.history,
    broker,
    presence,
    replayLimit: deps.replayLimit ?? 10_000,
    closeGraceMs: deps.closeGraceMs,
    msgRate: deps.msgRate ?? 0,
    msgBurst: deps.msgBurst,
    verifier: auth.verifier,
    log,
    presenceGlobalMax: deps.presenceGlobalMax,
    observers: metrics.observers,
    gcPacer: deps.gcPace ? new GcPacer({ everyMessages: deps.gcPace, observe: (s) => metrics.observers.gcPauseSeconds.observe(s) }) : undefined,
  });
  metrics.attach(hub, presence, broker);
  const maxPerUser = deps.maxConnectionsPerUser ?? 20;
  const gate = createGate(hub, {
    mode: auth.mode,
    verifier: auth.verifier,
    allowedOrigins: deps.allowedOrigins,
    trustProxy: deps.trustProxy ?? 0,
    maxConnectionsPerUser: maxPerUser,
    maxConnectionsPerIp: deps.maxConnectionsPerIp ?? 0,
    replayConcurrency: deps.replayConcurrency ?? 2,
  });

  // Requests that keep failing the same way must not flood the log.
  const httpError = limitedErrors(log);
  return new Elysia({ websocket, handler: { standardHostname: false } })
    .decorate("hub", hub)
    .decorate("gate", gate)
    .error({ ChatError })
    .onError(({ code, error, request }) => {
      if (error instanceof ChatError) return refusal(error);
      // Elysia's own answers would dump the schema and the input: one short line instead.
      if (code === "VALIDATION") return refusal(new ChatError("invalid_frame", "The request does not match the API: check its parameters and body"));
      if (code === "PARSE") return refusal(new ChatError("invalid_frame", "The request body is not valid JSON"));
      if (code === "NOT_FOUND") return refusal(new ChatError("not_found", "No such route"));
      httpError("http", "unexpected error in an HTTP handler", { error: oneLine(error), path: new URL(request.url).pathname });
      return refusal(new ChatError("internal", "The server failed to handle the request"));
    })
    .use(webPage({ allowedOrigins: deps.allowedOrigins }))
    .use(opsRoutes({ hub, history: deps.history, broker, metrics, metricsToken: deps.metricsToken }))
    .onStart(({ server }) => {
      if (!server) return;
      broker.attach(server);
      hub.attach(server);
    })
    .get("/auth/mode", () => ({ mode: auth.mode }), { detail: { summary: "The identity mode (AUTH): open, jwt or accounts" }, response: AuthModeBody })
    .use(accountRoutes(auth.accounts, gate))
    .use(adminRoutes({ token: deps.adminToken, hub, revocations: auth.revocations, nodes: deps.nodes, log }))
    .use(readRoutes(deps.history, presence, gate))
    .use(socketRoutes(hub, gate, maxPerUser));
}

/** The app's type: what the typed clients (Eden, the SDK) are derived from. */
export type App = ReturnType<typeof createApp>;
