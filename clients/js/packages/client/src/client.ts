import { type Backoff, RECONNECT_BACKOFF, backoffDelay } from "./backoff.js";
import { type Clock, systemClock } from "./clock.js";
import { Emitter } from "./emitter.js";
import {
  type ErrorFrame,
  type Json,
  type Member,
  type Message,
  type Priority,
  type PresenceUpdateFrame,
  type SubscribedFrame,
  type UnsubscribedFrame,
  type WelcomeFrame,
  isPriority,
  isRetryable,
  isValidChannel,
  isValidEventType,
} from "./protocol.js";
import { type PublishFrame, type QueueOptions, type QueuedPublish, type StorageLike, OfflineQueue, QUEUE_DEFAULTS } from "./queue.js";
import { type Quality, type QualityOptions, QUALITY_DEFAULTS, QualityTracker, offlineQuality } from "./quality.js";

/** Where the client is in its life. */
export type Status = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** A change of {@link Status}, with what caused it. */
export interface StatusChange {
  status: Status;
  /** The reconnect attempt about to be made (1 for the first retry); 0 otherwise. */
  attempt: number;
  /** With `"reconnecting"`: how long the client waits before the attempt, ms. */
  delayMs?: number;
  /** The close code that ended the last connection, when there was one (1006: no close frame). */
  code?: number;
  /** The close reason, or why the client gave up the connection itself. */
  reason?: string;
}

/** A token, or a function returning one, called before every connection attempt and before expiry. */
export type TokenSource =
  | string
  | null
  | undefined
  | (() => string | null | undefined | Promise<string | null | undefined>);

/** The part of the WebSocket API the client uses: the browser's, Node ≥ 22's (or Node 20's with `--experimental-websocket`), or `ws`'s. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket constructor. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The client's own heartbeat: a `ping` frame every `intervalMs`, to measure and to detect a dead link. */
export interface HeartbeatOptions {
  /** Between pings. Default 10000 ms (quality is checked every 10 s). */
  intervalMs: number;
  /** A ping not answered within this time is lost. Default 5000 ms. */
  timeoutMs: number;
  /** After this many lost pings in a row the connection is replaced; 0 only measures. Default 3. */
  deadAfter: number;
}

/** Settings of a {@link SwitchboardClient}; every field is optional. */
export interface ClientOptions {
  /**
   * The JWT, or a function returning it (called before every connection attempt, and at 4/5
   * of the token's remaining life to refresh it on the open connection). Omit it for a
   * server in open mode.
   */
  token?: TokenSource;
  /**
   * How the token travels. `"subprotocol"` (default): in `Sec-WebSocket-Protocol` as
   * `switchboard.bearer.<token>` beside `switchboard.v1`, never in the URL. `"query"`:
   * `?token=` for servers and proxies that cannot pass a subprotocol (the URL may be logged).
   */
  tokenCarrier?: "subprotocol" | "query";
  /** The reconnect schedule. Default 1 s × 1.5 up to 30 s, full jitter. */
  reconnect?: Partial<Backoff>;
  /** The client's heartbeat and its dead-link detection. */
  heartbeat?: Partial<HeartbeatOptions>;
  /** What connection quality is computed over. Default 10 samples, 5-minute stability window. */
  quality?: Partial<QualityOptions>;
  /** The offline queue (capacity 100, 3 attempts, persisted in `localStorage` in browsers). */
  queue?: Partial<QueueOptions>;
  /** A connection not welcomed within this time is abandoned and retried. Default 10000 ms. */
  connectTimeoutMs?: number;
  /**
   * This client instance's id (`[A-Za-z0-9_-]`, 1–64), which scopes publish ids so that a
   * retried publish is never delivered twice. Default: random, kept in the queue's storage.
   */
  clientId?: string;
  /** The WebSocket implementation. Default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Time and randomness; tests pass a fake one. */
  clock?: Clock;
}

/** A publish the server acknowledged. */
export interface Ack {
  id: string;
  /** The message's offset in its channel. */
  offset: number;
  /** The frame that was sent (for a publish restored from storage after a reload, as it was stored). */
  frame: PublishFrame;
}

/** Why a publish left the queue without an ack. */
export type PublishFailureReason =
  /** The server refused it (`error` holds the answer, e.g. `forbidden`). */
  | "refused"
  /** It ran out of attempts (no ack in time, or retryable errors each time). */
  | "attempts"
  /** The queue was full and a more important publish took its place. */
  | "evicted"
  /** The queue was full of publishes at least as important: it was never queued. */
  | "queue_full"
  /** {@link SwitchboardClient.clearQueue} removed it. */
  | "cleared"
  /** It was invalid (channel, type or payload) and never sent. */
  | "invalid";

/** A publish that will never be acknowledged, and why. */
export interface PublishFailure {
  id: string;
  reason: PublishFailureReason;
  frame: PublishFrame;
  /** The server's error, for `"refused"` and the last retryable one for `"attempts"`. */
  error?: ErrorFrame;
}

/** What {@link SwitchboardClient} emits; listen with {@link SwitchboardClient.on}. */
export interface ClientEvents {
  status: StatusChange;
  welcome: WelcomeFrame;
  /** A subscription is (again) in place: `recovered` says whether missed messages follow. */
  subscribed: SubscribedFrame;
  /** A subscription ended: the client's own `unsubscribe` (no reason), or the server's (`"forbidden"`, `"server"`), or `"disconnected"` for a server subscription the connection took along. */
  unsubscribed: UnsubscribedFrame;
  /** An application message, once each and in offset order per channel. */
  message: Message;
  /** A presence join, leave or update. */
  presence: PresenceUpdateFrame;
  /** A publish was acknowledged. */
  ack: Ack;
  /** A publish will never be acknowledged. */
  failed: PublishFailure;
  /** An error frame that answered no request the client tracks, or a refused subscribe. */
  error: ErrorFrame;
  /** Recovery was impossible: messages of `channel` between the old position and `offset` are lost. Refetch state. */
  reset: { channel: string; epoch: string; offset: number };
  /** A message arrived ahead of the next offset (one was evicted on a slow link); the client recovers the missing ones. */
  gap: { channel: string; expected: number; got: number };
  /** Connection quality changed (after every ping, loss or status change). */
  quality: Quality;
  /** The offline queue's size changed. */
  queue: { size: number };
  /** The token was refreshed on the open connection. */
  refreshed: { expiresAt: number | null };
}

