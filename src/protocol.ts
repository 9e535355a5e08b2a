/**
 * Wire protocol v1: every frame as a TypeBox schema with its type of the same
 * name. Server and client both import this module, so one schema set types
 * and validates both ends. It must stay free of server-only imports.
 */
import { Type as t, type Static } from "@sinclair/typebox";

import { LIMITS, NAME_PATTERN } from "./protocol/limits.js";

export * from "./protocol/limits.js";

export const Username = t.String({ pattern: NAME_PATTERN, minLength: 1, maxLength: LIMITS.nameMax });
export type Username = Static<typeof Username>;
export const RoomName = t.String({ pattern: NAME_PATTERN, minLength: 1, maxLength: LIMITS.nameMax });
export type RoomName = Static<typeof RoomName>;
export const Text = t.String({ minLength: 1, maxLength: LIMITS.textMax });
export type Text = Static<typeof Text>;
export const Cid = t.String({ minLength: 1, maxLength: LIMITS.cidMax });
export type Cid = Static<typeof Cid>;
/** Stored message ids: positive, strictly increasing in acceptance order. */
export const MessageId = t.Integer({ minimum: 1 });

// ---- client → server -------------------------------------------------------

export const BroadcastFrame = t.Object({ type: t.Literal("broadcast"), text: Text, cid: t.Optional(Cid) });
export type BroadcastFrame = Static<typeof BroadcastFrame>;
export const DirectFrame = t.Object({ type: t.Literal("direct"), to: Username, text: Text, cid: t.Optional(Cid) });
export type DirectFrame = Static<typeof DirectFrame>;
export const JoinFrame = t.Object({ type: t.Literal("join"), room: RoomName, cid: t.Optional(Cid) });
export type JoinFrame = Static<typeof JoinFrame>;
export const LeaveFrame = t.Object({ type: t.Literal("leave"), room: RoomName, cid: t.Optional(Cid) });
export type LeaveFrame = Static<typeof LeaveFrame>;
export const RoomFrame = t.Object({ type: t.Literal("room"), room: RoomName, text: Text, cid: t.Optional(Cid) });
export type RoomFrame = Static<typeof RoomFrame>;

/** A fresh token for this connection (jwt and accounts modes), before the current one expires. */
export const AuthFrame = t.Object({ type: t.Literal("auth"), token: t.String({ minLength: 1, maxLength: LIMITS.tokenMax }), cid: t.Optional(Cid) });
export type AuthFrame = Static<typeof AuthFrame>;

/** Presence of these users from now on (join/leave), and in the ack which of them are online. */
export const WatchFrame = t.Object({ type: t.Literal("watch"), users: t.Array(Username, { maxItems: LIMITS.watchMax }), cid: t.Optional(Cid) });
export type WatchFrame = Static<typeof WatchFrame>;
export const UnwatchFrame = t.Object({ type: t.Literal("unwatch"), users: t.Array(Username, { maxItems: LIMITS.watchMax }), cid: t.Optional(Cid) });
export type UnwatchFrame = Static<typeof UnwatchFrame>;

/**
 * The connection has processed every message up to `id` (send it batched,
 * not per message): the user's inbox cursor moves to it, and the senders of
 * direct messages it covers get a `delivered` receipt.
 */
export const ReceivedFrame = t.Object({ type: t.Literal("received"), id: MessageId });
export type ReceivedFrame = Static<typeof ReceivedFrame>;
/** The reader has seen everything up to `id` in that message's conversation (a direct conversation, a room, or everyone). */
export const ReadFrame = t.Object({ type: t.Literal("read"), id: MessageId });
export type ReadFrame = Static<typeof ReadFrame>;

/**
 * Frames marked volatile are never stored, acked or replayed; under
 * backpressure they are the first dropped, and losing one is not a loss.
 */
const volatile = { volatile: true } as const;

/** "I am typing" in a direct conversation (`to`) or a room (`room`). */
export const TypingFrame = t.Union([
  t.Object({ type: t.Literal("typing"), to: Username }, volatile),
  t.Object({ type: t.Literal("typing"), room: RoomName }, volatile),
]);
export type TypingFrame = Static<typeof TypingFrame>;

/** Every frame a v1 client sends. */
export const ClientFrame = t.Union([
  BroadcastFrame,
  DirectFrame,
  JoinFrame,
  LeaveFrame,
  RoomFrame,
  AuthFrame,
  WatchFrame,
  UnwatchFrame,
  ReceivedFrame,
  ReadFrame,
  TypingFrame,
]);
export type ClientFrame = Static<typeof ClientFrame>;

/**
 * The classic tutorial's frame: `{"message":T,"to_user":U}` is a direct
 * message, `{"message":T}` (or an empty or null `to_user`) a broadcast.
 */
