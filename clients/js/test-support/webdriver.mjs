// A minimal W3C WebDriver client for the JS packages' browser tests: Debian's headless
// Chromium through `chromedriver`, driven with plain HTTP calls (Node's fetch). The same
// approach as crates/switchboard-server/tests/webdriver/mod.rs.
//
//   const driver = await startChromeDriver();
//   const session = await driver.newSession();
//   await session.goto("http://127.0.0.1:1234/");
//   await session.waitFor(() => document.title === "ready", { what: "the page to load" });
//   await session.quit();
//   await driver.stop();
import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

import { freePort } from "./ports.mjs";

/** How long a `waitFor` waits unless told otherwise. */
export const DEFAULT_WAIT_MS = 15000;
/** How long chromedriver may take to answer a command that does not wait on the page. */
const COMMAND_MS = 60000;
const READY_MS = 20000;

const MISSING =
  "the browser tests need Chromium and chromedriver (Debian: `sudo apt-get install chromium chromium-driver`, " +
  "which installs /usr/bin/chromium and /usr/bin/chromedriver; or set CHROMIUM_BIN and CHROMEDRIVER_BIN)";

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first of `env`'s path, `defaults` and `names` on PATH that is an executable, or a thrown error. */
function findProgram(what, envValue, defaults, names) {
  if (envValue) {
    if (executable(envValue)) return envValue;
    throw new Error(`${what} is not an executable at ${envValue}: ${MISSING}`);
  }
  for (const path of defaults) if (executable(path)) return path;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    for (const name of names) {
      const path = join(dir, name);
      if (dir && executable(path)) return path;
    }
  }
  throw new Error(`${what} not found: ${MISSING}`);
}

/** The paths of Chromium and chromedriver, or a thrown error saying how to install them. */
export function browserPrograms() {
  return {
    chromium: findProgram("chromium", process.env.CHROMIUM_BIN, ["/usr/bin/chromium"], ["chromium", "chromium-browser"]),
    chromedriver: findProgram("chromedriver", process.env.CHROMEDRIVER_BIN, ["/usr/bin/chromedriver"], ["chromedriver"]),
  };
}

/** One WebDriver command: the answer's `value`, or a thrown error with WebDriver's message. */
async function call(base, method, path, body, timeoutMs = COMMAND_MS) {
  let response;
  try {
    response = await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new Error(`WebDriver ${method} ${path}: no answer from chromedriver (${error?.message ?? error})`);
  }
  const text = await response.text();
  let value = null;
  try {
    value = JSON.parse(text).value;
  } catch {
    value = text;
  }
  if (!response.ok) {
    const detail = value && typeof value === "object" ? `${value.error}: ${value.message}` : String(value);
    throw new Error(`WebDriver ${method} ${path} failed with ${response.status}: ${detail}`);
  }
  return value;
}

/** Running chromedrivers, killed with their browsers if the test process exits without stopping them. */
const running = new Set();
process.once("exit", () => {
  for (const pid of running) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
});

/**
 * Starts chromedriver on a free port of 127.0.0.1 (in its own process group, so stopping it
 * also ends every browser it started) and waits until it is ready.
 */
export async function startChromeDriver() {
  const programs = browserPrograms();
  let lastError = null;
  // A port free a moment ago may be taken by the time chromedriver binds it: try a few.
  for (let attempt = 1; attempt <= 5; attempt++) {
    const port = await freePort();
    const child = spawn(programs.chromedriver, [`--port=${port}`], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const output = [];
    const keep = (chunk) => {
      output.push(String(chunk));
      if (output.length > 200) output.shift();
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let exited = null;
    const exit = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        exited = { code, signal };
        running.delete(child.pid);
        resolve(exited);
      }),
    );
    child.once("error", (error) => {
      exited = { code: null, signal: null, error };
    });
    if (child.pid !== undefined) running.add(child.pid);
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + READY_MS;
    let ready = false;
    while (!exited && Date.now() < deadline) {
      try {
        const status = await call(base, "GET", "/status", undefined, 2000);
        if (status && status.ready) {
          ready = true;
          break;
        }
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (ready) return new ChromeDriver(base, child, exit, programs.chromium);
    lastError = exited
      ? `chromedriver exited (${exited.error?.message ?? exited.code ?? exited.signal}) before it was ready`
      : `chromedriver was not ready within ${READY_MS} ms`;
    killGroup(child);
    await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, 2000))]);
    lastError += `; its output:\n${output.join("")}`;
  }
  throw new Error(`could not start chromedriver after 5 attempts: ${lastError}`);
}

function killGroup(child, signal = "SIGKILL") {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Gone already.
    }
  }
}

/** A running chromedriver. */
class ChromeDriver {
  #base;
  #child;
  #exit;
  #chromium;
  #sessions = new Set();

  constructor(base, child, exit, chromium) {
    this.#base = base;
    this.#child = child;
    this.#exit = exit;
    this.#chromium = chromium;
  }

  /** chromedriver's address, `http://127.0.0.1:<port>`. */
  get url() {
    return this.#base;
  }

