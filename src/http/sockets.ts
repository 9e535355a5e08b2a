/**
 * The chat socket routes: `/ws/:username` and `/ws`. The connect is admitted
 * before the upgrade (origin, identity, limits; HTTP errors otherwise), then
 * the socket is handed to the hub. Eden types its client from `socket`.
 */
import type { ServerWebSocket } from "bun";
import { Elysia, t } from "elysia";
import { offeredProtocols } from "../auth/auth";
import { ChatError } from "../errors";
import type { Hub } from "../hub/hub";
import type { Session } from "../hub/types";
import { BEARER_PREFIX, ClientFrame, LIMITS, SUBPROTOCOL, ServerFrame, isValidName } from "../protocol";
import { refusal, type createGate } from "./gate";

const NAME_RULE = "use 1 to 64 letters, digits, _, - or .";

/** What every chat socket route declares: Eden types its client from these. */
export const socket = {
  query: t.Object({ since: t.Optional(t.String()), epoch: t.Optional(t.String()), rooms: t.Optional(t.String()), batch: t.Optional(t.String()) }),
  body: ClientFrame,
  response: ServerFrame,
} as const;
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

const guestName = () => {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return `guest-${Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")}`;
};

/** The session a connect's beforeHandle admitted, kept on the request context for `open`. */
type Admitted = { wirechat?: Session };

/** The socket routes over `hub`, admitting connects through `gate`. */
export function socketRoutes(hub: Hub, gate: ReturnType<typeof createGate>, maxPerUser: number) {
  /**
   * Admits a connect before the upgrade; Elysia runs beforeHandle twice per
   * upgrade, so the second run finds the session already made.
   */
  const admit = async (
    ctx: {
      request: Request;
      server: unknown;
      query: { since?: string; epoch?: string; rooms?: string; batch?: string };
      set: { headers: Record<string, unknown> };
    },
    named: string | undefined,
  ) => {
    const c = ctx as typeof ctx & Admitted;
    if (c.wirechat) return;
    const offered = offeredProtocols(ctx.request.headers);
    try {
      // Bun answers with the first offered subprotocol when none is chosen: a lone bearer entry would echo the token.
      if (!offered.includes(SUBPROTOCOL) && offered.some((p) => p.startsWith(BEARER_PREFIX))) {
        throw new ChatError(
          "invalid_frame",
          `Offer the subprotocol "${SUBPROTOCOL}" along with "${BEARER_PREFIX}<token>": the server answers with "${SUBPROTOCOL}"`,
        );
      }
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
    if (offered.includes(SUBPROTOCOL)) ctx.set.headers["sec-websocket-protocol"] = SUBPROTOCOL;
  };
  /** Hands an upgraded socket to the hub with the session its beforeHandle admitted. */
  const join = (ws: { raw: unknown; data: unknown }) => {
    const session = (ws.data as Admitted).wirechat!;
    const raw = ws.raw as ServerWebSocket<unknown>;
    hub.open(raw, session);
    // Connects racing through the gate together: the limit holds after the fact too.
    if (maxPerUser > 0 && hub.sockets.connectionsOf(session.user) > maxPerUser) raw.close(1008, "Too many connections for this user");
  };

  return new Elysia()
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
