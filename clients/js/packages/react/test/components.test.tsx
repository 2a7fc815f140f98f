import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderToStaticMarkup } from "react-dom/server";
import type { Quality } from "@switchboard/client";
import {
  type ConnectionQuality,
  ConnectionQualityBadge,
  ConnectionQualityCard,
  ConnectionQualityIndicator,
  toConnectionQuality,
} from "../src/index.js";

const MEASURED_AT = Date.UTC(2025, 10, 22, 12, 0, 0);

function quality(overrides: Partial<Quality> = {}): Quality {
  return {
    class: "good",
    latencyMs: 142.3,
    jitterMs: 12.5,
    loss: 0.02,
    pings: 10,
    reconnects: 1,
    stability: 0.97,
    measuredAt: MEASURED_AT,
    ...overrides,
  };
}

const GOOD: ConnectionQuality = toConnectionQuality(quality());
const EXCELLENT: ConnectionQuality = toConnectionQuality(
  quality({ class: "excellent", latencyMs: 0.4, jitterMs: 0.1, loss: 0, reconnects: 0, stability: 1 }),
);

/** The value of attribute `name` of the first element matching `tag` with `marker` in its start tag. */
function attribute(html: string, marker: string, name: string): string | undefined {
  const tag = new RegExp(`<[^>]*${marker}[^>]*>`).exec(html)?.[0];
  if (!tag) return undefined;
  return new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
}

/** The text of the `<dd>` of figure `name`. */
function figure(html: string, name: string): string | undefined {
  const match = new RegExp(`data-figure="${name}"><dt[^>]*>[^<]*</dt><dd[^>]*data-value="([^"]*)"[^>]*><span class="sb-figure__text">([^<]*)</span>`).exec(html);
  return match ? `${match[2]}|${match[1]}` : undefined;
}

function litBars(html: string): number {
  return html.split("sb-signal__bar sb-signal__bar--on").length - 1;
}

describe("ConnectionQualityIndicator", () => {
  it("shows the class with classes, data attributes, bars and the latency", () => {
    const html = renderToStaticMarkup(<ConnectionQualityIndicator status="open" metrics={GOOD} />);
    assert.equal(attribute(html, 'role="status"', "class"), "sb-quality sb-quality--good");
    assert.equal(attribute(html, 'role="status"', "data-quality"), "good");
    assert.equal(attribute(html, 'role="status"', "data-status"), "open");
    assert.equal(attribute(html, 'role="status"', "aria-label"), "Connection quality: good, latency 142 ms");
    assert.equal(attribute(html, "sb-signal\"", "data-bars"), "3");
    assert.equal(litBars(html), 3);
    assert.equal(html.split("sb-signal__bar").length - 1 - litBars(html), 4, "four bars in all");
    assert.match(html, /<span class="sb-quality__label">Good<\/span>/);
    assert.match(html, /<span class="sb-quality__latency" data-value="142.3">142 ms<\/span>/);
    assert.doesNotMatch(html, /sb-quality__details/, "no details unless asked");
  });

  it("shows the latency, loss, stability and jitter figures with showDetails", () => {
    const html = renderToStaticMarkup(<ConnectionQualityIndicator status="open" metrics={EXCELLENT} showDetails />);
    assert.match(html, /<dl class="sb-quality__details">/);
    assert.equal(figure(html, "latency"), "0.4 ms|0.4");
    assert.equal(figure(html, "loss"), "0 %|0");
    assert.equal(figure(html, "stability"), "100 %|1");
    assert.equal(figure(html, "jitter"), "0.1 ms|0.1");
    assert.equal(litBars(html), 4);
  });

  it("hides every figure when compact, even with showDetails", () => {
    const html = renderToStaticMarkup(<ConnectionQualityIndicator status="open" metrics={GOOD} compact showDetails />);
    assert.equal(attribute(html, 'role="status"', "class"), "sb-quality sb-quality--good sb-quality--compact");
    assert.doesNotMatch(html, /sb-quality__latency/);
    assert.doesNotMatch(html, /sb-quality__details/);
    assert.doesNotMatch(html, /142 ms</, "no latency figure in the content");
    assert.equal(attribute(html, 'role="status"', "title"), "Connection quality: good, latency 142 ms");
  });

  it("is offline, without latency, whenever the status is not open", () => {
    for (const status of ["idle", "connecting", "reconnecting", "closed"] as const) {
      const html = renderToStaticMarkup(<ConnectionQualityIndicator status={status} metrics={GOOD} showDetails />);
      assert.equal(attribute(html, 'role="status"', "data-quality"), "offline", status);
      assert.equal(attribute(html, 'role="status"', "aria-label"), "Connection quality: offline");
      assert.equal(litBars(html), 0);
      assert.match(html, /<span class="sb-quality__latency" data-value="">—<\/span>/);
      assert.equal(figure(html, "latency"), "—|");
      assert.equal(figure(html, "loss"), "2 %|0.02", "the loss of the last pings is still shown");
    }
  });

  it("accepts the core client's Quality and appends className", () => {
    const html = renderToStaticMarkup(
      <ConnectionQualityIndicator status="open" metrics={quality({ class: "fair", latencyMs: 512 })} className="header-status" />,
    );
    assert.equal(attribute(html, 'role="status"', "class"), "sb-quality sb-quality--fair header-status");
    assert.match(html, />512 ms</);
    assert.equal(litBars(html), 2);
  });

  it("grades an open connection not measured yet as excellent and no status as offline", () => {
    const open = renderToStaticMarkup(<ConnectionQualityIndicator status="open" />);
    assert.equal(attribute(open, 'role="status"', "data-quality"), "excellent");
    assert.equal(attribute(open, 'role="status"', "aria-label"), "Connection quality: excellent");
    const nothing = renderToStaticMarkup(<ConnectionQualityIndicator />);
    assert.equal(attribute(nothing, 'role="status"', "data-quality"), "offline");
    assert.equal(attribute(nothing, 'role="status"', "data-status"), undefined);
  });

  it("shows poor with one bar", () => {
    const html = renderToStaticMarkup(
      <ConnectionQualityIndicator status="open" metrics={quality({ class: "poor", latencyMs: 1500, loss: 0.3 })} showDetails />,
    );
    assert.equal(attribute(html, 'role="status"', "data-quality"), "poor");
    assert.equal(litBars(html), 1);
    assert.equal(figure(html, "loss"), "30 %|0.3");
  });
});

