/**
 * The protocol's plain constants: limits, close codes, the subprotocol and
 * the name rule. No schema library here, so the SDK and the page carry none;
 * the TypeBox schemas in `src/protocol.ts` are built from these.
 */

/** Limits that are part of the protocol (both ends rely on them). */
export const LIMITS = {
  textMax: 4000,
  cidMax: 64,
  nameMax: 64,
  /** Larger frames close the connection with 1009. */
  frameBytesMax: 64 * 1024,
  /** More bad frames than this within `badFrameWindowMs` close with 1008. */
  badFramesMax: 20,
  badFrameWindowMs: 60_000,
  /** Rooms one connection may be in at once. */
  roomsMax: 100,
  /** Longest bearer token accepted, in characters. */
  tokenMax: 8192,
  /** Users one connection may watch for presence. */
  watchMax: 500,
  /** The server forwards one typing frame per sender and conversation this often; a client sends no more. */
  typingEveryMs: 2000,
} as const;

/** WebSocket close codes the server uses. */
export const CLOSE = {
  goingAway: 1001,
  unsupportedData: 1003,
  policyViolation: 1008,
  tooBig: 1009,
  /** The server closed a consumer that fell too far behind; reconnect with `since`. */
  backpressure: 1013,
  /** The connection's token expired or was revoked: get a new token, then reconnect. */
  unauthorized: 4001,
  /** The connection may not act as this user (another user's token, an admin disconnect). */
  forbidden: 4003,
  /** The client kept sending for 10 s after `rate_limited`. */
  rateLimited: 4008,
} as const;

/**
 * The WebSocket subprotocol of protocol v1. A browser, which cannot set an
 * Authorization header, offers `[SUBPROTOCOL, BEARER_PREFIX + token]`; the
 * server answers with `SUBPROTOCOL` alone.
 */
export const SUBPROTOCOL = "wirechat.v1";
export const BEARER_PREFIX = "bearer.";

/** Letters, digits, `_`, `-` and `.`, 1 to 64 characters: usernames and room names. */
export const NAME_PATTERN = "^[A-Za-z0-9_.-]{1,64}$";
const NAME_RE = new RegExp(NAME_PATTERN);

/** True when `name` is a string and a valid username or room name. */
export const isValidName = (name: unknown): name is string => typeof name === "string" && NAME_RE.test(name);

/** Accounts mode: password length, in characters. */
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;
