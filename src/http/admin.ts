/**
 * The admin API and page, only when `ADMIN_TOKEN` is set (otherwise 404):
 * disconnect a user's sockets, revoke every token issued to them so far, and
 * `/admin/stats` (this node's numbers, read by the page at `/admin`).
 */
import { Elysia, t } from "elysia";
import { timingSafeEqual } from "node:crypto";
import type { Revocations } from "../auth/store";
import type { Hub } from "../hub/hub";
import type { NodeBoard, NodeFigures } from "../cluster/node_figures";
import { ChatError } from "../errors";
import type { Logger } from "../log";
import { AdminBody, CLOSE, HttpError, isValidName } from "../protocol";
import { adminAsset } from "./admin_page/assets";
import { errorResponse, fileResponse } from "./ops";

export interface AdminOptions {
  token?: string;
  hub: Hub;
  revocations?: Revocations;
  /** Every node's figures (cluster mode); without it the list is this node alone. */
  nodes?: NodeBoard;
  log: Logger;
}

const digest = (s: string) => new Bun.CryptoHasher("sha256").update(s).digest();

/** Compares in constant time: the token's length and content do not leak through timing. */
function tokenMatches(header: string | null, token: string): boolean {
  const m = header === null ? null : /^Bearer[ ]+(\S+)$/i.exec(header);
  return m !== null && timingSafeEqual(digest(m[1]!), digest(token));
}

/** Most connections `/admin/stats` lists (the count is always the full one). */
export const LIST_MAX = 500;

const Count = t.Integer({ minimum: 0 });
/** `/admin/stats`: this node's numbers; no message texts, tokens or addresses. */
export const AdminStatsBody = t.Object({
  at: Count,
  uptimeMs: Count,
  memoryBytes: Count,
  connections: Count,
  usersOnline: t.Object({ node: Count, cluster: Count }),
  nodes: t.Array(t.Object({ node: t.String(), connections: Count, users: Count, accepted: Count, self: t.Boolean() }), {
    description:
      "Every node with its connections, users and messages accepted, this node first (`self`); the others as they last wrote them (every 2 s, cluster mode). This node alone when Redis does not answer within 0.5 s.",
  }),
  totals: t.Record(t.String(), Count, { description: "Counters, as /metrics has them: accepted by kind, frames, bytes, acks, refusals" }),
  refused: t.Record(t.String(), Count, { description: "Connects refused before the upgrade, by error code" }),
  list: t.Array(t.Object({ user: t.String(), since: Count, rooms: t.Array(t.String()) }), {
    description: `This node's connections, oldest first (at most ${LIST_MAX}; filter with ?user=)`,
  }),
  rooms: t.Array(t.Object({ room: t.String(), members: Count, sockets: Count }), {
    description: "Rooms with a connection on this node: members on every node, sockets here",
  }),
  errors: t.Array(t.Object({ time: t.String(), msg: t.String(), fields: t.Optional(t.Record(t.String(), t.Union([t.String(), t.Number(), t.Boolean()]))) })),
});

