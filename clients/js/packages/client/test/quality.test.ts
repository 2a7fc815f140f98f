import assert from "node:assert/strict";
import { test } from "node:test";

import { QualityTracker, classifyQuality } from "../src/index.js";

test("classes follow the documented thresholds, every condition needed", () => {
  assert.equal(classifyQuality(false, 10, 0, 0), "offline");
  assert.equal(classifyQuality(true, null, 0, 0), "excellent", "before the first pong only loss and reconnects decide");
  assert.equal(classifyQuality(true, 99, 0.009, 0), "excellent");
  assert.equal(classifyQuality(true, 100, 0, 0), "good");
  assert.equal(classifyQuality(true, 50, 0.01, 0), "good");
  assert.equal(classifyQuality(true, 50, 0, 1), "good");
  assert.equal(classifyQuality(true, 299, 0.049, 1), "good");
  assert.equal(classifyQuality(true, 300, 0, 0), "fair");
  assert.equal(classifyQuality(true, 50, 0, 2), "fair");
  assert.equal(classifyQuality(true, 999, 0.149, 3), "fair");
  assert.equal(classifyQuality(true, 1000, 0, 0), "poor");
  assert.equal(classifyQuality(true, 10, 0.15, 0), "poor");
  assert.equal(classifyQuality(true, 10, 0, 4), "poor");
});

test("latency and jitter average the last 10 answers; loss counts the last 10 pings", () => {
  const t = new QualityTracker();
  t.connected(0);
  for (const rtt of [500, 500, 10, 20, 10, 20, 10, 20, 10, 20, 10, 20]) t.answered(rtt);
  let q = t.snapshot(1, 0);
  assert.equal(q.latencyMs, 15, "the two 500 ms answers fell out of the window");
  assert.equal(q.jitterMs, 10);
  assert.equal(q.loss, 0);
  assert.equal(q.class, "excellent");
  t.lost();
  t.lost();
  q = t.snapshot(2, 0);
  assert.equal(q.loss, 0.2);
  assert.equal(q.pings, 10);
  assert.equal(q.class, "poor");
});

test("reconnects within the window lower the class and stability measures time open", () => {
  const t = new QualityTracker({ samples: 10, stabilityWindowMs: 1000 });
  t.connected(0);
  t.answered(10);
  assert.equal(t.snapshot(100, 0).stability, 1);
  t.disconnected(100);
  t.connected(300); // 200 ms down
  let q = t.snapshot(500, 0);
  assert.equal(q.reconnects, 1);
  assert.equal(q.class, "good");
  assert.equal(q.stability, 0.6);
  q = t.snapshot(1400, 0); // the window is 400..1400, open throughout
  assert.equal(q.reconnects, 0);
  assert.equal(q.stability, 1);
  t.disconnected(1400);
  q = t.snapshot(1900, 0);
  assert.equal(q.class, "offline");
  assert.equal(q.stability, 0.5);
});
