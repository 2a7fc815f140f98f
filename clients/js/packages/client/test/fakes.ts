// Test doubles: a clock whose time moves only when the test says so, a WebSocket whose
// server side the test plays, and an in-memory Storage.
import type { Clock } from "../src/clock.js";
import type { StorageLike } from "../src/queue.js";
import type { WebSocketConstructor, WebSocketLike } from "../src/client.js";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that only moves on `advance`; `random` returns the values queued with `draws` (else 0.5). */
export class FakeClock implements Clock {
  #now = 1000;
  #wallOffset = 1_700_000_000_000;
  #timers = new Map<number, Timer>();
  #seq = 0;
  draws: number[] = [];

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#wallOffset + this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const seq = ++this.#seq;
    this.#timers.set(seq, { at: this.#now + Math.max(0, ms), seq, fn });
    return seq;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  random(): number {
    return this.draws.length ? this.draws.shift()! : 0.5;
  }

  /** Timers pending, soonest first. */
  pending(): number[] {
    return [...this.#timers.values()].map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, running every timer due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.#timers.values()) {
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.#timers.delete(next.seq);
      this.#now = next.at;
      next.fn();
      await flushMicrotasks();
    }
    this.#now = end;
    await flushMicrotasks();
  }
}

/** Lets promise callbacks (the token source, requests) run. */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A WebSocket whose server side the test plays: it records what the client sends. */
export class FakeSocket implements WebSocketLike {
  static sockets: FakeSocket[] = [];
  readyState = 0;
  protocol = "";
  sent: Array<{ [key: string]: unknown }> = [];
  closedWith: { code?: number; reason?: string } | null = null;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols: string[] = [],
  ) {
    FakeSocket.sockets.push(this);
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data) as { [key: string]: unknown });
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  /** The server accepts the connection and sends `welcome`. */
  open(welcome: { [key: string]: unknown } = {}): void {
    this.readyState = 1;
    this.protocol = "switchboard.v1";
    this.onopen?.({});
    this.receive({
      type: "welcome",
      connectionId: `c-${FakeSocket.sockets.length}`,
      userId: null,
      heartbeatMs: 30000,
      timestamp: 0,
      ...welcome,
    });
  }

  /** The server sends `frame`. */
  receive(frame: { [key: string]: unknown }): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** The connection ends with `code` (1006: no close frame). */
  drop(code = 1006, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** The handshake fails with an error and no close (as Node 20's experimental WebSocket does). */
  fail(): void {
    this.onerror?.({});
  }

  /** Frames sent of `type`. */
  ofType(type: string): Array<{ [key: string]: unknown }> {
    return this.sent.filter((f) => f["type"] === type);
  }

  /** The last frame sent. */
  last(): { [key: string]: unknown } | undefined {
    return this.sent[this.sent.length - 1];
  }
}

/** The constructor to pass as `options.WebSocket`, with a fresh list of sockets. */
export function fakeSockets(): { WebSocket: WebSocketConstructor; sockets: FakeSocket[] } {
  FakeSocket.sockets = [];
  return {
    WebSocket: FakeSocket as unknown as WebSocketConstructor,
    get sockets() {
      return FakeSocket.sockets;
    },
  };
}

/** Storage in a Map, like localStorage. */
export class MemoryStorage implements StorageLike {
  readonly map = new Map<string, string>();

  getItem(key: string): string | null {
    return this.map.get(key) ?? null;
  }

  setItem(key: string, value: string): void {
    this.map.set(key, value);
  }

  removeItem(key: string): void {
    this.map.delete(key);
  }
}
