import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from "react";
import {
  type ClientOptions,
  type ErrorFrame,
  type Publish,
  type PublishOptions,
  type QueuedPublish,
  type Status,
  type SubscribeOptions,
  type Subscription,
  SwitchboardClient,
  SwitchboardError,
} from "@switchboard/client";
import { registerSend, useOptionalSwitchboardClient, useOwnedClient } from "./context.js";

/** Options of {@link useWebSocket}: where to connect, and any option of the core client. */
export interface UseWebSocketOptions extends ClientOptions {
  /**
   * The server's `/ws` URL: absolute (`"wss://rt.example.com/ws"`) or relative to the page
   * (`"/ws"` becomes `ws://` or `wss://` on the page's host). With it the hook creates its own client for the component's
   * life: connected on mount, closed on unmount, replaced when the URL changes. Without it
   * the hook uses `client`, else the {@link SwitchboardProvider}'s client.
   */
  url?: string;
  /**
   * The JWT, or a function returning it (called before every connection attempt and before
   * the token expires). A function may be a new one on every render: the client calls the
   * latest. A new *string* replaces the client (pass a function to keep the connection
   * across token changes). Omit it for a server in open mode.
   */
  token?: ClientOptions["token"];
  /**
   * Whether publishes made while disconnected wait in the offline queue (at most 100, kept
   * in `localStorage`, retried 3 times with backoff, sent on reconnect). Default `true`.
   *
   * `false`: `send` rejects at once with a `SwitchboardError` of code `"not_connected"`
   * while the client is not open, and the queue is not persisted (storage `null`). Publishes
   * sent while open still wait for their ack in memory and are retried after a reconnect,
   * so an acknowledged delivery is not lost to a dropped connection. Changing it replaces the
   * client the hook owns; it has no effect on a client the hook does not own except on `send`.
   */
  enableOfflineQueue?: boolean;
  /** A client to use instead of creating one (the hook neither connects nor closes it). Ignored with `url`. */
  client?: SwitchboardClient;
}

/** Publishes through the client; see {@link WebSocketState.send}. */
export type SendFunction = (channel: string, type: string, payload?: unknown, options?: PublishOptions) => Publish;

/** The offline queue of the client, from {@link useWebSocket}. */
export interface QueueControls {
  /** Publishes held (waiting to be sent, or sent and not acknowledged yet). */
  readonly size: number;
  /** Every publish held, in the order they will be sent (most important first, then oldest). */
  items(): QueuedPublish[];
  /** Empties the queue; each publish's promise rejects with code `"cleared"`. Returns how many there were. */
  clear(): number;
  /** Sends what the queue holds now, without waiting for retry backoffs, if connected. */
  process(): void;
}

/** What {@link useWebSocket} returns. The functions keep their identity while the client is the same. */
export interface WebSocketState {
  /** The client behind the hook (its own, the one passed, or the provider's). */
  client: SwitchboardClient;
  /** `idle`, `connecting`, `open`, `reconnecting` or `closed`. */
  status: Status;
  /** Whether `status` is `"open"`. */
  isConnected: boolean;
  /** This connection's id from the server's `welcome`; `null` when not open. */
  connectionId: string | null;
  /** The user the server knows the connection as (the token's `sub`); `null` anonymous or not open. */
  userId: string | null;
  /**
   * Publishes `payload` as event `type` on `channel`; returns a promise of the server's ack
   * with the message `id` at once. Through the offline queue: while disconnected it waits and
   * goes out on reconnect (see {@link UseWebSocketOptions.enableOfflineQueue}). Rejects with a
   * `SwitchboardError` whose `code` says why it will never be acknowledged.
   */
  send: SendFunction;
  /**
   * Subscribes to a channel outside the component tree's life; release the returned handle
   * with `unsubscribe()`. In components prefer {@link useChannel}, which releases it on unmount.
   */
  subscribe: (channel: string, options?: SubscribeOptions) => Subscription;
  /** Publishes held by the offline queue. */
  queueSize: number;
  /** The offline queue: its size and what it holds, to clear or process it. */
  queue: QueueControls;
  /** Empties the offline queue (see {@link QueueControls.clear}). */
  clearQueue: () => number;
  /** Sends what the offline queue holds now (see {@link QueueControls.process}). */
  processQueue: () => void;
  /**
   * The last error the client reported (a refused subscribe, an error frame answering no
   * request, a failed token source); `null` until one. It stays until the next error or a new client.
   */
  lastError: ErrorFrame | null;
}

