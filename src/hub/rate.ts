/** How long a client may go on sending after `rate_limited` before it is closed with 4008. */
export const RATE_LIMIT_GRACE_MS = 10_000;

/** What a sender's run of refusals keeps on its connection. */
export interface RefusalRun {
  readonly user: string;
  /** When the client was first refused in the current run (0: never). */
  limitedSince: number;
  /** When it was last refused. */
  lastRefusedAt: number;
}

/**
 * Spends a message from the sender's bucket: 0 when allowed; else the
 * milliseconds until one is available, or "close" once the client has gone
 * on sending for RATE_LIMIT_GRACE_MS of refusals. A run of refusals ends only
 * after a quiet grace period: messages the bucket lets through in between do
 * not restart the clock.
 */
export function admit(limiter: RateLimiter, run: RefusalRun, now: number): number | "close" {
  const wait = limiter.take(run.user, now);
  if (wait === 0) return 0;
  if (run.limitedSince === 0 || now - run.lastRefusedAt > RATE_LIMIT_GRACE_MS) run.limitedSince = now;
  run.lastRefusedAt = now;
  return now - run.limitedSince >= RATE_LIMIT_GRACE_MS ? "close" : wait;
}

/**
 * Token buckets by key (a user, a client address): `burst` at once, then
 * `perSecond` sustained. Buckets that have refilled are forgotten, so the map
 * holds only keys that were busy lately.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  #sweptAt = 0;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {}

  /** Spends one token: 0 when allowed, else the milliseconds until one is available (nothing spent). */
  take(key: string, now: number): number {
    const b = this.#refill(key, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - b.tokens) / this.perSecond) * 1000));
  }

  /** Like `take` without spending: 0 when a token is there, else the wait in milliseconds. */
  peek(key: string, now: number): number {
    const b = this.#buckets.get(key);
    if (b === undefined) return 0;
    const tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil(((1 - tokens) / this.perSecond) * 1000));
  }

  /** Keys with a bucket now (for tests and metrics). */
  get size(): number {
    return this.#buckets.size;
  }

  #refill(key: string, now: number) {
    if (now - this.#sweptAt > 60_000) this.#sweep(now);
    let b = this.#buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.burst, at: now };
      this.#buckets.set(key, b);
      return b;
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    return b;
  }

  #sweep(now: number): void {
    this.#sweptAt = now;
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.#buckets.delete(key);
    }
  }
}
