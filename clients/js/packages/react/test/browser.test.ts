// The React bindings in headless Chromium against the real switchboard server: the issue's
// definition of done (a three-line useWebSocket / useConnectionQuality /
// ConnectionQualityBadge renders a live badge), the card's figures, a server going away and
// coming back, the offline queue, useChannel and usePresence.
//
// The test app (test/fixtures/app.tsx) is bundled with esbuild from the *built* packages
// (`@switchboard/react` and `@switchboard/client` through the workspace's node_modules, and
// `@switchboard/react/styles.css`), so run `npm run build` in both packages first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import { build } from "esbuild";
import { type RunningServer, startServer } from "@switchboard/test-support/server";
import { appPage, serveStatic } from "@switchboard/test-support/static";
import { type ChromeDriver, type Session, startChromeDriver } from "@switchboard/test-support/webdriver";
import { QUALITY_COLORS, formatLatency } from "../src/index.js";
import type { HookValues } from "./fixtures/harness.js";

/** Every wait on the page is bounded by this. */
const WAIT_MS = 15000;
/** The package's root, from build/test/ (compiled) where this file runs. */
const PACKAGE = new URL("../../", import.meta.url);
const APP = fileURLToPath(new URL("test/fixtures/app.tsx", PACKAGE));

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

/** Bundles the test app: its JavaScript and the stylesheet it imports. */
async function bundleApp(): Promise<{ js: string; css: string }> {
  const dist = fileURLToPath(new URL("dist/index.js", PACKAGE));
  assert.ok(existsSync(dist), `${dist} is missing: run \`npm run build\` in packages/client and packages/react first`);
  const result = await build({
    entryPoints: [APP],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    jsx: "automatic",
    write: false,
    outdir: "out",
    logLevel: "silent",
    define: { "process.env.NODE_ENV": JSON.stringify("development") },
  });
  const js = result.outputFiles.find((f) => f.path.endsWith(".js"))?.text;
  const css = result.outputFiles.find((f) => f.path.endsWith(".css"))?.text;
  assert.ok(js, "esbuild produced the app's JavaScript");
  assert.ok(css, "esbuild produced the stylesheet imported as @switchboard/react/styles.css");
  return { js, css };
}

/** Serves the app on a free port of 127.0.0.1; another origin than the switchboard server's. */
function serveApp(app: { js: string; css: string }): Promise<{ url: string; close(): Promise<void> }> {
  return serveStatic({
    "/": ["text/html; charset=utf-8", appPage("switchboard react", { css: true })],
    "/app.js": ["text/javascript; charset=utf-8", app.js],
    "/app.css": ["text/css; charset=utf-8", app.css],
  });
}