export const TutorialFrame = t.Object({
  message: Text,
  to_user: t.Optional(t.Union([t.String({ maxLength: LIMITS.nameMax }), t.Null()])),
});
export type TutorialFrame = Static<typeof TutorialFrame>;

// ---- server → client -------------------------------------------------------

export const ErrorCode = t.Union([
  t.Literal("bad_json"),
  t.Literal("invalid_frame"),
  t.Literal("invalid_username"),
  t.Literal("invalid_room"),
  t.Literal("not_member"),
  t.Literal("store_failed"),
  t.Literal("internal"),
  /** No valid token: missing, malformed, badly signed, expired or revoked. */
  t.Literal("unauthorized"),
  /** A valid token that does not allow this (another user, a room outside its `rooms` claim). */
  t.Literal("forbidden"),
  /** Too many messages, connections, replays or login attempts: wait `retryAfterMs`. */
  t.Literal("rate_limited"),
  t.Literal("not_found"),
  /** The username is taken (accounts mode). */
  t.Literal("conflict"),
  /** The server is shutting down or cannot reach its store: try another node, or again shortly. */
  t.Literal("unavailable"),
]);
export type ErrorCode = Static<typeof ErrorCode>;

export const MessageKind = t.Union([t.Literal("broadcast"), t.Literal("direct"), t.Literal("room")]);
export type MessageKind = Static<typeof MessageKind>;

/** Unread messages of one conversation. */
export const UnreadCount = t.Object({ conversation: t.String(), count: t.Integer({ minimum: 0 }), lastId: MessageId });
export type UnreadCount = Static<typeof UnreadCount>;

export const WelcomeFrame = t.Object({
  type: t.Literal("welcome"),
  user: Username,
  /**
   * Distinct users connected now on every node, this one included: only
   * while at most the server's PRESENCE_GLOBAL_MAX are; above it, watch the
   * users you care about.
   */
  online: t.Optional(t.Array(Username)),
  /** How many distinct users are connected now, on every node. */
  onlineCount: t.Integer({ minimum: 0 }),
  /** The newest id this node had delivered (0 when none), or the connect's `since` when newer: live delivery covers every id above it. */
  lastId: t.Integer({ minimum: 0 }),
  /** False when the replay before live delivery could not be complete: a gap the client must know of. */
  resumed: t.Boolean(),
  /**
   * The conversations with unread messages (`@user` a direct conversation,
   * `#room` a room this connection is in, `*` everyone): how many (counted up
   * to 999) and the newest id.
   */
  unread: t.Optional(t.Array(UnreadCount)),
  /** How many replayed message frames follow, oldest first, before live delivery. */
  replay: t.Integer({ minimum: 0 }),
  /** The message store's epoch: resume with `?since=N&epoch=E`; another epoch means ids started over. */
  epoch: t.String(),
});
export type WelcomeFrame = Static<typeof WelcomeFrame>;

export const MessageFrame = t.Object({
  type: t.Literal("message"),
  id: MessageId,
  kind: MessageKind,
  from: Username,
  /** The recipient (direct) or the room (room); absent on broadcasts. */
  to: t.Optional(t.String()),
  text: Text,
  /** Epoch milliseconds when the server accepted the message. */
  at: t.Integer(),
});
export type MessageFrame = Static<typeof MessageFrame>;

export const AckFrame = t.Object({
  type: t.Literal("ack"),
  cid: Cid,
  /** The stored message id; absent for join and leave. */
  id: t.Optional(MessageId),
  /** Present and false on a direct message to a user with no open connection (it waits in their inbox). */
  delivered: t.Optional(t.Boolean()),
  /** On a watch: which of the watched users are online now. */
  online: t.Optional(t.Array(Username)),
});
export type AckFrame = Static<typeof AckFrame>;

/**
 * Users came online or went offline (or, with `room`, into or out of that
 * room). One user: `user`; several in one tick: `users`.
 */
export const PresenceFrame = t.Object(
  {
    type: t.Literal("presence"),
    event: t.Union([t.Literal("join"), t.Literal("leave")]),
    user: t.Optional(Username),
    users: t.Optional(t.Array(Username)),
    room: t.Optional(RoomName),
  },
  volatile,
);
export type PresenceFrame = Static<typeof PresenceFrame>;

export const ErrorFrame = t.Object({
  type: t.Literal("error"),
  code: ErrorCode,
  message: t.String(),
  cid: t.Optional(t.String()),
  /** With `rate_limited`: when the next message would be accepted. */
  retryAfterMs: t.Optional(t.Integer({ minimum: 0 })),
});
export type ErrorFrame = Static<typeof ErrorFrame>;

