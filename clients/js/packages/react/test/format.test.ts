import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Quality, classifyQuality } from "@switchboard/client";
import {
  NO_FIGURE,
  QUALITY_BARS,
  QUALITY_CLASSES,
  QUALITY_COLORS,
  describeQuality,
  formatLatency,
  formatPercent,
  normalizeMetrics,
  qualityBars,
  qualityColor,
  qualityLabel,
  resolveQualityClass,
  toConnectionQuality,
} from "../src/index.js";

const GOOD: Quality = {
  class: "good",
  latencyMs: 142.3,
  jitterMs: 12.5,
  loss: 0.02,
  pings: 10,
  reconnects: 1,
  stability: 0.97,
  measuredAt: 1_763_776_800_000,
};

describe("formatLatency", () => {
  it("shows whole milliseconds from 10 ms and one decimal below", () => {
    assert.equal(formatLatency(42), "42 ms");
    assert.equal(formatLatency(42.4), "42 ms");
    assert.equal(formatLatency(142.6), "143 ms");
    assert.equal(formatLatency(0.44), "0.4 ms");
    assert.equal(formatLatency(3), "3 ms");
    assert.equal(formatLatency(9.96), "10 ms");
    assert.equal(formatLatency(0), "0 ms");
  });

  it("shows a dash for an unknown latency", () => {
    assert.equal(formatLatency(null), NO_FIGURE);
    assert.equal(formatLatency(undefined), NO_FIGURE);
    assert.equal(formatLatency(Number.NaN), NO_FIGURE);
    assert.equal(formatLatency(Infinity), NO_FIGURE);
  });
});

describe("formatPercent", () => {
  it("shows a fraction as a whole percentage", () => {
    assert.equal(formatPercent(0), "0 %");
    assert.equal(formatPercent(1), "100 %");
    assert.equal(formatPercent(0.05), "5 %");
    assert.equal(formatPercent(0.994), "99 %");
  });

  it("clamps to 0–100 % and shows a dash for no number", () => {
    assert.equal(formatPercent(1.5), "100 %");
    assert.equal(formatPercent(-0.2), "0 %");
    assert.equal(formatPercent(Number.NaN), NO_FIGURE);
    assert.equal(formatPercent(null), NO_FIGURE);
  });
});

describe("quality classes", () => {
  it("light fewer bars and change colour from excellent to offline", () => {
    assert.deepEqual(QUALITY_CLASSES, ["excellent", "good", "fair", "poor", "offline"]);
    assert.deepEqual(
      QUALITY_CLASSES.map((c) => qualityBars(c)),
      [4, 3, 2, 1, 0],
    );
    assert.deepEqual(QUALITY_BARS, { excellent: 4, good: 3, fair: 2, poor: 1, offline: 0 });
    assert.equal(qualityColor("excellent"), "#16a34a");
    assert.equal(qualityColor("offline"), "#9ca3af");
    assert.equal(new Set(Object.values(QUALITY_COLORS)).size, 5, "one distinct colour per class");
    assert.deepEqual(
      QUALITY_CLASSES.map((c) => qualityLabel(c)),
      ["Excellent", "Good", "Fair", "Poor", "Offline"],
    );
  });

  it("describe the class and latency for assistive technology", () => {
    assert.equal(describeQuality("good", 42), "Connection quality: good, latency 42 ms");
    assert.equal(describeQuality("excellent", null), "Connection quality: excellent");
    assert.equal(describeQuality("offline", 42), "Connection quality: offline");
  });
});

describe("metrics", () => {
  it("map the core client's Quality to the bindings' names", () => {
    assert.deepEqual(toConnectionQuality(GOOD), {
      quality: "good",
      latency: 142.3,
      jitter: 12.5,
      packetLoss: 0.02,
      stability: 0.97,
      reconnects: 1,
      pings: 10,
      measuredAt: GOOD.measuredAt,
      metrics: GOOD,
    });
  });

  it("accept either shape", () => {
    const converted = toConnectionQuality(GOOD);
    assert.deepEqual(normalizeMetrics(GOOD), converted);
    assert.equal(normalizeMetrics(converted), converted);
    assert.equal(normalizeMetrics(null), null);
    assert.equal(normalizeMetrics(undefined), null);
  });

  it("resolve to offline whenever the status is not open", () => {
    for (const status of ["idle", "connecting", "reconnecting", "closed"] as const) {
      assert.equal(resolveQualityClass(status, GOOD), "offline", status);
    }
    assert.equal(resolveQualityClass("open", GOOD), "good");
    assert.equal(resolveQualityClass(undefined, toConnectionQuality(GOOD)), "good");
  });

  it("grade an open connection not measured yet as the core client does", () => {
    assert.equal(resolveQualityClass("open", null), classifyQuality(true, null, 0, 0));
    assert.equal(resolveQualityClass("open", null), "excellent");
    assert.equal(resolveQualityClass(undefined, null), "offline");
  });
});
