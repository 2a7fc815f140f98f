import { useCallback, useEffect, useRef, useState } from "react";
import {
  type Message,
  type Publish,
  type PublishOptions,
  type Subscription,
  SwitchboardClient,
  SwitchboardError,
} from "@switchboard/client";
import { type ClientSource, useIsomorphicLayoutEffect, useResolvedClient } from "./context.js";

/**
 * Where a {@link useChannel} subscription is:
 * - `subscribing`: asked for, not in place yet (also while the client reconnects: it
 *   re-subscribes and recovers what was missed by itself);
 * - `subscribed`: in place, messages flow;
 * - `error`: refused (e.g. `forbidden`), or an invalid channel name; see `error`;
 * - `unsubscribed`: ended by the server or by a `client.unsubscribe(channel)` elsewhere;
 *   it is not made again until the component remounts or the channel changes.
 */
export type ChannelStatus = "subscribing" | "subscribed" | "error" | "unsubscribed";

/** Options of {@link useChannel}. */
export interface UseChannelOptions {
  /** The client to subscribe with (see {@link ClientSource}); default the {@link SwitchboardProvider}'s. */
  client?: ClientSource | null;
  /**
   * Also load what the server still keeps of the channel's history when this subscribe is the
   * channel's first on the client. Read when the subscription is made.
   */
  history?: boolean;
}

/** Publishes on the hook's channel; see {@link ChannelState.publish}. */
export type ChannelPublishFunction = (type: string, payload?: unknown, options?: PublishOptions) => Publish;

/** What {@link useChannel} returns. */
export interface ChannelState {
  /** Where the subscription is. */
  status: ChannelStatus;
  /** Why, with status `error` (a `SwitchboardError` with the server's code, or a `TypeError` for an invalid name); else `null`. */
  error: Error | null;
  /**
   * Publishes event `type` with `payload` on this channel through the client's offline queue;
   * a promise of the ack, with the message `id` at once. Keeps its identity while the client
   * and channel are the same.
   */
  publish: ChannelPublishFunction;
}

interface Tracked {
  client: SwitchboardClient;
  channel: string;
  status: ChannelStatus;
  error: Error | null;
}

/**
 * Subscribes to `channel` while the component is mounted and calls `onMessage` for each of its
 * messages, once each and in order (the client recovers what a reconnect missed).
 *
 * Components subscribed to the same channel share one subscription (the client counts
 * them and unsubscribes when the last one unmounts). `onMessage` may be a new function on every
 * render: the latest one is called, without re-subscribing. The subscription is replaced when
 * `channel` or the client changes.
 *
 * ```tsx
 * const chat = useChannel<{ text: string }>("chat:lobby", (m) => add(m.payload.text));
 * chat.publish("chat.message", { text: "hi" });
 * ```
 */
export function useChannel<P = unknown>(
  channel: string,
  onMessage?: ((message: Message<P>) => void) | null,
  options: UseChannelOptions = {},
): ChannelState {
  const client = useResolvedClient(options.client, "useChannel");
  const history = options.history ?? false;
  const handler = useRef(onMessage);
  useIsomorphicLayoutEffect(() => {
    handler.current = onMessage;
  });
  const [tracked, setTracked] = useState<Tracked | null>(null);

  useEffect(() => {
    let active = true;
    const update = (status: ChannelStatus, error: Error | null = null, onlyFrom?: ChannelStatus) => {
      if (!active) return;
      setTracked((previous) => {
        const mine = previous && previous.client === client && previous.channel === channel ? previous : null;
        const current = mine?.status ?? "subscribing";
        if (onlyFrom !== undefined && current !== onlyFrom) return previous;
        if (mine && mine.status === status && mine.error === error) return previous;
        return { client, channel, status, error };
      });
    };
    let handle: Subscription;
    try {
      handle = client.subscribe(channel, { history });
    } catch (error) {
      update("error", error instanceof Error ? error : new Error(String(error)));
      return () => {
        active = false;
      };
    }
    const offs = [
      client.on("message", (message) => {
        if (message.channel === channel) handler.current?.(message as Message<P>);
      }),
      client.on("subscribed", (frame) => {
        if (frame.channel === channel) update("subscribed");
      }),
      client.on("status", (change) => {
        if (change.status !== "open") update("subscribing", null, "subscribed");
      }),
      client.on("unsubscribed", (frame) => {
        if (frame.channel !== channel || !frame.reason) return;
        if (frame.reason === "forbidden") {
          update("error", new SwitchboardError("forbidden", `unsubscribed from ${channel} by the server (forbidden)`));
        } else {
          update("unsubscribed");
        }
      }),
    ];
    handle.ready().then(
      () => update("subscribed"),
      (error: unknown) => {
        if (error instanceof SwitchboardError && error.code === "unsubscribed") update("unsubscribed");
        else update("error", error instanceof Error ? error : new Error(String(error)));
      },
    );
    return () => {
      active = false;
      for (const off of offs) off();
      handle.unsubscribe();
    };
  }, [client, channel, history]);

  const publish = useCallback<ChannelPublishFunction>(
    (type, payload = null, publishOptions) => client.publish(channel, type, payload, publishOptions),
    [client, channel],
  );
  const mine = tracked && tracked.client === client && tracked.channel === channel ? tracked : null;
  return { status: mine?.status ?? "subscribing", error: mine?.error ?? null, publish };
}