/** Options of a publish. */
export interface PublishOptions {
  /** What a full queue (here, or the server's outbound queue) evicts last. Default `"normal"`. */
  priority?: Priority;
  /** The message id (1–128 bytes). Default: random. A retried id is never delivered twice. */
  id?: string;
  /** Deliver to every subscriber but this connection. */
  excludeSelf?: boolean;
}

/** A publish in flight: a promise of its {@link Ack}, with the message id known at once. */
export interface Publish extends Promise<Ack> {
  readonly id: string;
}

/** Options of a subscription. */
export interface SubscribeOptions {
  /**
   * Also load what the server still keeps of the channel's history, when it is whole: on
   * the first subscribe, and again after a `reset` (the new epoch's earlier messages).
   */
  history?: boolean;
}

/** A handle on a subscription, from {@link SwitchboardClient.subscribe}. */
export interface Subscription {
  readonly channel: string;
  /** Resolves when the subscription is in place, rejects when the server refuses it. */
  ready(): Promise<SubscribedFrame>;
  /** Releases this handle; the client unsubscribes when the last handle of the channel is released. */
  unsubscribe(): void;
}

/** An error from the client or the server, with the protocol's code. */
export class SwitchboardError extends Error {
  /** A protocol error code (`forbidden`, `rate_limited`…) or the client's own (`not_connected`, `queue_full`, `evicted`, `cleared`, `attempts`, `invalid`, `disconnected`, `unsubscribed`). */
  readonly code: string;
  /** The server's error frame, when the server answered. */
  readonly frame: ErrorFrame | undefined;

  constructor(code: string, message: string, frame?: ErrorFrame) {
    super(message);
    this.name = "SwitchboardError";
    this.code = code;
    this.frame = frame;
  }
}

interface ChannelState {
  /** Handles held by the application; 0 for a subscription only the server made. */
  refs: number;
  history: boolean;
  /** Whether the server made it (and it ends with the connection unless the app holds it too). */
  server: boolean;
  /** The last offset delivered (or skipped as `excluded`). */
  offset: number;
  epoch: string | null;
  /** Subscribed on the current connection. */
  live: boolean;
  /** The id of the subscribe in flight, if any. */
  pending: string | null;
  /** The subscribe in flight asked to recover (`since`). */
  askedSince: boolean;
  /** Re-subscribing from `offset` to fill a gap (or load history): ahead-of-position messages wait for the replay. */
  recovering: boolean;
  /** Loading history on a first subscribe: a failed recovery is not a loss. */
  loadingHistory: boolean;
  waiters: Array<{ resolve: (f: SubscribedFrame) => void; reject: (e: SwitchboardError) => void }>;
  retryTimer: unknown;
}

interface Request {
  resolve: (frame: { [key: string]: unknown }) => void;
  reject: (error: SwitchboardError) => void;
}

const OPEN = 1;
const SUBPROTOCOL = "switchboard.v1";
const BEARER_PREFIX = "switchboard.bearer.";
/** RFC 7230 `token` characters: what a subprotocol may contain. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A reconnecting switchboard Protocol v1 client, with the semantics of the Rust
 * `switchboard-client`:
 *
 * - reconnects with backoff (1 s × 1.5 up to 30 s, full jitter), except after 4003
 *   (disconnected by the server) and 1008 (abuse), which close it for good;
 * - re-subscribes every channel with `since`, so missed messages are recovered and each
 *   message is delivered once, in offset order; a lost position is reported (`reset`);
 * - holds every publish in a priority offline queue until the server acknowledges it
 *   (persisted in `localStorage` in browsers), retried up to 3 times;
 * - measures connection quality with its own pings (latency, jitter, loss, stability);
 * - gets its token from a function, again on every reconnect and before expiry, and sends
 *   it in `Sec-WebSocket-Protocol`, never in the URL.
 *
 * ```ts
 * const client = new SwitchboardClient("ws://127.0.0.1:5111/ws", { token: getJwt });
 * client.on("message", (m) => console.log(m.channel, m.type, m.payload));
 * client.subscribe("chat:lobby");
 * client.connect();
 * const ack = await client.publish("chat:lobby", "chat.message", { text: "hi" });
 * ```
 */
export class SwitchboardClient {
  /** The `/ws` URL this client connects to. */
  readonly url: string;
  /** This client instance's id (see {@link ClientOptions.clientId}). */
  readonly clientId: string;

  readonly #events = new Emitter<ClientEvents>();
  readonly #clock: Clock;
  readonly #token: TokenSource;
  readonly #carrier: "subprotocol" | "query";
  readonly #backoff: Backoff;
  readonly #heartbeat: HeartbeatOptions;
  readonly #connectTimeoutMs: number;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #queue: OfflineQueue;
  readonly #quality: QualityTracker;
  readonly #channels = new Map<string, ChannelState>();
  readonly #requests = new Map<string, Request>();
  readonly #waiters = new Map<string, { resolve: (a: Ack) => void; reject: (e: SwitchboardError) => void }>();
  readonly #channelPresence = new Map<string, { [key: string]: unknown }>();
  #presence: { [key: string]: unknown } | null = null;
  #status: Status = "idle";
  #ws: WebSocketLike | null = null;
  #attempt = 0;
  #generation = 0;
  readonly #reconnectTimer: TimerSlot;
  readonly #connectTimer: TimerSlot;
  readonly #queueTimer: TimerSlot;
  #queueTimerAt = Infinity;
  readonly #pingTimer: TimerSlot;
  readonly #refreshTimer: TimerSlot;
  #pings = new Map<string, { sentAt: number; timer: unknown }>();
  #pingSeq = 0;
  #lostInARow = 0;
  #awaitingSubs = new Set<string>();
  #idSeq = 0;
  #welcome: WelcomeFrame | null = null;
  #lastQuality: Quality;
  #onOnline: (() => void) | null = null;

