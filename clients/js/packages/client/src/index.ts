/**
 * The switchboard client for browsers and Node ≥ 20: Protocol v1 over one WebSocket, with
 * reconnects, recovery by offset, a priority offline queue, acks, presence and connection
 * quality. No runtime dependencies.
 *
 * @packageDocumentation
 */
export {
  SwitchboardClient,
  SwitchboardError,
  type Ack,
  type ClientEvents,
  type ClientOptions,
  type HeartbeatOptions,
  type Publish,
  type PublishFailure,
  type PublishFailureReason,
  type PublishOptions,
  type Status,
  type StatusChange,
  type SubscribeOptions,
  type Subscription,
  type TokenSource,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client.js";
export { type Backoff, RECONNECT_BACKOFF, RETRY_BACKOFF, backoffCap, backoffDelay } from "./backoff.js";
export { type Clock, systemClock } from "./clock.js";
export {
  type ErrorCode,
  type ErrorFrame,
  type Json,
  type Member,
  type Message,
  type PresenceUpdateFrame,
  type Priority,
  type Sender,
  type SubscribedFrame,
  type UnsubscribedFrame,
  type WelcomeFrame,
  PRIORITIES,
  RESERVED_TYPES,
  isValidChannel,
  isValidEventType,
} from "./protocol.js";
export {
  type FailResult,
  type PublishFrame,
  type PushResult,
  type QueueOptions,
  type QueuedPublish,
  type StorageLike,
  OfflineQueue,
  QUEUE_DEFAULTS,
} from "./queue.js";
export {
  type Quality,
  type QualityClass,
  type QualityOptions,
  QUALITY_DEFAULTS,
  QUALITY_THRESHOLDS,
  QualityTracker,
  classifyQuality,
  offlineQuality,
} from "./quality.js";
