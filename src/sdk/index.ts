/**
 * `wirechat/client`: the typed, reconnecting wirechat SDK. Runs in browsers,
 * Bun, Deno and Node 22+ (global WebSocket); Node 20 passes the `ws`
 * package's class as the `WebSocket` option.
 */
export { createChatClient } from "./client";
export type { ChatClient, ChatClientOptions, ChatEvents, SendOptions } from "./api";
export { ChatClientError } from "./errors";
export { backoffDelay, type BackoffOptions } from "./backoff";
export type { ChatHttp, FetchLike, PageOptions } from "./http";
export type {
  AckFrame, ChatErrorCode, ChatMessage, ChatStatus, ErrorCode, MessageAck, MessageFrame, MessageKind, PresenceFrame,
  RoomAck, SdkErrorCode, WebSocketConstructor, WebSocketLike, WelcomeFrame,
} from "./types";
