/**
 * Reading a JWT's claims on the client, to know when to refresh it. No
 * signature check: the client only schedules with these; the server verifies.
 */

/** The registered claims the client uses; times in epoch seconds. */
export interface TokenClaims {
  sub?: string;
  exp?: number;
  iat?: number;
}

/** Refresh this long before `exp` at most (long-lived tokens). */
const REFRESH_BEFORE_MS = 60_000;
/** A short-lived token is refreshed at this share of its lifetime instead. */
const REFRESH_AT_SHARE = 0.8;
/** setTimeout fires at once above 2^31 - 1 ms; a later refresh is scheduled again on reconnect. */
const TIMER_MAX_MS = 2 ** 31 - 1;

/** The payload of a JWT (three base64url parts), or undefined when `token` is not one. */
export function readClaims(token: string): TokenClaims | undefined {
  const part = token.split(".")[1];
  if (part === undefined || token.split(".").length !== 3) return undefined;
  try {
    const b64 = part
      .replace(/-/g, "+")
      .replace(/_/g, "/")
      .padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const p: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof p !== "object" || p === null || Array.isArray(p)) return undefined;
    const { sub, exp, iat } = p as Record<string, unknown>;
    return {
      sub: typeof sub === "string" ? sub : undefined,
      exp: typeof exp === "number" && Number.isFinite(exp) ? exp : undefined,
      iat: typeof iat === "number" && Number.isFinite(iat) ? iat : undefined,
    };
  } catch {
    return undefined;
  }
}

/** When `token` expires, in epoch milliseconds; undefined when it says nothing (not a JWT, no `exp`). */
export function expiresAt(token: string): number | undefined {
  const exp = readClaims(token)?.exp;
  return exp === undefined ? undefined : exp * 1000;
}

/**
 * Milliseconds from `now` until `token` should be replaced: 60 s before it
 * expires, or at 80% of its lifetime when that is shorter than 5 minutes
 * (so a 1-minute token is not refreshed the moment it arrives). With an
 * `iat` the lifetime (exp - iat, both the issuer's clock) is counted from
 * `obtainedAt` on this clock, so a client clock that is off does not make
 * it refresh late, or in a loop; without one, `exp` is read against this
 * clock. Undefined when the token carries no `exp`: nothing to schedule.
 */
export function refreshDelay(token: string, now: number, obtainedAt = now): number | undefined {
  const claims = readClaims(token);
  if (claims?.exp === undefined) return undefined;
  const exp = claims.iat === undefined ? claims.exp * 1000 : obtainedAt + Math.max(0, claims.exp - claims.iat) * 1000;
  const lifetime = exp - obtainedAt;
  const margin = Math.min(REFRESH_BEFORE_MS, lifetime * (1 - REFRESH_AT_SHARE));
  return Math.min(TIMER_MAX_MS, Math.max(0, Math.round(exp - margin - now)));
}
