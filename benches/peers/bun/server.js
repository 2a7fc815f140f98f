// A Bun peer for benchmarks: the subset of Switchboard Protocol v1 that loadgen uses
// (welcome, subscribe, unsubscribe, ping, publish -> deliver + ack), over Bun.serve and its
// native (uWebSockets) topic pub/sub.
//
// PORT (default 0: any free port) and HOST (default 127.0.0.1) come from the environment.
// Prints `listening on ws://HOST:PORT/ws` once listening; exits 0 on SIGTERM or SIGINT.
//
// Each publish is encoded once and handed to `server.publish`, which writes the same bytes to
// every subscriber of the topic, the publisher included when it is subscribed (unlike
// `ws.publish`, which skips the publisher unless `publishToSelf` is set).

import { randomBytes } from 'node:crypto';

const HOST = process.env.HOST || '127.0.0.1';
const PORT = parsePort(process.env.PORT ?? '0');
const MAX_MESSAGE_BYTES = 64 * 1024;
const HEARTBEAT_MS = 30000;

const SERVER_ONLY = new Set(['welcome', 'subscribed', 'unsubscribed', 'ack', 'pong', 'error']);
const PRIORITIES = new Set(['critical', 'high', 'normal', 'low']);

/** channel -> offset of its latest message (0 when none yet). */
const offsets = new Map();

const idPrefix = randomBytes(3).toString('hex');
let nextConnection = 0;
let nextMessage = 0;

function parsePort(text) {
  if (!/^\d+$/.test(text) || Number(text) > 65535) {
    console.error(`bun peer: PORT must be a port number (0-65535), got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return Number(text);
}

function isChannel(value) {
  return typeof value === 'string' && value.length > 0 && value.length <= 255;
}

function sendJson(ws, frame) {
  ws.send(JSON.stringify(frame));
}

function sendError(ws, code, message, id) {
  sendJson(ws, { type: 'error', code, message, id });
}

function handle(ws, data) {
  if (typeof data !== 'string') {
    sendError(ws, 'unsupported', 'binary frames are not supported');
    return;
  }
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    sendError(ws, 'bad_request', 'invalid JSON');
    return;
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.type !== 'string') {
    sendError(ws, 'bad_request', 'a frame is a JSON object with a string "type"');
    return;
  }
  const { type, channel, id } = msg;
  switch (type) {
    case 'subscribe': {
      if (!isChannel(channel)) return sendError(ws, 'bad_request', 'invalid channel', id);
      ws.subscribe(channel);
      return sendJson(ws, {
        type: 'subscribed',
        channel,
        id,
        offset: offsets.get(channel) ?? 0,
        epoch: 'peer',
        recovered: false,
      });
    }
    case 'unsubscribe': {
      if (!isChannel(channel)) return sendError(ws, 'bad_request', 'invalid channel', id);
      if (!ws.isSubscribed(channel)) {
        return sendError(ws, 'not_subscribed', `not subscribed to ${channel}`, id);
      }
      ws.unsubscribe(channel);
      return sendJson(ws, { type: 'unsubscribed', channel, id });
    }
    case 'ping':
      return sendJson(ws, { type: 'pong', id, timestamp: msg.timestamp, serverTime: Date.now() });
    default: {
      if (SERVER_ONLY.has(type)) return sendError(ws, 'bad_request', `${type} is a server-only type`, id);
      if (!isChannel(channel)) return sendError(ws, 'bad_request', 'invalid channel', id);
      if (!('payload' in msg)) return sendError(ws, 'bad_request', 'a publish needs a payload', id);
      if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 128)) {
        return sendError(ws, 'bad_request', 'invalid id');
      }
      const offset = (offsets.get(channel) ?? 0) + 1;
      offsets.set(channel, offset);
      const frame = JSON.stringify({
        type,
        channel,
        payload: msg.payload,
        id: id ?? `m-${idPrefix}-${(nextMessage++).toString(36)}`,
        timestamp: Date.now(),
        priority: PRIORITIES.has(msg.priority) ? msg.priority : 'normal',
        from: { userId: null, connectionId: ws.data.connectionId },
        offset,
      });
      if (id !== undefined) sendJson(ws, { type: 'ack', id, offset });
      server.publish(channel, frame);
    }
  }
}

const server = Bun.serve({
  hostname: HOST,
  port: PORT,
  fetch(req, srv) {
    const url = new URL(req.url);
    if (url.pathname === '/ws') {
      const connectionId = `c-${idPrefix}${(nextConnection++).toString(36)}`;
      if (srv.upgrade(req, { data: { connectionId } })) return undefined;
      return new Response('{"error":"bad_request","message":"not a WebSocket upgrade"}', {
        status: 400,
        headers: { 'content-type': 'application/json' },
      });
    }
    return new Response('{"error":"not_found","message":"WebSocket endpoint is /ws"}', {
      status: 404,
      headers: { 'content-type': 'application/json' },
    });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: MAX_MESSAGE_BYTES,
    // Idle connections are part of the benchmarks: never close them for idleness (the
    // default is 120 s); automatic pings stay on, as switchboard's heartbeats do.
    idleTimeout: 0,
    open(ws) {
      sendJson(ws, {
        type: 'welcome',
        connectionId: ws.data.connectionId,
        userId: null,
        heartbeatMs: HEARTBEAT_MS,
        timestamp: Date.now(),
      });
    },
    message: handle,
  },
});

console.log(`listening on ws://${server.hostname}:${server.port}/ws`);

function shutdown(signal) {
  server.stop(true);
  console.log(`bun peer: ${signal}, exiting`);
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
