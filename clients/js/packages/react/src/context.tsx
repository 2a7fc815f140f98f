import { createContext, useContext, useEffect, useLayoutEffect, useRef, type ReactElement, type ReactNode } from "react";
import { type ClientOptions, type TokenSource, SwitchboardClient } from "@switchboard/client";

/** The client of the nearest {@link SwitchboardProvider}. */
const SwitchboardContext = createContext<SwitchboardClient | null>(null);

/** `useLayoutEffect` in the browser, `useEffect` on the server (where neither runs). */
export const useIsomorphicLayoutEffect: typeof useEffect = typeof document !== "undefined" ? useLayoutEffect : useEffect;

/**
 * Where a hook finds its client: a {@link SwitchboardClient}, or an object holding one, such
 * as the value of {@link useWebSocket} (or just its `{ status, send }`: the `send` of
 * `useWebSocket` knows its client).
 */
export type ClientSource =
  | SwitchboardClient
  | {
      readonly client?: SwitchboardClient | null | undefined;
      readonly send?: unknown;
      readonly status?: unknown;
    };

/** The clients behind the `send` functions {@link useWebSocket} returned, so `{ status, send }` finds its client. */
const sendOwners = new WeakMap<object, SwitchboardClient>();

/** Records that `send` publishes through `client`. */
export function registerSend(send: object, client: SwitchboardClient): void {
  sendOwners.set(send, client);
}

/** Whether `value` is a switchboard client (also one of another copy of the package). */
export function isClient(value: unknown): value is SwitchboardClient {
  if (value instanceof SwitchboardClient) return true;
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as { on?: unknown; publish?: unknown; subscribe?: unknown; watchPresence?: unknown };
  return (
    typeof candidate.on === "function" &&
    typeof candidate.publish === "function" &&
    typeof candidate.subscribe === "function" &&
    typeof candidate.watchPresence === "function"
  );
}

/** The client `source` names, if any. */
export function clientOf(source: ClientSource | null | undefined): SwitchboardClient | null {
  if (!source) return null;
  if (isClient(source)) return source;
  if (isClient(source.client)) return source.client;
  if (typeof source.send === "function") return sendOwners.get(source.send) ?? null;
  return null;
}

/**
 * The client a hook works with: the one `source` names, else the provider's; throws, naming
 * `hook`, when there is neither.
 */
export function useResolvedClient(source: ClientSource | null | undefined, hook: string): SwitchboardClient {
  const fromContext = useContext(SwitchboardContext);
  const client = clientOf(source) ?? fromContext;
  if (!client) {
    throw new Error(
      `${hook} has no switchboard client: pass the value of useWebSocket() (or a SwitchboardClient), ` +
        "or render it inside <SwitchboardProvider>",
    );
  }
  return client;
}

/**
 * The client of the nearest {@link SwitchboardProvider}.
 *
 * @throws Error when there is no provider above the component.
 */
export function useSwitchboardClient(): SwitchboardClient {
  const client = useContext(SwitchboardContext);
  if (!client) throw new Error("useSwitchboardClient must be used inside <SwitchboardProvider>");
  return client;
}

/** The provider's client, or `null` outside a provider. */
export function useOptionalSwitchboardClient(): SwitchboardClient | null {
  return useContext(SwitchboardContext);
}

/**
 * `url` as an absolute `ws:`/`wss:` URL: an absolute URL is kept as it is; a relative one
 * (`"/ws"`) is resolved against the page's location, `http:` becoming `ws:` and `https:`
 * `wss:`. Without a page (server rendering) a relative URL is kept as it is.
 */
export function resolveSocketUrl(url: string): string {
  try {
    new URL(url);
    return url;
  } catch {
    // Relative: resolved below, where there is a page.
  }
  const location = (globalThis as { location?: { href?: string } }).location;
  if (!location?.href) return url;
  try {
    const resolved = new URL(url, location.href);
    if (resolved.protocol === "http:") resolved.protocol = "ws:";
    else if (resolved.protocol === "https:") resolved.protocol = "wss:";
    return resolved.toString();
  } catch {
    return url;
  }
}

/**
 * A client this component creates and owns while `url` is given: created on first render,
 * connected on mount, closed on unmount, and replaced (the old one closed) when `url`, a
 * string `token` or `persistQueue` changes. A function `token` may change identity on every
 * render: the client always calls the latest one. Other options are read when the client is
 * created. Returns `null` without a `url`.
 */
export function useOwnedClient(url: string | undefined, options: ClientOptions, persistQueue: boolean): SwitchboardClient | null {
  const token = options.token;
  const tokenRef = useRef<TokenSource>(token);
  useIsomorphicLayoutEffect(() => {
    tokenRef.current = token;
  });
  const target = url === undefined ? undefined : resolveSocketUrl(url);
  const key =
    target === undefined
      ? null
      : JSON.stringify([target, typeof token === "function" ? { function: true } : (token ?? null), persistQueue]);
  const slot = useRef<{ key: string; client: SwitchboardClient } | null>(null);
  if (key !== null && slot.current?.key !== key) {
    const clientOptions: ClientOptions = { ...options };
    if (typeof token === "function") {
      // Always the latest function of the component, without replacing the client.
      clientOptions.token = () => {
        const current = tokenRef.current;
        return typeof current === "function" ? current() : current;
      };
    }
    if (!persistQueue) clientOptions.queue = { ...options.queue, storage: null };
    slot.current = { key, client: new SwitchboardClient(target as string, clientOptions) };
  }
  const client = key === null ? null : (slot.current?.client ?? null);
  useEffect(() => {
    if (!client) return undefined;
    client.connect();
    return () => client.close();
  }, [client]);
  return client;
}

/** Props of {@link SwitchboardProvider}: either a `client` you own, or a `url` (and `options`) for one the provider owns. */
export type SwitchboardProviderProps =
  | {
      /** A client created by the application: connected on mount, never closed by the provider. */
      client: SwitchboardClient;
      url?: undefined;
      options?: undefined;
      children?: ReactNode;
    }
  | {
      /**
       * The server's `/ws` URL (relative ones, like `"/ws"`, resolve against the page): the
       * provider creates a client, connects it on mount and closes it on unmount.
       */
      url: string;
      /**
       * The client's options (token, reconnect, heartbeat, quality, queue…). They are read when
       * the client is created; the client is replaced when `url` or a string `token` changes,
       * while a function `token` may change freely (the latest one is called).
       */
      options?: ClientOptions;
      client?: undefined;
      children?: ReactNode;
    };

/**
 * Makes one switchboard client available to the hooks below it ({@link useWebSocket} without
 * a `url`, {@link useChannel}, {@link usePresence}, {@link useConnectionQuality}).
 *
 * ```tsx
 * <SwitchboardProvider url="wss://rt.example.com/ws" options={{ token: getJwt }}>
 *   <App />
 * </SwitchboardProvider>
 * ```
 *
 * With `client`, the application owns the client: the provider connects it on mount (a no-op
 * when it is connected already) and never closes it. With `url`, the provider owns it.
 */
export function SwitchboardProvider(props: SwitchboardProviderProps): ReactElement {
  const given = props.client ?? null;
  const owned = useOwnedClient(given ? undefined : props.url, props.options ?? {}, true);
  const client = given ?? owned;
  useEffect(() => {
    given?.connect();
  }, [given]);
  if (!client) throw new TypeError("SwitchboardProvider needs a `client` or a `url`");
  return <SwitchboardContext.Provider value={client}>{props.children}</SwitchboardContext.Provider>;
}
