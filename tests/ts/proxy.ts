// Forwarding for the browser tests' small Node servers: the page and the API share one origin
// (the demo sends no CORS headers), so whatever the server does not serve itself goes upstream.
import { request as forward } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";

/** Sends `req` to `upstream` (same path, method, headers and body) and pipes the answer back. */
export function forwardTo(upstream: URL, req: IncomingMessage, res: ServerResponse): void {
  const proxied = forward(
    {
      host: upstream.hostname,
      port: upstream.port,
      path: req.url ?? "/",
      method: req.method,
      headers: { ...req.headers, host: upstream.host },
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  proxied.on("error", () => res.writeHead(502).end());
  req.pipe(proxied);
}
