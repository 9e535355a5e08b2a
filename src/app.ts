import type { ServerWebSocket } from "bun";
import { Elysia, t } from "elysia";
import type { Broker } from "./broker/broker";
import { createLocalBroker } from "./broker/broker_local";
import type { History } from "./history/history";
import { roomAllowed, type TokenVerifier } from "./auth/auth";
import type { Accounts } from "./auth/accounts";
import type { Revocations } from "./auth/store";
import { ChatError } from "./errors";
import { Hub, type Session } from "./hub/hub";
import { toFrame } from "./hub/replay";
import type { Presence } from "./presence/presence";
import { createLocalPresence } from "./presence/presence_local";
import {
  AuthModeBody, ClientFrame, HealthBody, ReadyBody, HistoryBody, HttpError, LIMITS, OnlineBody, SUBPROTOCOL, ServerFrame,
  isValidName, type AuthMode,
} from "./protocol";
import { createMetrics } from "./metrics";
import { webPage } from "./web/page";
import { createGate, refusal } from "./http/gate";
import { accountRoutes } from "./http/accounts";
import { adminRoutes } from "./http/admin";
import { consoleLogger, oneLine, type Logger } from "./log";
import { assertElysiaDispatch } from "./hub/dispatch";
import { openapi } from "@elysiajs/openapi";
import { asyncApiDocument } from "./http/asyncapi";
import pkg from "../package.json" with { type: "json" };

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
  /** When set, `/metrics` needs this bearer token. */
  metricsToken?: string;
  log?: Logger;
  /** The metrics registry (default: a new one); `index.ts` shares it with the Redis broker. */
  metrics?: ReturnType<typeof createMetrics>;
}

/** Bun socket options: they only take effect at the app level, not per route. */
const websocket = {
  maxPayloadLength: LIMITS.frameBytesMax,
  // A consumer this far behind is closed, and catches up with `since`.
  backpressureLimit: 1024 * 1024,
  closeOnBackpressureLimit: true,
  idleTimeout: 120,
  sendPings: true,
  perMessageDeflate: false,
} as const;

/** What every chat socket route declares: Eden types its client from these. */
const socket = {
  query: t.Object({ since: t.Optional(t.String()), epoch: t.Optional(t.String()), rooms: t.Optional(t.String()), batch: t.Optional(t.String()) }),
  body: ClientFrame,
  response: ServerFrame,
} as const;
const PageQuery = t.Object({ before: t.Optional(t.String()), limit: t.Optional(t.String()) });
const NAME_RULE = "use 1 to 64 letters, digits, _, - or .";

type ConnectOptions = { since?: number; epoch?: string; rooms: string[]; batch?: boolean };

/** Reads `?since=N&epoch=E&rooms=a,b`, or throws why it cannot. */
function connectOptions(q: { since?: string; epoch?: string; rooms?: string; batch?: string }): ConnectOptions {
  let since: number | undefined;
  if (q.since !== undefined && q.since !== "") {
    since = /^\d{1,15}$/.test(q.since) ? Number(q.since) : NaN;
    if (!Number.isSafeInteger(since)) {
      throw new ChatError("invalid_frame", `since=${JSON.stringify(q.since.slice(0, 40))} is invalid: expected a message id (a whole number)`);
    }
  }
  const rooms = q.rooms ? [...new Set(q.rooms.split(","))] : [];
  if (rooms.length > LIMITS.roomsMax) throw new ChatError("invalid_room", `Too many rooms: a connection may be in at most ${LIMITS.roomsMax}`);
  const bad = rooms.find((r) => !isValidName(r));
  if (bad !== undefined) throw new ChatError("invalid_room", `Invalid room name ${JSON.stringify(String(bad).slice(0, 40))} in rooms: ${NAME_RULE}`);
  if (q.epoch !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(q.epoch)) {
    throw new ChatError("invalid_frame", "epoch is invalid: send back the epoch of a welcome frame");
  }
  if (q.batch !== undefined && q.batch !== "0" && q.batch !== "1") throw new ChatError("invalid_frame", "batch must be 1 (messages as JSON arrays) or 0");
  const opts: ConnectOptions = { since, rooms };
  if (q.batch === "1") opts.batch = true;
  if (q.epoch) opts.epoch = q.epoch;
  return opts;
}

