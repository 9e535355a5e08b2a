/**
 * `wirechat/client`: the typed, reconnecting wirechat SDK. Runs in browsers,
 * Bun, Deno and Node 22+ (global WebSocket); Node 20 passes the `ws`
 * package's class as the `WebSocket` option.
 */
export { createChatClient } from "./client.js";
export type { ChatClient, ChatClientOptions, ChatEvents, SendOptions } from "./api.js";
export { ChatClientError } from "./errors.js";
export { authMode, login, refresh, register, type AuthRequestOptions } from "./auth.js";
export { readClaims, type TokenClaims } from "./jwt.js";
export type { TokenOption } from "./token.js";
export { newCid } from "./util.js";
export { conversationOf } from "./unread.js";
export { backoffDelay, type BackoffOptions } from "./backoff.js";
export type { ChatHttp, FetchInit, FetchLike, PageOptions } from "./http.js";
export type {
  AckFrame,
  AuthMode,
  ChatErrorCode,
  ChatMessage,
  ChatStatus,
  ConversationKey,
  ErrorCode,
  IncomingMessage,
  MessageAck,
  MessageFrame,
  MessageKind,
  PresenceFrame,
  ReceiptFrame,
  RoomAck,
  SdkErrorCode,
  TypingEvent,
  TypingTarget,
  UnreadCount,
  WebSocketConstructor,
  WebSocketLike,
  WelcomeFrame,
} from "./types.js";
