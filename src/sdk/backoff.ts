/** Reconnect delays: exponential, capped, with jitter. */
export interface BackoffOptions {
  /** The first delay in milliseconds (default 250). */
  initialMs?: number;
  /** The largest delay in milliseconds (default 10,000). */
  maxMs?: number;
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first): the capped
 * exponential step scaled by a random factor in [0.5, 1), so that clients a
 * restart dropped together do not all come back in the same instant.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = opts.initialMs ?? 250;
  const max = opts.maxMs ?? 10_000;
  const step = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.round(step * (0.5 + random() / 2));
}
