// Free TCP ports on 127.0.0.1 for the servers the tests start.
import { createServer } from "node:net";

/** A TCP port of 127.0.0.1 nothing listens on at the time of asking. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}