  /**
   * @param url the server's `/ws` endpoint, `ws://` or `wss://`.
   * @param options settings; all optional.
   */
  constructor(url: string, options: ClientOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError(`not an absolute ws:// or wss:// URL: ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw new TypeError(`a switchboard URL is ws:// or wss://, got ${JSON.stringify(url)}`);
    }
    this.url = url;
    this.#clock = options.clock ?? systemClock;
    this.#reconnectTimer = new TimerSlot(this.#clock);
    this.#connectTimer = new TimerSlot(this.#clock);
    this.#queueTimer = new TimerSlot(this.#clock);
    this.#pingTimer = new TimerSlot(this.#clock);
    this.#refreshTimer = new TimerSlot(this.#clock);
    this.#token = options.token;
    this.#carrier = options.tokenCarrier ?? "subprotocol";
    this.#backoff = { ...RECONNECT_BACKOFF, ...options.reconnect };
    this.#heartbeat = { intervalMs: 10000, timeoutMs: 5000, deadAfter: 3, ...options.heartbeat };
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10000;
    this.#WebSocket = options.WebSocket;
    const storage = options.queue?.storage === undefined ? defaultStorage() : options.queue.storage;
    let key = options.queue?.key;
    if (key === undefined) {
      const tab = tabKey();
      key = `switchboard:queue:${tab}:${parsed.host}${parsed.pathname}`;
      adoptLegacyQueue(storage, `switchboard:queue:${tab}`, key);
    }
    this.#queue = new OfflineQueue({ ...QUEUE_DEFAULTS, ...options.queue, storage, key }, this.#clock);
    this.clientId = options.clientId ?? loadClientId(storage, `switchboard:client:${key}`);
    if (!CLIENT_ID.test(this.clientId)) {
      throw new TypeError(`clientId must be 1-64 characters of [A-Za-z0-9_-], got ${JSON.stringify(this.clientId)}`);
    }
    this.#quality = new QualityTracker({ ...QUALITY_DEFAULTS, ...options.quality });
    this.#lastQuality = offlineQuality(this.#clock.wallNow());
  }

  /** Where the client is: `idle` (never connected), `connecting`, `open`, `reconnecting` or `closed`. */
  get status(): Status {
    return this.#status;
  }

  /** This connection's id (from `welcome`); `null` when not connected. */
  get connectionId(): string | null {
    return this.#status === "open" ? (this.#welcome?.connectionId ?? null) : null;
  }

  /** The user the server knows this client as (the token's `sub`); `null` anonymous or not connected. */
  get userId(): string | null {
    return this.#status === "open" ? (this.#welcome?.userId ?? null) : null;
  }

  /** The latest connection quality. */
  get quality(): Quality {
    return this.#lastQuality;
  }

  /** Publishes held by the offline queue (waiting, or sent and not acknowledged). */
  get queueSize(): number {
    return this.#queue.size;
  }

