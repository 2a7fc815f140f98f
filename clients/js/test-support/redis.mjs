// Starts a private redis-server on a free port of 127.0.0.1 for the JS integration tests
// (SWITCHBOARD_TEST_REDIS_URL points at an existing server instead).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { freePort } from "./ports.mjs";

export { freePort };

function ping(port) {
  return new Promise((resolvePing) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("error", () => resolvePing(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => {
      socket.destroy();
      resolvePing(data.toString().startsWith("+PONG"));
    });
  });
}

/** Starts redis-server; returns { url, stop }. Fails with a clear message when it cannot. */
export async function startRedis() {
  if (process.env.SWITCHBOARD_TEST_REDIS_URL) {
    return { url: process.env.SWITCHBOARD_TEST_REDIS_URL, stop: async () => {} };
  }
  if (spawnSync("redis-server", ["--version"]).error) {
    throw new Error(
      "redis-server is not installed: scripts/install-test-deps installs it " +
        "(apt-get install redis-server), or set SWITCHBOARD_TEST_REDIS_URL",
    );
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "switchboard-redis-"));
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: "ignore" },
  );
  const exited = new Promise((resolveExit) => child.once("exit", resolveExit));
  const deadline = Date.now() + 10000;
  while (!(await ping(port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not answer on 127.0.0.1:${port} within 10 s`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGKILL");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
