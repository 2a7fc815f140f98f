/** Serves `files` (path → [content type, body]) on a free port of 127.0.0.1. */
export function serveStatic(files: Record<string, [string, string]>): Promise<{ url: string; close(): Promise<void> }>;

/** A page with a root element that loads /app.js as a module (and /app.css when `css`). */
export function appPage(title: string, options?: { css?: boolean }): string;