function rgb(hex: string): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`;
}

/** What the page shows of the three-line usage, read in one go (one task of the page). */
function readLive(): {
  hook: HookValues | null;
  badge: string | null;
  card: string | null;
  cardLatencyText: string | null;
  cardLatencyValue: string | null;
  status: string | null;
  queue: string | null;
  litBarColor: string | null;
} {
  const badge = document.querySelector<HTMLElement>("#live .sb-quality--badge");
  const card = document.querySelector<HTMLElement>("#live .sb-quality-card");
  const latency = document.querySelector<HTMLElement>('#live .sb-quality-card [data-figure="latency"] dd');
  const lit = document.querySelector<HTMLElement>("#live .sb-quality--badge .sb-signal__bar--on");
  return {
    hook: window.__sb.hook,
    badge: badge?.dataset["quality"] ?? null,
    card: card?.dataset["quality"] ?? null,
    cardLatencyText: latency?.querySelector(".sb-figure__text")?.textContent ?? null,
    cardLatencyValue: latency?.dataset["value"] ?? null,
    status: document.getElementById("status")?.textContent ?? null,
    queue: document.getElementById("queue")?.textContent ?? null,
    litBarColor: lit ? getComputedStyle(lit).backgroundColor : null,
  };
}

function isLive(): boolean {
  const badge = document.querySelector<HTMLElement>("#live .sb-quality--badge")?.dataset["quality"];
  return (badge === "excellent" || badge === "good") && window.__sb.hook?.latency != null;
}

test("the React bindings render a live connection quality badge in Chromium", { timeout: 240000 }, async (t) => {
  let server: RunningServer = await startServer();
  cleanups.push(() => server.stop({ kill: true }));
  const port = server.port;

  const app = await serveApp(await bundleApp());
  cleanups.push(() => app.close());
  const driver: ChromeDriver = await startChromeDriver();
  cleanups.push(() => driver.stop());
  const session: Session = await driver.newSession();
  cleanups.push(() => session.quit());
  // The page is on another origin than the server: an open-mode server without CORS_ORIGIN accepts it.
  await session.goto(`${app.url}?ws=${encodeURIComponent(server.wsUrl)}`);

  await t.test("the badge of the three-line usage turns live", async () => {
    await session.waitFor(isLive, { timeoutMs: WAIT_MS, what: "the badge to show a live class with a measured latency" });
    const live = await session.execute(readLive);
    assert.equal(live.status, "open");
    assert.equal(live.hook?.status, "open");
    assert.ok(live.badge === "excellent" || live.badge === "good", `a live class on loopback, got ${live.badge}`);
    assert.equal(live.badge, live.hook?.quality, "the badge shows the hook's class");
    assert.match(live.hook?.connectionId ?? "", /.+/, "the hook reports the connection id");
    assert.equal(live.litBarColor, rgb(QUALITY_COLORS[live.badge as "excellent" | "good"]), "styles.css colours the lit bars");
  });

  await t.test("the card shows the latency the hook reported", async () => {
    const live = await session.execute(readLive);
    const latency = live.hook?.latency;
    assert.equal(typeof latency, "number");
    assert.equal(live.card, live.hook?.quality);
    assert.equal(live.cardLatencyValue, String(latency));
    assert.equal(live.cardLatencyText, formatLatency(latency ?? null));
    assert.match(live.cardLatencyText ?? "", /^\d+(\.\d)? ms$/);
    assert.equal(live.hook?.packetLoss, 0);
    assert.equal(live.hook?.stability, 1);
  });

  await t.test("useChannel delivers a published message and usePresence lists this connection", async () => {
    await session.waitFor(() => document.querySelector<HTMLElement>("#chat")?.dataset["status"] === "subscribed", {
      timeoutMs: WAIT_MS,
      what: "useChannel to report subscribed",
    });
    const id = await session.execute((text: string) => window.__sb.publish("chat:lobby", text), "hello from useChannel");
    await session.waitFor(
      (messageId: string) =>
        window.__sb.outcomes[messageId] === "acked" &&
        Array.from(document.querySelectorAll("#chat li")).some((li) => li.textContent === "hello from useChannel"),
      { timeoutMs: WAIT_MS, what: "the message to be acknowledged and delivered to onMessage", args: [id] },
    );
    const connectionId = await session.execute(() => window.__sb.hook?.connectionId ?? null);
    await session.waitFor(
      (me: string) => (document.querySelector<HTMLElement>("#chat")?.dataset["members"] ?? "").split(",").includes(me),
      { timeoutMs: WAIT_MS, what: "usePresence to list this connection", args: [connectionId ?? ""] },
    );
  });

  await t.test("components on one channel share the subscription through the provider", async () => {
    await session.waitFor(
      () =>
        Array.from(document.querySelectorAll<HTMLElement>("#shared .listener")).every((l) => l.dataset["status"] === "subscribed") &&
        document.querySelector<HTMLElement>("#shared .provider-indicator")?.dataset["quality"] !== "offline",
      { timeoutMs: WAIT_MS, what: "both listeners subscribed and the provider's client live" },
    );
    await session.execute(() => window.__sb.publish("room:shared", "one"));
    await session.waitFor(
      () => Array.from(document.querySelectorAll<HTMLElement>("#shared .listener")).every((l) => l.dataset["got"] === "one"),
      { timeoutMs: WAIT_MS, what: "both listeners to receive the message once" },
    );
    await session.execute(() => window.__sb.hideSecondListener());
    await session.execute(() => window.__sb.publish("room:shared", "two"));
    await session.waitFor(
      () =>
        document.querySelectorAll("#shared .listener").length === 1 &&
        document.querySelector<HTMLElement>('#shared .listener[data-name="a"]')?.dataset["got"] === "one,two",
      { timeoutMs: WAIT_MS, what: "the remaining listener to keep receiving after the other unmounted" },
    );
  });

  await t.test("the badge turns offline and the status reconnecting when the server goes away", async () => {
    await server.stop({ kill: true });
    await session.waitFor(
      () =>
        document.querySelector<HTMLElement>("#live .sb-quality--badge")?.dataset["quality"] === "offline" &&
        document.getElementById("status")?.textContent === "reconnecting",
      { timeoutMs: WAIT_MS, what: "the badge to turn offline and the status to reconnecting" },
    );
    const offline = await session.execute(readLive);
    assert.equal(offline.card, "offline");
    assert.equal(offline.cardLatencyText, "—", "no latency is shown for a dead link");
    assert.equal(offline.hook?.quality, "offline");
  });

  await t.test("a message sent while offline waits in the queue and is delivered once the server is back", async () => {
    const id = await session.execute((text: string) => window.__sb.publish("chat:lobby", text), "sent while offline");
    await session.waitFor(() => document.getElementById("queue")?.textContent === "1", {
      timeoutMs: WAIT_MS,
      what: "the queue size to show the message",
    });
    server = await startServer({ PORT: String(port) });
    await session.waitFor(isLive, { timeoutMs: WAIT_MS, what: "the badge to turn live again after the server restarted" });
    await session.waitFor(
      (messageId: string) =>
        window.__sb.outcomes[messageId] === "acked" &&
        document.getElementById("queue")?.textContent === "0" &&
        Array.from(document.querySelectorAll("#chat li")).some((li) => li.textContent === "sent while offline"),
      { timeoutMs: WAIT_MS, what: "the queued message to be acknowledged, delivered and gone from the queue", args: [id] },
    );
    const live = await session.execute(readLive);
    assert.equal(live.status, "open");
    assert.equal(live.cardLatencyText, formatLatency(live.hook?.latency ?? null));
    assert.ok((live.hook?.stability ?? 1) < 1, "the outage lowered stability");
  });

  await t.test("the page logged no error", async () => {
    const errors = await session.execute(() => window.__sb.errors);
    assert.deepEqual(errors, []);
  });
});