  /**
   * A new headless Chromium with a fresh profile (its own storage) in a temporary directory,
   * removed when the session quits.
   */
  async newSession({ args = [] } = {}) {
    const profile = mkdtempSync(join(tmpdir(), "switchboard-chromium-"));
    const capabilities = {
      capabilities: {
        alwaysMatch: {
          browserName: "chrome",
          "goog:chromeOptions": {
            binary: this.#chromium,
            args: [
              "--headless=new",
              "--no-sandbox",
              "--disable-gpu",
              "--disable-quic",
              "--disable-dev-shm-usage",
              "--no-first-run",
              "--no-default-browser-check",
              "--disable-background-networking",
              "--disable-component-update",
              "--disable-sync",
              "--disable-extensions",
              "--window-size=1200,900",
              `--user-data-dir=${profile}`,
              ...args,
            ],
          },
        },
      },
    };
    let value;
    try {
      value = await call(this.#base, "POST", "/session", capabilities);
    } catch (error) {
      rmSync(profile, { recursive: true, force: true });
      throw error;
    }
    const session = new Session(this.#base, value.sessionId, profile, () => this.#sessions.delete(session));
    this.#sessions.add(session);
    await session.command("POST", "timeouts", { script: DEFAULT_WAIT_MS + 5000, pageLoad: 30000 }).catch(async (error) => {
      await session.quit().catch(() => {});
      throw error;
    });
    return session;
  }

  /** Quits every session still open, then ends chromedriver and its process group. */
  async stop() {
    for (const session of [...this.#sessions]) {
      await session.quit().catch(() => {});
    }
    killGroup(this.#child, "SIGTERM");
    const stopped = await Promise.race([this.#exit.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
    // SIGKILL the group in any case: a browser may outlive a driver that exited on SIGTERM.
    killGroup(this.#child, "SIGKILL");
    if (!stopped) await this.#exit;
  }
}

// In the page: checks `condition` on every DOM mutation and every 50 ms (for state that is
// not in the DOM) until it is truthy or the deadline passes; never throws.
const WAIT_SCRIPT = `
  const [source, args, timeoutMs] = arguments;
  const done = arguments[arguments.length - 1];
  const condition = new Function("return (" + source + ")")();
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  let finished = false;
  let observer = null;
  let timer = null;
  const finish = (result) => {
    if (finished) return;
    finished = true;
    if (observer) observer.disconnect();
    clearInterval(timer);
    done(result);
  };
  const check = () => {
    if (finished) return;
    try {
      const value = condition(...args);
      if (value) return finish({ ok: true, value });
    } catch (error) {
      lastError = String(error && error.stack || error);
    }
    if (Date.now() >= deadline) finish({ ok: false, lastError });
  };
  observer = new MutationObserver(check);
  observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  timer = setInterval(check, 50);
  check();
`;

/** One browser. */
class Session {
  #base;
  #profile;
  #onQuit;
  #quit = false;

  constructor(base, id, profile, onQuit) {
    this.#base = base;
    this.id = id;
    this.#profile = profile;
    this.#onQuit = onQuit;
  }

  /** A command of this session (`path` relative to `/session/<id>/`); the answer's `value`. */
  command(method, path, body, timeoutMs) {
    return call(this.#base, method, `/session/${this.id}/${path}`, body, timeoutMs);
  }

  /** Navigates to `url` and waits for the page to load. */
  async goto(url) {
    await this.command("POST", "url", { url });
  }

  /**
   * Runs `script` in the page and returns its (JSON) result: a function, called with `args`,
   * or a string, a function body that sees `args` as `arguments`.
   */
  async execute(script, ...args) {
    const body = typeof script === "function" ? `return (${script.toString()}).apply(null, arguments);` : script;
    return this.command("POST", "execute/sync", { script: body, args });
  }

  /**
   * Waits until `condition` is truthy in the page, checking it on every DOM mutation and every
   * 50 ms, and returns its value. `condition` is a function (called with `args`, serialized with
   * `toString`, so it may use only its arguments and the page's globals) or a JavaScript
   * expression. Throws after `timeoutMs` (default 15 s) with `what`, the last error the
   * condition threw, and the page's text.
   */
  async waitFor(condition, { timeoutMs = DEFAULT_WAIT_MS, what = String(condition), args = [] } = {}) {
    const source = typeof condition === "function" ? condition.toString() : `function () { return (${condition}); }`;
    let result;
    try {
      // The page gives up at its own deadline; WebDriver's script timeout only backs it up.
      await this.command("POST", "timeouts", { script: timeoutMs + 5000 });
      result = await this.command(
        "POST",
        "execute/async",
        { script: WAIT_SCRIPT, args: [source, args, timeoutMs] },
        timeoutMs + COMMAND_MS,
      );
    } catch (error) {
      throw new Error(`waiting for ${what}: ${error.message}`);
    }
    if (result && result.ok) return result.value;
    const page = await this.execute("return document.body ? document.body.innerText : '';").catch((e) => `(unreadable: ${e.message})`);
    throw new Error(
      `waited ${timeoutMs} ms for ${what}` +
        (result?.lastError ? `\n--- the condition last threw: ${result.lastError}` : "") +
        `\n--- the page shows:\n${page}`,
    );
  }

  /** Ends the session (and its browser) and removes its profile directory. */
  async quit() {
    if (this.#quit) return;
    this.#quit = true;
    this.#onQuit();
    try {
      await call(this.#base, "DELETE", `/session/${this.id}`, undefined);
    } finally {
      rmSync(this.#profile, { recursive: true, force: true });
    }
  }
}
