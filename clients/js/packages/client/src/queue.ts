import { type Backoff, RETRY_BACKOFF, backoffDelay } from "./backoff.js";
import { type Clock } from "./clock.js";
import { type Json, type Priority, isPriority, priorityRank } from "./protocol.js";

/** A publish as it is sent: the frame the server receives. */
export interface PublishFrame {
  type: string;
  channel: string;
  payload: Json;
  id: string;
  priority: Priority;
  excludeSelf?: boolean;
}

/** Where the offline queue persists: `localStorage` in browsers, or any adapter of this shape. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** A publish held by the queue until the server acknowledges it. */
export interface QueuedPublish {
  readonly frame: PublishFrame;
  /** Order of arrival, for "oldest first" within a priority. */
  readonly seq: number;
  /** Attempts that failed so far (no ack in time, or a retryable error). */
  readonly attempts: number;
  /** `"sent"`: on the wire, waiting for its ack; `"waiting"`: to be sent. */
  readonly state: "waiting" | "sent";
}

/** Settings of the offline queue. */
export interface QueueOptions {
  /**
   * Most publishes held, sent or not. When full, a publish evicts the oldest waiting publish
   * of the lowest priority below its own (low first; critical is never evicted), or is
   * refused when there is none. Default 100.
   */
  capacity: number;
  /** Failed attempts after which a publish is given up and reported failed. Default 3. */
  maxAttempts: number;
  /** A sent publish not acknowledged within this time is a failed attempt. Default 10000 ms. */
  ackTimeoutMs: number;
  /** The wait before a failed publish is sent again. Default 500 ms × 2 up to 30 s, half jitter. */
  retryBackoff: Backoff;
  /** Publishes on the wire at once, at most, so a long queue does not trip the rate limit. Default 32. */
  maxInFlight: number;
  /**
   * Where the queue persists. Default: `localStorage` where it works (browsers), else
   * nothing (the queue lives in memory). `null` turns persistence off.
   */
  storage: StorageLike | null;
  /**
   * The storage key (the client id is kept beside it). Default
   * `switchboard:queue:<tab>:<host><path>`: one queue per browser tab and server, which a
   * reload of the tab resumes. Two clients of one server in one tab must each be given
   * their own key, or they would share (and overwrite) one queue.
   */
  key: string;
}

/** The queue's defaults, as the product specifies them. */
export const QUEUE_DEFAULTS: Readonly<Omit<QueueOptions, "storage" | "key">> = Object.freeze({
  capacity: 100,
  maxAttempts: 3,
  ackTimeoutMs: 10000,
  retryBackoff: RETRY_BACKOFF,
  maxInFlight: 32,
});

interface Entry {
  frame: PublishFrame;
  seq: number;
  attempts: number;
  state: "waiting" | "sent";
  /** When it may be sent (waiting) or when its ack is due (sent), on the clock's `now`. */
  dueAt: number;
}

/** What {@link OfflineQueue.push} did. */
export type PushResult =
  | { readonly accepted: true; readonly evicted: QueuedPublish | null }
  | { readonly accepted: false };

/** What {@link OfflineQueue.fail} did with a failed attempt. */
export type FailResult =
  | { readonly kind: "retry"; readonly at: number }
  | { readonly kind: "dead"; readonly entry: QueuedPublish }
  | { readonly kind: "unknown" };

/**
 * The priority offline queue: every publish goes through it, is sent when connected (most
 * important first, oldest first within a priority) and stays until acknowledged, refused,
 * evicted for a more important one, or out of attempts. Nothing leaves it without the caller
 * being told which of these happened.
 */
export class OfflineQueue {
  readonly #options: QueueOptions;
  readonly #clock: Clock;
  #entries: Entry[] = [];
  #seq = 0;
  #inFlight = 0;

  constructor(options: QueueOptions, clock: Clock) {
    this.#options = options;
    this.#clock = clock;
    this.#entries = this.#load();
    this.#seq = this.#entries.reduce((max, e) => Math.max(max, e.seq), 0);
  }

  /** Publishes held, sent or not. */
  get size(): number {
    return this.#entries.length;
  }

  /** Whether publish `id` is held. */
  has(id: string): boolean {
    return this.#find(id) !== undefined;
  }

  /** Every publish held, in the order they will be sent. */
  list(): QueuedPublish[] {
    return this.#ordered(this.#entries).map(view);
  }

