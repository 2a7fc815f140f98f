// The hooks rendered on the server (renderToStaticMarkup): their first render, which client
// they pick, and what their functions do. Effects do not run here; the live behaviour
// (connect, re-render on events, subscriptions, presence) is tested in Chromium against the
// real server in browser.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ReactElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { type WebSocketLike, SwitchboardClient, SwitchboardError } from "@switchboard/client";
import {
  type ChannelState,
  type ConnectionQuality,
  type PresenceState,
  type WebSocketState,
  SwitchboardProvider,
  useChannel,
  useConnectionQuality,
  usePresence,
  useSwitchboardClient,
  useWebSocket,
} from "../src/index.js";
import { resolveSocketUrl } from "../src/context.js";

/** Renders `hook` in a component (inside `wrap`, if given) and returns what it returned. */
function renderHook<T>(hook: () => T, wrap?: (child: ReactElement) => ReactElement): T {
  let result: { value: T } | null = null;
  function Probe(): null {
    result = { value: hook() };
    return null;
  }
  renderToStaticMarkup(wrap ? wrap(<Probe />) : <Probe />);
  if (!result) throw new Error("the hook did not render");
  return (result as { value: T }).value;
}

/** A client that never touches a network or storage. */
function offlineClient(): SwitchboardClient {
  return new SwitchboardClient("ws://127.0.0.1:1/ws", { queue: { storage: null }, clientId: "test" });
}

/** Records the sockets a client opens, without opening any. */
class RecordingSocket implements WebSocketLike {
  static opened: Array<{ url: string; protocols: string | string[] | undefined }> = [];
  readonly readyState = 0;
  readonly protocol = "";
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  constructor(url: string, protocols?: string | string[]) {
    RecordingSocket.opened.push({ url, protocols });
  }
  send(): void {}
  close(): void {}
}

describe("useWebSocket", () => {
  it("needs a url, a client or a provider", () => {
    assert.throws(() => renderHook(() => useWebSocket()), /useWebSocket needs a `url`, a `client`, or a <SwitchboardProvider>/);
  });

  it("creates its own client for a url, idle until mounted", () => {
    const ws = renderHook(() => useWebSocket({ url: "ws://127.0.0.1:5111/ws", queue: { storage: null } }));
    assert.ok(ws.client instanceof SwitchboardClient);
    assert.equal(ws.client.url, "ws://127.0.0.1:5111/ws");
    assert.equal(ws.status, "idle", "a server render never connects");
    assert.equal(ws.isConnected, false);
    assert.equal(ws.connectionId, null);
    assert.equal(ws.userId, null);
    assert.equal(ws.queueSize, 0);
    assert.equal(ws.queue.size, 0);
    assert.equal(ws.lastError, null);
  });

  it("uses the provider's client without a url, and a given client before it", () => {
    const provided = offlineClient();
    const given = offlineClient();
    const withProvider = (child: ReactElement) => <SwitchboardProvider client={provided}>{child}</SwitchboardProvider>;
    assert.equal(renderHook(() => useWebSocket(), withProvider).client, provided);
    assert.equal(renderHook(() => useWebSocket({ client: given }), withProvider).client, given);
    const own = renderHook(() => useWebSocket({ url: "ws://127.0.0.1:5112/ws", queue: { storage: null } }), withProvider);
    assert.notEqual(own.client, provided, "a url means a client of its own, even inside a provider");
    assert.equal(own.client.url, "ws://127.0.0.1:5112/ws");
  });

  it("queues what is sent while disconnected, and clears and lists the queue", async () => {
    const client = offlineClient();
    const ws = renderHook(() => useWebSocket({ client }));
    const publish = ws.send("chat:lobby", "chat.message", { text: "hi" }, { priority: "high" });
    assert.equal(typeof publish.id, "string");
    assert.equal(client.queueSize, 1);
    const items = ws.queue.items();
    assert.equal(items.length, 1);
    assert.equal(items[0]?.frame.id, publish.id);
    assert.equal(items[0]?.frame.priority, "high");
    assert.deepEqual(items[0]?.frame.payload, { text: "hi" });
    assert.equal(ws.queue.clear(), 1);
    assert.equal(client.queueSize, 0);
    await assert.rejects(publish, (error: unknown) => error instanceof SwitchboardError && error.code === "cleared");
    assert.equal(ws.clearQueue(), 0);
    assert.doesNotThrow(() => ws.processQueue(), "processing while disconnected sends nothing and throws nothing");
  });

  it("rejects at once what is sent while disconnected when the offline queue is disabled", async () => {
    const client = offlineClient();
    const ws = renderHook(() => useWebSocket({ client, enableOfflineQueue: false }));
    const publish = ws.send("chat:lobby", "chat.message", { text: "hi" }, { id: "m-1" });
    assert.equal(publish.id, "m-1");
    await assert.rejects(publish, (error: unknown) => error instanceof SwitchboardError && error.code === "not_connected");
    assert.equal(client.queueSize, 0, "nothing was queued");
  });

  it("passes a token function to its client, which calls it when it connects", async () => {
    RecordingSocket.opened = [];
    const ws = renderHook(() =>
      useWebSocket({
        url: "ws://127.0.0.1:5113/ws",
        token: () => "header.payload.signature",
        WebSocket: RecordingSocket,
        queue: { storage: null },
      }),
    );
    ws.client.connect();
    await new Promise((resolve) => setImmediate(resolve));
    ws.client.close();
    assert.equal(RecordingSocket.opened.length, 1);
    assert.deepEqual(RecordingSocket.opened[0]?.protocols, ["switchboard.v1", "switchboard.bearer.header.payload.signature"]);
    assert.match(RecordingSocket.opened[0]?.url ?? "", /^ws:\/\/127\.0\.0\.1:5113\/ws\?client=/);
  });
});

