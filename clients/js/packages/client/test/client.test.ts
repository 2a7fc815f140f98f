import assert from "node:assert/strict";
import { test } from "node:test";

import { SwitchboardClient, SwitchboardError, type ClientOptions, type Message } from "../src/index.js";
import { FakeClock, type FakeSocket, MemoryStorage, fakeSockets, flushMicrotasks } from "./fakes.js";

async function connected(options: ClientOptions = {}) {
  const clock = new FakeClock();
  const ws = fakeSockets();
  const client = new SwitchboardClient("ws://example.test/ws", {
    WebSocket: ws.WebSocket,
    clock,
    queue: { storage: null },
    ...options,
  });
  client.connect();
  await clock.advance(0);
  ws.sockets[0]!.open();
  return { client, clock, ws, socket: ws.sockets[0]! };
}

function message(channel: string, offset: number, extra: { [key: string]: unknown } = {}) {
  return { type: "note", channel, payload: offset, id: `m${offset}`, timestamp: 0, priority: "normal", from: { userId: null, connectionId: "c-x" }, offset, ...extra };
}

function answerSubscribe(socket: FakeSocket, channel: string, offset: number, recovered = false, epoch = "e1") {
  const sub = socket.ofType("subscribe").filter((f) => f["channel"] === channel).pop()!;
  socket.receive({ type: "subscribed", channel, id: sub["id"], offset, epoch, recovered });
  return sub;
}

test("the token travels as a subprotocol beside switchboard.v1, never in the URL", async () => {
  const { ws, client } = await connected({ token: "eyJ.abc.def" });
  const socket = ws.sockets[0]!;
  assert.deepEqual(socket.protocols, ["switchboard.v1", "switchboard.bearer.eyJ.abc.def"]);
  const url = new URL(socket.url);
  assert.equal(url.searchParams.get("token"), null);
  assert.equal(url.searchParams.get("client"), client.clientId);
  client.close();
});

test("tokenCarrier 'query' puts the token in ?token= for servers that cannot take a subprotocol", async () => {
  const { ws, client } = await connected({ token: "t0k", tokenCarrier: "query" });
  assert.equal(new URL(ws.sockets[0]!.url).searchParams.get("token"), "t0k");
  assert.deepEqual(ws.sockets[0]!.protocols, ["switchboard.v1"]);
  client.close();
});

test("the token function is called again for every connection attempt", async () => {
  let calls = 0;
  const { ws, clock, client } = await connected({ token: async () => `tok${++calls}` });
  ws.sockets[0]!.drop();
  await clock.advance(500);
  assert.deepEqual(ws.sockets.map((s) => s.protocols[1]), ["switchboard.bearer.tok1", "switchboard.bearer.tok2"]);
  client.close();
});

test("a token is refreshed on the open connection at 4/5 of its remaining life", async () => {
  let calls = 0;
  const clock = new FakeClock();
  const expiresAt = clock.wallNow() + 100000;
  const ws = fakeSockets();
  const client = new SwitchboardClient("ws://example.test/ws", { WebSocket: ws.WebSocket, clock, queue: { storage: null }, token: () => `tok${++calls}`, heartbeat: { deadAfter: 0 } });
  const refreshed: Array<number | null> = [];
  client.on("refreshed", (r) => refreshed.push(r.expiresAt));
  client.connect();
  await clock.advance(0);
  const socket = ws.sockets[0]!;
  socket.open({ expiresAt });
  await clock.advance(79999);
  assert.equal(socket.ofType("refresh").length, 0);
  await clock.advance(1);
  const refresh = socket.ofType("refresh")[0]!;
  assert.equal(refresh["token"], "tok2");
  socket.receive({ type: "refreshed", id: refresh["id"], expiresAt: expiresAt + 100000 });
  await clock.advance(0);
  assert.deepEqual(refreshed, [expiresAt + 100000]);
  client.close();
});

test("each message is delivered once and in offset order, across a reconnect that recovers", async () => {
  const { client, clock, ws, socket } = await connected();
  const got: number[] = [];
  client.on("message", (m: Message) => got.push(m.offset));
  client.subscribe("news");
  answerSubscribe(socket, "news", 4);
  socket.receive(message("news", 5));
  socket.receive(message("news", 5)); // a duplicate
  socket.drop();
  await clock.advance(500);
  const second = ws.sockets[1]!;
  second.open();
  const resubscribe = second.ofType("subscribe")[0]!;
  assert.deepEqual(resubscribe["since"], { offset: 5, epoch: "e1" });
  second.receive({ type: "subscribed", channel: "news", id: resubscribe["id"], offset: 7, epoch: "e1", recovered: true });
  second.receive(message("news", 6));
  second.receive(message("news", 7));
  second.receive(message("news", 6)); // late overlap
  second.receive(message("news", 8));
  assert.deepEqual(got, [5, 6, 7, 8]);
  client.close();
});

