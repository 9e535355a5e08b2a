/**
 * What identity keeps beside the history: accounts (accounts mode), token
 * revocations (every mode with tokens) and the accounts' signing key.
 * Implementations: `store_sqlite.ts`, `store_redis.ts` (cluster mode).
 */

/** Built-in accounts. */
export interface AccountStore {
  /** Adds an account; false when the username is taken. Atomic: two racing creates never both succeed. */
  create(username: string, passwordHash: string): Promise<boolean>;
  /** The stored password hash, or undefined when there is no such account. */
  passwordHash(username: string): Promise<string | undefined>;
  /** The HS256 key for accounts tokens: generated on first use and kept, so tokens survive a restart. */
  signingKey(): Promise<Uint8Array>;
}

/** Token revocations, kept across restarts. */
export interface Revocations {
  /** Refuses every token of `user` issued before the end of this second; returns that time in epoch seconds. */
  revoke(user: string, nowMs: number): Promise<number>;
  /** Epoch seconds: tokens of `user` with `iat` below it are refused (0 when never revoked). */
  revokedBefore(user: string): Promise<number>;
}