function pageQuery(q: { before?: string; limit?: string }): { before: number; limit: number } {
  const before = q.before ? Number(q.before) : Number.MAX_SAFE_INTEGER;
  const limit = q.limit ? Number(q.limit) : 50;
  if (!Number.isSafeInteger(before) || before < 1) throw new ChatError("invalid_frame", "before must be a message id (a whole number from 1)");
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 200) throw new ChatError("invalid_frame", "limit must be a whole number from 1 to 200");
  return { before, limit };
}

const guestName = () => {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return `guest-${Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")}`;
};

/** The session a connect's beforeHandle admitted, kept on the request context for `open`. */
type Admitted = { wirechat?: Session };

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
    history: deps.history, broker, presence, replayLimit: deps.replayLimit ?? 10_000, closeGraceMs: deps.closeGraceMs,
    msgRate: deps.msgRate ?? 0, msgBurst: deps.msgBurst, verifier: auth.verifier, log, presenceGlobalMax: deps.presenceGlobalMax,
    observers: metrics.observers,
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
  const startedAt = Date.now();

  /**
   * Admits a connect before the upgrade; Elysia runs beforeHandle twice per
   * upgrade, so the second run finds the session already made.
   */
  const admit = async (ctx: { request: Request; server: unknown; query: { since?: string; epoch?: string; rooms?: string; batch?: string }; set: { headers: Record<string, unknown> } }, named: string | undefined) => {
    const c = ctx as typeof ctx & Admitted;
    if (c.wirechat) return;
    try {
      if (named !== undefined && !isValidName(named)) {
        throw new ChatError("invalid_username", `Invalid username ${JSON.stringify(String(named).slice(0, 64))}: ${NAME_RULE}`);
      }
      c.wirechat = await gate.admit(ctx.request, ctx.server as never, named, guestName, connectOptions(ctx.query));
    } catch (err) {
      if (err instanceof ChatError) {
        hub.stats.refused[err.code] = (hub.stats.refused[err.code] ?? 0) + 1;
        return refusal(err) as never;
      }
      throw err;
    }
    // A browser that offered the wirechat subprotocol (to carry its token) must get it back.
    const offered = ctx.request.headers.get("sec-websocket-protocol");
    if (offered?.split(",").some((p) => p.trim() === SUBPROTOCOL)) ctx.set.headers["sec-websocket-protocol"] = SUBPROTOCOL;
  };
  /** Hands an upgraded socket to the hub with the session its beforeHandle admitted. */
  const join = (ws: { raw: unknown; data: unknown }) => {
    const session = (ws.data as Admitted).wirechat!;
    const raw = ws.raw as ServerWebSocket<unknown>;
    hub.open(raw, session);
    // Connects racing through the gate together: the limit holds after the fact too.
    if (maxPerUser > 0 && hub.connectionsOf(session.user) > maxPerUser) raw.close(1008, "Too many connections for this user");
  };
  const historyPage = async (room: string | undefined, query: { before?: string; limit?: string }) => {
    const q = pageQuery(query);
    return { messages: (await deps.history.page(room, q.before, q.limit)).map(toFrame) };
  };

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
      log.error("unexpected error in an HTTP handler", { error: oneLine(error), path: new URL(request.url).pathname });
      return refusal(new ChatError("internal", "The server failed to handle the request"));
    })
    .use(webPage({ allowedOrigins: deps.allowedOrigins }))
    .use(openapi({
      path: "/docs",
      specPath: "/openapi.json",
      // The WebSocket routes are described by /asyncapi.json; OpenAPI has no way to say "upgrade".
      exclude: { paths: ["/", "/app.js", "/app.css", "/favicon.ico", "/docs", "/openapi.json", "/ws", "/ws/:username"] },
      documentation: {
        info: {
          title: "wirechat HTTP API",
          version: pkg.version,
          description: "History, presence, accounts, admin and operations routes. The WebSocket protocol is described at /asyncapi.json.",
        },
        components: {
          securitySchemes: {
            bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "AUTH=jwt: a token of your identity provider; AUTH=accounts: from POST /auth/login. Not used with AUTH=open." },
            admin: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN (the admin API exists only when it is set)" },
            metrics: { type: "http", scheme: "bearer", description: "METRICS_TOKEN, when set" },
          },
        },
      },
    }))
    .get("/asyncapi.json", () => asyncApiDocument(pkg.version), { detail: { summary: "The WebSocket protocol as an AsyncAPI 3.0 document" } })
    .onStart(({ server }) => {
      if (server) broker.attach(server);
    })
    .get("/health", () => ({
      status: "ok" as const,
      uptimeMs: Date.now() - startedAt,
      connections: hub.connections,
      lastId: broker.deliveredThrough(),
    }), { response: HealthBody })
    .get("/ready", async () => {
      if (hub.draining) throw new ChatError("unavailable", "Shutting down: send traffic to another node");
      try {
        await deps.history.check();
      } catch (err) {
        throw new ChatError("unavailable", `The message store does not take writes now: ${oneLine(err)}`);
      }
      return { status: "ready" as const };
    }, { detail: { summary: "Readiness: not shutting down, and the store takes writes" }, response: { 200: ReadyBody, 503: HttpError } })
    .get("/auth/mode", () => ({ mode: auth.mode }), { response: AuthModeBody })
    .use(accountRoutes(auth.accounts, gate))
    .use(adminRoutes({ token: deps.adminToken, hub, revocations: auth.revocations, log }))
    .get("/metrics", async ({ request }) => {
      if (deps.metricsToken !== undefined && request.headers.get("authorization") !== `Bearer ${deps.metricsToken}`) {
        throw new ChatError("unauthorized", "Metrics need Authorization: Bearer <METRICS_TOKEN>");
      }
      return new Response(await metrics.registry.metrics(), { headers: { "content-type": metrics.registry.contentType } });
    })
    .get("/users/online", async ({ request }) => {
      await gate.identify(request.headers);
      return { users: presence.users(), count: presence.count() };
    }, { detail: { summary: "Users online on every node (jwt and accounts modes: needs a token)", security: [{ bearer: [] }] }, response: { 200: OnlineBody, 401: HttpError } })
    .get("/rooms/:room/online", async ({ request, params }) => {
      if (!isValidName(params.room)) throw new ChatError("invalid_room", `Invalid room name: ${NAME_RULE}`);
      const caller = await gate.identify(request.headers);
      if (caller && !roomAllowed(caller.rooms, params.room)) throw new ChatError("forbidden", `Your token does not allow room "${params.room}"`);
      const users = presence.roomUsers(params.room);
      return { users, count: users.length };
    }, { detail: { summary: "Users in a room, on every node", security: [{ bearer: [] }] }, response: { 200: OnlineBody, 400: HttpError, 401: HttpError, 403: HttpError } })
    .get("/history", async ({ request, query }) => {
      await gate.identify(request.headers);
      return historyPage(undefined, query);
    }, { detail: { summary: "Broadcasts, newest first", security: [{ bearer: [] }] }, query: PageQuery, response: { 200: HistoryBody, 400: HttpError, 401: HttpError } })
    .get("/rooms/:room/history", async ({ request, params, query }) => {
      if (!isValidName(params.room)) throw new ChatError("invalid_room", `Invalid room name: ${NAME_RULE}`);
      const caller = await gate.identify(request.headers);
      if (caller && !roomAllowed(caller.rooms, params.room)) {
        throw new ChatError("forbidden", `Your token does not allow room "${params.room}"`);
      }
      const page = await historyPage(params.room, query);
      return caller ? { ...page, readId: (await deps.history.reads(caller.user))[`#${params.room}`] ?? 0 } : page;
    }, { detail: { summary: "One room's messages, newest first, and the caller's read marker", security: [{ bearer: [] }] }, query: PageQuery, response: { 200: HistoryBody, 400: HttpError, 401: HttpError, 403: HttpError } })
    .get("/users/:name/history", async ({ request, params, query }) => {
      if (!isValidName(params.name)) throw new ChatError("invalid_username", `Invalid username: ${NAME_RULE}`);
      const caller = await gate.identify(request.headers);
      if (!caller) throw new ChatError("forbidden", "Direct-message history needs a token: the server runs in open mode (AUTH=open), where anyone could read it");
      const q = pageQuery(query);
      const [messages, reads] = await Promise.all([deps.history.conversation(caller.user, params.name, q.before, q.limit), deps.history.reads(caller.user)]);
      return { messages: messages.map(toFrame), readId: reads[`@${params.name}`] ?? 0 };
    }, { detail: { summary: "The caller's direct conversation with :name, newest first (403 in open mode)", security: [{ bearer: [] }] }, query: PageQuery, response: { 200: HistoryBody, 400: HttpError, 401: HttpError, 403: HttpError } })
    .ws("/ws/:username", {
      ...socket,
      beforeHandle: (ctx) => admit(ctx, ctx.params.username ?? (null as never)),
      open: join,
    })
    .ws("/ws", {
      ...socket,
      beforeHandle: (ctx) => admit(ctx, undefined),
      open: join,
    });
}

/** The app's type: what the typed clients (Eden, the SDK) are derived from. */
export type App = ReturnType<typeof createApp>;
