/*!
 * switchboard client.js: a dependency-free browser client for switchboard Protocol v1.
 *
 * - Reconnects with exponential backoff and full jitter; re-subscribes every channel with
 *   `since` so missed messages are recovered, and re-announces presence.
 * - Queues publishes while offline (and until they are acknowledged) in localStorage, with
 *   priorities: when the queue is full the least important, oldest message is dropped; on
 *   reconnect the most important are sent first.
 * - Measures connection quality with application-level pings: latency, loss and a class.
 *
 * Usage:
 *   const client = new SwitchboardClient("wss://example.com/ws", { token: () => getJwt() });
 *   client.on("message", (m) => console.log(m.channel, m.type, m.payload));
 *   client.subscribe("tasks:updates");
 *   client.publish("tasks:updates", "task-status-changed", { taskId: 7 }, { priority: "high" });
 *   client.connect();
 *
 * Events (client.on(name, fn) returns a function that removes the listener):
 *   state    {state, attempt, delayMs, code}  connecting | open | reconnecting | closed
 *   welcome  the welcome frame
 *   subscribed, unsubscribed                  the server's frames
 *   message  an application message {type, channel, payload, id, offset, from, ...}
 *   presence a presence-update {channel, action, member}
 *   ack      {id, offset, frame}              a queued publish was delivered
 *   failed   {id, error, frame}               the server refused a publish (not retried)
 *   error    an error frame that answered no publish
 *   reset    {channel, epoch}                 recovery was impossible: history was lost
 *                                            (with {history: true} the kept history is
 *                                            reloaded; a message may then arrive twice:
 *                                            deduplicate by id)
 *   gap      {channel, expected, got}         a message was evicted on the way (slow link)
 *   quality  {latencyMs, loss, class}
 *   queue    {size}                           the offline queue changed
 *
 * MIT OR Apache-2.0. Copy it into your application freely.
 */
