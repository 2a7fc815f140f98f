// Starts the real `switchboard` binary for the JS packages' integration tests.
//
// The binary comes from SWITCHBOARD_BIN, else `target/debug/switchboard` of the Cargo
// workspace (scripts/test builds it before running these tests). It listens on a free port
// of 127.0.0.1 (PORT=0) and is killed when the test ends.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const WORKSPACE = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const WAIT_MS = 20000;

/** The path of the server binary, or a thrown error saying how to get one. */
export function serverBinary() {
  const path = process.env.SWITCHBOARD_BIN || resolve(WORKSPACE, "target/debug/switchboard");
  if (!existsSync(path)) {
    throw new Error(
      `the switchboard binary is not at ${path}: run \`cargo build -p switchboard-server\` ` +
        "in the workspace, or set SWITCHBOARD_BIN to its path",
    );
  }
  return path;
}

/**
 * Starts the server with `env` (added to PATH only; PORT=0 and HOST=127.0.0.1 unless given)
 * and waits for its "listening on" line. Returns { url, wsUrl, port, stop, log }.
 * `stop()` sends SIGTERM and waits for the exit; pass `{ kill: true }` for SIGKILL.
 */
export async function startServer(env = {}) {
  const child = spawn(serverBinary(), [], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: "0", LOG_FORMAT: "text", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  const exited = new Promise((resolveExit) => child.once("exit", (code, signal) => resolveExit({ code, signal })));
  const collect = (stream) => {
    const lines = createInterface({ input: stream });
    lines.on("line", (line) => log.push(line));
    return lines;
  };
  const stdout = collect(child.stdout);
  collect(child.stderr);
  const address = await new Promise((resolveAddr, rejectAddr) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      rejectAddr(new Error(`the server did not start within ${WAIT_MS} ms; log:\n${log.join("\n")}`));
    }, WAIT_MS);
    stdout.on("line", (line) => {
      const match = /listening on wss?:\/\/([^/\s]+)\//.exec(line);
      if (match) {
        clearTimeout(timer);
        resolveAddr(match[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rejectAddr(new Error(`the server exited (${code ?? signal}) before listening; log:\n${log.join("\n")}`));
    });
  });
  const port = Number(address.split(":").pop());
  let stopped = null;
  return {
    url: `http://${address}`,
    wsUrl: `ws://${address}/ws`,
    port,
    log,
    stop({ kill = false } = {}) {
      if (!stopped) {
        child.kill(kill ? "SIGKILL" : "SIGTERM");
        stopped = exited;
      }
      return stopped;
    },
  };
}
