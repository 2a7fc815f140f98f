// A Node.js peer for benchmarks: the subset of Switchboard Protocol v1 that loadgen uses
// (welcome, subscribe, unsubscribe, ping, publish -> deliver + ack), over the `ws` package.
//
// PORT (default 0: any free port) and HOST (default 127.0.0.1) come from the environment.
// Prints `listening on ws://HOST:PORT/ws` once listening; exits 0 on SIGTERM or SIGINT.
//
// What a fair, optimized peer does: each publish is encoded once and the same bytes are
// written to every subscriber; no compression; no per-subscriber JSON work.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';

const HOST = process.env.HOST || '127.0.0.1';
const PORT = parseNonNegativeInt(process.env.PORT ?? '0', 'PORT');
const MAX_MESSAGE_BYTES = 64 * 1024;
const HEARTBEAT_MS = 30000;

const SERVER_ONLY = new Set(['welcome', 'subscribed', 'unsubscribed', 'ack', 'pong', 'error']);
const PRIORITIES = new Set(['critical', 'high', 'normal', 'low']);
const TEXT = { binary: false };

/** channel -> Set of sockets subscribed to it. */
const subscribers = new Map();
/** channel -> offset of its latest message (0 when none yet). */
const offsets = new Map();

const idPrefix = randomBytes(3).toString('hex');
let nextConnection = 0;
let nextMessage = 0;

function parseNonNegativeInt(text, name) {
  if (!/^\d+$/.test(text) || Number(text) > 65535) {
    console.error(`node-ws peer: ${name} must be a port number (0-65535), got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return Number(text);
}

function isChannel(value) {
  return typeof value === 'string' && value.length > 0 && value.length <= 255;
}

function sendJson(ws, frame) {
  if (ws.readyState === 1) ws.send(JSON.stringify(frame), TEXT);
}

function sendError(ws, code, message, id) {
  sendJson(ws, { type: 'error', code, message, id });
}

function unsubscribeAll(ws) {
  for (const channel of ws.channels) {
    const set = subscribers.get(channel);
    if (set === undefined) continue;
    set.delete(ws);
    if (set.size === 0) subscribers.delete(channel);
  }
  ws.channels.clear();
}

function handle(ws, data, isBinary) {
  if (isBinary) {
    sendError(ws, 'unsupported', 'binary frames are not supported');
    return;
  }
  let msg;
  try {
    msg = JSON.parse(data.toString());
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
      if (!ws.channels.has(channel)) {
        let set = subscribers.get(channel);
        if (set === undefined) subscribers.set(channel, (set = new Set()));
        set.add(ws);
        ws.channels.add(channel);
      }
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
      if (!ws.channels.delete(channel)) {
        return sendError(ws, 'not_subscribed', `not subscribed to ${channel}`, id);
      }
      const set = subscribers.get(channel);
      if (set !== undefined) {
        set.delete(ws);
        if (set.size === 0) subscribers.delete(channel);
      }
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
        from: { userId: null, connectionId: ws.connectionId },
        offset,
      });
      if (id !== undefined) sendJson(ws, { type: 'ack', id, offset });
      const set = subscribers.get(channel);
      if (set !== undefined) {
        // One encoding, one buffer, shared by every subscriber's write.
        const bytes = Buffer.from(frame);
        for (const sub of set) {
          if (sub.readyState === 1) sub.send(bytes, TEXT);
        }
      }
    }
  }
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end('{"error":"not_found","message":"WebSocket endpoint is /ws"}');
});

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  maxPayload: MAX_MESSAGE_BYTES,
});

httpServer.on('upgrade', (req, socket, head) => {
  const q = req.url.indexOf('?');
  const path = q === -1 ? req.url : req.url.slice(0, q);
  if (path !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', (ws) => {
  ws.connectionId = `c-${idPrefix}${(nextConnection++).toString(36)}`;
  ws.channels = new Set();
  ws.on('message', (data, isBinary) => handle(ws, data, isBinary));
  ws.on('close', () => unsubscribeAll(ws));
  ws.on('error', () => {});
  sendJson(ws, {
    type: 'welcome',
    connectionId: ws.connectionId,
    userId: null,
    heartbeatMs: HEARTBEAT_MS,
    timestamp: Date.now(),
  });
});

httpServer.on('error', (err) => {
  console.error(`node-ws peer: cannot listen on ${HOST}:${PORT}: ${err.message}`);
  process.exit(1);
});

httpServer.listen({ host: HOST, port: PORT, backlog: 4096 }, () => {
  const { address, port } = httpServer.address();
  const host = address.includes(':') ? `[${address}]` : address;
  console.log(`listening on ws://${host}:${port}/ws`);
});

function shutdown(signal) {
  for (const ws of wss.clients) ws.terminate();
  httpServer.close();
  console.log(`node-ws peer: ${signal}, exiting`);
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