(function (global) {
  "use strict";

  var PRIORITY_RANK = { low: 0, normal: 1, high: 2, critical: 3 };
  var QUALITY_WINDOW = 20;

  function randomId(prefix) {
    if (global.crypto && typeof global.crypto.randomUUID === "function") {
      return prefix + global.crypto.randomUUID();
    }
    return prefix + Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
  }

  function defaultStorage() {
    try {
      var probe = "switchboard:probe";
      global.localStorage.setItem(probe, probe);
      global.localStorage.removeItem(probe);
      return global.localStorage;
    } catch (e) {
      return null;
    }
  }

  /** A key unique to this tab that survives reloads: queues are per tab, not per origin. */
  function tabKey() {
    try {
      var key = global.sessionStorage.getItem("switchboard:tab");
      if (!key) {
        key = randomId("t-");
        global.sessionStorage.setItem("switchboard:tab", key);
      }
      return key;
    } catch (e) {
      return "default";
    }
  }

  /**
   * @param {string} url  ws:// or wss:// URL of the /ws endpoint.
   * @param {object} [options]
   * @param {string|function():(string|Promise<string>)} [options.token]  a JWT, or a function
   *        returning one (called before each connection, so it can be refreshed).
   * @param {number} [options.backoffInitialMs=500]  first reconnect delay cap.
   * @param {number} [options.backoffMaxMs=10000]    largest reconnect delay cap.
   * @param {number} [options.pingIntervalMs=5000]   how often quality is probed.
   * @param {number} [options.pingTimeoutMs=5000]    a ping unanswered for this long is lost.
   * @param {number} [options.deadAfterLostPings=3]  consecutive lost pings that close the socket.
   * @param {number} [options.queueMax=500]          most queued publishes.
   * @param {string} [options.queueKey]              localStorage key of the queue (default per tab).
   * @param {Storage|null} [options.storage]         where the queue persists (default localStorage).
   */
  function SwitchboardClient(url, options) {
    options = options || {};
    this.url = url;
    this.options = {
      token: options.token,
      backoffInitialMs: options.backoffInitialMs || 500,
      backoffMaxMs: options.backoffMaxMs || 10000,
      pingIntervalMs: options.pingIntervalMs || 5000,
      pingTimeoutMs: options.pingTimeoutMs || 5000,
      deadAfterLostPings: options.deadAfterLostPings || 3,
      queueMax: options.queueMax || 500,
      queueKey: options.queueKey || "switchboard:queue:" + tabKey(),
      storage: options.storage === undefined ? defaultStorage() : options.storage,
    };
    this.state = "idle";
    this.connectionId = null;
    this.userId = null;
    this._listeners = {};
    this._channels = new Map(); // channel -> {offset, epoch, history, resyncing}
    this._presence = null; // the last presence announcement, re-sent on reconnect
    this._queue = this._loadQueue(); // [{frame, priority, seq, sent}]
    // This client instance's id, sent on every connection: the server recognises a retried
    // publish id only from the same client. Kept beside the queue, so publishes restored
    // after a reload keep their scope.
    this.clientId = this._loadClientId();
    this._seq = this._queue.reduce(function (m, e) { return Math.max(m, e.seq); }, 0);
    this._requests = new Map(); // request id -> {resolve, reject}
    this._awaitingSubs = new Set(); // subscribe ids sent on connect, not answered yet
    this._pings = new Map(); // ping id -> {sentAt, timer}
    this._samples = []; // recent probes: {ok, rtt}
    this._lostInARow = 0;
    this._attempt = 0;
    this._ws = null;
    this._timer = null;
    this._pingTimer = null;
    this._stopped = true;
    this.quality = { latencyMs: null, loss: 0, class: "offline" };
    var self = this;
    this._onOnline = function () {
      if (!self._stopped && self.state === "reconnecting") {
        self._open();
      }
    };
  }

  SwitchboardClient.prototype.on = function (event, fn) {
    var set = this._listeners[event] || (this._listeners[event] = new Set());
    set.add(fn);
    return function () { set.delete(fn); };
  };

  SwitchboardClient.prototype._emit = function (event, data) {
    var set = this._listeners[event];
    if (!set) return;
    set.forEach(function (fn) {
      try { fn(data); } catch (e) { setTimeout(function () { throw e; }); }
    });
  };

  /** Opens the connection (and keeps it open until close()). */
  SwitchboardClient.prototype.connect = function () {
    if (!this._stopped) return this;
    this._stopped = false;
    if (global.addEventListener) global.addEventListener("online", this._onOnline);
    this._open();
    return this;
  };

  /** Closes the connection and stops reconnecting. Queued messages stay queued. */
  SwitchboardClient.prototype.close = function () {
    this._stopped = true;
    if (global.removeEventListener) global.removeEventListener("online", this._onOnline);
    clearTimeout(this._timer);
    this._stopPings();
    if (this._ws) {
      var ws = this._ws;
      this._ws = null;
      ws.close(1000, "client closed");
    }
    this._setState("closed", {});
  };

  SwitchboardClient.prototype._setState = function (state, extra) {
    this.state = state;
    var info = { state: state };
    for (var k in extra) info[k] = extra[k];
    this._emit("state", info);
    this._updateQuality();
  };

  SwitchboardClient.prototype._open = function () {
    var self = this;
    clearTimeout(this._timer);
    this._setState("connecting", { attempt: this._attempt });
    var token = this.options.token;
    Promise.resolve(typeof token === "function" ? token() : token)
      .then(function (value) {
        if (self._stopped) return;
        var url = self.url + (self.url.indexOf("?") < 0 ? "?" : "&") + "client=" + self.clientId;
        if (value) url += "&token=" + encodeURIComponent(value);
        var ws;
        try {
          ws = new global.WebSocket(url);
        } catch (e) {
          self._scheduleReconnect(null);
          return;
        }
        self._ws = ws;
        ws.onmessage = function (event) {
          if (self._ws === ws) self._receive(event.data);
        };
        ws.onclose = function (event) {
          if (self._ws !== ws) return;
          self._ws = null;
          self._stopPings();
          self._scheduleReconnect(event.code);
        };
        ws.onerror = function () { /* onclose follows */ };
      })
      .catch(function () { self._scheduleReconnect(null); });
  };

  SwitchboardClient.prototype._scheduleReconnect = function (code) {
    if (this._stopped) return;
    if (code === 4003) {
      // Disconnected by the server on purpose: coming back on our own would undo it.
      this._stopped = true;
      if (global.removeEventListener) global.removeEventListener("online", this._onOnline);
      this._requests.forEach(function (r) { r.reject(new Error("disconnected by server")); });
      this._requests.clear();
      this._setState("closed", { code: code });
      return;
    }
    // Sent messages that were not acknowledged go out again on the next connection.
    this._queue.forEach(function (e) { e.sent = false; });
    this._requests.forEach(function (r) { r.reject(new Error("connection lost")); });
    this._requests.clear();
    // Full jitter: a random delay below an exponentially growing cap, so a whole audience
    // disconnected at once does not come back at once. Abuse (1008) waits the longest.
    var cap = Math.min(
      this.options.backoffMaxMs,
      this.options.backoffInitialMs * Math.pow(2, this._attempt)
    );
    if (code === 1008) cap = this.options.backoffMaxMs;
    var delay = Math.floor(Math.random() * cap);
    this._attempt = Math.min(this._attempt + 1, 30);
    var self = this;
    this._setState("reconnecting", { attempt: this._attempt, delayMs: delay, code: code });
    this._timer = setTimeout(function () { self._open(); }, delay);
  };

  SwitchboardClient.prototype._send = function (frame) {
    if (!this._ws || this._ws.readyState !== 1 || this.state !== "open") return false;
    this._ws.send(JSON.stringify(frame));
    return true;
  };

  SwitchboardClient.prototype._receive = function (text) {
    var frame;
    try { frame = JSON.parse(text); } catch (e) { return; }
    switch (frame.type) {
      case "welcome": return this._onWelcome(frame);
      case "pong": return this._onPong(frame);
      case "subscribed": return this._onSubscribed(frame);
      case "unsubscribed": return this._settle(frame.id, frame, "unsubscribed");
      case "ack": return this._onAck(frame);
      case "excluded": return this._onExcluded(frame);
      case "error": return this._onError(frame);
      case "presence": return this._settle(frame.id, frame, null);
      case "presence-update": return this._emit("presence", frame);
      default: return this._onMessage(frame);
    }
  };

  SwitchboardClient.prototype._onWelcome = function (frame) {
    this.connectionId = frame.connectionId;
    this.userId = frame.userId;
    this._attempt = 0;
    this._setState("open", {});
    this._emit("welcome", frame);
    var self = this;
    // Presence is announced once every channel has answered (and any history reload is on
    // its way), so a reload never shows the others a leave and a join.
    this._awaitingSubs = new Set();
    this._channels.forEach(function (st, channel) {
      self._awaitingSubs.add(self._sendSubscribe(channel, st));
    });
    if (this._awaitingSubs.size === 0) this._announce();
    this._flush();
    this._startPings();
  };

  SwitchboardClient.prototype._sendSubscribe = function (channel, st) {
    var frame = { type: "subscribe", channel: channel, id: randomId("s-") };
    if (st.epoch !== null) frame.since = { offset: st.offset, epoch: st.epoch };
    st.asked = !!frame.since;
    this._send(frame);
    return frame.id;
  };

  SwitchboardClient.prototype._announce = function () {
    if (this._presence) this._send(this._presence);
  };

  SwitchboardClient.prototype._subscribeAnswered = function (id) {
    if (this._awaitingSubs.delete(id) && this._awaitingSubs.size === 0) this._announce();
  };

  SwitchboardClient.prototype._onSubscribed = function (frame) {
    var st = this._channels.get(frame.channel);
    if (st) {
      var lost = st.asked && !frame.recovered;
      var fresh = st.epoch === null;
      // When recovered, the missed messages follow and advance the offset themselves.
      if (!frame.recovered) st.offset = frame.offset;
      st.epoch = frame.epoch;
      if (st.resyncing) {
        // The history follows from the start; a live message that arrived just before may
        // come again with it (same id).
        st.resyncing = false;
        if (frame.recovered) st.offset = 0;
      } else if (lost) {
        this._emit("reset", { channel: frame.channel, epoch: frame.epoch });
        if (st.history) this._resync(frame.channel, st);
      } else if (fresh && st.history && frame.offset > 0) {
        this._resync(frame.channel, st);
      }
    }
    this._emit("subscribed", frame);
    this._subscribeAnswered(frame.id);
  };

  /** Re-subscribes from the start of the current epoch's history (what is still kept). */
  SwitchboardClient.prototype._resync = function (channel, st) {
    st.resyncing = true;
    st.offset = 0;
    this._send({ type: "unsubscribe", channel: channel });
    this._send({ type: "subscribe", channel: channel, since: { offset: 0, epoch: st.epoch } });
  };

  /** An offset this connection was excluded from (excludeSelf): the position moves on. */
  SwitchboardClient.prototype._onExcluded = function (frame) {
    var st = this._channels.get(frame.channel);
    if (st && typeof frame.offset === "number") {
      if (st.resyncing || frame.offset === st.offset + 1) st.offset = Math.max(st.offset, frame.offset);
      else if (frame.offset > st.offset + 1) {
        this._emit("gap", { channel: frame.channel, expected: st.offset + 1, got: frame.offset });
        st.offset = frame.offset;
      }
    }
  };

  SwitchboardClient.prototype._onMessage = function (frame) {
    var st = this._channels.get(frame.channel);
    if (st && typeof frame.offset === "number" && st.resyncing) {
      st.offset = Math.max(st.offset, frame.offset);
    } else if (st && typeof frame.offset === "number") {
      if (frame.offset <= st.offset) return; // already seen (recovery overlap)
      if (frame.offset > st.offset + 1 && !st.resyncing) {
        this._emit("gap", { channel: frame.channel, expected: st.offset + 1, got: frame.offset });
      }
      st.offset = frame.offset;
    }
    this._emit("message", frame);
  };

  SwitchboardClient.prototype._onAck = function (frame) {
    var index = this._queue.findIndex(function (e) { return e.frame.id === frame.id; });
    if (index >= 0) {
      var entry = this._queue.splice(index, 1)[0];
      this._saveQueue();
      this._emit("ack", { id: frame.id, offset: frame.offset, frame: entry.frame });
    } else {
      this._emit("ack", { id: frame.id, offset: frame.offset, frame: null });
    }
  };

  SwitchboardClient.prototype._onError = function (frame) {
    this._subscribeAnswered(frame.id);
    var index = frame.id == null ? -1 : this._queue.findIndex(function (e) { return e.frame.id === frame.id; });
    if (index >= 0) {
      var entry = this._queue[index];
      if (frame.code === "rate_limited" || frame.code === "unavailable") {
        // Not delivered, not refused: send it again later.
        entry.sent = false;
        var self = this;
        setTimeout(function () { self._flush(); }, frame.retryAfterMs || 1000);
        return;
      }
      this._queue.splice(index, 1);
      this._saveQueue();
      this._emit("failed", { id: frame.id, error: frame, frame: entry.frame });
      return;
    }
    if (this._settle(frame.id, frame, "error")) return;
    this._emit("error", frame);
  };

  SwitchboardClient.prototype._settle = function (id, frame, failType) {
    var request = id == null ? null : this._requests.get(id);
    if (!request) return false;
    this._requests.delete(id);
    if (failType === "error") request.reject(frame);
    else request.resolve(frame);
    return true;
  };

  /**
   * Subscribes to `channel` now and after every reconnect, recovering missed messages.
   * With {history: true}, also loads what the server still keeps of the channel's history,
   * and reloads it when recovery is impossible.
   */
  SwitchboardClient.prototype.subscribe = function (channel, opts) {
    if (!this._channels.has(channel)) {
      var st = { offset: 0, epoch: null, history: !!(opts && opts.history), asked: false, resyncing: false };
      this._channels.set(channel, st);
      this._sendSubscribe(channel, st);
    }
    return this;
  };

  SwitchboardClient.prototype.unsubscribe = function (channel) {
    if (this._channels.delete(channel)) this._send({ type: "unsubscribe", channel: channel });
    return this;
  };

  /**
   * Publishes an event. It is queued (and persisted) until the server acknowledges it, so a
   * message sent while offline is delivered after reconnecting. Returns the message id.
   * @param {object} [opts] {priority: "low"|"normal"|"high"|"critical", id, excludeSelf}
   *   excludeSelf: every subscriber but this connection receives it.
   */
  SwitchboardClient.prototype.publish = function (channel, type, payload, opts) {
    opts = opts || {};
    var priority = PRIORITY_RANK.hasOwnProperty(opts.priority) ? opts.priority : "normal";
    var frame = { type: type, channel: channel, payload: payload === undefined ? null : payload, id: opts.id || randomId("m-"), priority: priority };
    if (opts.excludeSelf) frame.excludeSelf = true;
    this._enqueue({ frame: frame, priority: priority, seq: ++this._seq, sent: false });
    this._flush();
    return frame.id;
  };

  SwitchboardClient.prototype._enqueue = function (entry) {
    this._queue.push(entry);
    while (this._queue.length > this.options.queueMax) {
      // Evict the least important, oldest message that has not been sent.
      var victim = -1;
      for (var i = 0; i < this._queue.length; i++) {
        var e = this._queue[i];
        if (e.sent || e.priority === "critical") continue;
        if (victim < 0 || PRIORITY_RANK[e.priority] < PRIORITY_RANK[this._queue[victim].priority]) victim = i;
      }
      if (victim < 0) break;
      var dropped = this._queue.splice(victim, 1)[0];
      this._emit("failed", { id: dropped.frame.id, error: { code: "queue_full" }, frame: dropped.frame });
    }
    this._saveQueue();
  };

  /** Sends queued messages, most important first, oldest first within a priority. */
  SwitchboardClient.prototype._flush = function () {
    if (this.state !== "open") return;
    var waiting = this._queue.filter(function (e) { return !e.sent; });
    waiting.sort(function (a, b) {
      return PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority] || a.seq - b.seq;
    });
    for (var i = 0; i < waiting.length; i++) {
      if (!this._send(waiting[i].frame)) break;
      waiting[i].sent = true;
    }
  };

  /** Messages not yet acknowledged, in the order they will be sent. */
  SwitchboardClient.prototype.queued = function () {
    return this._queue.map(function (e) { return { frame: e.frame, sent: e.sent }; });
  };

  SwitchboardClient.prototype._loadQueue = function () {
    var storage = this.options.storage;
    if (!storage) return [];
    try {
      var saved = JSON.parse(storage.getItem(this.options.queueKey) || "[]");
      return Array.isArray(saved)
        ? saved.filter(function (e) { return e && e.frame && e.frame.id; }).map(function (e) { e.sent = false; return e; })
        : [];
    } catch (e) {
      return [];
    }
  };

  /** This client's id ([A-Za-z0-9_-], at most 64): the stored one, else a new random one. */
  SwitchboardClient.prototype._loadClientId = function () {
    var storage = this.options.storage;
    var key = "switchboard:client:" + this.options.queueKey;
    try {
      var saved = storage && storage.getItem(key);
      if (saved && /^[A-Za-z0-9_-]{1,64}$/.test(saved)) return saved;
    } catch (e) { /* a new id below */ }
    var id = randomId("c");
    try {
      if (storage) storage.setItem(key, id);
    } catch (e) { /* kept for this page only */ }
    return id;
  };

  SwitchboardClient.prototype._saveQueue = function () {
    var storage = this.options.storage;
    if (storage) {
      try {
        if (this._queue.length) {
          storage.setItem(this.options.queueKey, JSON.stringify(this._queue.map(function (e) {
            return { frame: e.frame, priority: e.priority, seq: e.seq };
          })));
        } else {
          storage.removeItem(this.options.queueKey);
        }
      } catch (e) { /* storage full or denied: the queue still lives in memory */ }
    }
    this._emit("queue", { size: this._queue.length });
  };

  /**
   * Announces presence: on `channel`, or (without one) on every subscribed channel, now and
   * after reconnects. {status, currentFeature, meta, channel}
   */
  SwitchboardClient.prototype.setPresence = function (presence) {
    var frame = { type: "presence-update" };
    for (var k in presence) frame[k] = presence[k];
    if (!frame.channel) this._presence = frame;
    this._send(frame);
  };

  /** The members of `channel`: a promise of the `presence` frame's members. */
  SwitchboardClient.prototype.presence = function (channel) {
    var id = randomId("p-");
    var self = this;
    return new Promise(function (resolve, reject) {
      self._requests.set(id, {
        resolve: function (frame) { resolve(frame.members); },
        reject: reject,
      });
      if (!self._send({ type: "presence", channel: channel, id: id })) {
        self._requests.delete(id);
        reject(new Error("not connected"));
      }
    });
  };

  SwitchboardClient.prototype._startPings = function () {
    var self = this;
    this._stopPings();
    this._ping();
    this._pingTimer = setInterval(function () { self._ping(); }, this.options.pingIntervalMs);
  };

  SwitchboardClient.prototype._stopPings = function () {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    this._pings.forEach(function (p) { clearTimeout(p.timer); });
    this._pings.clear();
  };

  SwitchboardClient.prototype._ping = function () {
    var id = randomId("q-");
    var self = this;
    var sentAt = global.performance ? global.performance.now() : Date.now();
    var timer = setTimeout(function () {
      if (!self._pings.delete(id)) return;
      self._sample(false, null);
      self._lostInARow += 1;
      if (self._lostInARow >= self.options.deadAfterLostPings && self._ws) {
        // The socket looks open but nothing comes back (a half-open TCP connection, a
        // suspended laptop): drop it and reconnect.
        var ws = self._ws;
        self._ws = null;
        self._stopPings();
        try { ws.close(4000, "no pong"); } catch (e) { /* already closing */ }
        self._scheduleReconnect(null);
      }
    }, this.options.pingTimeoutMs);
    this._pings.set(id, { sentAt: sentAt, timer: timer });
    if (!this._send({ type: "ping", id: id, timestamp: Date.now() })) {
      clearTimeout(timer);
      this._pings.delete(id);
    }
  };

  SwitchboardClient.prototype._onPong = function (frame) {
    var ping = this._pings.get(frame.id);
    if (!ping) return;
    this._pings.delete(frame.id);
    clearTimeout(ping.timer);
    this._lostInARow = 0;
    var now = global.performance ? global.performance.now() : Date.now();
    this._sample(true, now - ping.sentAt);
  };

  SwitchboardClient.prototype._sample = function (ok, rtt) {
    this._samples.push({ ok: ok, rtt: rtt });
    if (this._samples.length > QUALITY_WINDOW) this._samples.shift();
    this._updateQuality();
  };

  SwitchboardClient.prototype._updateQuality = function () {
    var samples = this._samples;
    var answered = samples.filter(function (s) { return s.ok; }).map(function (s) { return s.rtt; });
    var loss = samples.length ? (samples.length - answered.length) / samples.length : 0;
    var latency = null;
    if (answered.length) {
      answered.sort(function (a, b) { return a - b; });
      latency = Math.round(answered[Math.floor(answered.length / 2)]);
    }
    var quality;
    if (this.state !== "open") quality = "offline";
    else if (latency === null) quality = "unknown";
    else if (latency < 100 && loss === 0) quality = "excellent";
    else if (latency < 300 && loss < 0.05) quality = "good";
    else if (latency < 1000 && loss < 0.2) quality = "fair";
    else quality = "poor";
    this.quality = { latencyMs: latency, loss: loss, class: quality };
    this._emit("quality", this.quality);
  };

  global.SwitchboardClient = SwitchboardClient;
  if (typeof module === "object" && module.exports) module.exports = SwitchboardClient;
})(typeof window !== "undefined" ? window : globalThis);
