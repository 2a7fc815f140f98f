/** How long to wait before a reconnect (or a retry): exponential growth with jitter. */
export interface Backoff {
  /** The largest delay of the first attempt, in ms. Default 1000. */
  initialMs: number;
  /** How much the largest delay grows per attempt. Default 1.5. */
  factor: number;
  /** The largest delay of any attempt, in ms. Default 30000. */
  maxMs: number;
  /**
   * `"full"`: a random delay between 0 and the cap, so clients cut off together do not come
   * back together. `"half"`: between half the cap and the cap. `"none"`: the cap. Default
   * `"full"`.
   */
  jitter: "full" | "half" | "none";
}

/** The reconnect schedule of every switchboard client: 1 s × 1.5 up to 30 s, full jitter. */
export const RECONNECT_BACKOFF: Readonly<Backoff> = Object.freeze({
  initialMs: 1000,
  factor: 1.5,
  maxMs: 30000,
  jitter: "full",
});

/** The retry schedule of the offline queue: 500 ms × 2 up to 30 s, half jitter. */
export const RETRY_BACKOFF: Readonly<Backoff> = Object.freeze({
  initialMs: 500,
  factor: 2,
  maxMs: 30000,
  jitter: "half",
});

/** The largest delay before attempt `attempt` (1-based): `min(maxMs, initialMs × factor^(attempt−1))`. */
export function backoffCap(backoff: Backoff, attempt: number): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  const cap = backoff.initialMs * Math.pow(Math.max(1, backoff.factor), exponent);
  return Math.min(backoff.maxMs, Number.isFinite(cap) ? cap : backoff.maxMs);
}

/**
 * The delay before attempt `attempt` (1-based) for a random draw `random` in `[0, 1)`
 * (clamped). Deterministic: the client draws `random` from its {@link Clock}.
 */
export function backoffDelay(backoff: Backoff, attempt: number, random: number): number {
  const cap = backoffCap(backoff, attempt);
  const r = Number.isNaN(random) ? 0 : Math.min(1, Math.max(0, random));
  switch (backoff.jitter) {
    case "none":
      return cap;
    case "half":
      return Math.floor(cap / 2 + (cap / 2) * r);
    default:
      return Math.floor(cap * r);
  }
}
