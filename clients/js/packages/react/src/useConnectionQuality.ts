import { useCallback, useMemo, useSyncExternalStore } from "react";
import { type ClientSource, useResolvedClient } from "./context.js";
import { type ConnectionQuality, toConnectionQuality } from "./format.js";

/**
 * The connection quality of a client, re-rendering the component whenever the client
 * measures it again (after every answered or lost ping, and on every status change).
 *
 * The client measures by itself: a ping every 10 s (`heartbeat.intervalMs`), latency and
 * jitter over the last 10 answered pings and loss over the last 10 pings (`quality.samples`),
 * stability over 5 minutes; this hook adds no timer of its own. Classes: `excellent`
 * (< 100 ms, < 1 % loss, no reconnect), `good` (< 300 ms, < 5 %, ≤ 1), `fair` (< 1000 ms,
 * < 15 %, ≤ 3), `poor`, and `offline` whenever the client is not open.
 *
 * @param source the client to watch: the value of {@link useWebSocket} (or its
 *   `{ status, send }`), a `SwitchboardClient`, or nothing for the {@link SwitchboardProvider}'s.
 * @throws Error when `source` names no client and there is no provider.
 */
export function useConnectionQuality(source?: ClientSource | null): ConnectionQuality {
  const client = useResolvedClient(source, "useConnectionQuality");
  const onQuality = useCallback((notify: () => void) => client.on("quality", notify), [client]);
  const metrics = useSyncExternalStore(
    onQuality,
    () => client.quality,
    () => client.quality,
  );
  return useMemo(() => toConnectionQuality(metrics), [metrics]);
}
