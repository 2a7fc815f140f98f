/**
 * React bindings for the switchboard client: a provider, hooks for the connection, its
 * channels, presence and quality, and connection quality components. A thin layer over
 * `@switchboard/client`, which implements every semantic (reconnects, recovery, the offline
 * queue, quality measurement); the components are unstyled unless you import
 * `@switchboard/react/styles.css`.
 *
 * ```tsx
 * const ws = useWebSocket({ url: "ws://127.0.0.1:5111/ws" });
 * const q = useConnectionQuality(ws);
 * return <ConnectionQualityBadge status={ws.status} metrics={q} />;
 * ```
 *
 * @packageDocumentation
 */
export {
  type ClientSource,
  type SwitchboardProviderProps,
  SwitchboardProvider,
  useSwitchboardClient,
} from "./context.js";
export {
  type QueueControls,
  type SendFunction,
  type UseWebSocketOptions,
  type WebSocketState,
  useWebSocket,
} from "./useWebSocket.js";
export { useConnectionQuality } from "./useConnectionQuality.js";
export {
  type ChannelPublishFunction,
  type ChannelState,
  type ChannelStatus,
  type UseChannelOptions,
  useChannel,
} from "./useChannel.js";
export {
  type PresenceAnnouncement,
  type PresenceState,
  type SetPresenceFunction,
  type UsePresenceOptions,
  usePresence,
} from "./usePresence.js";
export {
  type ConnectionQualityCardProps,
  type ConnectionQualityIndicatorProps,
  type ConnectionQualityProps,
  ConnectionQualityBadge,
  ConnectionQualityCard,
  ConnectionQualityIndicator,
} from "./components.js";
export {
  type ConnectionQuality,
  NO_FIGURE,
  QUALITY_BARS,
  QUALITY_CLASSES,
  QUALITY_COLORS,
  SIGNAL_BARS,
  describeQuality,
  formatLatency,
  formatPercent,
  normalizeMetrics,
  qualityBars,
  qualityColor,
  qualityLabel,
  resolveQualityClass,
  toConnectionQuality,
} from "./format.js";
export type {
  Member,
  Message,
  Publish,
  PublishOptions,
  Quality,
  QualityClass,
  Status,
} from "@switchboard/client";
export { SwitchboardClient, SwitchboardError } from "@switchboard/client";
