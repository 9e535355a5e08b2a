/** The SDK's public interfaces: options, events and the client itself. */
import type { DirectFrame, RoomName, Text, Username } from "../protocol.js";
import type { BackoffOptions } from "./backoff.js";
import type { ChatClientError } from "./errors.js";
import type { ChatHttp, FetchLike } from "./http.js";
import type { TokenOption } from "./token.js";
import type {
  ChatStatus,
  ConversationKey,
  IncomingMessage,
  MessageAck,
  PresenceFrame,
  ReceiptFrame,
  RoomAck,
  TypingEvent,
  TypingTarget,
  UnreadCount,
  WebSocketConstructor,
  WelcomeFrame,
  WatchAck,
} from "./types.js";

/** How to reach the server and how patient to be with it. */
export interface ChatClientOptions {
  /** The server's base URL, `http(s)://host:port` or `ws(s)://host:port`. */
  url: string;
  /**
   * 1 to 64 letters, digits, `_`, `-` or `.`; the same on every reconnect.
   * With a token it must be the token's subject (`sub`), or the server
   * refuses the connect.
   */
  username: string;
  /**
   * The bearer token for servers in `jwt` or `accounts` mode (open mode
   * needs none). It goes in the WebSocket subprotocols
   * `["wirechat.v1", "bearer.<token>"]`, never in the URL, and in
   * `Authorization: Bearer` on the HTTP queries.
   *
   * A function is called before each connect and reconnect, and, while
   * connected, about 60 s before the current token expires (at 80% of the
   * lifetime of a short one): the client sends the new token on the open
   * connection. If it rejects with a ChatClientError coded `unauthorized` or
   * `forbidden` (as `refresh()` does for a revoked token) the client stops;
   * any other rejection is tried again with backoff. A string cannot be
   * renewed: when it expires the server closes the connection and the client
   * stops with an `unauthorized` error.
   */
  token?: TokenOption;
  /** Rooms to be in from the first connect on. */
  rooms?: readonly RoomName[];
  /**
   * Messages of one commit batch as one JSON array frame (`?batch=1`, the
   * default): fewer WebSocket frames, unpacked by the client. `false` for one
   * frame per message.
   */
  batch?: boolean;
  /** Resume after this message id (e.g. saved from an earlier session's `lastId`). */
  since?: number;
  /** How long a written frame waits for its ack before it rejects with `timeout` (default 10,000 ms). */
  ackTimeoutMs?: number;
  /**
   * How many `rate_limited` answers one send may get before it rejects with
   * that error (default 5). Until then the client writes it again, with the
   * same cid, when the server's `retryAfterMs` has passed, and sends the
   * rest one at a time at that pace until the queue is empty. Frames already
   * on the wire when the first refusal came are refused too and resent in
   * order; one the server accepted in between (its budget refilled) is
   * stored ahead of them.
   */
  rateLimitRetries?: number;
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
  /** A message, once per id; `replayed` says whether the connect's replay brought it or it came live. */
  message: IncomingMessage;
  presence: PresenceFrame;
  /**
   * `delivered`: `by` has received your direct messages up to `id`; `read`:
   * `by` has read the conversation up to `id`. Your own reads on any device
   * come as `read` receipts with `by` you (the unread counts follow them).
   */
  receipt: ReceiptFrame;
  /** Someone is typing to you (`to`) or in one of your rooms (`room`); never your own. Show it for about 3 s. */
  typing: TypingEvent;
  /**
   * A conversation's unread count changed: after a welcome (the server's
   * counts), a new message from someone else, or a read on any of this
   * user's devices. `count` 0: all read.
   */
  unread: UnreadCount;
  /** Each (re)connect's welcome; `resumed: false` means some messages could not be replayed. */
  welcome: WelcomeFrame;
  /**
   * Error frames that answer no pending send, `resume_incomplete`, a refused
   * token refresh, and `token_failed` (the token function rejected; the
   * client tries again). `unauthorized` or `forbidden` while `status` is
   * `closed` means the client stopped: it needs a new token or user.
   */
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
  /** Users online on the whole server, as of the last welcome (always known, also above PRESENCE_GLOBAL_MAX). */
  readonly onlineCount: number;
  /** The store's epoch of the last welcome: sent back with `since` on a reconnect. */
  readonly epoch: string | undefined;
  /** Rooms this client is in (or joining), rejoined on every reconnect. */
  readonly rooms: readonly string[];
  readonly send: {
    broadcast(text: Text, opts?: SendOptions): Promise<MessageAck>;
    direct(to: DirectFrame["to"], text: Text, opts?: SendOptions): Promise<MessageAck>;
    room(room: RoomName, text: Text, opts?: SendOptions): Promise<MessageAck>;
  };
  join(room: RoomName, opts?: SendOptions): Promise<RoomAck>;
  leave(room: RoomName, opts?: SendOptions): Promise<RoomAck>;
  /**
   * Follows these users' presence (join/leave events, and `online`), also
   * when the server has more users online than it announces to everyone;
   * kept across reconnects. The ack lists which of them are online now.
   */
  watch(users: readonly Username[], opts?: SendOptions): Promise<WatchAck>;
  /** Stops following these users' presence. */
  unwatch(users: readonly Username[], opts?: SendOptions): Promise<RoomAck>;
  /** Conversations with unread messages: the `unread` events' current state. */
  readonly unread: readonly UnreadCount[];
  /** This user's read marker in a conversation (`@user`, `#room`, `*`) as far as this client knows; 0 when none is known. */
  readMarker(conversation: ConversationKey): number;
  /**
   * This user has seen everything up to message `id` in that message's
   * conversation (pass the newest shown). The server keeps it for every
   * device, tells the other side of a direct conversation (`read`
   * receipts), and the unread counts fall here at once. An id at or below
   * the conversation's known marker sends nothing; while disconnected it is
   * sent after the next welcome.
   */
  markRead(id: number): void;
  /**
   * "I am typing" to a user or `{ room }` (one this client is in). Call it
   * on every keystroke: it is sent at most once per conversation every 2 s
   * (the server forwards no more), and never while disconnected. Returns
   * whether a frame went out.
   */
  typing(to: TypingTarget): boolean;
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends keyof ChatEvents>(event: E, handler: (payload: ChatEvents[E]) => void): () => void;
  /** Closes for good: pending sends reject with `closed`, no reconnect. */
  close(): void;
}
