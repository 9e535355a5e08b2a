/**
 * Identity seam: who a connection or an HTTP request acts as. One
 * implementation per `AUTH` mode that carries tokens (jwt, accounts); open
 * mode has none and takes the username from the URL.
 */
import { BEARER_PREFIX, type AuthMode } from "../protocol";

/** A verified token's holder. */
export interface Identity {
  user: string;
  /** The `rooms` claim: room names, or prefixes ending in `*`; undefined: every room. */
  rooms?: readonly string[];
  /** Epoch ms after which the token is no longer accepted (exp plus the clock tolerance). */
  validUntil: number;
}

/** Verifies bearer tokens. */
export interface TokenVerifier {
  readonly mode: Exclude<AuthMode, "open">;
  /**
   * Resolves with the token's identity, or rejects with a `ChatError` coded
   * `unauthorized` (missing, malformed, badly signed, expired, revoked).
   * Never rejects with anything else.
   */
  verify(token: string): Promise<Identity>;
}

/** Clock tolerance for `exp`, `nbf` and `iat`, in seconds. */
export const CLOCK_TOLERANCE_S = 30;

/** True when `room` is allowed by a `rooms` claim (exact names, or prefixes ending in `*`). */
export function roomAllowed(rooms: readonly string[] | undefined, room: string): boolean {
  if (rooms === undefined) return true;
  for (const r of rooms) {
    if (r.endsWith("*") ? room.startsWith(r.slice(0, -1)) : room === r) return true;
  }
  return false;
}

/** The WebSocket subprotocols a request offers, in order. */
export function offeredProtocols(headers: Headers): string[] {
  return (
    headers
      .get("sec-websocket-protocol")
      ?.split(",")
      .map((p) => p.trim()) ?? []
  );
}

/** The token of an `Authorization: Bearer` header, or of a `bearer.` subprotocol; undefined when neither. */
export function bearerToken(headers: Headers): string | undefined {
  const auth = headers.get("authorization");
  if (auth !== null) {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : "";
  }
  return offeredProtocols(headers)
    .find((p) => p.startsWith(BEARER_PREFIX))
    ?.slice(BEARER_PREFIX.length);
}
