/** A running `switchboard` binary. */
export interface RunningServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `ws://127.0.0.1:<port>/ws` */
  wsUrl: string;
  port: number;
  /** Every line the server logged so far. */
  log: string[];
  /** SIGTERM (or SIGKILL with `kill: true`) and the exit. */
  stop(options?: { kill?: boolean }): Promise<{ code: number | null; signal: string | null }>;
}

/** The path of the server binary (SWITCHBOARD_BIN, else the workspace's target/debug/switchboard). */
export function serverBinary(): string;

/** Starts the server with `env` (PORT=0, HOST=127.0.0.1 unless given) and waits until it listens. */
export function startServer(env?: Record<string, string>): Promise<RunningServer>;
