// The definition of done, literally: a fresh React app installs the two packages
// from this repository (`npm install --install-links ./clients/js/packages/…`, which copies
// them as `npm pack` would, so the app's React is the only React), and the three-line usage
// renders a live badge in Chromium against the real server.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import { build } from "esbuild";
import { startServer } from "@switchboard/test-support/server";
import { appPage, serveStatic } from "@switchboard/test-support/static";
import { startChromeDriver } from "@switchboard/test-support/webdriver";

const WAIT_MS = 15000;
const PACKAGES = fileURLToPath(new URL("../../../", import.meta.url)); // clients/js/packages/ from build/test/
const WORKSPACE_MODULES = join(PACKAGES, "..", "node_modules");

const THREE_LINES = `
import { createRoot } from "react-dom/client";
import { ConnectionQualityBadge, useConnectionQuality, useWebSocket } from "@switchboard/react";

function App() {
  const ws = useWebSocket({ url: new URLSearchParams(location.search).get("ws") });
  const quality = useConnectionQuality(ws);
  return <ConnectionQualityBadge status={ws.status} metrics={quality} />;
}

createRoot(document.getElementById("root")).render(<App />);
`;

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
});

test("a fresh React app installs the packages and the three-line usage renders a live badge", { timeout: 240000 }, async () => {
  const app = mkdtempSync(join(tmpdir(), "switchboard-fresh-app-"));
  cleanups.push(() => rmSync(app, { recursive: true, force: true }));
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "fresh-app", private: true, type: "module" }));
  // The React the workspace was tested with, from npm's cache when it is there.
  const react = JSON.parse(readFileSync(join(WORKSPACE_MODULES, "react", "package.json"), "utf8")).version;
  execFileSync(
    "npm",
    [
      "install",
      "--install-links",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      "--loglevel=error",
      join(PACKAGES, "client"),
      join(PACKAGES, "react"),
      `react@${react}`,
      `react-dom@${react}`,
    ],
    { cwd: app, stdio: "pipe", timeout: 180000 },
  );
  writeFileSync(join(app, "app.jsx"), THREE_LINES);

  const bundle = await build({
    absWorkingDir: app,
    entryPoints: ["app.jsx"],
    bundle: true,
    format: "esm",
    jsx: "automatic",
    write: false,
    metafile: true,
    outdir: "out",
    logLevel: "silent",
    define: { "process.env.NODE_ENV": JSON.stringify("production") },
  });
  const reacts = Object.keys(bundle.metafile.inputs).filter((path) => /(^|\/)node_modules\/react\/index\.js$/.test(path));
  assert.deepEqual(reacts, ["node_modules/react/index.js"], "one React, the app's own");
  assert.ok(
    Object.keys(bundle.metafile.inputs).some((path) => path.startsWith("node_modules/@switchboard/react/dist/")),
    "the app uses its installed copy of the package",
  );

  const server = await startServer();
  cleanups.push(() => server.stop({ kill: true }));
  const page = await serveStatic({
    "/": ["text/html; charset=utf-8", appPage("fresh app")],
    "/app.js": ["text/javascript; charset=utf-8", bundle.outputFiles[0]!.text],
  });
  cleanups.push(() => page.close());
  const driver = await startChromeDriver();
  cleanups.push(() => driver.stop());
  const session = await driver.newSession();
  cleanups.push(() => session.quit());
  await session.goto(`${page.url}?ws=${encodeURIComponent(server.wsUrl)}`);
  const quality = await session.waitFor(
    () => {
      const badge = document.querySelector<HTMLElement>("[data-quality]");
      const value = badge?.dataset["quality"];
      return value === "excellent" || value === "good" ? value : null;
    },
    { timeoutMs: WAIT_MS, what: "the badge to show a live class" },
  );
  assert.ok(quality === "excellent" || quality === "good", String(quality));
});