function randomMessageId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c && typeof c.randomUUID === "function") return `m${c.randomUUID().replace(/-/g, "")}`;
  return `m${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
}

/** A publish refused before it reached the queue, shaped like the client's own. */
function rejectedPublish(id: string, error: SwitchboardError): Publish {
  const promise = Promise.reject(error);
  promise.catch(() => {});
  return Object.assign(promise, { id }) as Publish;
}

/**
 * Connects a component to a switchboard server and re-renders it when the connection's
 * status, the offline queue's size or the last error changes (nothing else: messages,
 * presence and quality have their own hooks).
 *
 * ```tsx
 * const ws = useWebSocket({ url: "ws://127.0.0.1:5111/ws" });
 * const q = useConnectionQuality(ws);
 * return <ConnectionQualityBadge status={ws.status} metrics={q} />;
 * ```
 *
 * Which client:
 * - with `url`: its own, created for the component's life (connected on mount, closed on
 *   unmount, replaced when `url`, a string `token` or `enableOfflineQueue` changes; the other
 *   options are read when it is created);
 * - else `client`, else the {@link SwitchboardProvider}'s; neither connected nor closed here.
 *
 * @throws Error when there is no `url`, no `client` and no provider.
 */
export function useWebSocket(options: UseWebSocketOptions = {}): WebSocketState {
  const { url, enableOfflineQueue = true, client: givenClient, ...clientOptions } = options;
  const owned = useOwnedClient(url, clientOptions, enableOfflineQueue);
  const fromContext = useOptionalSwitchboardClient();
  const client = owned ?? givenClient ?? fromContext;
  if (!client) {
    throw new Error("useWebSocket needs a `url`, a `client`, or a <SwitchboardProvider> above the component");
  }

  const onStatus = useCallback((notify: () => void) => client.on("status", notify), [client]);
  const onQueue = useCallback((notify: () => void) => client.on("queue", notify), [client]);
  const status = useSyncExternalStore(
    onStatus,
    () => client.status,
    () => client.status,
  );
  const connectionId = useSyncExternalStore(
    onStatus,
    () => client.connectionId,
    () => client.connectionId,
  );
  const userId = useSyncExternalStore(
    onStatus,
    () => client.userId,
    () => client.userId,
  );
  const queueSize = useSyncExternalStore(
    onQueue,
    () => client.queueSize,
    () => client.queueSize,
  );

  const [errorState, setErrorState] = useState<{ client: SwitchboardClient; error: ErrorFrame } | null>(null);
  useEffect(() => client.on("error", (error) => setErrorState({ client, error })), [client]);
  const lastError = errorState && errorState.client === client ? errorState.error : null;

  const send = useCallback<SendFunction>(
    (channel, type, payload = null, publishOptions = {}) => {
      if (!enableOfflineQueue && client.status !== "open") {
        return rejectedPublish(
          publishOptions.id ?? randomMessageId(),
          new SwitchboardError("not_connected", "not connected, and the offline queue is disabled"),
        );
      }
      return client.publish(channel, type, payload, publishOptions);
    },
    [client, enableOfflineQueue],
  );
  registerSend(send, client);

  const subscribe = useCallback((channel: string, subscribeOptions?: SubscribeOptions) => client.subscribe(channel, subscribeOptions), [client]);
  const clearQueue = useCallback(() => client.clearQueue(), [client]);
  const processQueue = useCallback(() => client.processQueue(), [client]);
  const items = useCallback(() => client.queued(), [client]);
  const queue = useMemo<QueueControls>(
    () => ({ size: queueSize, items, clear: clearQueue, process: processQueue }),
    [queueSize, items, clearQueue, processQueue],
  );

  return useMemo<WebSocketState>(
    () => ({
      client,
      status,
      isConnected: status === "open",
      connectionId,
      userId,
      send,
      subscribe,
      queueSize,
      queue,
      clearQueue,
      processQueue,
      lastError,
    }),
    [client, status, connectionId, userId, send, subscribe, queueSize, queue, clearQueue, processQueue, lastError],
  );
}
