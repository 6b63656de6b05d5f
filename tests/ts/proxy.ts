// Forwarding for the browser tests' small Node servers: the page and the API share one origin
// (the demo sends no CORS headers), so whatever the server does not serve itself goes upstream,
// WebSocket upgrades included.
import { request as forward } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

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

/**
 * Forwards a WebSocket upgrade (`server.on("upgrade", ...)`) to `upstream` and, once upstream
 * answers 101, joins the two connections. The `Host` header is kept as the browser sent it, as
 * a reverse proxy does: the server's Origin check compares the page's origin with it. A refusal
 * (403, 400, ...) is passed on as it came.
 */
export function forwardUpgrade(upstream: URL, req: IncomingMessage, client: Duplex, head: Buffer): void {
  const proxied = forward({
    host: upstream.hostname,
    port: upstream.port,
    path: req.url ?? "/",
    method: req.method,
    headers: req.headers,
  });
  const statusLine = (answer: IncomingMessage) => {
    const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ""}`];
    for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
    return `${lines.join("\r\n")}\r\n\r\n`;
  };
  proxied.on("upgrade", (answer, server, serverHead) => {
    client.write(statusLine(answer));
    if (serverHead.length > 0) client.write(serverHead);
    if (head.length > 0) server.write(head);
    server.pipe(client);
    client.pipe(server);
    server.on("error", () => client.destroy());
    client.on("error", () => server.destroy());
    server.on("close", () => client.destroy());
    client.on("close", () => server.destroy());
  });
  proxied.on("response", (answer) => {
    client.write(statusLine(answer));
    answer.pipe(client);
  });
  proxied.on("error", () => client.destroy());
  proxied.end();
}
