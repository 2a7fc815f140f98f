import assert from "node:assert/strict";
import { test } from "node:test";

import { OfflineQueue, QUEUE_DEFAULTS, type Priority, type PublishFrame } from "../src/index.js";
import { FakeClock, MemoryStorage } from "./fakes.js";

function frame(id: string, priority: Priority): PublishFrame {
  return { type: "note", channel: "q", payload: id, id, priority };
}

function queue(capacity: number, clock = new FakeClock(), storage: MemoryStorage | null = null) {
  return new OfflineQueue({ ...QUEUE_DEFAULTS, capacity, storage, key: "k" }, clock);
}

test("the defaults are 100 messages, 3 attempts, 10 s ack timeout", () => {
  assert.equal(QUEUE_DEFAULTS.capacity, 100);
  assert.equal(QUEUE_DEFAULTS.maxAttempts, 3);
  assert.equal(QUEUE_DEFAULTS.ackTimeoutMs, 10000);
});

test("a full queue evicts the oldest of the lowest priority below the newcomer's: low first", () => {
  const q = queue(4);
  for (const [id, p] of [["n1", "normal"], ["l1", "low"], ["h1", "high"], ["l2", "low"]] as const) {
    assert.equal(q.push(frame(id, p)).accepted, true);
  }
  const evictions: string[] = [];
  for (const [id, p] of [["c1", "critical"], ["h2", "high"], ["c2", "critical"]] as const) {
    const result = q.push(frame(id, p));
    assert.equal(result.accepted, true, `${id} finds something less important to evict`);
    if (result.accepted) evictions.push(result.evicted!.frame.id);
  }
  assert.deepEqual(evictions, ["l1", "l2", "n1"], "low oldest first, then normal");
  // Only high and critical are left: a normal publish finds nothing below it.
  assert.deepEqual(q.push(frame("n2", "normal")), { accepted: false });
  assert.deepEqual(q.list().map((e) => e.frame.id), ["c1", "c2", "h1", "h2"]);
});

test("critical is never evicted: a queue full of critical refuses, visibly", () => {
  const q = queue(2);
  q.push(frame("c1", "critical"));
  q.push(frame("c2", "critical"));
  assert.deepEqual(q.push(frame("c3", "critical")), { accepted: false });
  assert.deepEqual(q.push(frame("l1", "low")), { accepted: false });
  assert.deepEqual(q.list().map((e) => e.frame.id), ["c1", "c2"]);
});

test("a publish already sent is not evicted: it may be delivered", () => {
  const q = queue(2);
  q.push(frame("l1", "low"));
  q.push(frame("l2", "low"));
  assert.equal(q.take()?.id, "l1");
  const result = q.push(frame("h1", "high"));
  assert.equal(result.accepted && result.evicted?.frame.id, "l2");
});

test("publishes go out most important first, oldest first within a priority, at most maxInFlight", () => {
  const clock = new FakeClock();
  const q = new OfflineQueue({ ...QUEUE_DEFAULTS, maxInFlight: 3, storage: null, key: "k" }, clock);
  for (const [id, p] of [["l1", "low"], ["n1", "normal"], ["c1", "critical"], ["n2", "normal"], ["h1", "high"]] as const) {
    q.push(frame(id, p));
  }
  const sent = [q.take()?.id, q.take()?.id, q.take()?.id, q.take()?.id];
  assert.deepEqual(sent, ["c1", "h1", "n1", undefined]);
  q.ack("c1");
  assert.equal(q.take()?.id, "n2");
});

test("a failed attempt waits the retry backoff; the third failure gives the publish up", () => {
  const clock = new FakeClock();
  const q = queue(10, clock);
  q.push(frame("m", "normal"));
  clock.draws = [0, 0];
  assert.equal(q.take()?.id, "m");
  assert.deepEqual(q.fail("m"), { kind: "retry", at: clock.now() + 250 }); // 500 ms, half jitter at 0
  assert.equal(q.take(), undefined, "not before its retry is due");
  void clock.advance(250);
  assert.equal(q.take()?.id, "m");
  assert.deepEqual(q.fail("m", 5000), { kind: "retry", at: clock.now() + 5000 }, "a server's retryAfterMs wins when longer");
  void clock.advance(5000);
  assert.equal(q.take()?.id, "m");
  const dead = q.fail("m");
  assert.equal(dead.kind, "dead");
  assert.equal(dead.kind === "dead" && dead.entry.attempts, 3);
  assert.equal(q.size, 0);
});

test("an ack not received within the timeout makes the publish overdue", async () => {
  const clock = new FakeClock();
  const q = queue(10, clock);
  q.push(frame("m", "normal"));
  q.take();
  await clock.advance(9999);
  assert.deepEqual(q.overdue(), []);
  await clock.advance(1);
  assert.deepEqual(q.overdue(), ["m"]);
});

test("a lost connection sends in-flight publishes again without counting an attempt", () => {
  const q = queue(10);
  q.push(frame("m", "normal"));
  q.take();
  q.releaseAll();
  assert.equal(q.take()?.id, "m");
  assert.equal(q.list()[0]!.attempts, 0);
});

test("the queue persists in storage and a new queue resumes it, attempts included", () => {
  const storage = new MemoryStorage();
  const first = queue(10, new FakeClock(), storage);
  first.push(frame("a", "low"));
  first.push(frame("b", "critical"));
  first.take();
  first.fail("b");
  const second = queue(10, new FakeClock(), storage);
  assert.deepEqual(
    second.list().map((e) => [e.frame.id, e.attempts, e.state]),
    [["b", 1, "waiting"], ["a", 0, "waiting"]],
  );
  second.ack("a");
  second.ack("b");
  assert.equal(storage.map.size, 0, "an empty queue leaves nothing behind");
});

test("corrupt storage is ignored rather than thrown", () => {
  const storage = new MemoryStorage();
  storage.setItem("k", "{not json");
  assert.equal(queue(10, new FakeClock(), storage).size, 0);
  storage.setItem("k", JSON.stringify([{ frame: { id: "x", channel: "c", priority: "urgent" } }, null, 3]));
  assert.equal(queue(10, new FakeClock(), storage).size, 0);
});