/**
 * `delivered`: `by` has received your direct messages up to `id`; `read`:
 * `by` has seen the conversation up to `id`. A reader's own devices get its
 * read receipts too (with `conversation`), so unread state is the same
 * everywhere; room read state is never announced to the room.
 */
export const ReceiptFrame = t.Object(
  {
    type: t.Literal("receipt"),
    event: t.Union([t.Literal("delivered"), t.Literal("read")]),
    id: MessageId,
    by: Username,
    /** The conversation (`@user`, `#room` or `*`), on read receipts. */
    conversation: t.Optional(t.String()),
  },
  volatile,
);
export type ReceiptFrame = Static<typeof ReceiptFrame>;

/** Someone is typing to you (`to`) or in a room you are in (`room`). */
export const TypingEvent = t.Union([
  t.Object({ type: t.Literal("typing"), from: Username, to: Username }, volatile),
  t.Object({ type: t.Literal("typing"), from: Username, room: RoomName }, volatile),
]);
export type TypingEvent = Static<typeof TypingEvent>;

/** Every single frame the server sends. */
export const SingleServerFrame = t.Union([WelcomeFrame, MessageFrame, AckFrame, PresenceFrame, ErrorFrame, ReceiptFrame, TypingEvent]);
export type SingleServerFrame = Static<typeof SingleServerFrame>;

/**
 * With `?batch=1`: one commit batch's frames of one topic (or a piece of a
 * replay) in one WebSocket frame, in id order. A client must unpack it.
 */
export const BatchFrame = t.Array(SingleServerFrame, { maxItems: 10_000 });
export type BatchFrame = Static<typeof BatchFrame>;

/** Every frame the server sends: a single frame, or (with `?batch=1`) an array of them. */
export const ServerFrame = t.Union([WelcomeFrame, MessageFrame, AckFrame, PresenceFrame, ErrorFrame, ReceiptFrame, TypingEvent, BatchFrame]);
export type ServerFrame = Static<typeof ServerFrame>;

/** The only way a server frame is serialised: once per publish, never per recipient. */
export const encode = (frame: ServerFrame): string => JSON.stringify(frame);

// ---- HTTP bodies -------------------------------------------------------------

export const HealthBody = t.Object({
  status: t.Literal("ok"),
  uptimeMs: t.Integer({ minimum: 0 }),
  connections: t.Integer({ minimum: 0 }),
  lastId: t.Integer({ minimum: 0 }),
});
export type HealthBody = Static<typeof HealthBody>;

/** `/ready`: this node takes connections and its store takes writes. */
export const ReadyBody = t.Object({ status: t.Literal("ready") });
export type ReadyBody = Static<typeof ReadyBody>;

export const OnlineBody = t.Object({ users: t.Array(Username), count: t.Integer({ minimum: 0 }) });
export type OnlineBody = Static<typeof OnlineBody>;

export const HttpError = t.Object({ error: ErrorCode, message: t.String(), retryAfterMs: t.Optional(t.Integer({ minimum: 0 })) });
export type HttpError = Static<typeof HttpError>;

export const HistoryQuery = t.Object({
  before: t.Optional(t.Integer({ minimum: 1 })),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 200 })),
});
export type HistoryQuery = Static<typeof HistoryQuery>;

export const HistoryBody = t.Object({
  messages: t.Array(MessageFrame),
  /** The caller's read marker in this conversation (0: none); present when the caller is known (a token). */
  readId: t.Optional(t.Integer({ minimum: 0 })),
});
export type HistoryBody = Static<typeof HistoryBody>;

/** Which identity mode the server runs in (`AUTH`). */
export const AuthMode = t.Union([t.Literal("open"), t.Literal("jwt"), t.Literal("accounts")]);
export type AuthMode = Static<typeof AuthMode>;

export const AuthModeBody = t.Object({ mode: AuthMode });
export type AuthModeBody = Static<typeof AuthModeBody>;

/** Accounts mode: register and log in. */
export const Credentials = t.Object({
  username: t.String({ maxLength: 256 }),
  password: t.String({ maxLength: 1024 }),
});
export type Credentials = Static<typeof Credentials>;

/** A token and when it expires (epoch milliseconds). */
export const TokenBody = t.Object({ token: t.String(), expiresAt: t.Integer({ minimum: 0 }) });
export type TokenBody = Static<typeof TokenBody>;

export const RegisteredBody = t.Object({ username: Username });
export type RegisteredBody = Static<typeof RegisteredBody>;

/** What an admin action did. */
export const AdminBody = t.Object({ user: Username, closed: t.Integer({ minimum: 0 }) });
export type AdminBody = Static<typeof AdminBody>;