test("recovered: false is surfaced as reset, with the new position", async () => {
  const { client, clock, ws, socket } = await connected();
  const resets: unknown[] = [];
  client.on("reset", (r) => resets.push(r));
  client.subscribe("news");
  answerSubscribe(socket, "news", 3);
  socket.drop();
  await clock.advance(500);
  ws.sockets[1]!.open();
  answerSubscribe(ws.sockets[1]!, "news", 40, false, "e2");
  assert.deepEqual(resets, [{ channel: "news", epoch: "e2", offset: 40 }]);
  client.close();
});

test("a gap (a message evicted on the way) is recovered from history, not skipped", async () => {
  const { client, socket } = await connected();
  const got: number[] = [];
  const gaps: unknown[] = [];
  client.on("message", (m) => got.push(m.offset));
  client.on("gap", (g) => gaps.push(g));
  client.subscribe("feed");
  answerSubscribe(socket, "feed", 0);
  socket.receive(message("feed", 1));
  socket.receive(message("feed", 3)); // 2 was evicted
  socket.receive(message("feed", 4)); // still ahead: waits for the replay
  assert.deepEqual(gaps, [{ channel: "feed", expected: 2, got: 3 }]);
  const unsubscribe = socket.ofType("unsubscribe").pop()!;
  socket.receive({ type: "unsubscribed", channel: "feed", id: unsubscribe["id"] });
  const sub = answerSubscribe(socket, "feed", 4, true);
  assert.deepEqual(sub["since"], { offset: 1, epoch: "e1" });
  for (const offset of [2, 3, 4, 5]) socket.receive(message("feed", offset));
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
  client.close();
});

test("excluded offsets advance the position without a delivery or a gap", async () => {
  const { client, socket } = await connected();
  const got: number[] = [];
  const gaps: unknown[] = [];
  client.on("message", (m) => got.push(m.offset));
  client.on("gap", (g) => gaps.push(g));
  client.subscribe("room");
  answerSubscribe(socket, "room", 0);
  socket.receive(message("room", 1));
  socket.receive({ type: "excluded", channel: "room", offset: 2 });
  socket.receive(message("room", 3));
  assert.deepEqual(got, [1, 3]);
  assert.deepEqual(gaps, []);
  client.close();
});

test("a publish resolves with its ack; sent while offline it goes out on reconnect, most important first", async () => {
  const clock = new FakeClock();
  const ws = fakeSockets();
  const client = new SwitchboardClient("ws://example.test/ws", { WebSocket: ws.WebSocket, clock, queue: { storage: null } });
  const sizes: number[] = [];
  client.on("queue", (q) => sizes.push(q.size));
  const low = client.publish("c", "note", 1, { priority: "low" });
  const critical = client.publish("c", "note", 2, { priority: "critical" });
  assert.equal(client.queueSize, 2);
  client.connect();
  await clock.advance(0);
  const socket = ws.sockets[0]!;
  socket.open();
  assert.deepEqual(socket.ofType("note").map((f) => f["id"]), [critical.id, low.id]);
  socket.receive({ type: "ack", id: low.id, offset: 9 });
  socket.receive({ type: "ack", id: critical.id, offset: 8 });
  assert.equal((await low).offset, 9);
  assert.equal((await critical).offset, 8);
  assert.equal(client.queueSize, 0);
  assert.equal(sizes[sizes.length - 1], 0);
  client.close();
});

test("an unacknowledged publish is sent again after a reconnect, with the same id", async () => {
  const { client, clock, ws, socket } = await connected();
  const p = client.publish("c", "note", { x: 1 });
  assert.equal(socket.ofType("note").length, 1);
  socket.drop();
  await clock.advance(500);
  ws.sockets[1]!.open();
  const resent = ws.sockets[1]!.ofType("note");
  assert.deepEqual(resent.map((f) => f["id"]), [p.id]);
  ws.sockets[1]!.receive({ type: "ack", id: p.id, offset: 1 });
  assert.equal((await p).id, p.id);
  client.close();
});