/** `/admin` (the page, public but empty without the token), its assets, `/admin/stats` and the user actions. */
export const adminRoutes = (o: AdminOptions) => {
  // Written whether or not this node serves the admin API: another node's page lists it.
  o.nodes?.start(() => figuresOf(o.hub));
  const authorize = (request: Request) => {
    if (o.token === undefined) throw new ChatError("not_found", "No such route");
    if (!tokenMatches(request.headers.get("authorization"), o.token)) {
      throw new ChatError("unauthorized", "The admin API needs Authorization: Bearer <ADMIN_TOKEN>");
    }
  };
  const check = (request: Request, name: string) => {
    authorize(request);
    if (!isValidName(name)) throw new ChatError("invalid_username", "Invalid username: use 1 to 64 letters, digits, _, - or .");
  };
  const asset = (name: "page" | "js" | "css") => {
    if (o.token === undefined) throw new ChatError("not_found", "No such route");
    return adminAsset(name);
  };
  /** The page's files need no token (they hold no data), but exist only with ADMIN_TOKEN set. */
  const file = (summary: string, type: string) => ({
    detail: { summary, responses: { 200: fileResponse(type, summary), 404: errorResponse("No admin API: ADMIN_TOKEN is not set") } },
  });
  const admin = [{ admin: [] }];
  return new Elysia({ name: "admin" })
    .get("/admin", () => asset("page"), file("The admin page (it reads /admin/stats with the token typed into it)", "text/html; charset=utf-8"))
    .get("/admin/app.js", () => asset("js"), file("The admin page's script", "text/javascript"))
    .get("/admin/app.css", () => asset("css"), file("The admin page's stylesheet", "text/css"))
    .get(
      "/admin/stats",
      async ({ request, query }) => {
        authorize(request);
        return stats(o, query.user ?? "", await nodesOf(o));
      },
      {
        detail: { summary: "This node's connections, rooms, counters and recent errors (the admin page)", security: admin },
        query: t.Object({ user: t.Optional(t.String({ maxLength: 64 })) }),
        response: { 200: AdminStatsBody, 400: HttpError, 401: HttpError, 404: HttpError },
      },
    )
    .post(
      "/admin/users/:name/disconnect",
      ({ request, params }) => {
        check(request, params.name);
        const closed = o.hub.disconnectEverywhere(params.name, CLOSE.forbidden, "Disconnected by an administrator");
        o.log.info("admin: disconnected a user", { user: params.name, closed });
        return { user: params.name, closed };
      },
      {
        detail: { summary: "Closes every connection of a user with 4003, on every node; `closed` counts those on this node", security: admin },
        response: { 200: AdminBody, 400: HttpError, 401: HttpError, 404: HttpError },
      },
    )
    .post(
      "/admin/users/:name/revoke",
      async ({ request, params }) => {
        check(request, params.name);
        if (!o.revocations) throw new ChatError("not_found", "Revocation needs a token mode: this server runs with AUTH=open");
        await o.revocations.revoke(params.name, Date.now());
        const closed = o.hub.disconnectEverywhere(params.name, CLOSE.unauthorized, "Tokens revoked: log in again");
        o.log.info("admin: revoked a user's tokens", { user: params.name, closed });
        return { user: params.name, closed };
      },
      {
        detail: {
          summary:
            "Revokes every token issued to a user so far and closes their connections with 4001, on every node (`closed` counts those on this node); 404 with AUTH=open",
          security: admin,
        },
        response: { 200: AdminBody, 400: HttpError, 401: HttpError, 404: HttpError },
      },
    );
};

/** This node's figures, as it writes them to the board. */
const figuresOf = (hub: Hub): Omit<NodeFigures, "node" | "self"> => ({
  connections: hub.connections,
  users: hub.deps.presence.localCount(),
  accepted: hub.committer.stats.accepted,
});

/** Every node's figures: the board's in cluster mode, with this node's own taken now; else (or Redis silent) this node's alone. */
async function nodesOf(o: AdminOptions): Promise<NodeFigures[]> {
  const now = figuresOf(o.hub);
  const all = o.nodes ? await o.nodes.all().catch(() => []) : [];
  const self = all.find((n) => n.self);
  return [{ node: self?.node ?? "this node", ...now, self: true }, ...all.filter((n) => !n.self)];
}

/** The numbers of `/admin/stats`, read from the same plain counters as /metrics. */
function stats(o: AdminOptions, user: string, nodes: NodeFigures[]): typeof AdminStatsBody.static {
  const { hub } = o;
  const { presence, broker } = hub.deps;
  const s = hub.stats;
  const c = hub.committer.stats;
  const list: typeof AdminStatsBody.static.list = [];
  for (const conn of hub.sockets.eachConnection()) {
    if (list.length >= LIST_MAX) break;
    if (user === "" || conn.user.includes(user)) list.push({ user: conn.user, since: conn.openedAt, rooms: [...conn.rooms] });
  }
  return {
    at: Date.now(),
    uptimeMs: Math.round(process.uptime() * 1000),
    memoryBytes: process.memoryUsage.rss(),
    connections: hub.connections,
    usersOnline: { node: presence.localCount(), cluster: presence.count() },
    nodes,
    totals: {
      accepted: c.accepted,
      broadcast: c.byKind.broadcast,
      direct: c.byKind.direct,
      room: c.byKind.room,
      duplicates: c.duplicates,
      acks: c.acks,
      storeFailures: c.storeFailures,
      framesIn: s.framesIn,
      framesOut: broker.counts.framesOut + s.framesOut,
      bytesOut: broker.counts.bytesOut + s.bytesOut,
      badFrames: s.badFrames,
      rateLimited: s.rateLimited,
      resumedFalse: s.resumedFalse,
      backpressureCloses: s.backpressureCloses,
      opened: s.opened,
      closed: s.closed,
    },
    refused: { ...s.refused },
    list,
    rooms: hub.sockets
      .roomSockets()
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .slice(0, LIST_MAX)
      .map(([room, sockets]) => ({ room, members: presence.roomUsers(room).length, sockets })),
    errors: o.log.recentErrors?.() ?? [],
  };
}
