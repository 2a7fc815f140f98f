import type { CSSProperties, ReactElement } from "react";
import type { Quality, QualityClass, Status } from "@switchboard/client";
import {
  type ConnectionQuality,
  NO_FIGURE,
  SIGNAL_BARS,
  describeQuality,
  formatLatency,
  formatPercent,
  normalizeMetrics,
  qualityBars,
  qualityLabel,
  resolveQualityClass,
} from "./format.js";

/** Props shared by the connection quality components. */
export interface ConnectionQualityProps {
  /**
   * The connection's status (`useWebSocket().status`): anything but `"open"` shows `offline`
   * whatever the last measurement says.
   */
  status?: Status;
  /** The measurement: the value of {@link useConnectionQuality}, or the core client's `Quality`. */
  metrics?: ConnectionQuality | Quality | null;
  /** Appended to the component's own class names. */
  className?: string;
}

/** Props of {@link ConnectionQualityIndicator}. */
export interface ConnectionQualityIndicatorProps extends ConnectionQualityProps {
  /** Also show latency, packet loss, stability and jitter (ignored when `compact`). */
  showDetails?: boolean;
  /** Bars and class label only, no figures (for headers and toolbars); wins over `showDetails`. */
  compact?: boolean;
}

/** Props of {@link ConnectionQualityCard}. */
export interface ConnectionQualityCardProps extends ConnectionQualityProps {
  /** The card's heading. Default `"Connection"`. */
  title?: string;
}

function classes(...names: Array<string | false | null | undefined>): string {
  return names.filter((name): name is string => typeof name === "string" && name.length > 0).join(" ");
}

/** A CSS custom property for `styles.css`; without the stylesheet it does nothing. */
function cssVar(name: string, value: string): CSSProperties {
  return { [name]: value } as CSSProperties;
}

/**
 * Signal bars: {@link SIGNAL_BARS} spans `sb-signal__bar`, the lit ones also
 * `sb-signal__bar--on`; decorative (the parent carries the accessible label).
 */
function SignalBars({ quality }: { quality: QualityClass }): ReactElement {
  const lit = qualityBars(quality);
  const bars: ReactElement[] = [];
  for (let i = 1; i <= SIGNAL_BARS; i++) {
    bars.push(<span key={i} className={classes("sb-signal__bar", i <= lit && "sb-signal__bar--on")} />);
  }
  return (
    <span className="sb-signal" aria-hidden="true" data-bars={lit}>
      {bars}
    </span>
  );
}

/** One figure: a `<div data-figure=…>` holding a `<dt>` label and a `<dd data-value=raw>` with the text in `.sb-figure__text`. */
function Figure(props: { name: string; label: string; value: number | null; text: string; meter?: number | null }): ReactElement {
  const meter = props.meter;
  return (
    <div className={`sb-figure sb-figure--${props.name}`} data-figure={props.name}>
      <dt className="sb-figure__label">{props.label}</dt>
      <dd className="sb-figure__value" data-value={props.value === null ? "" : String(props.value)}>
        <span className="sb-figure__text">{props.text}</span>
        {meter !== undefined && meter !== null && Number.isFinite(meter) ? (
          <span
            className="sb-meter"
            aria-hidden="true"
            style={cssVar("--sb-meter", `${Math.round(Math.min(1, Math.max(0, meter)) * 100)}%`)}
          >
            <span className="sb-meter__fill" />
          </span>
        ) : null}
      </dd>
    </div>
  );
}

/** What the figures of a measurement show: latency and jitter are blanked for an offline link. */
function figures(quality: QualityClass, metrics: ConnectionQuality | null) {
  const live = quality !== "offline";
  const latency = live ? (metrics?.latency ?? null) : null;
  const jitter = live ? (metrics?.jitter ?? null) : null;
  return {
    latency,
    jitter,
    packetLoss: metrics ? metrics.packetLoss : null,
    stability: metrics ? metrics.stability : null,
    reconnects: metrics ? metrics.reconnects : null,
  };
}

/**
 * The connection quality at a glance: signal bars coloured by class, the class, and the latency.
 *
 * Markup (unstyled; import `@switchboard/react/styles.css` for the default look):
 * `<div class="sb-quality sb-quality--good" data-quality="good" data-status="open" role="status"
 * aria-label="Connection quality: good, latency 42 ms">` with `.sb-signal` bars, a
 * `.sb-quality__label`, a `.sb-quality__latency` (`data-value` holds the raw ms), and with
 * `showDetails` a `<dl class="sb-quality__details">` of `data-figure` latency, loss, stability
 * and jitter. `compact` keeps the bars and the label only (the latency stays in `title` and
 * `aria-label`); it wins over `showDetails`.
 *
 * Latency and jitter show `—` while offline or before the first answered ping.
 */
