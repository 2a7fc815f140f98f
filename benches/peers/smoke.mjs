#!/usr/bin/env node
// Smoke check of the Protocol v1 subset the benchmarks use, against any server:
//
//   node benches/peers/smoke.mjs ws://127.0.0.1:5300/ws
//
// Two clients connect, subscribe to one channel, one publishes with an id and without one;
// checks the shapes of welcome, subscribed, ack, the delivered message (same keys and types
// as switchboard's), pong, unsubscribed and the bad_request answer to invalid JSON. Prints
// what it checked and exits 0, or prints the first mismatch and exits 1 (2 on a timeout or
// a connection failure). Bounded: gives up after 10 s.

import { WebSocket } from 'ws';

const url = process.argv[2] ?? process.env.URL;
if (!url) {
  console.error('usage: node smoke.mjs ws://HOST:PORT/ws');
  process.exit(2);
}
const OVERALL_TIMEOUT_MS = 10_000;
const STEP_TIMEOUT_MS = 3_000;

const overall = setTimeout(() => {
  console.error(`smoke: FAIL: gave up after ${OVERALL_TIMEOUT_MS} ms`);
  process.exit(2);
}, OVERALL_TIMEOUT_MS);

let checks = 0;
function fail(message, value) {
  console.error(`smoke: FAIL: ${message}${value === undefined ? '' : `\n  got: ${JSON.stringify(value)}`}`);
  process.exit(1);
}
function check(condition, message, value) {
  if (!condition) fail(message, value);
  checks++;
}
function sameKeys(obj, keys, what) {
  const got = Object.keys(obj).sort();
  const want = [...keys].sort();
  check(JSON.stringify(got) === JSON.stringify(want), `${what}: keys ${want.join(',')}`, obj);
}
const isMs = (t) => Number.isInteger(t) && Math.abs(t - Date.now()) < 60_000;

/** A client whose incoming frames are queued and awaited by predicate. */
class Client {
  constructor(name) {
    this.name = name;
    this.frames = [];
    this.waiters = [];
  }

  open() {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(url, { perMessageDeflate: false });
      this.ws.on('open', resolve);
      this.ws.on('error', (err) => reject(new Error(`${this.name}: cannot connect to ${url}: ${err.message}`)));
      this.ws.on('message', (data, isBinary) => {
        if (isBinary) fail(`${this.name}: the server sent a binary frame`);
        let frame;
        try {
          frame = JSON.parse(data.toString());
        } catch {
          fail(`${this.name}: the server sent invalid JSON`, data.toString());
        }
        this.frames.push(frame);
        this.wake();
      });
    });
  }

  wake() {
    for (const waiter of [...this.waiters]) {
      const i = this.frames.findIndex(waiter.pred);
      if (i !== -1) {
        const [frame] = this.frames.splice(i, 1);
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        clearTimeout(waiter.timer);
        waiter.resolve(frame);
      }
    }
  }

  /** The first frame (queued or future) matching `pred`; removes it from the queue. */
  next(pred, what) {
    return new Promise((resolve) => {
      const waiter = {
        pred,
        resolve,
        timer: setTimeout(() => {
          console.error(`smoke: FAIL: ${this.name}: no ${what} within ${STEP_TIMEOUT_MS} ms`);
          console.error(`  unmatched frames: ${JSON.stringify(this.frames)}`);
          process.exit(1);
        }, STEP_TIMEOUT_MS),
      };
      this.waiters.push(waiter);
      this.wake();
    });
  }

  send(frame) {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }
}

