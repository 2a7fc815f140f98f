/** A coarse grade of the connection, for a status indicator or to adapt what is sent. */
export type QualityClass = "excellent" | "good" | "fair" | "poor" | "offline";

/**
 * The thresholds of each class; a class needs all three of its conditions (the same table
 * as the Rust client's `QualityClass`):
 *
 * | class | average latency | loss | reconnects in the stability window |
 * |---|---|---|---|
 * | excellent | < 100 ms | < 1 % | 0 |
 * | good | < 300 ms | < 5 % | ≤ 1 |
 * | fair | < 1000 ms | < 15 % | ≤ 3 |
 * | poor | otherwise | | |
 * | offline | not connected | | |
 *
 * Before the first answered ping the latency is unknown and only loss and reconnects decide.
 */
export const QUALITY_THRESHOLDS = Object.freeze({
  excellent: Object.freeze({ latencyMs: 100, loss: 0.01, reconnects: 0 }),
  good: Object.freeze({ latencyMs: 300, loss: 0.05, reconnects: 1 }),
  fair: Object.freeze({ latencyMs: 1000, loss: 0.15, reconnects: 3 }),
});

/** Grades a connection by {@link QUALITY_THRESHOLDS}. */
export function classifyQuality(
  connected: boolean,
  latencyMs: number | null,
  loss: number,
  reconnects: number,
): QualityClass {
  if (!connected) return "offline";
  for (const name of ["excellent", "good", "fair"] as const) {
    const t = QUALITY_THRESHOLDS[name];
    if ((latencyMs === null || latencyMs < t.latencyMs) && loss < t.loss && reconnects <= t.reconnects) {
      return name;
    }
  }
  return "poor";
}

/** A measurement of the connection, from the client's own pings. */
export interface Quality {
  /** The grade. */
  class: QualityClass;
  /** Mean round trip of the last `samples` answered pings, ms; `null` before the first. */
  latencyMs: number | null;
  /** Mean absolute difference between consecutive round trips, ms; `null` with fewer than two. */
  jitterMs: number | null;
  /** Of the last `samples` pings answered or timed out, the fraction that timed out (0–1). */
  loss: number;
  /** Pings the loss is computed over. */
  pings: number;
  /** Reconnects within the stability window. */
  reconnects: number;
  /**
   * The fraction of the stability window (or of the time since the client first connected,
   * when shorter) that the connection was open: 1 for a connection that never dropped.
   */
  stability: number;
  /** When this measurement was taken, ms since the epoch. */
  measuredAt: number;
}

/** Settings of the quality measurement. */
export interface QualityOptions {
  /** Latency and jitter over the last this many answered pings; loss over as many pings. Default 10. */
  samples: number;
  /** Reconnects (and time offline) within this window lower stability. Default 300000 ms (5 min). */
  stabilityWindowMs: number;
}

/** The defaults: 10 samples over a 5-minute stability window. */
export const QUALITY_DEFAULTS: Readonly<QualityOptions> = Object.freeze({
  samples: 10,
  stabilityWindowMs: 300000,
});

/** The measurements behind {@link Quality}, fed by the client. Exported for tests and custom clients. */
export class QualityTracker {
  readonly #options: QualityOptions;
  #rtts: number[] = [];
  #outcomes: boolean[] = [];
  #reconnects: number[] = [];
  /** Open/close transitions within the window: [time, open]. */
  #transitions: Array<[number, boolean]> = [];
  #firstConnectAt: number | null = null;
  #open = false;

  constructor(options: QualityOptions = QUALITY_DEFAULTS) {
    this.#options = options;
  }

  /** The connection opened at `now` (a reconnect unless it is the first). */
  connected(now: number): void {
    if (this.#firstConnectAt === null) this.#firstConnectAt = now;
    else this.#reconnects.push(now);
    this.#open = true;
    this.#transitions.push([now, true]);
  }

  /** The connection closed at `now`. */
  disconnected(now: number): void {
    if (!this.#open) return;
    this.#open = false;
    this.#transitions.push([now, false]);
  }

  /** A ping was answered after `rttMs`. */
  answered(rttMs: number): void {
    bounded(this.#rtts, rttMs, this.#options.samples);
    bounded(this.#outcomes, true, this.#options.samples);
  }

  /** A ping timed out. */
  lost(): void {
    bounded(this.#outcomes, false, this.#options.samples);
  }

  /** The measurement at `now` (monotonic ms), stamped with `wallNow`. */
  snapshot(now: number, wallNow: number): Quality {
    const windowStart = now - this.#options.stabilityWindowMs;
    while (this.#reconnects.length && this.#reconnects[0]! < windowStart) this.#reconnects.shift();
    // Keep the last transition before the window: it says whether the window began open.
    while (this.#transitions.length > 1 && this.#transitions[1]![0] <= windowStart) this.#transitions.shift();
    const rtts = this.#rtts;
    const latencyMs = rtts.length ? round(rtts.reduce((a, b) => a + b, 0) / rtts.length) : null;
    let jitterMs: number | null = null;
    if (rtts.length >= 2) {
      let total = 0;
      for (let i = 1; i < rtts.length; i++) total += Math.abs(rtts[i]! - rtts[i - 1]!);
      jitterMs = round(total / (rtts.length - 1));
    }
    const pings = this.#outcomes.length;
    const loss = pings ? this.#outcomes.filter((ok) => !ok).length / pings : 0;
    const reconnects = this.#reconnects.length;
    return {
      class: classifyQuality(this.#open, latencyMs, loss, reconnects),
      latencyMs,
      jitterMs,
      loss,
      pings,
      reconnects,
      stability: this.#stability(now, windowStart),
      measuredAt: wallNow,
    };
  }

  #stability(now: number, windowStart: number): number {
    if (this.#firstConnectAt === null) return 0;
    const start = Math.max(windowStart, this.#firstConnectAt);
    const span = now - start;
    if (span <= 0) return this.#open ? 1 : 0;
    let open = 0;
    for (let i = 0; i < this.#transitions.length; i++) {
      const [at, isOpen] = this.#transitions[i]!;
      if (!isOpen) continue;
      const end = i + 1 < this.#transitions.length ? this.#transitions[i + 1]![0] : now;
      open += Math.max(0, Math.min(end, now) - Math.max(at, start));
    }
    return Math.min(1, Math.max(0, open / span));
  }
}

/** The quality of a client that has never connected. */
export function offlineQuality(wallNow: number): Quality {
  return {
    class: "offline",
    latencyMs: null,
    jitterMs: null,
    loss: 0,
    pings: 0,
    reconnects: 0,
    stability: 0,
    measuredAt: wallNow,
  };
}

function bounded<T>(buffer: T[], value: T, bound: number): void {
  buffer.push(value);
  while (buffer.length > bound) buffer.shift();
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
