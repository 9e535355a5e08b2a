import type { ServerWebSocket } from "bun";
import { Elysia, t } from "elysia";
import type { Broker } from "./broker/broker";
import { createLocalBroker } from "./broker/broker_local";
import type { History } from "./history/history";
import { Hub } from "./chat";
import { toFrame } from "./replay";
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
  /** See HubDeps.closeGraceMs (default 2,000 ms). */
  closeGraceMs?: number;
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
  query: t.Object({ since: t.Optional(t.String()), rooms: t.Optional(t.String()) }),
  body: ClientFrame,
  response: ServerFrame,
} as const;
const PageQuery = t.Object({ before: t.Optional(t.String()), limit: t.Optional(t.String()) });
const NAME_RULE = "use 1 to 64 letters, digits, _, - or .";

const fail = (code: ErrorCode, message: string) => ({ error: code, message });

/**
 * HTTP 400 before the upgrade. A ws route's `response` types its frames, not
 * its HTTP answers, so the Response is passed through as `never`.
 */
const refuse = (code: ErrorCode, message: string) => Response.json(fail(code, message), { status: 400 }) as never;

type ConnectOptions = { since?: number; rooms: string[] };
type Refusal = { code: ErrorCode; message: string };

/** Reads `?since=N&rooms=a,b`, or says why it cannot. */
function connectOptions(q: { since?: string; rooms?: string }): ConnectOptions | Refusal {
  let since: number | undefined;
  if (q.since !== undefined && q.since !== "") {
    since = /^\d{1,15}$/.test(q.since) ? Number(q.since) : NaN;
    if (!Number.isSafeInteger(since)) {
      return { code: "invalid_frame", message: `since=${JSON.stringify(q.since.slice(0, 40))} is invalid: expected a message id (a whole number)` };
    }
  }
  const rooms = q.rooms ? [...new Set(q.rooms.split(","))] : [];
  if (rooms.length > LIMITS.roomsMax) return { code: "invalid_room", message: `Too many rooms: a connection may be in at most ${LIMITS.roomsMax}` };
  const bad = rooms.find((r) => !isValidName(r));
  if (bad !== undefined) return { code: "invalid_room", message: `Invalid room name ${JSON.stringify(bad.slice(0, 40))} in rooms: ${NAME_RULE}` };
  return { since, rooms };
}

/** The HTTP 400 for a connect whose query is wrong, or undefined when it is fine. */
function refuseQuery(q: { since?: string; rooms?: string }) {
  const opts = connectOptions(q);
  return "code" in opts ? refuse(opts.code, opts.message) : undefined;
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
  const hub = new Hub({ history: deps.history, broker, presence, replayLimit: deps.replayLimit ?? 10_000, closeGraceMs: deps.closeGraceMs });
  const startedAt = Date.now();
  /** Hands an upgraded socket to the hub (query already checked in beforeHandle). */
  const join = (ws: { raw: unknown; data: { query: { since?: string; rooms?: string } } }, user: string) => {
    const opts = connectOptions(ws.data.query) as ConnectOptions;
    hub.open(ws.raw as ServerWebSocket<unknown>, user, opts.since, opts.rooms);
  };
  const historyPage = (room: string | undefined, query: { before?: string; limit?: string }) => {
    const q = pageQuery(query);
    if (typeof q === "string") return fail("invalid_frame", q);
    return { messages: deps.history.page(room, q.before, q.limit).map(toFrame) };
  };

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
      const page = historyPage(undefined, query);
      return "error" in page ? status(400, page) : page;
    }, { query: PageQuery, response: { 200: HistoryBody, 400: HttpError } })
    .get("/rooms/:room/history", ({ params, query, status }) => {
      if (!isValidName(params.room)) return status(400, fail("invalid_room", `Invalid room name: ${NAME_RULE}`));
      const page = historyPage(params.room, query);
      return "error" in page ? status(400, page) : page;
    }, { query: PageQuery, response: { 200: HistoryBody, 400: HttpError } })
    .ws("/ws/:username", {
      ...socket,
      beforeHandle({ params, query }) {
        if (!isValidName(params.username)) {
          return refuse("invalid_username", `Invalid username ${JSON.stringify(params.username.slice(0, 64))}: ${NAME_RULE}`);
        }
        return refuseQuery(query);
      },
      open: (ws) => join(ws, ws.data.params.username),
    })
    .ws("/ws", {
      ...socket,
      beforeHandle: ({ query }) => refuseQuery(query),
      open: (ws) => join(ws, guestName()),
    });
}

/** The app's type: what the typed clients (Eden, the SDK) are derived from. */
export type App = ReturnType<typeof createApp>;
