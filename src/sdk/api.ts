/** The SDK's public interfaces: options, events and the client itself. */
import type { DirectFrame, RoomName, Text } from "../protocol.js";
import type { BackoffOptions } from "./backoff.js";
import type { ChatClientError } from "./errors.js";
import type { ChatHttp, FetchLike } from "./http.js";
import type { ChatMessage, ChatStatus, MessageAck, PresenceFrame, RoomAck, WebSocketConstructor, WelcomeFrame } from "./types.js";

/** How to reach the server and how patient to be with it. */
export interface ChatClientOptions {
  /** The server's base URL, `http(s)://host:port` or `ws(s)://host:port`. */
  url: string;
  /** 1 to 64 letters, digits, `_`, `-` or `.`; the same on every reconnect. */
  username: string;
  /** Sent as the `token` query parameter (for servers that authenticate). */
  token?: string;
  /** Rooms to be in from the first connect on. */
  rooms?: readonly RoomName[];
  /** Resume after this message id (e.g. saved from an earlier session's `lastId`). */
  since?: number;
  /** How long a written frame waits for its ack before it rejects with `timeout` (default 10,000 ms). */
  ackTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** A WebSocket class, for runtimes without a global one (Node 20: the `ws` package). */
  WebSocket?: WebSocketConstructor;
  /** A fetch function for the HTTP queries (default: the global `fetch`). */
  fetch?: FetchLike;
}

/** `cid` makes a retry idempotent: reuse the cid of a send that timed out. */
export interface SendOptions {
  cid?: string;
}

/** The events a client emits, with their payloads. */
export interface ChatEvents {
  /** A message, live or replayed, once per id. */
  message: ChatMessage;
  presence: PresenceFrame;
  /** Each (re)connect's welcome; `resumed: false` means some messages could not be replayed. */
  welcome: WelcomeFrame;
  /** Error frames that answer no pending send, and `resume_incomplete`. */
  error: ChatClientError;
  status: ChatStatus;
}

/** A connected chat client; see `createChatClient`. */
export interface ChatClient extends ChatHttp {
  readonly username: string;
  readonly status: ChatStatus;
  /** The highest message id seen so far: what the next reconnect resumes from. */
  readonly lastId: number | undefined;
  /** Users online, as of the last welcome and presence events. */
  readonly online: readonly string[];
  /** Rooms this client is in (or joining), rejoined on every reconnect. */
  readonly rooms: readonly string[];
  readonly send: {
    broadcast(text: Text, opts?: SendOptions): Promise<MessageAck>;
    direct(to: DirectFrame["to"], text: Text, opts?: SendOptions): Promise<MessageAck>;
    room(room: RoomName, text: Text, opts?: SendOptions): Promise<MessageAck>;
  };
  join(room: RoomName, opts?: SendOptions): Promise<RoomAck>;
  leave(room: RoomName, opts?: SendOptions): Promise<RoomAck>;
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends keyof ChatEvents>(event: E, handler: (payload: ChatEvents[E]) => void): () => void;
  /** Closes for good: pending sends reject with `closed`, no reconnect. */
  close(): void;
}
