import assert from "node:assert/strict";
import { test } from "node:test";

import { RECONNECT_BACKOFF, SwitchboardClient, backoffCap, backoffDelay } from "../src/index.js";
import { FakeClock, fakeSockets } from "./fakes.js";

test("the reconnect cap grows 1 s x 1.5 per attempt up to 30 s", () => {
  const caps = [1, 2, 3, 4, 5, 9, 10, 20].map((n) => backoffCap(RECONNECT_BACKOFF, n));
  assert.deepEqual(caps, [1000, 1500, 2250, 3375, 5062.5, 25628.90625, 30000, 30000]);
});

test("full jitter draws the delay uniformly below the cap", () => {
  assert.equal(backoffDelay(RECONNECT_BACKOFF, 3, 0), 0);
  assert.equal(backoffDelay(RECONNECT_BACKOFF, 3, 0.5), 1125);
  assert.equal(backoffDelay(RECONNECT_BACKOFF, 3, 0.999), 2247);
  // Out-of-range draws are clamped, NaN counts as 0.
  assert.equal(backoffDelay(RECONNECT_BACKOFF, 3, 7), 2250);
  assert.equal(backoffDelay(RECONNECT_BACKOFF, 3, Number.NaN), 0);
  assert.equal(backoffDelay({ ...RECONNECT_BACKOFF, jitter: "half" }, 1, 0), 500);
  assert.equal(backoffDelay({ ...RECONNECT_BACKOFF, jitter: "none" }, 1, 0), 1000);
});

test("the client reconnects on the backoff schedule, and only when each delay has passed", async () => {
  const clock = new FakeClock();
  const ws = fakeSockets();
  const delays: number[] = [];
  const client = new SwitchboardClient("ws://example.test/ws", { WebSocket: ws.WebSocket, clock, queue: { storage: null } });
  client.on("status", (s) => {
    if (s.status === "reconnecting") delays.push(s.delayMs!);
  });
  clock.draws = [0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999];
  client.connect();
  await clock.advance(0);
  for (let attempt = 1; attempt <= 12; attempt++) {
    const before = ws.sockets.length;
    ws.sockets[before - 1]!.drop(1006);
    const delay = delays[attempt - 1]!;
    await clock.advance(delay - 1);
    assert.equal(ws.sockets.length, before, `attempt ${attempt} must wait its ${delay} ms`);
    await clock.advance(1);
    assert.equal(ws.sockets.length, before + 1, `attempt ${attempt} dials after ${delay} ms`);
  }
  const expected = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((n) => Math.floor(backoffCap(RECONNECT_BACKOFF, n) * 0.999));
  assert.deepEqual(delays, expected);
  assert.equal(Math.max(...delays), Math.floor(30000 * 0.999), "the delay never exceeds 30 s");
  client.close();
});

test("a welcome resets the schedule to the first attempt", async () => {
  const clock = new FakeClock();
  const ws = fakeSockets();
  const delays: number[] = [];
  const client = new SwitchboardClient("ws://example.test/ws", { WebSocket: ws.WebSocket, clock, queue: { storage: null } });
  client.on("status", (s) => s.status === "reconnecting" && delays.push(s.delayMs!));
  clock.draws = Array(10).fill(0.5);
  client.connect();
  await clock.advance(0);
  ws.sockets[0]!.drop();
  await clock.advance(500);
  ws.sockets[1]!.drop();
  await clock.advance(750);
  ws.sockets[2]!.open();
  ws.sockets[2]!.drop();
  assert.deepEqual(delays, [500, 750, 500]);
  client.close();
});

test("4003 (disconnected by the server) and 1008 (abuse) end the client instead of reconnecting", async () => {
  for (const code of [4003, 1008]) {
    const clock = new FakeClock();
    const ws = fakeSockets();
    const statuses: string[] = [];
    const client = new SwitchboardClient("ws://example.test/ws", { WebSocket: ws.WebSocket, clock, queue: { storage: null } });
    client.on("status", (s) => statuses.push(`${s.status}${s.code ? ":" + s.code : ""}`));
    client.connect();
    await clock.advance(0);
    ws.sockets[0]!.open();
    ws.sockets[0]!.drop(code, "bye");
    await clock.advance(120000);
    assert.equal(ws.sockets.length, 1, `no reconnect after ${code}`);
    assert.deepEqual(statuses, ["connecting", "open", `closed:${code}`]);
    assert.equal(client.status, "closed");
  }
});
