/**
 * The HTTP half of the SDK: history pages and the online list, with `fetch`.
 * Response bodies are the protocol's HTTP body types.
 */
import type { HistoryBody, HttpError, OnlineBody } from "../protocol.js";
import { ChatClientError } from "./errors.js";
import type { ChatMessage } from "./types.js";

/** A page of history: newest first, `before` an id (exclusive), `limit` 1 to 200. */
export interface PageOptions {
  before?: number;
  limit?: number;
}

/** The HTTP queries a chat client offers. */
export interface ChatHttp {
  /** Broadcasts, newest first. */
  history(page?: PageOptions): Promise<ChatMessage[]>;
  /** Messages of one room, newest first. */
  roomHistory(room: string, page?: PageOptions): Promise<ChatMessage[]>;
  /** Users with an open connection now. */
  onlineUsers(): Promise<string[]>;
}

const query = (page: PageOptions = {}) => {
  const q = new URLSearchParams();
  if (page.before !== undefined) q.set("before", String(page.before));
  if (page.limit !== undefined) q.set("limit", String(page.limit));
  const s = q.toString();
  return s ? `?${s}` : "";
};

/** The part of `fetch` the SDK uses. */
export type FetchLike = (url: string) => Promise<Response>;

/** Builds the HTTP queries against `base` (an http(s) URL without a trailing slash). */
export function createHttp(base: string, fetchFn: FetchLike = (url) => fetch(url)): ChatHttp {
  async function get<T>(path: string): Promise<T> {
    const res = await fetchFn(base + path);
    const body: unknown = await res.json().catch(() => undefined);
    if (!res.ok) {
      const err = body as Partial<HttpError> | undefined;
      if (err && typeof err.error === "string") throw new ChatClientError(err.error, err.message ?? `HTTP ${res.status}`);
      throw new ChatClientError("http", `GET ${path} answered HTTP ${res.status}`);
    }
    return body as T;
  }
  return {
    history: async (page) => (await get<HistoryBody>(`/history${query(page)}`)).messages as ChatMessage[],
    roomHistory: async (room, page) =>
      (await get<HistoryBody>(`/rooms/${encodeURIComponent(room)}/history${query(page)}`)).messages as ChatMessage[],
    onlineUsers: async () => (await get<OnlineBody>("/users/online")).users,
  };
}
