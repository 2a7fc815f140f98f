/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number>;

/** A private redis-server (or SWITCHBOARD_TEST_REDIS_URL's). */
export function startRedis(): Promise<{ url: string; stop(): Promise<void> }>;
