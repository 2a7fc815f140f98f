// The client against the real server binary, over real sockets on 127.0.0.1. Node 20 runs
// these with --experimental-websocket (its WebSocket is undici's, as in Node 22).
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { startRedis } from "@switchboard/test-support/redis";
import { type RunningServer, startServer } from "@switchboard/test-support/server";

import { type Ack, type Message, SwitchboardClient, type ClientOptions, type Status } from "../src/index.js";
import { signJwt } from "./jwt.js";

const WAIT_MS = 15000;
const clients: SwitchboardClient[] = [];
const servers: RunningServer[] = [];

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.stop({ kill: true })));
});

function client(url: string, options: ClientOptions = {}): SwitchboardClient {
  // Fast reconnects keep the tests short; the schedule itself is unit-tested.
  const c = new SwitchboardClient(url, { reconnect: { initialMs: 50, maxMs: 200 }, queue: { storage: null }, ...options });
  clients.push(c);
  return c;
}

async function server(env: Record<string, string> = {}): Promise<RunningServer> {
  const s = await startServer(env);
  servers.push(s);
  return s;
}

/** Resolves when `predicate` holds, checked on every event of `client` (bounded). */
function until(c: SwitchboardClient, what: string, predicate: () => boolean): Promise<void> {
  if (predicate()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const offs = (["status", "message", "ack", "subscribed", "queue", "refreshed", "reset", "presence"] as const).map((e) =>
      c.on(e, () => {
        if (predicate()) done(null);
      }),
    );
    const timer = setTimeout(() => done(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
    function done(error: Error | null) {
      clearTimeout(timer);
      offs.forEach((off) => off());
      if (error) reject(error);
      else resolve();
    }
  });
}

function status(c: SwitchboardClient, wanted: Status) {
  return until(c, `status ${wanted}`, () => c.status === wanted);
}

test("subscribe, publish and ack between two clients; the ack's offset is the message's", async () => {
  const s = await server();
  const alice = client(s.wsUrl).connect();
  const bob = client(s.wsUrl).connect();
  const got: Message[] = [];
  bob.on("message", (m) => got.push(m));
  await bob.subscribe("room:1").ready();
  await status(alice, "open");
  const acks: Ack[] = [];
  for (let i = 0; i < 5; i++) acks.push(await alice.publish("room:1", "chat.message", { i }, { priority: i === 4 ? "high" : "normal" }));
  await until(bob, "5 messages", () => got.length === 5);
  assert.deepEqual(got.map((m) => m.payload), [{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }]);
  assert.deepEqual(got.map((m) => m.offset), acks.map((a) => a.offset));
  assert.equal(got[0]!.from.connectionId, alice.connectionId);
  assert.equal(got[4]!.priority, "high");
  assert.equal(alice.queueSize, 0);
});

test("the token goes in the subprotocol: the server authenticates the user, and calls it again on reconnect", async () => {
  const secret = "integration-secret-0123456789abcdef";
  const s = await server({ AUTH_JWT_SECRET: secret });
  let calls = 0;
  const c = client(s.wsUrl, {
    token: () => {
      calls += 1;
      return signJwt(secret, { sub: "ada", exp: Math.floor(Date.now() / 1000) + 600 });
    },
  }).connect();
  await status(c, "open");
  assert.equal(c.userId, "ada");
  assert.equal(s.log.some((line) => line.includes("token=")), false, "no token in any logged URL");
  await s.stop({ kill: true });
  await status(c, "reconnecting");
  await server({ AUTH_JWT_SECRET: secret, PORT: String(s.port) });
  await status(c, "open");
  assert.equal(c.userId, "ada");
  assert.ok(calls >= 2, `the token source is asked again for the new connection (${calls} calls)`);
});

test("a token close to expiry is refreshed on the open connection", async () => {
  const secret = "integration-secret-0123456789abcdef";
  const s = await server({ AUTH_JWT_SECRET: secret });
  let calls = 0;
  const c = client(s.wsUrl, {
    // The first token expires in 3 s; the client refreshes it at 4/5 of that.
    token: () => signJwt(secret, { sub: "ada", exp: Math.floor(Date.now() / 1000) + (++calls === 1 ? 3 : 600) }),
  }).connect();
  const refreshed: Array<number | null> = [];
  c.on("refreshed", (r) => refreshed.push(r.expiresAt));
  await until(c, "a refresh", () => refreshed.length === 1);
  assert.equal(calls, 2);
  assert.ok(refreshed[0]! > Date.now() + 500000, "the server runs on the new token's expiry");
  assert.equal(c.status, "open");
});

test("publishes made offline are drained once on connect: each delivered exactly once, all acked", async () => {
  const s = await server();
  const watcher = client(s.wsUrl).connect();
  const seen = new Map<string, number>();
  watcher.on("message", (m) => seen.set(m.id, (seen.get(m.id) ?? 0) + 1));
  await watcher.subscribe("jobs").ready();
  const offline = client(s.wsUrl);
  const publishes = Array.from({ length: 40 }, (_, i) =>
    offline.publish("jobs", "job.created", { i }, { priority: (["low", "normal", "high", "critical"] as const)[i % 4] }),
  );
  assert.equal(offline.queueSize, 40);
  offline.connect();
  const acks = await Promise.all(publishes);
  await until(watcher, "40 messages", () => seen.size === 40);
  assert.deepEqual([...seen.values()].filter((n) => n !== 1), [], "no message twice");
  assert.deepEqual(new Set(acks.map((a) => a.id)), new Set(publishes.map((p) => p.id)));
  assert.equal(offline.queueSize, 0);
});

test("across a server restart the subscriber recovers what it missed, exactly once (Redis backplane)", async () => {
  const redis = await startRedis();
  try {
    const first = await server({ REDIS_URL: redis.url });
    const other = await server({ REDIS_URL: redis.url });
    const reader = client(first.wsUrl).connect();
    const got: number[] = [];
    const resets: unknown[] = [];
    reader.on("message", (m) => got.push(m.payload as number));
    reader.on("reset", (r) => resets.push(r));
    await reader.subscribe("news").ready();
    const writer = client(other.wsUrl).connect();
    await writer.publish("news", "n", 1);
    await until(reader, "message 1", () => got.length === 1);
    await first.stop({ kill: true });
    await status(reader, "reconnecting");
    for (let i = 2; i <= 6; i++) await writer.publish("news", "n", i);
    await server({ REDIS_URL: redis.url, PORT: String(first.port) });
    await status(reader, "open");
    await writer.publish("news", "n", 7);
    await until(reader, "7 messages", () => got.length === 7);
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(resets, []);
  } finally {
    await redis.stop();
  }
});

test("when history is gone (memory backplane restarted), the loss is surfaced as reset", async () => {
  const s = await server();
  const reader = client(s.wsUrl).connect();
  const resets: Array<{ channel: string }> = [];
  reader.on("reset", (r) => resets.push(r));
  await reader.subscribe("news").ready();
  const writer = client(s.wsUrl).connect();
  await writer.publish("news", "n", 1);
  await s.stop({ kill: true });
  await server({ PORT: String(s.port) });
  await until(reader, "a reset", () => resets.length === 1);
  assert.equal(resets[0]!.channel, "news");
});

test("presence: members are listed and kept live", async () => {
  const s = await server();
  const a = client(s.wsUrl).connect();
  const b = client(s.wsUrl).connect();
  await a.subscribe("lobby").ready();
  await b.subscribe("lobby").ready();
  let members: string[] = [];
  let changed = () => {};
  a.watchPresence("lobby", (list) => {
    members = list.map((m) => String(m.meta?.["name"]));
    changed();
  });
  const listed = (what: string, predicate: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; members: ${members}`)), WAIT_MS);
      changed = () => {
        if (predicate()) {
          clearTimeout(timer);
          resolve();
        }
      };
      changed();
    });
  a.setPresence({ status: "online", meta: { name: "a" } });
  b.setPresence({ status: "online", meta: { name: "b" } });
  await listed("two members", () => members.length === 2);
  assert.deepEqual([...members].sort(), ["a", "b"]);
  b.close();
  await listed("one member", () => members.length === 1);
  assert.deepEqual(members, ["a"]);
});
