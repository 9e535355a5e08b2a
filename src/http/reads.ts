/**
 * What HTTP clients read: history pages, a direct conversation, who is online.
 * In jwt and accounts modes every route needs a bearer token.
 */
import { Elysia, t } from "elysia";
import { roomAllowed } from "../auth/auth";
import { ChatError } from "../errors";
import type { History } from "../history/history";
import { toFrame } from "../history/frame";
import type { Presence } from "../presence/presence";
import { HistoryBody, HttpError, OnlineBody, isValidName } from "../protocol";
import type { createGate } from "./gate";

const NAME_RULE = "use 1 to 64 letters, digits, _, - or .";
const PageQuery = t.Object({ before: t.Optional(t.String()), limit: t.Optional(t.String()) });
const bearer = [{ bearer: [] }];

function pageQuery(q: { before?: string; limit?: string }): { before: number; limit: number } {
  const before = q.before ? Number(q.before) : Number.MAX_SAFE_INTEGER;
  const limit = q.limit ? Number(q.limit) : 50;
  if (!Number.isSafeInteger(before) || before < 1) throw new ChatError("invalid_frame", "before must be a message id (a whole number from 1)");
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 200) throw new ChatError("invalid_frame", "limit must be a whole number from 1 to 200");
  return { before, limit };
}

/** The read routes over the store and presence. */
export function readRoutes(history: History, presence: Presence, gate: ReturnType<typeof createGate>) {
  const historyPage = async (room: string | undefined, query: { before?: string; limit?: string }) => {
    const q = pageQuery(query);
    return { messages: (await history.page(room, q.before, q.limit)).map(toFrame) };
  };

  /** The caller, who must be allowed `room` (its token's `rooms` claim). */
  const roomCaller = async (request: Request, room: string) => {
    if (!isValidName(room)) throw new ChatError("invalid_room", `Invalid room name: ${NAME_RULE}`);
    const caller = await gate.identify(request.headers);
    if (caller && !roomAllowed(caller.rooms, room)) throw new ChatError("forbidden", `Your token does not allow room "${room}"`);
    return caller;
  };
  return new Elysia()
    .get(
      "/users/online",
      async ({ request }) => {
        await gate.identify(request.headers);
        return { users: presence.users(), count: presence.count() };
      },
      {
        detail: { summary: "Users online on every node (jwt and accounts modes: needs a token)", security: bearer },
        response: { 200: OnlineBody, 401: HttpError, 503: HttpError },
      },
    )
    .get(
      "/rooms/:room/online",
      async ({ request, params }) => {
        await roomCaller(request, params.room);
        const users = presence.roomUsers(params.room);
        return { users, count: users.length };
      },
      {
        detail: { summary: "Users in a room, on every node", security: bearer },
        response: { 200: OnlineBody, 400: HttpError, 401: HttpError, 403: HttpError, 503: HttpError },
      },
    )
    .get(
      "/history",
      async ({ request, query }) => {
        await gate.identify(request.headers);
        return historyPage(undefined, query);
      },
      {
        detail: { summary: "Broadcasts, newest first", security: bearer },
        query: PageQuery,
        response: { 200: HistoryBody, 400: HttpError, 401: HttpError, 503: HttpError },
      },
    )
    .get(
      "/rooms/:room/history",
      async ({ request, params, query }) => {
        const caller = await roomCaller(request, params.room);
        const page = await historyPage(params.room, query);
        return caller ? { ...page, readId: (await history.reads(caller.user))[`#${params.room}`] ?? 0 } : page;
      },
      {
        detail: { summary: "One room's messages, newest first, and the caller's read marker", security: bearer },
        query: PageQuery,
        response: { 200: HistoryBody, 400: HttpError, 401: HttpError, 403: HttpError, 503: HttpError },
      },
    )
    .get(
      "/users/:name/history",
      async ({ request, params, query }) => {
        if (!isValidName(params.name)) throw new ChatError("invalid_username", `Invalid username: ${NAME_RULE}`);
        const caller = await gate.identify(request.headers);
        if (!caller)
          throw new ChatError("forbidden", "Direct-message history needs a token: the server runs in open mode (AUTH=open), where anyone could read it");
        const q = pageQuery(query);
        const [messages, reads] = await Promise.all([history.conversation(caller.user, params.name, q.before, q.limit), history.reads(caller.user)]);
        return { messages: messages.map(toFrame), readId: reads[`@${params.name}`] ?? 0 };
      },
      {
        detail: { summary: "The caller's direct conversation with :name, newest first (403 in open mode)", security: bearer },
        query: PageQuery,
        response: { 200: HistoryBody, 400: HttpError, 401: HttpError, 403: HttpError, 503: HttpError },
      },
    );
}