  /** Channels subscribed (by the application or by the server). */
  get channels(): string[] {
    return [...this.#channels.keys()];
  }

  /** Calls `fn` on every `event`; returns a function that stops it. */
  on<K extends keyof ClientEvents>(event: K, fn: (data: ClientEvents[K]) => void): () => void {
    return this.#events.on(event, fn);
  }

  /** Opens the connection, and keeps it open (reconnecting) until {@link close}. */
  connect(): this {
    if (this.#status === "connecting" || this.#status === "open" || this.#status === "reconnecting") return this;
    this.#attempt = 0;
    const target = globalThis as { addEventListener?: (e: string, f: () => void) => void };
    if (typeof target.addEventListener === "function" && !this.#onOnline) {
      // Back online: try now rather than at the end of the backoff.
      this.#onOnline = () => {
        if (this.#status === "reconnecting") this.#open();
      };
      target.addEventListener("online", this.#onOnline);
    }
    this.#open();
    return this;
  }

  /** Closes the connection and stops reconnecting. The offline queue keeps what it holds. */
  close(): void {
    this.#shutdown("closed", { code: 1000, reason: "client closed" });
  }

  /**
   * Subscribes to `channel`, now and after every reconnect (recovering what was missed).
   * Several handles of one channel share one subscription; the client unsubscribes when
   * the last is released. A refused subscribe (e.g. `forbidden`) emits `error` and rejects
   * {@link Subscription.ready}.
   */
  subscribe(channel: string, options: SubscribeOptions = {}): Subscription {
    if (!isValidChannel(channel)) throw new TypeError(`invalid channel name ${JSON.stringify(channel)}`);
    let st = this.#channels.get(channel);
    if (!st) {
      st = newChannel(false);
      st.history = !!options.history;
      this.#channels.set(channel, st);
      if (this.#status === "open") this.#sendSubscribe(channel, st);
    }
    st.refs += 1;
    let released = false;
    return {
      channel,
      ready: () => this.#ready(channel),
      unsubscribe: () => {
        if (released) return;
        released = true;
        const current = this.#channels.get(channel);
        if (current !== st) return;
        current.refs -= 1;
        if (current.refs <= 0) this.unsubscribe(channel);
      },
    };
  }

  /** Ends the subscription to `channel`, whoever made it and however many handles hold it. */
  unsubscribe(channel: string): void {
    const st = this.#channels.get(channel);
    if (!st) return;
    this.#forget(channel, st, new SwitchboardError("unsubscribed", `unsubscribed from ${channel}`));
    if (st.live || st.pending) this.#send({ type: "unsubscribe", channel, id: this.#nextId("u") });
  }

  /**
   * Publishes an event on `channel`. It goes through the offline queue: sent now when
   * connected, else after reconnecting, and again after a lost ack (the server never
   * delivers one id twice). The returned promise resolves with the {@link Ack}, or rejects
   * with a {@link SwitchboardError} whose code says why it never will (`forbidden`,
   * `queue_full`, `evicted`, `attempts`, `cleared`, `invalid`); every outcome is also
   * emitted as `ack` or `failed`. An unobserved rejection is not reported as unhandled.
   */
  publish(channel: string, type: string, payload: unknown = null, options: PublishOptions = {}): Publish {
    const priority = options.priority ?? "normal";
    const frame: PublishFrame = {
      type,
      channel,
      payload: payload as Json,
      id: options.id ?? randomId("m"),
      priority,
    };
    if (options.excludeSelf) frame.excludeSelf = true;
    let resolve!: (a: Ack) => void;
    let reject!: (e: SwitchboardError) => void;
    const promise = new Promise<Ack>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {});
    const handle = Object.assign(promise, { id: frame.id }) as Publish;
    const invalid = validatePublish(frame, payload);
    if (invalid) {
      reject(new SwitchboardError("invalid", invalid));
      this.#events.emit("failed", { id: frame.id, reason: "invalid", frame });
      return handle;
    }
    const pushed = this.#queue.push(frame);
    if (!pushed.accepted) {
      reject(new SwitchboardError("queue_full", "the offline queue is full of publishes at least as important"));
      this.#events.emit("failed", { id: frame.id, reason: "queue_full", frame });
      return handle;
    }
    this.#waiters.set(frame.id, { resolve, reject });
    if (pushed.evicted) this.#settleFailure(pushed.evicted.frame, "evicted");
    this.#emitQueue();
    this.#flush();
    return handle;
  }

  /** Every publish held by the offline queue, in the order they will be sent. */
  queued(): QueuedPublish[] {
    return this.#queue.list();
  }

  /** Sends what the queue holds now (a retry waits no longer), if connected. */
  processQueue(): void {
    this.#queue.expedite();
    this.#flush();
  }

  /** Empties the offline queue; each publish fails with `cleared`. Returns how many there were. */
  clearQueue(): number {
    const cleared = this.#queue.clear();
    for (const entry of cleared) this.#settleFailure(entry.frame, "cleared");
    this.#emitQueue();
    return cleared.length;
  }

  /**
   * Announces presence: on `channel`, or (without one) on every channel subscribed now or
   * later. Sent again after every reconnect.
   */
  setPresence(presence: { status?: string; currentFeature?: string | null; meta?: { [key: string]: Json } | null; channel?: string }): void {
    const frame: { [key: string]: unknown } = { type: "presence-update", ...presence };
    if (presence.channel) {
      this.#channelPresence.set(presence.channel, frame);
      // Before the channel's subscription is in place the server would refuse it
      // (`not_subscribed`): it is sent when the subscription answers.
      if (this.#channels.get(presence.channel)?.live) this.#send(frame);
    } else {
      this.#presence = frame;
      if (this.#awaitingSubs.size === 0) this.#send(frame);
    }
  }

  /** The current members of `channel` (needs only the right to subscribe there). */
  presence(channel: string): Promise<Member[]> {
    return this.#request<{ members?: Member[] }>({ type: "presence", channel }).then((f) => f.members ?? []);
  }

  /**
   * Keeps a live member list of `channel`: fetched whenever the channel's subscription is
   * (re)established, then updated by joins, leaves and updates. The channel must be
   * subscribed for updates to arrive. Returns a function that stops it.
   */
  watchPresence(channel: string, listener: (members: Member[]) => void): () => void {
    let members = new Map<string, Member>();
    let stopped = false;
    let generation = 0;
    // Updates that arrive while a list is being fetched are applied on top of it: the
    // list may have been taken before or after any of them, and replaying them in order
    // gives the right result either way.
    let buffered: PresenceUpdateFrame[] | null = null;
    const publishList = () => {
      if (!stopped) listener([...members.values()].sort((a, b) => a.joinedAt - b.joinedAt));
    };
    const apply = (u: PresenceUpdateFrame) => {
      if (u.action === "leave") members.delete(u.member.connectionId);
      else members.set(u.member.connectionId, u.member);
    };
    const load = () => {
      const mine = ++generation;
      buffered = [];
      this.presence(channel).then(
        (list) => {
          if (stopped || mine !== generation) return;
          members = new Map(list.map((m) => [m.connectionId, m]));
          for (const u of buffered ?? []) apply(u);
          buffered = null;
          publishList();
        },
        () => {
          if (mine === generation) buffered = null;
        },
      );
    };
    const offSubscribed = this.on("subscribed", (f) => {
      if (f.channel === channel) load();
    });
    const offPresence = this.on("presence", (u) => {
      if (u.channel !== channel) return;
      if (buffered) {
        buffered.push(u);
        return;
      }
      apply(u);
      publishList();
    });
    const offStatus = this.on("status", (s) => {
      if (s.status !== "open" && members.size) {
        members = new Map();
        publishList();
      }
    });
    if (this.#channels.get(channel)?.live) load();
    return () => {
      stopped = true;
      offSubscribed();
      offPresence();
      offStatus();
    };
  }

  // ---- connection ----------------------------------------------------------------------

  #open(): void {
    this.#reconnectTimer.clear();
    const generation = ++this.#generation;
    this.#setStatus({ status: "connecting", attempt: this.#attempt });
    let tokenValue: Promise<string | null | undefined>;
    try {
      tokenValue = Promise.resolve(typeof this.#token === "function" ? this.#token() : this.#token);
    } catch (error) {
      tokenValue = Promise.reject(error);
    }
    tokenValue.then(
      (token) => {
        if (generation !== this.#generation || this.#status !== "connecting") return;
        this.#dial(token ?? null, generation);
      },
      (error: unknown) => {
        if (generation !== this.#generation) return;
        this.#lost(undefined, `token source failed: ${String(error)}`);
      },
    );
  }

  #dial(token: string | null, generation: number): void {
    const Ctor = this.#WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) {
      this.#shutdown("closed", {
        reason: "no WebSocket implementation: pass options.WebSocket (Node 20: run with --experimental-websocket, or use the ws package)",
      });
      return;
    }
    const url = new URL(this.url);
    url.searchParams.set("client", this.clientId);
    const protocols = [SUBPROTOCOL];
    if (token) {
      if (this.#carrier === "query" || !HTTP_TOKEN.test(token)) url.searchParams.set("token", token);
      else protocols.push(BEARER_PREFIX + token);
    }
    let ws: WebSocketLike;
    try {
      ws = new Ctor(url.toString(), protocols);
    } catch (error) {
      this.#lost(undefined, `could not open the socket: ${String(error)}`);
      return;
    }
    this.#ws = ws;
    this.#connectTimer.set(() => {
      if (this.#ws === ws && this.#status === "connecting") {
        this.#drop(ws, "connect timed out");
      }
    }, this.#connectTimeoutMs);
    ws.onmessage = (event) => {
      if (this.#ws === ws && generation === this.#generation && typeof event.data === "string") {
        this.#receive(event.data);
      }
    };
    ws.onclose = (event) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#lost(event.code, event.reason);
    };
    ws.onerror = () => {
      // Browsers follow an error with `close`, but some implementations (Node 20's
      // experimental WebSocket, when the handshake fails) never do: an error ends the
      // connection here, and the `close` that may follow is ignored.
      if (this.#ws !== ws) return;
      this.#drop(ws, "connection failed", 1006);
    };
  }

  /** Gives up a socket the client no longer trusts and reconnects. */
  #drop(ws: WebSocketLike, reason: string, code?: number): void {
    this.#ws = null;
    try {
      ws.close(1000, reason);
    } catch {
      // Already closing, or not open yet where the implementation refuses to close.
    }
    this.#lost(code, reason);
  }

  /** The connection ended (or never opened): reconnect, or stop for good after 4003 and 1008. */
  #lost(code: number | undefined, reason: string | undefined): void {
    this.#endConnection();
    if (this.#status === "closed") return;
    if (code === 4003 || code === 1008) {
      // 4003: disconnected by the server on purpose; 1008: abuse. Coming back on our own
      // would undo the server's decision.
      this.#shutdown("closed", { code, reason: reason || (code === 4003 ? "disconnected by server" : "policy violation") });
      return;
    }
    this.#attempt += 1;
    const delay = backoffDelay(this.#backoff, this.#attempt, this.#clock.random());
    this.#setStatus({ status: "reconnecting", attempt: this.#attempt, delayMs: delay, code, reason });
    this.#reconnectTimer.set(() => this.#open(), delay);
  }

  /** Resets what belongs to one connection. */
  #endConnection(): void {
    const wasOpen = this.#status === "open";
    this.#connectTimer.clear();
    this.#refreshTimer.clear();
    this.#stopPings();
    this.#welcome = null;
    this.#awaitingSubs.clear();
    for (const request of this.#requests.values()) request.reject(new SwitchboardError("disconnected", "the connection was lost"));
    this.#requests.clear();
    for (const [channel, st] of [...this.#channels]) {
      this.#clearChannelTimer(st);
      st.live = false;
      st.pending = null;
      st.recovering = false;
      if (st.server && st.refs === 0) {
        this.#channels.delete(channel);
        this.#events.emit("unsubscribed", { type: "unsubscribed", channel, reason: "disconnected" });
      }
    }
    this.#queue.releaseAll();
    if (wasOpen) this.#quality.disconnected(this.#clock.now());
  }

  #shutdown(status: "closed", change: Omit<StatusChange, "status" | "attempt">): void {
    ++this.#generation;
    this.#reconnectTimer.clear();
    this.#queueTimer.clear();
    const ws = this.#ws;
    this.#ws = null;
    this.#endConnection();
    if (ws) {
      try {
        ws.close(1000, "client closed");
      } catch {
        // Already closing.
      }
    }
    const target = globalThis as { removeEventListener?: (e: string, f: () => void) => void };
    if (this.#onOnline && typeof target.removeEventListener === "function") {
      target.removeEventListener("online", this.#onOnline);
    }
    this.#onOnline = null;
    this.#setStatus({ status, attempt: 0, ...change });
  }

  #setStatus(change: StatusChange): void {
    this.#status = change.status;
    this.#events.emit("status", change);
    this.#emitQuality();
  }

  #send(frame: { [key: string]: unknown }): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN || this.#status !== "open") return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  #nextId(prefix: string): string {
    this.#idSeq += 1;
    return `${prefix}${this.#idSeq}`;
  }

  // ---- frames from the server ----------------------------------------------------------

  #receive(text: string): void {
    let frame: { [key: string]: unknown };
    try {
      frame = JSON.parse(text) as { [key: string]: unknown };
    } catch {
      return;
    }
    if (typeof frame !== "object" || frame === null) return;
    switch (frame["type"]) {
      case "welcome":
        return this.#onWelcome(frame as unknown as WelcomeFrame);
      case "pong":
        return this.#onPong(frame["id"]);
      case "subscribed":
        return this.#onSubscribed(frame as unknown as SubscribedFrame);
      case "unsubscribed":
        return this.#onUnsubscribed(frame as unknown as UnsubscribedFrame);
      case "ack":
        return this.#onAck(String(frame["id"]), Number(frame["offset"]));
      case "excluded":
        return this.#advance(String(frame["channel"]), Number(frame["offset"]), null);
      case "error":
        return this.#onError(frame as unknown as ErrorFrame);
      case "presence":
      case "refreshed":
        this.#settle(frame);
        return;
      case "presence-update":
        return this.#events.emit("presence", frame as unknown as PresenceUpdateFrame);
      default:
        if (typeof frame["channel"] === "string") {
          this.#advance(frame["channel"], Number(frame["offset"]), frame as unknown as Message);
        }
    }
  }

  #onWelcome(frame: WelcomeFrame): void {
    this.#connectTimer.clear();
    this.#welcome = frame;
    this.#attempt = 0;
    this.#quality.connected(this.#clock.now());
    this.#setStatus({ status: "open", attempt: 0 });
    this.#events.emit("welcome", frame);
    // Connection-wide presence is announced once every channel has answered, so a
    // reconnect never shows the others a leave and a join.
    for (const [channel, st] of this.#channels) {
      this.#sendSubscribe(channel, st);
      if (st.pending) this.#awaitingSubs.add(st.pending);
    }
    if (this.#awaitingSubs.size === 0 && this.#presence) this.#send(this.#presence);
    this.#scheduleRefresh(frame.expiresAt);
    this.#startPings();
    this.#flush();
  }

  #sendSubscribe(channel: string, st: ChannelState): void {
    const id = this.#nextId("s");
    const frame: { [key: string]: unknown } = { type: "subscribe", channel, id };
    st.askedSince = st.epoch !== null;
    if (st.askedSince) frame["since"] = { offset: st.offset, epoch: st.epoch };
    st.pending = id;
    this.#send(frame);
  }

  #subscribeAnswered(id: string | undefined): void {
    if (id !== undefined && this.#awaitingSubs.delete(id) && this.#awaitingSubs.size === 0 && this.#presence) {
      this.#send(this.#presence);
    }
  }

