import type { ServerWebSocket } from "bun";
import { Elysia, t } from "elysia";
import type { Broker } from "./broker/broker";
import { createLocalBroker } from "./broker/broker_local";
import type { History } from "./history/history";
import { Hub, toFrame } from "./chat";
import { Presence } from "./presence";
import {
  ClientFrame, HealthBody, HistoryBody, HttpError, LIMITS, OnlineBody, ServerFrame,
  isValidName, type ErrorCode,
} from "./protocol";
import { metricsText } from "./metrics";
import { webPage } from "./web/page";

/** What the app is built from; `src/index.ts` makes them from the environment. */
export interface AppDeps {
  history: History;
  /** Fan-out; defaults to this node's own Bun pub/sub. */
  broker?: Broker;
  /** Most messages a connect replays before it answers `resumed:false` (default 10,000). */
  replayLimit?: number;
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

const WsQuery = t.Object({ since: t.Optional(t.String()), rooms: t.Optional(t.String()) });
const NAME_RULE = "use 1 to 64 letters, digits, _, - or .";

const fail = (code: ErrorCode, message: string) => ({ error: code, message });

/**
 * HTTP 400 before the upgrade. A ws route's `response` types its frames, not
 * its HTTP answers, so the Response is passed through as `never`.
 */
const refuse = (code: ErrorCode, message: string) => Response.json(fail(code, message), { status: 400 }) as never;

/** Reads `?since=N&rooms=a,b`; a string is an error message for HTTP 400. */
function connectOptions(q: { since?: string; rooms?: string }): { since?: number; rooms: string[] } | string {
  let since: number | undefined;
  if (q.since !== undefined && q.since !== "") {
    since = /^\d{1,15}$/.test(q.since) ? Number(q.since) : NaN;
    if (!Number.isSafeInteger(since)) return `since=${JSON.stringify(q.since.slice(0, 40))} is invalid: expected a message id (a whole number)`;
  }
  const rooms = q.rooms ? [...new Set(q.rooms.split(","))] : [];
  if (rooms.length > LIMITS.roomsMax) return `Too many rooms: a connection may be in at most ${LIMITS.roomsMax}`;
  const bad = rooms.find((r) => !isValidName(r));
  if (bad !== undefined) return `Invalid room name ${JSON.stringify(bad.slice(0, 40))} in rooms: ${NAME_RULE}`;
  return { since, rooms };
}

function pageQuery(q: { before?: string; limit?: string }): { before: number; limit: number } | string {
  const before = q.before ? Number(q.before) : Number.MAX_SAFE_INTEGER;
  const limit = q.limit ? Number(q.limit) : 50;
  if (!Number.isSafeInteger(before) || before < 1) return "before must be a message id (a whole number from 1)";
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 200) return "limit must be a whole number from 1 to 200";
  return { before, limit };
}

const guestName = () => {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return `guest-${Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")}`;
};

/**
 * Builds the wirechat HTTP and WebSocket app. It does not listen: the caller
 * does (`app.listen`), and stops it with `app.decorator.hub.shutdown()` first.
 */
export function createApp(deps: AppDeps) {
  const broker = deps.broker ?? createLocalBroker();
  const presence = new Presence();
  const hub = new Hub({ history: deps.history, broker, presence, replayLimit: deps.replayLimit ?? 10_000 });
  const startedAt = Date.now();

  return new Elysia({ websocket })
    .decorate("hub", hub)
    .use(webPage())
    .onStart(({ server }) => {
      if (server) broker.attach(server);
    })
    .get("/health", () => ({
      status: "ok" as const,
      uptimeMs: Date.now() - startedAt,
      connections: hub.connections,
      lastId: deps.history.lastId(),
    }), { response: HealthBody })
    .get("/users/online", () => ({ users: presence.users() }), { response: OnlineBody })
    .get("/metrics", () => new Response(metricsText(hub, presence, broker), { headers: { "content-type": "text/plain; version=0.0.4" } }))
    .get("/history", ({ query, status }) => {
      const q = pageQuery(query);
      if (typeof q === "string") return status(400, fail("invalid_frame", q));
      return { messages: deps.history.page(undefined, q.before, q.limit).map(toFrame) };
    }, { query: t.Object({ before: t.Optional(t.String()), limit: t.Optional(t.String()) }), response: { 200: HistoryBody, 400: HttpError } })
    .get("/rooms/:room/history", ({ params, query, status }) => {
      if (!isValidName(params.room)) return status(400, fail("invalid_room", `Invalid room name: ${NAME_RULE}`));
      const q = pageQuery(query);
      if (typeof q === "string") return status(400, fail("invalid_frame", q));
      return { messages: deps.history.page(params.room, q.before, q.limit).map(toFrame) };
    }, { query: t.Object({ before: t.Optional(t.String()), limit: t.Optional(t.String()) }), response: { 200: HistoryBody, 400: HttpError } })
    .ws("/ws/:username", {
      query: WsQuery,
      body: ClientFrame,
      response: ServerFrame,
      beforeHandle({ params, query }) {
        if (!isValidName(params.username)) {
          return refuse("invalid_username", `Invalid username ${JSON.stringify(params.username.slice(0, 64))}: ${NAME_RULE}`);
        }
        const opts = connectOptions(query);
        if (typeof opts === "string") return refuse(opts.startsWith("since") ? "invalid_frame" : "invalid_room", opts);
      },
      open(ws) {
        const opts = connectOptions(ws.data.query) as { since?: number; rooms: string[] };
        hub.open(ws.raw as unknown as ServerWebSocket<unknown>, ws.data.params.username, opts.since, opts.rooms);
      },
    })
    .ws("/ws", {
      query: WsQuery,
      body: ClientFrame,
      response: ServerFrame,
      beforeHandle({ query }) {
        const opts = connectOptions(query);
        if (typeof opts === "string") return refuse(opts.startsWith("since") ? "invalid_frame" : "invalid_room", opts);
      },
      open(ws) {
        const opts = connectOptions(ws.data.query) as { since?: number; rooms: string[] };
        hub.open(ws.raw as unknown as ServerWebSocket<unknown>, guestName(), opts.since, opts.rooms);
      },
    });
}

/** The app's type: what the typed clients (Eden, the SDK) are derived from. */
export type App = ReturnType<typeof createApp>;