test("a refused publish rejects with the server's code and leaves the queue", async () => {
  const { client, socket } = await connected();
  const failures: string[] = [];
  client.on("failed", (f) => failures.push(`${f.reason}:${f.error?.code}`));
  const p = client.publish("admin", "note", null);
  socket.receive({ type: "error", code: "forbidden", message: "no", id: p.id });
  await assert.rejects(p, (e: SwitchboardError) => e.code === "forbidden");
  assert.deepEqual(failures, ["refused:forbidden"]);
  assert.equal(client.queueSize, 0);
  client.close();
});

test("rate_limited is retried after retryAfterMs; no ack after 3 attempts fails the publish", async () => {
  const { client, clock, socket } = await connected();
  const p = client.publish("c", "note", null);
  socket.receive({ type: "error", code: "rate_limited", message: "slow down", id: p.id, rateLimited: true, retryAfterMs: 2000 });
  await clock.advance(1999);
  assert.equal(socket.ofType("note").length, 1);
  await clock.advance(1);
  assert.equal(socket.ofType("note").length, 2, "retried when the server said");
  await clock.advance(10000); // no ack: attempt 2 fails
  await clock.advance(60000); // retried, and again no ack: attempt 3 fails
  await assert.rejects(p, (e: SwitchboardError) => e.code === "attempts");
  assert.equal(socket.ofType("note").length, 3);
  assert.equal(client.queueSize, 0);
  client.close();
});

test("an invalid publish is refused at once, and a full queue refuses visibly", async () => {
  const clock = new FakeClock();
  const client = new SwitchboardClient("ws://example.test/ws", { clock, queue: { storage: null, capacity: 1 } });
  await assert.rejects(client.publish("bad channel", "note", 1), (e: SwitchboardError) => e.code === "invalid");
  await assert.rejects(client.publish("c", "subscribe", 1), (e: SwitchboardError) => e.code === "invalid");
  client.publish("c", "note", 1, { priority: "critical" });
  await assert.rejects(client.publish("c", "note", 2), (e: SwitchboardError) => e.code === "queue_full");
  const evictable = new SwitchboardClient("ws://example.test/ws", { clock, queue: { storage: null, capacity: 1 } });
  const low = evictable.publish("c", "note", 1, { priority: "low" });
  evictable.publish("c", "note", 2, { priority: "high" });
  await assert.rejects(low, (e: SwitchboardError) => e.code === "evicted");
});

test("the queue survives a reload through its storage and is processed on connect", async () => {
  const storage = new MemoryStorage();
  const clock = new FakeClock();
  const offline = new SwitchboardClient("ws://example.test/ws", { clock, queue: { storage, key: "q" } });
  const p = offline.publish("c", "note", "kept");
  const ws = fakeSockets();
  const reloaded = new SwitchboardClient("ws://example.test/ws", { WebSocket: ws.WebSocket, clock, queue: { storage, key: "q" } });
  assert.equal(reloaded.clientId, offline.clientId, "the client id is kept beside the queue");
  const acks: string[] = [];
  reloaded.on("ack", (a) => acks.push(a.id));
  reloaded.connect();
  await clock.advance(0);
  ws.sockets[0]!.open();
  assert.deepEqual(ws.sockets[0]!.ofType("note").map((f) => f["id"]), [p.id]);
  ws.sockets[0]!.receive({ type: "ack", id: p.id, offset: 1 });
  assert.deepEqual(acks, [p.id]);
  assert.equal(storage.getItem("q"), null);
  reloaded.close();
});

test("clearQueue fails every held publish with cleared", async () => {
  const client = new SwitchboardClient("ws://example.test/ws", { clock: new FakeClock(), queue: { storage: null } });
  const a = client.publish("c", "note", 1);
  const b = client.publish("c", "note", 2);
  assert.equal(client.clearQueue(), 2);
  await assert.rejects(a, (e: SwitchboardError) => e.code === "cleared");
  await assert.rejects(b, (e: SwitchboardError) => e.code === "cleared");
});

test("the server's unsubscribe ends the subscription for good, and server subscriptions end with the connection", async () => {
  const { client, clock, ws, socket } = await connected();
  const ended: string[] = [];
  client.on("unsubscribed", (u) => ended.push(`${u.channel}:${u.reason}`));
  const sub = client.subscribe("team");
  answerSubscribe(socket, "team", 0);
  socket.receive({ type: "unsubscribed", channel: "team", reason: "forbidden" });
  await assert.rejects(sub.ready());
  socket.receive({ type: "subscribed", channel: "alerts", offset: 2, epoch: "e", recovered: false, server: true });
  const got: number[] = [];
  client.on("message", (m) => got.push(m.offset));
  socket.receive(message("alerts", 3));
  assert.deepEqual(got, [3]);
  socket.drop();
  await clock.advance(500);
  ws.sockets[1]!.open();
  assert.deepEqual(ws.sockets[1]!.ofType("subscribe"), [], "neither channel is subscribed again");
  assert.deepEqual(ended, ["team:forbidden", "alerts:disconnected"]);
  client.close();
});

