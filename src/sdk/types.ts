/**
 * The SDK's public types, all derived from the wire protocol's schemas
 * (`src/protocol.ts`, the same ones the server validates with): nothing here
 * restates a frame's shape by hand.
 */
import type {
  AckFrame,
  AuthMode,
  BroadcastFrame,
  DirectFrame,
  ErrorCode,
  JoinFrame,
  LeaveFrame,
  MessageFrame,
  MessageKind,
  PresenceFrame,
  ReadFrame,
  ReceiptFrame,
  ReceivedFrame,
  RoomFrame,
  TypingEvent,
  TypingFrame,
  UnreadCount,
  UnwatchFrame,
  WatchFrame,
  WelcomeFrame,
} from "../protocol.js";

export type { AckFrame, AuthMode, ErrorCode, MessageFrame, MessageKind, PresenceFrame, ReceiptFrame, TypingEvent, UnreadCount, WelcomeFrame };

/**
 * A message, narrowed on `kind`: a broadcast has no `to`; a direct message
 * or a room message always has one (the recipient or the room).
 */
export type ChatMessage = {
  [K in MessageKind]: Omit<MessageFrame, "kind" | "to"> & { kind: K } & (K extends "broadcast" ? { to?: undefined } : { to: NonNullable<MessageFrame["to"]> });
}[MessageKind];

/**
 * A message as the `message` event delivers it: `replayed` is true for one
 * the connect's replay brought (sent while this client was away, or missed
 * in a drop), false for one delivered live.
 */
export type IncomingMessage = ChatMessage & { readonly replayed: boolean };

/**
 * A conversation, as receipts and unread counts name it: `@user` a direct
 * conversation (the other user), `#room` a room, `*` everyone's broadcasts.
 */
export type ConversationKey = UnreadCount["conversation"];

/** Where "I am typing" goes: a username (a direct conversation) or `{ room }`. */
export type TypingTarget = Extract<TypingFrame, { to: unknown }>["to"] | { room: Extract<TypingFrame, { room: unknown }>["room"] };

/** The frames the SDK sends without a cid: never acked. */
export type UnackedFrame = ReceivedFrame | ReadFrame | TypingFrame;

/** The ack of a stored message (broadcast, direct, room): it always carries the id. */
export type MessageAck = AckFrame & Required<Pick<AckFrame, "id">>;

/** The ack of a join or leave: no message was stored, so no id. */
export type RoomAck = AckFrame;

/** A frame the SDK sends; it always carries a cid so the server acks it. */
export type OutgoingFrame = Required<Pick<BroadcastFrame, "cid">> &
  (BroadcastFrame | DirectFrame | JoinFrame | LeaveFrame | RoomFrame | WatchFrame | UnwatchFrame);

/** The ack of a watch: which of the watched users are online now. */
export type WatchAck = AckFrame & Required<Pick<AckFrame, "online">>;

/** Connection state, reported by the `status` event. */
export type ChatStatus = "connecting" | "open" | "reconnecting" | "closed";

/** Errors of the SDK itself, beside the protocol's `ErrorCode`s. */
export type SdkErrorCode =
  /** No ack within `ackTimeoutMs` of the frame being written to the socket. */
  | "timeout"
  /** `close()` was called before the frame was acked. */
  | "closed"
  /** A reconnect could not replay everything missed (`welcome.resumed` was false). */
  | "resume_incomplete"
  /** The `token` function rejected (other than with `unauthorized` or `forbidden`); the client tries again with backoff. */
  | "token_failed"
  /** An HTTP request failed without a protocol error body. */
  | "http";

/** Every code a `ChatClientError` may carry. */
export type ChatErrorCode = ErrorCode | SdkErrorCode;

/**
 * The minimum of a WebSocket the SDK uses: the global `WebSocket` of
 * browsers, Bun, Deno and Node 22+ fits, and so does the `ws` package's.
 * Event parameters are `any` so that either library's event classes fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}

/**
 * A WebSocket class: `new WebSocket(url, protocols)`. The token travels as
 * the subprotocol `bearer.<token>`, the one way every runtime (browsers
 * included, which cannot set headers) can hand it over on the upgrade.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
