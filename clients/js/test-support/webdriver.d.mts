/** How long {@link Session.waitFor} waits unless told otherwise: 15000 ms. */
export const DEFAULT_WAIT_MS: number;

/**
 * The paths of Chromium and chromedriver (CHROMIUM_BIN / CHROMEDRIVER_BIN, else
 * /usr/bin/chromium and /usr/bin/chromedriver, else PATH); throws saying how to install them.
 */
export function browserPrograms(): { chromium: string; chromedriver: string };

/** Options of {@link Session.waitFor}. */
export interface WaitOptions<A extends unknown[]> {
  /** Default 15000 ms. */
  timeoutMs?: number;
  /** What is waited for, for the error message. */
  what?: string;
  /** The arguments of a function condition (JSON values). */
  args?: A;
}

/** One headless Chromium. */
export interface Session {
  readonly id: string;
  /** A command of this session (`path` relative to `/session/<id>/`); the answer's `value`. */
  command(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<unknown>;
  /** Navigates to `url` and waits for the page to load. */
  goto(url: string): Promise<void>;
  /** Runs a function (called with `args`; serialized with `toString`) or a function body in the page; its JSON result. */
  execute<R, A extends unknown[]>(script: ((...args: A) => R) | string, ...args: A): Promise<R>;
  /**
   * Waits until `condition` is truthy in the page (checked on every DOM mutation and every
   * 50 ms) and returns its value; throws after `timeoutMs` with `what` and the page's text.
   */
  waitFor<R, A extends unknown[] = []>(condition: ((...args: A) => R) | string, options?: WaitOptions<A>): Promise<R>;
  /** Ends the session (and its browser) and removes its profile directory. */
  quit(): Promise<void>;
}

/** A running chromedriver. */
export interface ChromeDriver {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** A new headless Chromium with a fresh profile; `args` are added to the default flags. */
  newSession(options?: { args?: string[] }): Promise<Session>;
  /** Quits every open session, then ends chromedriver and every browser it started. */
  stop(): Promise<void>;
}

/** Starts chromedriver on a free port of 127.0.0.1 and waits until it is ready; throws when Chromium or chromedriver is missing. */
export function startChromeDriver(): Promise<ChromeDriver>;
