import { type Quality, type QualityClass, type Status, classifyQuality } from "@switchboard/client";

/**
 * The figures of a connection quality measurement as the React bindings present them: what
 * {@link useConnectionQuality} returns and what the components' `metrics` prop accepts
 * (beside the core {@link Quality} object).
 */
export interface ConnectionQuality {
  /** The grade: `excellent`, `good`, `fair`, `poor` or `offline`. */
  quality: QualityClass;
  /** Mean round trip of the last 10 answered pings, ms; `null` before the first answer. */
  latency: number | null;
  /** Mean difference between consecutive round trips, ms; `null` with fewer than two. */
  jitter: number | null;
  /** Fraction (0–1) of the last 10 pings that timed out. */
  packetLoss: number;
  /** Fraction (0–1) of the stability window (5 min by default) the connection was open. */
  stability: number;
  /** Reconnects within the stability window. */
  reconnects: number;
  /** Pings the packet loss is computed over. */
  pings: number;
  /** When this measurement was taken, ms since the epoch. */
  measuredAt: number;
  /** The core client's measurement these figures come from. */
  metrics: Quality;
}

/** The quality classes from best to worst, `offline` last. */
export const QUALITY_CLASSES: readonly QualityClass[] = Object.freeze(["excellent", "good", "fair", "poor", "offline"]);

/** How many of the {@link SIGNAL_BARS} signal bars each class lights: 4 for excellent down to 0 offline. */
export const QUALITY_BARS: Readonly<Record<QualityClass, number>> = Object.freeze({
  excellent: 4,
  good: 3,
  fair: 2,
  poor: 1,
  offline: 0,
});

/** The number of signal bars the indicators draw. */
export const SIGNAL_BARS = 4;

/**
 * The colour of each class, the same as `styles.css` uses (green, lime, amber, red, grey),
 * for applications that draw their own indicator (a favicon, a canvas, a chart).
 */
export const QUALITY_COLORS: Readonly<Record<QualityClass, string>> = Object.freeze({
  excellent: "#16a34a",
  good: "#65a30d",
  fair: "#d97706",
  poor: "#dc2626",
  offline: "#9ca3af",
});

const LABELS: Readonly<Record<QualityClass, string>> = Object.freeze({
  excellent: "Excellent",
  good: "Good",
  fair: "Fair",
  poor: "Poor",
  offline: "Offline",
});

/** The English label of a class: `"Excellent"`, `"Good"`, `"Fair"`, `"Poor"` or `"Offline"`. */
export function qualityLabel(quality: QualityClass): string {
  return LABELS[quality];
}

/** How many signal bars `quality` lights (see {@link QUALITY_BARS}). */
export function qualityBars(quality: QualityClass): number {
  return QUALITY_BARS[quality];
}

/** The colour of `quality` (see {@link QUALITY_COLORS}). */
export function qualityColor(quality: QualityClass): string {
  return QUALITY_COLORS[quality];
}

/** The placeholder shown for a figure that is not known (no answered ping yet, or offline). */
export const NO_FIGURE = "—";

/**
 * A duration in ms as the components show it: one decimal below 10 ms (`"0.4 ms"`, `"3 ms"`),
 * whole milliseconds from 10 ms (`"42 ms"`), {@link NO_FIGURE} for `null` or a non-finite value.
 */
export function formatLatency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return NO_FIGURE;
  const value = Math.max(0, ms);
  const shown = value < 10 ? Math.round(value * 10) / 10 : Math.round(value);
  return `${shown} ms`;
}

/**
 * A fraction (0–1) as a whole percentage: `0` → `"0 %"`, `0.994` → `"99 %"`, `1` → `"100 %"`;
 * clamped to 0–100 %, {@link NO_FIGURE} for a non-finite value.
 */
export function formatPercent(fraction: number | null | undefined): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return NO_FIGURE;
  return `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)} %`;
}

/** Whether `metrics` is the core client's {@link Quality} (it has `class`) rather than a {@link ConnectionQuality}. */
function isCoreQuality(metrics: ConnectionQuality | Quality): metrics is Quality {
  return typeof (metrics as Quality).class === "string";
}

/** The figures of a core {@link Quality} measurement under the bindings' names. */
export function toConnectionQuality(metrics: Quality): ConnectionQuality {
  return {
    quality: metrics.class,
    latency: metrics.latencyMs,
    jitter: metrics.jitterMs,
    packetLoss: metrics.loss,
    stability: metrics.stability,
    reconnects: metrics.reconnects,
    pings: metrics.pings,
    measuredAt: metrics.measuredAt,
    metrics,
  };
}

/** Either shape of a measurement as a {@link ConnectionQuality}; `null` for none. */
export function normalizeMetrics(metrics: ConnectionQuality | Quality | null | undefined): ConnectionQuality | null {
  if (!metrics) return null;
  return isCoreQuality(metrics) ? toConnectionQuality(metrics) : metrics;
}

/**
 * The class an indicator shows for a connection `status` and a measurement:
 *
 * - `offline` when `status` is given and is not `"open"` (whatever the last measurement says);
 * - else the measurement's class;
 * - else, for an open connection not measured yet, what the core client grades a connection
 *   with no answered ping, no loss and no reconnect (`excellent`);
 * - else (no status, no measurement) `offline`.
 */
export function resolveQualityClass(
  status: Status | undefined,
  metrics: ConnectionQuality | Quality | null | undefined,
): QualityClass {
  if (status !== undefined && status !== "open") return "offline";
  const normalized = normalizeMetrics(metrics);
  if (normalized) return normalized.quality;
  return status === "open" ? classifyQuality(true, null, 0, 0) : "offline";
}

/**
 * The accessible description of an indicator: `"Connection quality: good, latency 42 ms"`,
 * or `"Connection quality: offline"` (no latency is given for an offline or unmeasured link).
 */
export function describeQuality(quality: QualityClass, latency: number | null | undefined): string {
  const base = `Connection quality: ${quality}`;
  if (quality === "offline" || latency === null || latency === undefined || !Number.isFinite(latency)) return base;
  return `${base}, latency ${formatLatency(latency)}`;
}
