// Serves a few in-memory files over HTTP on a free port of 127.0.0.1, for pages the
// browser tests load (another origin than the switchboard server's).
import { createServer } from "node:http";

/**
 * `files` maps a path ("/", "/app.js") to [content type, body]. Returns { url, close }.
 */
export async function serveStatic(files) {
  const server = createServer((request, response) => {
    const file = files[new URL(request.url ?? "/", "http://localhost").pathname];
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": file[0], "cache-control": "no-store" }).end(file[1]);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A page with a root element that loads /app.js as a module (and /app.css when given). */
export function appPage(title, { css = false } = {}) {
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>` +
    (css ? '<link rel="stylesheet" href="/app.css">' : "") +
    '</head><body><div id="root"></div><script type="module" src="/app.js"></script></body></html>'
  );
}