  #onSubscribed(frame: SubscribedFrame): void {
    let st = this.#channels.get(frame.channel);
    if (!st && frame.server) {
      st = newChannel(true);
      this.#channels.set(frame.channel, st);
    }
    if (frame.server && st) {
      st.server = true;
      st.askedSince = false;
    } else if (!st || frame.id !== st.pending) {
      // The answer to a subscribe since superseded (unsubscribed, or re-sent).
      this.#subscribeAnswered(frame.id);
      return;
    }
    const lost = st.askedSince && !frame.recovered && !st.loadingHistory;
    const fresh = st.epoch === null;
    st.pending = null;
    st.live = true;
    st.recovering = false;
    st.loadingHistory = false;
    st.epoch = frame.epoch;
    // Recovered: the missed messages follow and advance the offset themselves.
    if (!frame.recovered) st.offset = frame.offset;
    if (lost) this.#events.emit("reset", { channel: frame.channel, epoch: frame.epoch, offset: frame.offset });
    for (const waiter of st.waiters.splice(0)) waiter.resolve(frame);
    this.#events.emit("subscribed", frame);
    const announcement = this.#channelPresence.get(frame.channel);
    if (announcement) this.#send(announcement);
    this.#subscribeAnswered(frame.id);
    if ((fresh || lost) && st.history && frame.offset > 0 && !frame.recovered) {
      // Load what the server keeps: re-subscribe from the epoch's start. After a reset too:
      // the new epoch's messages published before this subscription are then delivered.
      st.offset = 0;
      st.loadingHistory = true;
      this.#recover(frame.channel, st);
    }
  }

  /** Re-subscribes `channel` from its current position, to fill a gap or load history. */
  #recover(channel: string, st: ChannelState): void {
    st.recovering = true;
    st.live = false;
    this.#send({ type: "unsubscribe", channel, id: this.#nextId("r") });
    this.#sendSubscribe(channel, st);
  }

  #onUnsubscribed(frame: UnsubscribedFrame): void {
    if (!frame.reason) {
      // The answer to an unsubscribe this client sent; reported when it was the application's.
      if (frame.id && frame.id.startsWith("u")) this.#events.emit("unsubscribed", frame);
      return;
    }
    const st = this.#channels.get(frame.channel);
    if (st) {
      this.#forget(frame.channel, st, new SwitchboardError(frame.reason, `unsubscribed by the server (${frame.reason})`));
    }
    this.#events.emit("unsubscribed", frame);
  }

  #forget(channel: string, st: ChannelState, error: SwitchboardError): void {
    this.#clearChannelTimer(st);
    this.#channels.delete(channel);
    this.#channelPresence.delete(channel);
    if (st.pending) this.#subscribeAnswered(st.pending);
    for (const waiter of st.waiters.splice(0)) waiter.reject(error);
  }

  /**
   * A message (or an `excluded` offset when `message` is null) at `offset` of `channel`:
   * delivered when it is the next, dropped when already seen, and the start of a recovery
   * when it is ahead (one before it was evicted on the way).
   */
  #advance(channel: string, offset: number, message: Message | null): void {
    const st = this.#channels.get(channel);
    // A channel no longer held: a message that was on its way when it was unsubscribed.
    if (!st) return;
    if (!Number.isFinite(offset)) {
      if (message) this.#events.emit("message", message);
      return;
    }
    if (offset <= st.offset) return;
    if (offset === st.offset + 1) {
      st.offset = offset;
      if (message) this.#events.emit("message", message);
      return;
    }
    if (st.recovering || st.pending) return; // the replay brings it in order
    this.#events.emit("gap", { channel, expected: st.offset + 1, got: offset });
    this.#recover(channel, st);
  }

  #onAck(id: string, offset: number): void {
    const entry = this.#queue.ack(id);
    if (!entry) return;
    const ack: Ack = { id, offset, frame: entry.frame };
    this.#waiters.get(id)?.resolve(ack);
    this.#waiters.delete(id);
    this.#events.emit("ack", ack);
    this.#emitQueue();
    this.#flush();
  }

  #onError(frame: ErrorFrame): void {
    const id = frame.id;
    if (id !== undefined) {
      if (this.#queue.has(id)) return this.#publishError(id, frame);
      for (const [channel, st] of this.#channels) {
        if (st.pending === id) return this.#subscribeError(channel, st, frame);
      }
      if (this.#settle(frame as unknown as { [key: string]: unknown })) return;
      if (id.startsWith("u") || id.startsWith("r")) return; // an unsubscribe of a channel already gone
    }
    this.#events.emit("error", frame);
  }

  #publishError(id: string, frame: ErrorFrame): void {
    if (isRetryable(frame.code)) {
      const result = this.#queue.fail(id, frame.retryAfterMs ?? 0);
      if (result.kind === "dead") this.#settleFailure(result.entry.frame, "attempts", frame);
    } else {
      const entry = this.#queue.refuse(id);
      if (entry) this.#settleFailure(entry.frame, "refused", frame);
    }
    this.#emitQueue();
    this.#flush();
  }

  #subscribeError(channel: string, st: ChannelState, frame: ErrorFrame): void {
    const pending = st.pending;
    st.pending = null;
    if (isRetryable(frame.code)) {
      st.retryTimer = this.#clock.setTimeout(() => {
        st.retryTimer = null;
        if (this.#channels.get(channel) === st && this.#status === "open" && !st.live) this.#sendSubscribe(channel, st);
      }, frame.retryAfterMs ?? 1000);
      return;
    }
    this.#forget(channel, st, new SwitchboardError(frame.code, frame.message, frame));
    if (pending) this.#subscribeAnswered(pending);
    this.#events.emit("error", frame);
  }

  #ready(channel: string): Promise<SubscribedFrame> {
    const st = this.#channels.get(channel);
    if (!st) return Promise.reject(new SwitchboardError("unsubscribed", `not subscribed to ${channel}`));
    if (st.live && !st.recovering && st.epoch !== null) {
      return Promise.resolve({
        type: "subscribed",
        channel,
        offset: st.offset,
        epoch: st.epoch,
        recovered: true,
      });
    }
    return new Promise((resolve, reject) => st.waiters.push({ resolve, reject }));
  }

  // ---- requests --------------------------------------------------------------------------

  #request<T>(frame: { [key: string]: unknown }): Promise<T> {
    const id = this.#nextId("q-");
    return new Promise<T>((resolve, reject) => {
      if (!this.#send({ ...frame, id })) {
        reject(new SwitchboardError("not_connected", "not connected"));
        return;
      }
      this.#requests.set(id, { resolve: resolve as (f: { [key: string]: unknown }) => void, reject });
    });
  }

  /** Answers a request by id; returns whether one was waiting. */
  #settle(frame: { [key: string]: unknown }): boolean {
    const id = frame["id"];
    const request = typeof id === "string" ? this.#requests.get(id) : undefined;
    if (!request || typeof id !== "string") return false;
    this.#requests.delete(id);
    if (frame["type"] === "error") {
      const error = frame as unknown as ErrorFrame;
      request.reject(new SwitchboardError(error.code, error.message, error));
    } else {
      request.resolve(frame);
    }
    return true;
  }

  // ---- token refresh ---------------------------------------------------------------------

  #scheduleRefresh(expiresAt: number | undefined): void {
    this.#refreshTimer.clear();
    if (typeof this.#token !== "function" || typeof expiresAt !== "number") return;
    const remaining = expiresAt - this.#clock.wallNow();
    const delay = Math.max(0, Math.floor(remaining * 0.8));
    const generation = this.#generation;
    this.#refreshTimer.set(() => void this.#refresh(generation), delay);
  }

  async #refresh(generation: number): Promise<void> {
    const source = this.#token;
    if (typeof source !== "function") return;
    let token: string | null | undefined;
    try {
      token = await source();
    } catch (error) {
      this.#events.emit("error", { type: "error", code: "unauthorized", message: `token source failed: ${String(error)}` });
      return;
    }
    if (!token || generation !== this.#generation || this.#status !== "open") return;
    try {
      const answer = await this.#request<{ expiresAt?: number }>({ type: "refresh", token });
      if (generation !== this.#generation) return;
      this.#events.emit("refreshed", { expiresAt: answer.expiresAt ?? null });
      this.#scheduleRefresh(answer.expiresAt);
    } catch (error) {
      // Refused: the connection keeps its old token and is closed with 4001 at its expiry,
      // then reconnects with a fresh one.
      if (error instanceof SwitchboardError && error.frame) this.#events.emit("error", error.frame);
    }
  }

  // ---- heartbeat and quality -------------------------------------------------------------

  #startPings(): void {
    this.#stopPings();
    this.#lostInARow = 0;
    const tick = () => {
      this.#ping();
      this.#pingTimer.set(tick, this.#heartbeat.intervalMs);
    };
    tick();
  }

  #stopPings(): void {
    this.#pingTimer.clear();
    for (const ping of this.#pings.values()) this.#clock.clearTimeout(ping.timer);
    this.#pings.clear();
  }

  #ping(): void {
    this.#pingSeq += 1;
    const id = `q${this.#pingSeq}`;
    if (!this.#send({ type: "ping", id, timestamp: Math.floor(this.#clock.wallNow()) })) return;
    const ws = this.#ws;
    const timer = this.#clock.setTimeout(() => {
      if (!this.#pings.delete(id)) return;
      this.#quality.lost();
      this.#lostInARow += 1;
      this.#emitQuality();
      const deadAfter = this.#heartbeat.deadAfter;
      if (deadAfter > 0 && this.#lostInARow >= deadAfter && ws && this.#ws === ws) {
        // Looks open, answers nothing: a half-open TCP connection or a suspended laptop.
        this.#drop(ws, "unresponsive");
      }
    }, this.#heartbeat.timeoutMs);
    this.#pings.set(id, { sentAt: this.#clock.now(), timer });
  }

  #onPong(id: unknown): void {
    if (typeof id !== "string") return;
    const ping = this.#pings.get(id);
    if (!ping) return;
    this.#pings.delete(id);
    this.#clock.clearTimeout(ping.timer);
    this.#lostInARow = 0;
    this.#quality.answered(this.#clock.now() - ping.sentAt);
    this.#emitQuality();
  }

  #emitQuality(): void {
    this.#lastQuality = this.#quality.snapshot(this.#clock.now(), this.#clock.wallNow());
    this.#events.emit("quality", this.#lastQuality);
  }

  // ---- the offline queue -----------------------------------------------------------------

  /** Sends what is due, then sets one timer for the next due retry or overdue ack. */
  #flush(): void {
    if (this.#status === "open") {
      for (const id of this.#queue.overdue()) {
        const result = this.#queue.fail(id);
        if (result.kind === "dead") this.#settleFailure(result.entry.frame, "attempts");
      }
      for (let frame = this.#queue.take(); frame; frame = this.#queue.take()) {
        if (!this.#send(frame as unknown as { [key: string]: unknown })) {
          this.#queue.releaseAll();
          break;
        }
      }
      this.#emitQueue();
    }
    this.#armQueueTimer();
  }

  #armQueueTimer(): void {
    const due = this.#status === "open" ? this.#queue.nextDue() : undefined;
    if (due === undefined) {
      this.#queueTimer.clear();
      this.#queueTimerAt = Infinity;
      return;
    }
    if (this.#queueTimer.armed && due >= this.#queueTimerAt) return;
    this.#queueTimerAt = due;
    this.#queueTimer.set(() => {
      this.#queueTimerAt = Infinity;
      this.#flush();
    }, Math.max(0, due - this.#clock.now()));
  }

  #settleFailure(frame: PublishFrame, reason: PublishFailureReason, error?: ErrorFrame): void {
    const waiter = this.#waiters.get(frame.id);
    this.#waiters.delete(frame.id);
    const message =
      reason === "refused"
        ? (error?.message ?? "refused by the server")
        : reason === "attempts"
          ? "no ack after every attempt"
          : reason === "evicted"
            ? "evicted from the full offline queue by a more important publish"
            : "cleared from the offline queue";
    waiter?.reject(new SwitchboardError(reason === "refused" && error ? error.code : reason, message, error));
    const failure: PublishFailure = { id: frame.id, reason, frame };
    if (error) failure.error = error;
    this.#events.emit("failed", failure);
  }

  #emitQueue(): void {
    this.#events.emit("queue", { size: this.#queue.size });
  }

  // ---- timers ----------------------------------------------------------------------------

  #clearChannelTimer(st: ChannelState): void {
    if (st.retryTimer !== null) this.#clock.clearTimeout(st.retryTimer);
    st.retryTimer = null;
  }
}