describe("ConnectionQualityBadge", () => {
  it("is a compact indicator marked as a badge", () => {
    const html = renderToStaticMarkup(<ConnectionQualityBadge status="open" metrics={GOOD} className="mine" />);
    assert.equal(attribute(html, 'role="status"', "class"), "sb-quality sb-quality--good sb-quality--compact sb-quality--badge mine");
    assert.equal(attribute(html, 'role="status"', "data-quality"), "good");
    assert.match(html, /<span class="sb-quality__label">Good<\/span>/);
    assert.doesNotMatch(html, /sb-quality__latency/);
    assert.equal(attribute(html, 'role="status"', "aria-label"), "Connection quality: good, latency 142 ms");
  });

  it("turns offline with the status", () => {
    const html = renderToStaticMarkup(<ConnectionQualityBadge status="reconnecting" metrics={GOOD} />);
    assert.equal(attribute(html, 'role="status"', "data-quality"), "offline");
    assert.match(html, /sb-quality--offline/);
    assert.match(html, />Offline</);
  });
});

describe("ConnectionQualityCard", () => {
  it("shows the class, bars, every figure with meters, and when it was measured", () => {
    const html = renderToStaticMarkup(<ConnectionQualityCard status="open" metrics={GOOD} className="wide" />);
    assert.equal(attribute(html, "section", "class"), "sb-quality-card sb-quality-card--good wide");
    assert.equal(attribute(html, "section", "data-quality"), "good");
    assert.equal(attribute(html, "section", "role"), "status");
    assert.equal(attribute(html, "section", "aria-label"), "Connection quality: good, latency 142 ms");
    assert.match(html, /<span class="sb-quality-card__title">Connection<\/span>/);
    assert.match(html, /<span class="sb-quality-card__label">Good<\/span>/);
    assert.equal(litBars(html), 3);
    assert.equal(figure(html, "latency"), "142 ms|142.3");
    assert.equal(figure(html, "jitter"), "13 ms|12.5");
    assert.equal(figure(html, "loss"), "2 %|0.02");
    assert.equal(figure(html, "stability"), "97 %|0.97");
    assert.equal(figure(html, "reconnects"), "1|1");
    assert.match(html, /class="sb-meter" aria-hidden="true" style="--sb-meter:2%"/);
    assert.match(html, /class="sb-meter" aria-hidden="true" style="--sb-meter:97%"/);
    assert.equal(attribute(html, "sb-quality-card__time", "dateTime"), "2025-11-22T12:00:00.000Z");
    assert.match(html, /Measured <time/);
  });

  it("blanks latency and jitter when offline and takes a title", () => {
    const html = renderToStaticMarkup(<ConnectionQualityCard status="closed" metrics={GOOD} title="Realtime" />);
    assert.equal(attribute(html, "section", "data-quality"), "offline");
    assert.match(html, />Realtime</);
    assert.equal(figure(html, "latency"), "—|");
    assert.equal(figure(html, "jitter"), "—|");
    assert.equal(figure(html, "stability"), "97 %|0.97");
    assert.equal(litBars(html), 0);
  });

  it("says when nothing was measured", () => {
    const html = renderToStaticMarkup(<ConnectionQualityCard />);
    assert.equal(attribute(html, "section", "data-quality"), "offline");
    assert.equal(figure(html, "latency"), "—|");
    assert.equal(figure(html, "reconnects"), "—|");
    assert.match(html, /Not measured yet/);
    assert.doesNotMatch(html, /<time/);
  });
});