describe("resolveSocketUrl", () => {
  it("keeps an absolute URL and resolves a relative one against the page, http becoming ws", () => {
    assert.equal(resolveSocketUrl("wss://rt.example.com/ws"), "wss://rt.example.com/ws");
    assert.equal(resolveSocketUrl("/ws"), "/ws", "no page, nothing to resolve against");
    const page = globalThis as { location?: { href: string } };
    try {
      page.location = { href: "https://app.example.com/board/7?tab=1" };
      assert.equal(resolveSocketUrl("/ws"), "wss://app.example.com/ws");
      assert.equal(resolveSocketUrl("rt/ws"), "wss://app.example.com/board/rt/ws");
      page.location = { href: "http://127.0.0.1:8080/" };
      assert.equal(resolveSocketUrl("/ws"), "ws://127.0.0.1:8080/ws");
      const ws = renderHook(() => useWebSocket({ url: "/ws", queue: { storage: null } }));
      assert.equal(ws.client.url, "ws://127.0.0.1:8080/ws", "useWebSocket connects a relative url to the page's host");
    } finally {
      delete page.location;
    }
  });
});

describe("useConnectionQuality", () => {
  it("reads the client behind useWebSocket's value, its { status, send }, or a client", () => {
    const client = offlineClient();
    const results = renderHook(() => {
      const ws: WebSocketState = useWebSocket({ client });
      return {
        fromState: useConnectionQuality(ws),
        fromStatusAndSend: useConnectionQuality({ status: ws.status, send: ws.send }),
        fromClient: useConnectionQuality(client),
      };
    });
    for (const [name, q] of Object.entries(results) as Array<[string, ConnectionQuality]>) {
      assert.equal(q.quality, "offline", name);
      assert.equal(q.latency, null, name);
      assert.equal(q.jitter, null, name);
      assert.equal(q.packetLoss, 0, name);
      assert.equal(q.stability, 0, name);
      assert.equal(q.reconnects, 0, name);
      assert.equal(q.metrics, client.quality, `${name}: the client's own measurement`);
    }
  });

  it("uses the provider's client with no source, and fails clearly without one", () => {
    const client = offlineClient();
    const q = renderHook(
      () => useConnectionQuality(),
      (child) => <SwitchboardProvider client={client}>{child}</SwitchboardProvider>,
    );
    assert.equal(q.metrics, client.quality);
    assert.throws(() => renderHook(() => useConnectionQuality()), /useConnectionQuality has no switchboard client/);
    assert.throws(
      () => renderHook(() => useConnectionQuality({ status: "open", send: () => undefined })),
      /useConnectionQuality has no switchboard client/,
      "a send function that is not useWebSocket's names no client",
    );
  });
});

describe("useChannel and usePresence", () => {
  it("start out subscribing with no members, and subscribe only once mounted", () => {
    const client = offlineClient();
    const { channel, presence } = renderHook(
      () => ({ channel: useChannel("chat:lobby", () => undefined), presence: usePresence("chat:lobby") }),
      (child) => <SwitchboardProvider client={client}>{child}</SwitchboardProvider>,
    ) as { channel: ChannelState; presence: PresenceState };
    assert.equal(channel.status, "subscribing");
    assert.equal(channel.error, null);
    assert.deepEqual(presence.members, []);
    assert.equal(presence.count, 0);
    assert.equal(presence.error, null);
    assert.deepEqual(client.channels, [], "a server render subscribes nothing");
  });

  it("publish on their channel through the client's queue", () => {
    const client = offlineClient();
    const channel = renderHook(() => useChannel("chat:lobby", null, { client }));
    const publish = channel.publish("chat.message", { text: "hi" });
    const [queued] = client.queued();
    assert.equal(queued?.frame.id, publish.id);
    assert.equal(queued?.frame.channel, "chat:lobby");
    assert.equal(queued?.frame.type, "chat.message");
    client.clearQueue();
  });

  it("fail clearly without a client", () => {
    assert.throws(() => renderHook(() => useChannel("chat:lobby")), /useChannel has no switchboard client/);
    assert.throws(() => renderHook(() => usePresence("chat:lobby")), /usePresence has no switchboard client/);
  });
});

describe("SwitchboardProvider", () => {
  it("creates a client for a url", () => {
    const client = renderHook(
      () => useSwitchboardClient(),
      (child) => (
        <SwitchboardProvider url="ws://127.0.0.1:5114/ws" options={{ queue: { storage: null } }}>
          {child}
        </SwitchboardProvider>
      ),
    );
    assert.ok(client instanceof SwitchboardClient);
    assert.equal(client.url, "ws://127.0.0.1:5114/ws");
    assert.equal(client.status, "idle");
  });

  it("needs a client or a url, and useSwitchboardClient needs a provider", () => {
    const Provider = SwitchboardProvider as (props: object) => ReactElement;
    assert.throws(() => renderToStaticMarkup(<Provider />), /SwitchboardProvider needs a `client` or a `url`/);
    assert.throws(() => renderHook(() => useSwitchboardClient()), /useSwitchboardClient must be used inside <SwitchboardProvider>/);
  });
});