/** One timer that is either armed or not; setting it again replaces it. */
class TimerSlot {
  readonly #clock: Clock;
  #handle: unknown = null;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get armed(): boolean {
    return this.#handle !== null;
  }

  set(fn: () => void, ms: number): void {
    this.clear();
    this.#handle = this.#clock.setTimeout(() => {
      this.#handle = null;
      fn();
    }, ms);
  }

  clear(): void {
    if (this.#handle !== null) this.#clock.clearTimeout(this.#handle);
    this.#handle = null;
  }
}

function newChannel(server: boolean): ChannelState {
  return {
    refs: 0,
    history: false,
    server,
    offset: 0,
    epoch: null,
    live: false,
    pending: null,
    askedSince: false,
    recovering: false,
    loadingHistory: false,
    waiters: [],
    retryTimer: null,
  };
}

function validatePublish(frame: PublishFrame, payload: unknown): string | null {
  if (!isValidChannel(frame.channel)) return `invalid channel name ${JSON.stringify(frame.channel)}`;
  if (!isValidEventType(frame.type)) return `invalid or reserved event type ${JSON.stringify(frame.type)}`;
  if (!isPriority(frame.priority)) return `invalid priority ${JSON.stringify(frame.priority)}`;
  if (typeof frame.id !== "string" || frame.id.length === 0 || frame.id.length > 128 || /[\u0000-\u001f\u007f]/.test(frame.id)) {
    return "a message id is 1-128 characters without control characters";
  }
  try {
    if (JSON.stringify(payload) === undefined) return "the payload is not JSON (undefined or a function)";
  } catch (error) {
    return `the payload is not JSON: ${String(error)}`;
  }
  return null;
}

