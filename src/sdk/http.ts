/**
 * The HTTP half of the SDK: history pages and the online list, with `fetch`
 * and the client's bearer token. Response bodies are the protocol's HTTP
 * body types.
 */
import type { HistoryBody, HttpError, OnlineBody } from "../protocol.js";
import { ChatClientError } from "./errors.js";
import type { ChatMessage, ConversationKey } from "./types.js";

/** A page of history: newest first, `before` an id (exclusive), `limit` 1 to 200. */
export interface PageOptions {
  before?: number;
  limit?: number;
}

/** The HTTP queries a chat client offers. */
export interface ChatHttp {
  /** Broadcasts, newest first. */
  history(page?: PageOptions): Promise<ChatMessage[]>;
  /**
   * Messages of one room, newest first. With a token the server also says
   * where this user's read marker is; the client's unread counts use it.
   */
  roomHistory(room: string, page?: PageOptions): Promise<ChatMessage[]>;
  /**
   * The direct conversation between this user and `user`, newest first.
   * Needs a token (jwt and accounts modes); an open-mode server refuses it
   * with `forbidden`.
   */
  userHistory(user: string, page?: PageOptions): Promise<ChatMessage[]>;
  /** Users with an open connection now. */
  onlineUsers(): Promise<string[]>;
}

/** What the SDK passes to `fetch`: a subset of RequestInit, so that no DOM or Node type is needed to supply one. */
export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** The part of `fetch` the SDK uses. */
export type FetchLike = (url: string, init?: FetchInit) => Promise<Response>;

const query = (page: PageOptions = {}) => {
  const q = new URLSearchParams();
  if (page.before !== undefined) q.set("before", String(page.before));
  if (page.limit !== undefined) q.set("limit", String(page.limit));
  const s = q.toString();
  return s ? `?${s}` : "";
};

/**
 * Sends one request and reads its JSON answer. A refusal becomes a
 * ChatClientError with the server's code (`unauthorized`, `conflict`, ...)
 * and `retryAfterMs` when it gave one; an answer without a protocol error
 * body, `http`.
 */
export async function requestJson<T>(fetchFn: FetchLike, url: string, init: FetchInit = {}): Promise<T> {
  const res = await fetchFn(url, init);
  const body: unknown = await res.json().catch(() => undefined);
  if (!res.ok) {
    const err = body as Partial<HttpError> | undefined;
    if (err && typeof err.error === "string") {
      throw new ChatClientError(err.error, err.message ?? `HTTP ${res.status}`, undefined, err.retryAfterMs);
    }
    throw new ChatClientError("http", `${init.method ?? "GET"} ${new URL(url).pathname} answered HTTP ${res.status}`);
  }
  return body as T;
}

/** The default fetch, looked up when called (a test or polyfill may replace the global later). */
export const globalFetch: FetchLike = (url, init) => fetch(url, init);

/**
 * Builds the HTTP queries against `base` (an http(s) URL without a trailing
 * slash). `token` is asked before each request; its answer, when there is
 * one, goes in `Authorization: Bearer`. `onReadId` hears the caller's read
 * marker of a room or direct conversation when a history page carries it.
 */
export function createHttp(
  base: string,
  fetchFn: FetchLike = globalFetch,
  token: () => Promise<string | undefined> = async () => undefined,
  onReadId: (conversation: ConversationKey, readId: number) => void = () => {},
): ChatHttp {
  async function get<T>(path: string): Promise<T> {
    const t = await token();
    return requestJson<T>(fetchFn, base + path, t === undefined ? {} : { headers: { authorization: `Bearer ${t}` } });
  }
  const page = async (path: string, p?: PageOptions, conversation?: ConversationKey) => {
    const body = await get<HistoryBody>(path + query(p));
    if (conversation !== undefined && typeof body.readId === "number" && body.readId > 0) onReadId(conversation, body.readId);
    return body.messages as ChatMessage[];
  };
  return {
    history: (p) => page("/history", p),
    roomHistory: (room, p) => page(`/rooms/${encodeURIComponent(room)}/history`, p, `#${room}`),
    userHistory: (user, p) => page(`/users/${encodeURIComponent(user)}/history`, p, `@${user}`),
    onlineUsers: async () => (await get<OnlineBody>("/users/online")).users,
  };
}
