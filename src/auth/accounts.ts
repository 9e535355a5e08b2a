import { SignJWT } from "jose";
import { ChatError } from "../errors";
import { isValidName, PASSWORD_MAX, PASSWORD_MIN, type TokenBody } from "../protocol";
import { RateLimiter } from "../hub/rate";
import type { AccountStore, Revocations } from "./store";

/** Failed logins one username may have before it waits: 5, then one more every 3 minutes. */
const USER_ATTEMPTS = { burst: 5, perSecond: 1 / 180 };
/** Failed logins, and registrations, one client address may have: 30, then one every 10 s. */
const ADDRESS_ATTEMPTS = { burst: 30, perSecond: 1 / 10 };

/** Issuer of accounts-mode tokens, so that a jwt-mode token of another system is never taken for one. */
export const ACCOUNTS_ISSUER = "wirechat";

export interface AccountsOptions {
  store: AccountStore;
  revocations: Revocations;
  /** HS256 key; defaults to the store's generated key. */
  secret?: Uint8Array;
  tokenTtlMs: number;
}

/** Register, log in and refresh for `AUTH=accounts`; passwords hashed with argon2id. */
export class Accounts {
  readonly key: Uint8Array;
  readonly #byUser = new RateLimiter(USER_ATTEMPTS.perSecond, USER_ATTEMPTS.burst);
  readonly #byAddress = new RateLimiter(ADDRESS_ATTEMPTS.perSecond, ADDRESS_ATTEMPTS.burst);
  /** Verified against when the user does not exist, so both failures take the same time. */
  #dummy: Promise<string> | undefined;

  constructor(readonly opts: AccountsOptions) {
    this.key = opts.secret ?? opts.store.signingKey();
  }

  /** Creates an account; throws `conflict` when taken, `invalid_*` for a bad name or password, `rate_limited`. */
  async register(username: unknown, password: unknown, address: string): Promise<void> {
    if (!isValidName(username)) throw new ChatError("invalid_username", "Invalid username: use 1 to 64 letters, digits, _, - or .");
    if (typeof password !== "string" || password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
      throw new ChatError("invalid_frame", `Password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`);
    }
    this.#spend(this.#byAddress, address, "registrations from this address");
    const hash = await Bun.password.hash(password, { algorithm: "argon2id" });
    if (!this.opts.store.create(username, hash)) throw new ChatError("conflict", `Username "${username}" is taken: choose another`);
  }

  /** Checks the password and issues a token; one message for an unknown user and a wrong password. */
  async login(username: unknown, password: unknown, address: string): Promise<TokenBody> {
    const wrong = new ChatError("unauthorized", "Wrong username or password");
    if (!isValidName(username) || typeof password !== "string" || password.length > PASSWORD_MAX) throw wrong;
    // Only failures spend: many good logins from one NAT must not lock it out.
    const now = Date.now();
    const addressWait = this.#byAddress.peek(address, now);
    if (addressWait > 0) throw limited("Too many failed logins from this address: try again later", addressWait);
    const wait = this.#byUser.peek(username, now);
    if (wait > 0) throw limited(`Too many failed logins for "${username}": try again later`, wait);
    const hash = this.opts.store.passwordHash(username);
    const ok = await Bun.password.verify(password, hash ?? (await this.#dummyHash()));
    if (!ok || hash === undefined) {
      this.#byUser.take(username, Date.now());
      this.#byAddress.take(address, Date.now());
      throw wrong;
    }
    return this.issue(username);
  }

  /** A new token for `user`, valid `tokenTtlMs`. */
  async issue(user: string): Promise<TokenBody> {
    const now = Date.now();
    // A token made in the very second of a revoke must not count as revoked.
    const iat = Math.max(Math.floor(now / 1000), this.opts.revocations.revokedBefore(user));
    const exp = Math.floor((now + this.opts.tokenTtlMs) / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(user)
      .setIssuer(ACCOUNTS_ISSUER)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.key);
    return { token, expiresAt: exp * 1000 };
  }

  #spend(limiter: RateLimiter, key: string, what: string): void {
    const wait = limiter.take(key, Date.now());
    if (wait > 0) throw limited(`Too many ${what}: try again later`, wait);
  }

  #dummyHash(): Promise<string> {
    return (this.#dummy ??= Bun.password.hash(crypto.randomUUID(), { algorithm: "argon2id" }));
  }
}

const limited = (message: string, retryAfterMs: number) => new ChatError("rate_limited", message, undefined, Math.ceil(retryAfterMs));