function randomId(prefix: string): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c && typeof c.randomUUID === "function") return prefix + c.randomUUID().replace(/-/g, "");
  let id = prefix;
  for (let i = 0; i < 4; i++) id += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, "0");
  return id;
}

function defaultStorage(): StorageLike | null {
  try {
    const storage = (globalThis as { localStorage?: StorageLike }).localStorage;
    if (!storage) return null;
    const probe = "switchboard:probe";
    storage.setItem(probe, probe);
    storage.removeItem(probe);
    return storage;
  } catch {
    return null;
  }
}

/** A key unique to this browser tab that survives reloads: queues are per tab, not per origin. */
function tabKey(): string {
  try {
    const session = (globalThis as { sessionStorage?: StorageLike }).sessionStorage;
    if (!session) return "default";
    let key = session.getItem("switchboard:tab");
    if (!key) {
      key = randomId("t");
      session.setItem("switchboard:tab", key);
    }
    return key;
  } catch {
    return "default";
  }
}

/**
 * Moves what the earlier `/client.js` kept under its per-tab key (`legacy`: the queue, and
 * the client id beside it) to `key`, unless `key` holds a queue already: publishes queued by
 * a page before the upgrade are still sent, under the same client id, so the server still
 * recognises a retry of one it already delivered.
 */
function adoptLegacyQueue(storage: StorageLike | null, legacy: string, key: string): void {
  if (!storage) return;
  try {
    const queued = storage.getItem(legacy);
    if (queued === null || storage.getItem(key) !== null) return;
    const clientId = storage.getItem(`switchboard:client:${legacy}`);
    storage.setItem(key, queued);
    if (clientId !== null) storage.setItem(`switchboard:client:${key}`, clientId);
    storage.removeItem(legacy);
    storage.removeItem(`switchboard:client:${legacy}`);
  } catch {
    // Storage denied: nothing to move.
  }
}

function loadClientId(storage: StorageLike | null, key: string): string {
  try {
    const saved = storage?.getItem(key);
    if (saved && CLIENT_ID.test(saved)) return saved;
  } catch {
    // A new id below.
  }
  const id = randomId("c");
  try {
    storage?.setItem(key, id);
  } catch {
    // Kept for this page only.
  }
  return id;
}