  /** Adds a publish, evicting a less important waiting one when full (see {@link QueueOptions.capacity}). */
  push(frame: PublishFrame): PushResult {
    let evicted: QueuedPublish | null = null;
    if (this.#entries.length >= this.#options.capacity) {
      const victim = this.#victimFor(frame.priority);
      if (!victim) return { accepted: false };
      this.#remove(victim);
      evicted = view(victim);
    }
    this.#entries.push({
      frame,
      seq: ++this.#seq,
      attempts: 0,
      state: "waiting",
      dueAt: this.#clock.now(),
    });
    this.#save();
    return { accepted: true, evicted };
  }

  /**
   * Takes the next publish to send, if one is due and fewer than `maxInFlight` are on the
   * wire; it counts as sent from now, its ack due within `ackTimeoutMs`.
   */
  take(): PublishFrame | undefined {
    if (this.#inFlight >= this.#options.maxInFlight) return undefined;
    const now = this.#clock.now();
    let best: Entry | undefined;
    for (const e of this.#entries) {
      if (e.state !== "waiting" || e.dueAt > now) continue;
      if (!best || before(e, best)) best = e;
    }
    if (!best) return undefined;
    best.state = "sent";
    best.dueAt = now + this.#options.ackTimeoutMs;
    this.#inFlight += 1;
    return best.frame;
  }

  /** The server acknowledged publish `id`: it leaves the queue. */
  ack(id: string): QueuedPublish | undefined {
    const entry = this.#find(id);
    if (!entry) return undefined;
    this.#remove(entry);
    this.#save();
    return view(entry);
  }

  /** The server refused publish `id` for good: it leaves the queue. */
  refuse(id: string): QueuedPublish | undefined {
    return this.ack(id);
  }

  /**
   * An attempt of publish `id` failed (no ack in time, or a retryable error). It is sent
   * again after the retry backoff (or `notBeforeMs`, when later), or given up after
   * `maxAttempts`.
   */
  fail(id: string, notBeforeMs = 0): FailResult {
    const entry = this.#find(id);
    if (!entry) return { kind: "unknown" };
    if (entry.state === "sent") this.#inFlight -= 1;
    entry.attempts += 1;
    if (entry.attempts >= this.#options.maxAttempts) {
      this.#remove(entry);
      this.#save();
      return { kind: "dead", entry: view(entry) };
    }
    const delay = backoffDelay(this.#options.retryBackoff, entry.attempts, this.#clock.random());
    entry.state = "waiting";
    entry.dueAt = this.#clock.now() + Math.max(delay, notBeforeMs);
    this.#save();
    return { kind: "retry", at: entry.dueAt };
  }

  /** Publishes whose ack is overdue at the clock's now. */
  overdue(): string[] {
    const now = this.#clock.now();
    return this.#entries.filter((e) => e.state === "sent" && e.dueAt <= now).map((e) => e.frame.id);
  }

  /** The connection is gone: everything sent is to be sent again, no attempt counted. */
  releaseAll(): void {
    const now = this.#clock.now();
    for (const e of this.#entries) {
      if (e.state === "sent") {
        e.state = "waiting";
        e.dueAt = now;
      }
    }
    this.#inFlight = 0;
  }

  /** Makes every waiting publish due now (a retry waits no longer). */
  expedite(): void {
    const now = this.#clock.now();
    for (const e of this.#entries) if (e.state === "waiting") e.dueAt = now;
  }

  /** When the next waiting publish becomes due or the next ack is overdue, if any. */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const e of this.#entries) {
      if (e.state === "waiting" && this.#inFlight >= this.#options.maxInFlight) continue;
      if (next === undefined || e.dueAt < next) next = e.dueAt;
    }
    return next;
  }

  /** Empties the queue; returns what was in it. */
  clear(): QueuedPublish[] {
    const all = this.list();
    this.#entries = [];
    this.#inFlight = 0;
    this.#save();
    return all;
  }

  #victimFor(priority: Priority): Entry | undefined {
    const rank = priorityRank(priority);
    let victim: Entry | undefined;
    for (const e of this.#entries) {
      if (e.state !== "waiting" || priorityRank(e.frame.priority) >= rank) continue;
      const vr = victim ? priorityRank(victim.frame.priority) : Infinity;
      const er = priorityRank(e.frame.priority);
      if (!victim || er < vr || (er === vr && e.seq < victim.seq)) victim = e;
    }
    return victim;
  }

  #find(id: string): Entry | undefined {
    return this.#entries.find((e) => e.frame.id === id);
  }

  #remove(entry: Entry): void {
    const index = this.#entries.indexOf(entry);
    if (index < 0) return;
    this.#entries.splice(index, 1);
    if (entry.state === "sent") this.#inFlight -= 1;
  }

  #ordered(entries: Entry[]): Entry[] {
    return [...entries].sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
  }

  #load(): Entry[] {
    const { storage, key } = this.#options;
    if (!storage) return [];
    let saved: unknown;
    try {
      saved = JSON.parse(storage.getItem(key) ?? "[]");
    } catch {
      return [];
    }
    if (!Array.isArray(saved)) return [];
    const now = this.#clock.now();
    const entries: Entry[] = [];
    for (const item of saved) {
      const frame = (item as { frame?: PublishFrame } | null)?.frame;
      if (!frame || typeof frame.id !== "string" || typeof frame.channel !== "string") continue;
      if (!isPriority(frame.priority)) continue;
      const { seq, attempts } = item as { seq?: unknown; attempts?: unknown };
      entries.push({
        frame,
        seq: typeof seq === "number" ? seq : entries.length + 1,
        attempts: typeof attempts === "number" ? attempts : 0,
        state: "waiting",
        dueAt: now,
      });
    }
    return entries;
  }

  #save(): void {
    const { storage, key } = this.#options;
    if (!storage) return;
    try {
      if (this.#entries.length === 0) {
        storage.removeItem(key);
      } else {
        const saved = this.#entries.map((e) => ({ frame: e.frame, seq: e.seq, attempts: e.attempts }));
        storage.setItem(key, JSON.stringify(saved));
      }
    } catch {
      // Storage full or denied: the queue still holds everything in memory.
    }
  }
}

/** Whether `a` goes out before `b`: higher priority first, then older first. */
function before(a: Entry, b: Entry): boolean {
  const pa = priorityRank(a.frame.priority);
  const pb = priorityRank(b.frame.priority);
  return pa !== pb ? pa > pb : a.seq < b.seq;
}

function view(e: Entry): QueuedPublish {
  return { frame: e.frame, seq: e.seq, attempts: e.attempts, state: e.state };
}