test("handles of one channel share a subscription; the last release unsubscribes", async () => {
  const { client, socket } = await connected();
  const a = client.subscribe("shared");
  const b = client.subscribe("shared");
  assert.equal(socket.ofType("subscribe").length, 1);
  answerSubscribe(socket, "shared", 0);
  assert.equal((await b.ready()).channel, "shared");
  a.unsubscribe();
  a.unsubscribe();
  assert.equal(socket.ofType("unsubscribe").length, 0);
  b.unsubscribe();
  assert.equal(socket.ofType("unsubscribe").length, 1);
  client.close();
});

test("a refused subscribe rejects ready() and emits error", async () => {
  const { client, socket } = await connected();
  const errors: string[] = [];
  client.on("error", (e) => errors.push(e.code));
  const ready = client.subscribe("secret").ready();
  const frame = socket.ofType("subscribe")[0]!;
  socket.receive({ type: "error", code: "forbidden", message: "no", id: frame["id"] });
  await assert.rejects(ready, (e: SwitchboardError) => e.code === "forbidden");
  assert.deepEqual(errors, ["forbidden"]);
  assert.deepEqual(client.channels, []);
  client.close();
});

test("presence is announced after every channel answered, again after reconnects", async () => {
  const { client, clock, ws, socket } = await connected();
  client.subscribe("room");
  answerSubscribe(socket, "room", 0);
  client.setPresence({ status: "online", meta: { name: "ada" } });
  assert.equal(socket.ofType("presence-update").length, 1);
  socket.drop();
  await clock.advance(500);
  const second = ws.sockets[1]!;
  second.open();
  assert.equal(second.ofType("presence-update").length, 0, "not before the channel answered");
  answerSubscribe(second, "room", 0, true);
  assert.deepEqual(second.last(), { type: "presence-update", status: "online", meta: { name: "ada" } });
  client.close();
});

test("watchPresence keeps a live member list", async () => {
  const { client, socket } = await connected();
  client.subscribe("room");
  const lists: string[][] = [];
  client.watchPresence("room", (members) => lists.push(members.map((m) => m.connectionId)));
  answerSubscribe(socket, "room", 0);
  const ask = socket.ofType("presence")[0]!;
  const member = (id: string, joinedAt: number) => ({ connectionId: id, userId: null, status: "online", currentFeature: null, meta: null, joinedAt, lastSeen: joinedAt });
  socket.receive({ type: "presence", channel: "room", id: ask["id"], members: [member("b", 2), member("a", 1)] });
  await flushMicrotasks();
  socket.receive({ type: "presence-update", channel: "room", action: "join", member: member("c", 3), timestamp: 3 });
  socket.receive({ type: "presence-update", channel: "room", action: "leave", member: member("a", 1), timestamp: 4 });
  assert.deepEqual(lists, [["a", "b"], ["a", "b", "c"], ["b", "c"]]);
  client.close();
});

test("pings measure the link; three lost in a row replace the connection", async () => {
  const { client, clock, ws, socket } = await connected();
  const first = socket.ofType("ping")[0]!;
  await clock.advance(42);
  socket.receive({ type: "pong", id: first["id"], serverTime: 0 });
  assert.equal(client.quality.latencyMs, 42);
  assert.equal(client.quality.class, "excellent");
  // No more answers: pings at 10 s, 20 s, 30 s each time out 5 s later.
  await clock.advance(10000 - 42 + 5000);
  assert.equal(client.quality.loss, 0.5);
  await clock.advance(20000);
  assert.equal(socket.closedWith?.reason, "unresponsive");
  assert.equal(client.status, "reconnecting");
  assert.equal(client.quality.class, "offline");
  await clock.advance(500);
  assert.equal(ws.sockets.length, 2, "reconnected after the backoff");
  client.close();
});

test("a connection not welcomed in time is abandoned and retried", async () => {
  const clock = new FakeClock();
  const ws = fakeSockets();
  const client = new SwitchboardClient("ws://example.test/ws", { WebSocket: ws.WebSocket, clock, queue: { storage: null }, connectTimeoutMs: 3000 });
  client.connect();
  await clock.advance(0);
  await clock.advance(2999);
  assert.equal(client.status, "connecting");
  await clock.advance(1);
  assert.equal(client.status, "reconnecting");
  assert.equal(ws.sockets[0]!.closedWith?.reason, "connect timed out");
  client.close();
});

