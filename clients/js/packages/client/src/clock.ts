/**
 * Time and chance, injected so that tests can drive them: every timer, clock read and
 * random draw of the client goes through a {@link Clock}.
 */
export interface Clock {
  /** Milliseconds on a monotonic clock (for durations: round trips, deadlines). */
  now(): number;
  /** Milliseconds since the Unix epoch (for comparing with the server's timestamps). */
  wallNow(): number;
  /** Runs `fn` after `ms` milliseconds; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer set with {@link Clock.setTimeout}; ignores a handle already fired. */
  clearTimeout(handle: unknown): void;
  /** A number in `[0, 1)`, for the jitter of backoff delays. */
  random(): number;
}

/** The platform's clock: `performance.now()`, `Date.now()`, `setTimeout`, `Math.random`. */
export const systemClock: Clock = {
  now: () => (typeof performance !== "undefined" ? performance.now() : Date.now()),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => {
    const handle = setTimeout(fn, ms);
    // In Node a pending timer must not keep the process alive on its own.
    const maybe = handle as unknown as { unref?: () => void };
    if (typeof maybe.unref === "function") maybe.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  random: () => Math.random(),
};
