/**
 * Protocol v1 frames, as docs/protocol.md specifies them. Every frame is one JSON object
 * with a string `type`.
 */

/** What a publish may be marked with; it decides only what a full queue evicts first. */
export type Priority = "critical" | "high" | "normal" | "low";

/** The priorities, most important first. */
export const PRIORITIES: readonly Priority[] = ["critical", "high", "normal", "low"];

/** 3 for `critical` down to 0 for `low`. */
export function priorityRank(priority: Priority): number {
  return 3 - PRIORITIES.indexOf(priority);
}

/** Whether `value` names a priority. */
export function isPriority(value: unknown): value is Priority {
  return typeof value === "string" && (PRIORITIES as readonly string[]).includes(value);
}

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Who published a message: `connectionId` `"$server"` for the server's own publishes. */
export interface Sender {
  userId: string | null;
  connectionId: string;
}

/** An application message delivered on a channel. */
export interface Message<P = unknown> {
  type: string;
  channel: string;
  payload: P;
  id: string;
  /** When the server received the publish, ms since the epoch. */
  timestamp: number;
  priority: Priority;
  from: Sender;
  /** The message's position in its channel: 1, 2, 3… within an epoch. */
  offset: number;
}

/** A presence member of a channel. */
export interface Member {
  connectionId: string;
  userId: string | null;
  status: string;
  currentFeature: string | null;
  meta: { [key: string]: Json } | null;
  joinedAt: number;
  lastSeen: number;
}

/** The first frame of every connection. */
export interface WelcomeFrame {
  type: "welcome";
  connectionId: string;
  userId: string | null;
  heartbeatMs: number;
  timestamp: number;
  /** When the token expires, ms since the epoch; absent without one. */
  expiresAt?: number;
}

/** The answer to a subscribe (or a subscription the server made: `server: true`). */
export interface SubscribedFrame {
  type: "subscribed";
  channel: string;
  id?: string;
  offset: number;
  epoch: string;
  recovered: boolean;
  server?: boolean;
}

/** A subscription ended: `reason` `"forbidden"` or `"server"` when the client did not ask. */
export interface UnsubscribedFrame {
  type: "unsubscribed";
  channel: string;
  id?: string;
  reason?: string;
}

/** A join, leave or update of a channel's presence. */
export interface PresenceUpdateFrame {
  type: "presence-update";
  channel: string;
  action: "join" | "leave" | "update";
  member: Member;
  timestamp: number;
}

/** The protocol's error codes (docs/protocol.md, "Error codes"). */
export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "rate_limited"
  | "too_large"
  | "not_subscribed"
  | "unsupported"
  | "unavailable"
  | "internal";

/** An `error` frame. */
export interface ErrorFrame {
  type: "error";
  code: ErrorCode | string;
  message: string;
  id?: string;
  rateLimited?: boolean;
  retryAfterMs?: number;
}

/** Frame types the protocol reserves; an application event may not use them. */
export const RESERVED_TYPES: ReadonlySet<string> = new Set([
  "subscribe",
  "unsubscribe",
  "ping",
  "pong",
  "presence",
  "presence-update",
  "welcome",
  "subscribed",
  "unsubscribed",
  "ack",
  "error",
  "excluded",
  "refresh",
  "refreshed",
]);

const CHANNEL = /^[A-Za-z0-9_.:@/=-]{1,255}$/;
const EVENT_TYPE = /^[A-Za-z0-9_.:/-]{1,128}$/;

/** Whether `channel` is a valid channel name: 1–255 bytes of `[A-Za-z0-9_.:@/=-]`. */
export function isValidChannel(channel: string): boolean {
  return CHANNEL.test(channel);
}

/** Whether `type` may name an application event: 1–128 bytes of `[A-Za-z0-9_.:/-]`, not reserved. */
export function isValidEventType(type: string): boolean {
  return EVENT_TYPE.test(type) && !RESERVED_TYPES.has(type);
}

/** Error codes after which the same request may succeed later. */
export function isRetryable(code: string): boolean {
  return code === "rate_limited" || code === "unavailable" || code === "internal";
}