test("a handshake that fails with an error and no close event is retried", async () => {
  const clock = new FakeClock();
  const ws = fakeSockets();
  const client = new SwitchboardClient("ws://example.test/ws", { WebSocket: ws.WebSocket, clock, queue: { storage: null } });
  client.connect();
  await clock.advance(0);
  ws.sockets[0]!.fail();
  assert.equal(client.status, "reconnecting");
  await clock.advance(500);
  assert.equal(ws.sockets.length, 2);
  ws.sockets[0]!.drop(); // a late close of the failed socket changes nothing
  assert.equal(client.status, "connecting");
  client.close();
});

test("a URL that is not ws:// or wss:// is refused when the client is made", () => {
  assert.throws(() => new SwitchboardClient("/ws"), TypeError);
  assert.throws(() => new SwitchboardClient("http://example.test/ws"), TypeError);
});

test("presence for a channel waits for the channel's subscription", async () => {
  const { client, socket } = await connected();
  client.subscribe("room");
  client.setPresence({ channel: "room", status: "busy" });
  assert.equal(socket.ofType("presence-update").length, 0, "the server would answer not_subscribed");
  answerSubscribe(socket, "room", 0);
  assert.deepEqual(socket.ofType("presence-update"), [{ type: "presence-update", channel: "room", status: "busy" }]);
  client.close();
});

test("the default queue key is per tab and per server", () => {
  const storage = new MemoryStorage();
  const a = new SwitchboardClient("ws://one.test/ws", { clock: new FakeClock(), queue: { storage } });
  const b = new SwitchboardClient("ws://two.test/ws", { clock: new FakeClock(), queue: { storage } });
  a.publish("c", "note", 1);
  b.publish("c", "note", 2);
  assert.deepEqual([...storage.map.keys()].filter((k) => k.startsWith("switchboard:queue:")).sort(), [
    "switchboard:queue:default:one.test/ws",
    "switchboard:queue:default:two.test/ws",
  ]);
  assert.notEqual(a.clientId, b.clientId);
});

test("with history, a reset reloads what the new epoch already holds, once each", async () => {
  const { client, clock, ws, socket } = await connected();
  const got: string[] = [];
  client.on("message", (m) => got.push(`${m.id}@${m.offset}`));
  client.subscribe("chat", { history: true });
  answerSubscribe(socket, "chat", 0); // empty: nothing to load
  socket.receive(message("chat", 1));
  socket.drop();
  await clock.advance(500);
  const second = ws.sockets[1]!;
  second.open();
  // The server restarted without history: a new epoch that already holds two messages.
  answerSubscribe(second, "chat", 2, false, "e2");
  const reload = second.ofType("subscribe").pop()!;
  assert.deepEqual(reload["since"], { offset: 0, epoch: "e2" });
  second.receive({ type: "subscribed", channel: "chat", id: reload["id"], offset: 2, epoch: "e2", recovered: true });
  second.receive(message("chat", 1, { id: "n1" }));
  second.receive(message("chat", 2, { id: "n2" }));
  second.receive(message("chat", 3, { id: "n3" }));
  assert.deepEqual(got, ["m1@1", "n1@1", "n2@2", "n3@3"]);
  client.close();
});

test("publishes the earlier /client.js queued are adopted, with its client id", async () => {
  const storage = new MemoryStorage();
  // What the earlier script left in a tab without sessionStorage ("default" tab key).
  storage.setItem(
    "switchboard:queue:default",
    JSON.stringify([{ frame: { type: "note", channel: "c", payload: 1, id: "old-1", priority: "high" }, priority: "high", seq: 4 }]),
  );
  storage.setItem("switchboard:client:switchboard:queue:default", "cLegacyId");
  const clock = new FakeClock();
  const ws = fakeSockets();
  const client = new SwitchboardClient("ws://example.test/ws", { WebSocket: ws.WebSocket, clock, queue: { storage } });
  assert.equal(client.clientId, "cLegacyId");
  assert.equal(storage.getItem("switchboard:queue:default"), null);
  client.connect();
  await clock.advance(0);
  ws.sockets[0]!.open();
  assert.deepEqual(ws.sockets[0]!.ofType("note").map((f) => f["id"]), ["old-1"]);
  assert.equal(new URL(ws.sockets[0]!.url).searchParams.get("client"), "cLegacyId");
  client.close();
});