async function main() {
  const a = new Client('A');
  const b = new Client('B');
  try {
    await Promise.all([a.open(), b.open()]);
  } catch (err) {
    console.error(`smoke: FAIL: ${err.message}`);
    process.exit(2);
  }

  const welcomeA = await a.next((f) => f.type === 'welcome', 'welcome');
  const welcomeB = await b.next((f) => f.type === 'welcome', 'welcome');
  for (const w of [welcomeA, welcomeB]) {
    sameKeys(w, ['type', 'connectionId', 'userId', 'heartbeatMs', 'timestamp'], 'welcome');
    check(typeof w.connectionId === 'string' && w.connectionId.length > 0, 'welcome.connectionId is a string', w);
    check(w.userId === null, 'welcome.userId is null (open mode)', w);
    check(Number.isInteger(w.heartbeatMs) && w.heartbeatMs > 0, 'welcome.heartbeatMs is a positive integer', w);
    check(isMs(w.timestamp), 'welcome.timestamp is milliseconds since the epoch', w);
  }
  check(welcomeA.connectionId !== welcomeB.connectionId, 'connection ids differ', [welcomeA, welcomeB]);

  const channel = `smoke:${process.pid}-${Date.now()}`;
  for (const [c, id] of [[a, 'sa'], [b, 'sb']]) {
    c.send({ type: 'subscribe', channel, id });
    const s = await c.next((f) => f.type === 'subscribed' || f.type === 'error', 'subscribed');
    check(s.type === 'subscribed', 'subscribe is answered with subscribed', s);
    sameKeys(s, ['type', 'channel', 'id', 'offset', 'epoch', 'recovered'], 'subscribed');
    check(s.channel === channel && s.id === id, 'subscribed echoes channel and id', s);
    check(s.offset === 0, 'subscribed.offset is 0 for a new channel', s);
    check(typeof s.epoch === 'string', 'subscribed.epoch is a string', s);
    check(s.recovered === false, 'subscribed.recovered is false without since', s);
  }

  // A publish with an id: ack to the publisher, the same message to both subscribers.
  const payload = { n: 1, text: 'héllo', nested: { list: [1, 2, 3], nil: null } };
  const sentAt = Date.now();
  a.send({ type: 'smoke.test', channel, payload, id: 'm-1' });
  const ack = await a.next((f) => f.type === 'ack' || f.type === 'error', 'ack');
  check(ack.type === 'ack', 'a publish with an id is acked', ack);
  sameKeys(ack, ['type', 'id', 'offset'], 'ack');
  check(ack.id === 'm-1' && ack.offset === 1, 'ack carries the id and offset 1', ack);
  const deliveries = [];
  for (const c of [a, b]) {
    const d = await c.next((f) => f.type === 'smoke.test', 'delivery of m-1');
    deliveries.push(d);
    sameKeys(d, ['type', 'channel', 'payload', 'id', 'timestamp', 'priority', 'from', 'offset'], 'delivery');
    check(d.channel === channel, 'delivery.channel', d);
    check(JSON.stringify(d.payload) === JSON.stringify(payload), 'delivery.payload is the published payload', d);
    check(d.id === 'm-1', "delivery.id is the publisher's id", d);
    check(isMs(d.timestamp) && d.timestamp >= sentAt - 1000, 'delivery.timestamp is when the server received it', d);
    check(d.priority === 'normal', 'delivery.priority defaults to normal', d);
    sameKeys(d.from, ['userId', 'connectionId'], 'delivery.from');
    check(d.from.userId === null && d.from.connectionId === welcomeA.connectionId, "delivery.from is the publisher's", d);
    check(d.offset === ack.offset, 'delivery.offset equals the ack offset', d);
  }
  check(JSON.stringify(deliveries[0]) === JSON.stringify(deliveries[1]), 'both subscribers get the same frame', deliveries);

  // A publish without an id: a generated id, no ack, the next offset.
  b.send({ type: 'smoke.test', channel, payload: null });
  for (const c of [a, b]) {
    const d = await c.next((f) => f.type === 'smoke.test', 'delivery of the id-less publish');
    check(typeof d.id === 'string' && d.id.length > 0, 'an id-less publish gets a generated id', d);
    check(d.payload === null, 'a null payload is delivered as null', d);
    check(d.offset === 2, 'the second message of the channel has offset 2', d);
    check(d.from.connectionId === welcomeB.connectionId, "delivery.from is B's", d);
  }

  // Ping.
  const pingAt = Date.now();
  a.send({ type: 'ping', id: 'p1', timestamp: pingAt });
  const pong = await a.next((f) => f.type === 'pong', 'pong');
  sameKeys(pong, ['type', 'id', 'timestamp', 'serverTime'], 'pong');
  check(pong.id === 'p1' && pong.timestamp === pingAt && isMs(pong.serverTime), 'pong echoes id and timestamp', pong);

  // Invalid JSON.
  a.send('{not json');
  const err = await a.next((f) => f.type === 'error', 'error for invalid JSON');
  check(err.code === 'bad_request' && typeof err.message === 'string', 'invalid JSON is a bad_request error', err);

  // Unsubscribe, then a publish from A reaches B only.
  a.send({ type: 'unsubscribe', channel, id: 'u1' });
  const unsub = await a.next((f) => f.type === 'unsubscribed' || f.type === 'error', 'unsubscribed');
  sameKeys(unsub, ['type', 'channel', 'id'], 'unsubscribed');
  check(unsub.channel === channel && unsub.id === 'u1', 'unsubscribed echoes channel and id', unsub);
  a.send({ type: 'smoke.after', channel, payload: 3, id: 'm-3' });
  await a.next((f) => f.type === 'ack', 'ack of m-3');
  const after = await b.next((f) => f.type === 'smoke.after', 'delivery of m-3');
  check(after.offset === 3, 'offsets keep counting', after);
  a.send({ type: 'ping', id: 'p2' });
  await a.next((f) => f.type === 'pong' && f.id === 'p2', 'pong p2');
  await new Promise((r) => setTimeout(r, 100));
  const stray = [...a.frames, ...b.frames].filter((f) => f.type !== 'pong');
  check(stray.length === 0, 'nothing else arrived (no ack without an id, no delivery after unsubscribe)', stray);

  a.ws.close();
  b.ws.close();
  clearTimeout(overall);
  console.log(`smoke: ok: ${checks} checks passed against ${url}`);
  process.exit(0);
}

main().catch((err) => {
  console.error(`smoke: FAIL: ${err.stack ?? err}`);
  process.exit(1);
});
