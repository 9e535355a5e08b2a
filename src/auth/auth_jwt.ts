import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { ChatError } from "../errors";
import { isValidName, LIMITS } from "../protocol";
import { CLOCK_TOLERANCE_S, type Identity, type TokenVerifier } from "./auth";
import type { Revocations } from "./store";

/** Where verification keys come from, and what the claims must say. */
export interface JwtOptions {
  mode: TokenVerifier["mode"];
  /** HS256 secrets: a token signed with any of them is accepted (key rotation). */
  secrets: readonly (string | Uint8Array)[];
  /** A JWKS endpoint for asymmetric keys (RS256, ES256, EdDSA), fetched and cached by jose. */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  revocations: Revocations;
}

const ASYMMETRIC = ["RS256", "ES256", "EdDSA"];
const unauthorized = (message: string) => new ChatError("unauthorized", message);
/** A failed fetch of the JWKS surfaces as a TypeError from fetch, not as a JOSE error. */
const isFetchFailure = (err: TypeError) => /fetch|connect|network/i.test(err.message);
/** How long a client should wait before it tries again after the key set could not be had. */
export const KEYS_RETRY_MS = 5_000;

/**
 * The key set could not be had (timeout, no connection, an answer other than
 * 200 or no JSON): the server's failure, not the token's, so the answer is
 * `unavailable` (503), never `unauthorized` (which tells a client to drop its
 * token). jose has no class for a non-200 or unparsable answer, only these
 * messages of its remote key set (jose 6).
 */
function keysUnavailable(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return true;
  if (err instanceof TypeError) return isFetchFailure(err);
  return err instanceof errors.JOSEError && /^(Expected 200 OK from|Failed to parse) the JSON Web Key Set HTTP response/.test(err.message);
}

/** Says in one sentence why jose refused a token; never echoes the token. */
function reason(err: unknown): string {
  if (err instanceof ChatError) return err.message;
  if (err instanceof errors.JWTExpired) return "Token has expired: get a new one";
  if (err instanceof errors.JWTClaimValidationFailed) return `Token claim "${err.claim}" is invalid (${err.reason})`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return "Token signature is invalid";
  if (err instanceof errors.JOSEAlgNotAllowed) return "Token algorithm is not allowed";
  if (err instanceof errors.JWKSNoMatchingKey) return "Token was signed with an unknown key";
  if (err instanceof errors.JOSEError || (err instanceof TypeError && !isFetchFailure(err))) return "Token is malformed";
  return "Token could not be verified: try again";
}

/**
 * Verifies JWTs with jose: algorithms pinned per key kind (HS256 for the
 * secrets, RS256/ES256/EdDSA for the JWKS; never `none`), `exp` and `sub`
 * required, 30 s clock tolerance, issuer and audience when configured, and
 * the user's revocation time against `iat`.
 */
export function createJwtVerifier(opts: JwtOptions): TokenVerifier {
  const enc = new TextEncoder();
  // Imported once: jose would import a raw secret again on every verification.
  const secrets = Promise.all(
    opts.secrets.map((s) =>
      crypto.subtle.importKey("raw", (typeof s === "string" ? enc.encode(s) : s) as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]),
    ),
  );
  const jwks: JWTVerifyGetKey | undefined = opts.jwksUrl
    ? createRemoteJWKSet(new URL(opts.jwksUrl), { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000 })
    : undefined;
  const common = { issuer: opts.issuer, audience: opts.audience, clockTolerance: CLOCK_TOLERANCE_S, requiredClaims: ["exp", "sub"] };

  const check = async (token: string): Promise<JWTPayload> => {
    if (token.length === 0 || token.length > LIMITS.tokenMax) throw unauthorized("Token is missing or too long");
    const alg = decodeProtectedHeader(token).alg;
    if (alg === "HS256" && opts.secrets.length > 0) {
      let last: unknown;
      for (const key of await secrets) {
        try {
          return (await jwtVerify(token, key, { ...common, algorithms: ["HS256"] })).payload;
        } catch (err) {
          // Another secret may have signed it; any other failure is final.
          if (!(err instanceof errors.JWSSignatureVerificationFailed)) throw err;
          last = err;
        }
      }
      throw last;
    }
    if (jwks && alg !== undefined && ASYMMETRIC.includes(alg)) {
      return (await jwtVerify(token, jwks, { ...common, algorithms: ASYMMETRIC })).payload;
    }
    throw unauthorized(`Token algorithm ${JSON.stringify(String(alg).slice(0, 16))} is not accepted here`);
  };

  return {
    mode: opts.mode,
    async verify(token) {
      let p: JWTPayload;
      try {
        p = await check(token);
      } catch (err) {
        if (keysUnavailable(err)) {
          throw new ChatError("unavailable", "The token's signing keys could not be fetched (JWT_JWKS_URL): try again in a moment", undefined, KEYS_RETRY_MS);
        }
        throw unauthorized(reason(err));
      }
      if (!isValidName(p.sub)) throw unauthorized('Token "sub" is not a valid username');
      const before = await opts.revocations.revokedBefore(p.sub);
      if (before > 0 && (typeof p.iat !== "number" || p.iat < before)) throw unauthorized("Token was revoked: log in again");
      const rooms = (p as { rooms?: unknown }).rooms;
      if (rooms !== undefined && !(Array.isArray(rooms) && rooms.every((r) => typeof r === "string"))) {
        throw unauthorized('Token claim "rooms" must be a list of room names');
      }
      const identity: Identity = { user: p.sub, validUntil: (p.exp! + CLOCK_TOLERANCE_S) * 1000 };
      if (rooms !== undefined) identity.rooms = rooms as string[];
      return identity;
    },
  } satisfies TokenVerifier;
}