export function ConnectionQualityIndicator(props: ConnectionQualityIndicatorProps): ReactElement {
  const metrics = normalizeMetrics(props.metrics);
  const quality = resolveQualityClass(props.status, metrics);
  const shown = figures(quality, metrics);
  const compact = props.compact ?? false;
  const details = !compact && (props.showDetails ?? false);
  const label = describeQuality(quality, shown.latency);
  return (
    <div
      className={classes("sb-quality", `sb-quality--${quality}`, compact && "sb-quality--compact", props.className)}
      data-quality={quality}
      data-status={props.status}
      role="status"
      aria-label={label}
      title={label}
    >
      <SignalBars quality={quality} />
      <span className="sb-quality__label">{qualityLabel(quality)}</span>
      {compact ? null : (
        <span className="sb-quality__latency" data-value={shown.latency === null ? "" : String(shown.latency)}>
          {formatLatency(shown.latency)}
        </span>
      )}
      {details ? (
        <dl className="sb-quality__details">
          <Figure name="latency" label="Latency" value={shown.latency} text={formatLatency(shown.latency)} />
          <Figure name="loss" label="Packet loss" value={shown.packetLoss} text={formatPercent(shown.packetLoss)} />
          <Figure name="stability" label="Stability" value={shown.stability} text={formatPercent(shown.stability)} />
          <Figure name="jitter" label="Jitter" value={shown.jitter} text={formatLatency(shown.jitter)} />
        </dl>
      ) : null}
    </div>
  );
}

/**
 * A compact indicator for headers and toolbars: a pill with the signal bars and the class
 * label, the latency in its tooltip and accessible label. Same markup as
 * {@link ConnectionQualityIndicator} with `compact`, plus the class `sb-quality--badge`.
 *
 * ```tsx
 * <ConnectionQualityBadge status={ws.status} metrics={useConnectionQuality(ws)} />
 * ```
 */
export function ConnectionQualityBadge(props: ConnectionQualityProps): ReactElement {
  return (
    <ConnectionQualityIndicator
      status={props.status}
      metrics={props.metrics}
      compact
      className={classes("sb-quality--badge", props.className)}
    />
  );
}

function measuredTime(measuredAt: number): { iso: string; text: string } | null {
  if (!Number.isFinite(measuredAt) || measuredAt <= 0) return null;
  const date = new Date(measuredAt);
  return { iso: date.toISOString(), text: date.toLocaleTimeString() };
}

/**
 * A detailed block: heading, signal bars and class, then the figures — latency, jitter,
 * packet loss and stability (the last two with a meter bar) and reconnects — and when the
 * measurement was taken.
 *
 * Markup: `<section class="sb-quality-card sb-quality-card--good" data-quality="good"
 * role="status" aria-label=…>`; each figure is a `div[data-figure=latency|jitter|loss|stability|reconnects]`
 * holding `<dt>` and `<dd data-value=raw>` (its text in `.sb-figure__text`); meters are `.sb-meter` with the fraction in the CSS
 * variable `--sb-meter`; the time is a `<time class="sb-quality-card__time" dateTime=ISO>` in the
 * locale's time format. Latency and jitter show `—` while offline or before the first answered ping.
 */
export function ConnectionQualityCard(props: ConnectionQualityCardProps): ReactElement {
  const metrics = normalizeMetrics(props.metrics);
  const quality = resolveQualityClass(props.status, metrics);
  const shown = figures(quality, metrics);
  const label = describeQuality(quality, shown.latency);
  const time = metrics ? measuredTime(metrics.measuredAt) : null;
  return (
    <section
      className={classes("sb-quality-card", `sb-quality-card--${quality}`, props.className)}
      data-quality={quality}
      data-status={props.status}
      role="status"
      aria-label={label}
    >
      <header className="sb-quality-card__header">
        <span className="sb-quality-card__title">{props.title ?? "Connection"}</span>
        <span className="sb-quality-card__grade">
          <SignalBars quality={quality} />
          <span className="sb-quality-card__label">{qualityLabel(quality)}</span>
        </span>
      </header>
      <dl className="sb-quality-card__figures">
        <Figure name="latency" label="Latency" value={shown.latency} text={formatLatency(shown.latency)} />
        <Figure name="jitter" label="Jitter" value={shown.jitter} text={formatLatency(shown.jitter)} />
        <Figure
          name="loss"
          label="Packet loss"
          value={shown.packetLoss}
          text={formatPercent(shown.packetLoss)}
          meter={shown.packetLoss}
        />
        <Figure
          name="stability"
          label="Stability"
          value={shown.stability}
          text={formatPercent(shown.stability)}
          meter={shown.stability}
        />
        <Figure
          name="reconnects"
          label="Reconnects"
          value={shown.reconnects}
          text={shown.reconnects === null ? NO_FIGURE : String(shown.reconnects)}
        />
      </dl>
      <footer className="sb-quality-card__footer">
        {time ? (
          <>
            Measured <time className="sb-quality-card__time" dateTime={time.iso}>{time.text}</time>
          </>
        ) : (
          "Not measured yet"
        )}
      </footer>
    </section>
  );
}
