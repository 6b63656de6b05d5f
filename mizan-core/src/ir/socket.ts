// The Mizan socket: one shared WebSocket (subprotocol `mizan.v1`) that carries calls, context
// fetches and live subscriptions, reconnecting by itself. No dependencies; the runtime
// (`runtime.ts`) drives it and maps its replies to the values and errors of the HTTP transport.
//
// - Opened lazily, on the first request or subscription. `init` goes first, with the access
//   token the runtime knows; requests wait for the server's `ack`, then go out with integer ids
//   (one id space for calls, fetches and subscriptions, never reused by this client).
// - A request that could not be sent (the socket is down, waiting to reconnect, or was refused)
//   is handed back unsent, and the runtime sends it over HTTP instead: nothing waits on a socket
//   that is not there. A call that was sent and whose socket closed before the answer is
//   rejected (it may have run; it is never sent twice); a fetch is handed back (reading again
//   is harmless).
// - Subscriptions are kept by instance key and sent again on every new connection. A fetch of a
//   subscribed instance waits for the server's `sub_ok`, so the data it returns is watched from
//   then on: no change falls between the fetch and the subscription.
// - An unexpected close reconnects after a jittered exponential backoff (`backoffDelay`), then
//   subscribes everything again and asks the runtime to refetch everything (pushes may have been
//   lost meanwhile). Fatal close codes (4400, 4409, 4429, 1009) do not reconnect. 4401 reconnects
//   only with a token other than the refused one.

/** How calls and context fetches travel: `"http"` (the default) or `"ws"`, the shared socket. */
export type Transport = "http" | "ws";

/** What the socket needs of a WebSocket: the browser's `WebSocket` and Node's (22, or 20 with
 * `--experimental-websocket`) are ones. */
export interface WebSocketLike {
  /** Sends one text frame. */
  send(data: string): void;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
  /** `open`, `message` (`event.data`), `close` (`event.code`, `event.reason`), `error`. */
  // `any`: the browser's and Node's event types differ; the socket reads `data`, `code`, `reason`.
  addEventListener(type: string, listener: (event: any) => void): void;
}

/** A WebSocket constructor: `new WebSocket(url, "mizan.v1")`. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Where the socket stands, as `onStatus` reports it. */
export type SocketStatus =
  /** Not opened yet, or closed by `disconnect()`: the next request or subscription opens it. */
  | "idle"
  /** Opening, or waiting for the server to accept `init`. */
  | "connecting"
  /** Ready: requests and subscriptions go over it. */
  | "open"
  /** Closed unexpectedly; a new connection is attempted after a backoff delay. */
  | "reconnecting"
  /** Closed with 4401 (token refused or expired): it opens again once the token changes. */
  | "unauthenticated"
  /** Closed with a fatal code (4400, 4409, 4429, 1009): it stays closed until `reconnect()`. */
  | "failed";

/** How the socket behaves; every field is optional. */
export interface SocketOptions {
  /** The socket's URL (default: the `baseUrl`'s origin with `ws:`/`wss:`, then `{mount}ws/`). */
  url?: string;
  /** The first reconnection delay, in milliseconds, before jitter (default 500). */
  initialDelay?: number;
  /** The largest reconnection delay, in milliseconds, before jitter (default 30 000). */
  maxDelay?: number;
  /** A random number in [0, 1) for the jitter (default `Math.random`). */
  random?: () => number;
  /** Starts a timer (default `setTimeout`). */
  setTimer?: (run: () => void, ms: number) => unknown;
  /** Stops a timer started by `setTimer` (default `clearTimeout`). */
  clearTimer?: (timer: unknown) => void;
  /** Called on each change of status, with the close code that caused it, if any. */
  onStatus?: (status: SocketStatus, closeCode?: number) => void;
}

/** Close codes after which the socket does not reconnect by itself: a malformed message (4400),
 * a duplicate id (4409), a second `init` or a rate limit (4429), a message over 1 MiB (1009). */
export const FATAL_CLOSE_CODES: readonly number[] = [4400, 4409, 4429, 1009];

/** The close code of a refused or expired token. */
export const UNAUTHENTICATED_CLOSE_CODE = 4401;

/**
 * The delay before reconnection attempt `attempt` (0 for the first after a close): a base of
 * `initial · 2^attempt` capped at `max`, jittered uniformly within [base / 2, base) so that
 * clients dropped together do not come back together.
 */
export function backoffDelay(attempt: number, initial: number, max: number, random: () => number): number {
  const base = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return base / 2 + random() * (base / 2);
}

/** A request the socket sends: a call or a context fetch (the runtime adds the id). */
export type SocketRequest =
  | { type: "call"; fn: string; args: object }
  | { type: "ctx"; name: string; params: Record<string, unknown> };

/** The server's answer to one request, as it came (the runtime maps errors to `MizanError`). */
export type SocketReply =
  | { type: "result"; result: unknown; invalidate?: unknown[] }
  | { type: "data"; data: unknown }
  | { type: "error"; error: { code?: string; message?: string; details?: unknown } };

/** What the socket asks of the runtime. */
export interface SocketHooks {
  /** The access token for `init` (and to notice that it changed). */
  getToken(): Promise<string | null>;
  /** Whether the token can change at all (a `getToken` is configured); without one, a socket
   * refused with 4401 opens again at the next request, in case a cookie was renewed. */
  readonly tokenCanChange: boolean;
  /** Parses a text frame (may throw, e.g. on an integer a JavaScript number cannot hold). */
  parse(text: string): unknown;
  /** The error a request gets when its socket closed before the answer. */
  closedError(code: number, reason: string): Error;
  /** A push: `targets` made the subscribed instance `key` stale. */
  onInvalidate(key: string, targets: unknown[]): void;
  /** Everything subscribed may be stale: a `resync` push, or a new connection after a gap. */
  onResync(): void;
}

interface Waiter {
  resolve(reply: SocketReply | null): void;
  reject(error: unknown): void;
}

/** A request sent, awaiting its answer. */
interface Sent extends Waiter {
  type: SocketRequest["type"];
}

interface Queued extends Waiter {
  request: SocketRequest;
  key: string | undefined;
}

/** A subscription wanted by the runtime, by instance key. */
interface Wanted {
  context: string;
  params: Record<string, unknown>;
  /** Its id on the current connection, once sent. */
  id: number | null;
  /** Whether the server answered `sub_ok` (or refused it) on the current connection. */
  settled: boolean;
  /** Resolved when settled, or when the connection goes away. */
  ready: Promise<void>;
  markReady: () => void;
}

/** One WebSocket connection. */
class Link {
  acked = false;
  /** Closing because the token changed: it finishes its requests, then closes. */
  retiring = false;
  /** Sent requests awaiting their answer, by id. */
  readonly pending = new Map<number, Sent>();
  /** Subscription ids of this connection → the instance key (null once unsubscribed). */
  readonly subs = new Map<number, string | null>();

  constructor(
    readonly ws: WebSocketLike,
    readonly token: string | null,
  ) {}

  send(message: object): void {
    this.ws.send(JSON.stringify(message));
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The shared socket of one configuration (see the top of this file for its rules). */
export class MizanSocket {
  readonly #url: string;
  readonly #WebSocket: WebSocketConstructor;
  readonly #options: SocketOptions;
  readonly #hooks: SocketHooks;
  #status: SocketStatus = "idle";
  #link: Link | null = null;
  /** Whether a connection is being set up (the token is being read). */
  #opening = false;
  /** Bumped by `disconnect()`: a connection being set up before it is abandoned. */
  #generation = 0;
  /** Requests waiting for the connection's `ack`. */
  #queue: Queued[] = [];
  readonly #wanted = new Map<string, Wanted>();
  #nextId = 1;
  #attempt = 0;
  #timer: unknown = null;
  /** Whether some connection was accepted before: a later one follows a gap. */
  #hadConnection = false;
  /** The token refused with 4401 (while `unauthenticated`). */
  #refusedToken: string | null = null;

  constructor(url: string, WebSocket: WebSocketConstructor, hooks: SocketHooks, options: SocketOptions = {}) {
    this.#url = url;
    this.#WebSocket = WebSocket;
    this.#hooks = hooks;
    this.#options = options;
  }

  /** Where the socket stands. */
  get status(): SocketStatus {
    return this.#status;
  }

  /**
   * Sends a call or a fetch and resolves to the server's answer; resolves to `null` when it was
   * not sent (the socket is not available: send it another way); rejects when the socket closed
   * after sending it. `key`: the instance a fetch reads, whose subscription it waits for.
   */
  async request(request: SocketRequest, key?: string): Promise<SocketReply | null> {
    for (;;) {
      const wanted = key === undefined ? undefined : this.#wanted.get(key);
      if (wanted !== undefined && wanted.id !== null && !wanted.settled && this.#link?.acked) {
        await wanted.ready;
        continue;
      }
      if (!(await this.#usable())) return null;
      const link = this.#link;
      if (link === null || !link.acked) {
        return new Promise<SocketReply | null>((resolve, reject) => this.#queue.push({ request, key, resolve, reject }));
      }
      // A request whose subscription was sent meanwhile waits for it first.
      const again = key === undefined ? undefined : this.#wanted.get(key);
      if (again !== undefined && again.id !== null && !again.settled) continue;
      return new Promise<SocketReply | null>((resolve, reject) => this.#send(link, request, { resolve, reject }));
    }
  }

  /** Watches one instance: `sub` now (opening the socket if needed) and on every new
   * connection, until `unsub(key)`. */
  sub(key: string, context: string, params: Record<string, unknown>): void {
    if (this.#wanted.has(key)) return;
    const { promise, resolve } = deferred();
    const wanted: Wanted = { context, params, id: null, settled: false, ready: promise, markReady: resolve };
    this.#wanted.set(key, wanted);
    if (this.#link?.acked) this.#sendSub(this.#link, key, wanted);
    else void this.#usable();
  }

  /** Stops watching one instance (`unsub`; a `sub` still unanswered is ended once answered). */
  unsub(key: string): void {
    const wanted = this.#wanted.get(key);
    if (wanted === undefined) return;
    this.#wanted.delete(key);
    wanted.markReady();
    const link = this.#link;
    if (link === null || wanted.id === null || !link.subs.has(wanted.id)) return;
    if (wanted.settled) {
      link.subs.delete(wanted.id);
      if (link.acked) link.send({ type: "unsub", id: wanted.id });
    } else {
      link.subs.set(wanted.id, null);
    }
  }

  /** Reconnects now: after a fatal close, after a 4401 once the token is fresh, or to skip a
   * backoff delay. Does nothing while connected. */
  reconnect(): void {
    if (this.#link !== null || this.#opening) return;
    this.#stopTimer();
    this.#attempt = 0;
    void this.#connect();
  }

  /** Closes the socket: sent requests reject, unsent ones go another way. Subscriptions are
   * kept; the next request or subscription opens the socket again. */
  disconnect(): void {
    this.#stopTimer();
    this.#generation += 1;
    this.#opening = false;
    const link = this.#link;
    this.#link = null;
    this.#setStatus("idle");
    if (link !== null) link.ws.close(1000, "closed by the client");
    this.#dropped(link, 1000, "closed by the client");
  }

  /** Whether requests can go over the socket now or once it is open, opening it if needed. */
  async #usable(): Promise<boolean> {
    switch (this.#status) {
      case "reconnecting":
      case "failed":
        return false;
      case "unauthenticated": {
        if (this.#hooks.tokenCanChange && (await this.#token()) === this.#refusedToken) return false;
        if (this.#status === "unauthenticated") void this.#connect();
        return this.#onItsWay();
      }
      case "idle":
        void this.#connect();
        return true;
      case "connecting":
        return true;
      case "open": {
        const link = this.#link;
        if (link !== null && link.acked && (await this.#token()) !== link.token && this.#link === link) {
          this.#retire(link);
          void this.#connect();
        }
        return this.#onItsWay();
      }
    }
  }

  /** Whether a connection is open or on its way (whatever happened while awaiting the token):
   * only then may a request wait for it. */
  #onItsWay(): boolean {
    return this.#status === "open" || this.#status === "connecting";
  }

  async #token(): Promise<string | null> {
    try {
      return (await this.#hooks.getToken()) ?? null;
    } catch {
      return null;
    }
  }

  async #connect(): Promise<void> {
    if (this.#link !== null || this.#opening) return;
    this.#opening = true;
    const generation = this.#generation;
    this.#setStatus("connecting");
    const token = await this.#token();
    if (generation !== this.#generation) return;
    this.#opening = false;
    if (this.#status !== "connecting" || this.#link !== null) return;
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(this.#url, "mizan.v1");
    } catch {
      this.#closed(null, 1006, "the socket could not be created");
      return;
    }
    const link = new Link(ws, token);
    this.#link = link;
    ws.addEventListener("open", () => link.send(token === null ? { type: "init" } : { type: "init", token }));
    ws.addEventListener("message", (event: { data?: unknown }) => this.#onMessage(link, event.data));
    ws.addEventListener("close", (event: { code?: number; reason?: string }) =>
      this.#closed(link, event.code ?? 1006, event.reason ?? ""),
    );
    // An error is followed by a close, which does the work.
    ws.addEventListener("error", () => {});
  }

  #send(link: Link, request: SocketRequest, waiter: Waiter): void {
    const id = this.#nextId++;
    link.pending.set(id, { type: request.type, resolve: waiter.resolve, reject: waiter.reject });
    link.send({ ...request, id });
  }

  #sendSub(link: Link, key: string, wanted: Wanted): void {
    const id = this.#nextId++;
    wanted.id = id;
    wanted.settled = false;
    link.subs.set(id, key);
    link.send({ type: "sub", id, context: wanted.context, params: wanted.params });
  }

  #onMessage(link: Link, data: unknown): void {
    if (typeof data !== "string") return;
    let message: Record<string, unknown>;
    try {
      message = this.#hooks.parse(data) as Record<string, unknown>;
    } catch (error) {
      // Unreadable (e.g. an integer beyond 2^53): the request it answers fails with the error.
      const id = (() => {
        try {
          return (JSON.parse(data) as { id?: unknown }).id;
        } catch {
          return undefined;
        }
      })();
      const waiter = typeof id === "number" ? link.pending.get(id) : undefined;
      if (waiter !== undefined && typeof id === "number") {
        link.pending.delete(id);
        waiter.reject(error);
        this.#finishRetiring(link);
      }
      return;
    }
    if (message === null || typeof message !== "object") return;
    const id = message["id"];
    switch (message["type"]) {
      case "ack":
        this.#accepted(link);
        return;
      case "result":
      case "data":
      case "error": {
        if (typeof id !== "number") return;
        const waiter = link.pending.get(id);
        if (waiter !== undefined) {
          link.pending.delete(id);
          waiter.resolve(message as unknown as SocketReply);
          this.#finishRetiring(link);
        } else if (message["type"] === "error" && link.subs.has(id)) {
          // A refused subscription: no pushes will come for it; its fetch shows the error.
          const key = link.subs.get(id);
          link.subs.delete(id);
          const wanted = typeof key === "string" ? this.#wanted.get(key) : undefined;
          if (wanted !== undefined && wanted.id === id) {
            wanted.settled = true;
            wanted.markReady();
          }
        }
        return;
      }
      case "sub_ok":
        if (typeof id === "number") this.#settleSub(link, id);
        return;
      case "invalidate": {
        const key = typeof id === "number" ? link.subs.get(id) : undefined;
        if (typeof key === "string" && link === this.#link && this.#wanted.get(key)?.id === id) {
          this.#hooks.onInvalidate(key, Array.isArray(message["targets"]) ? message["targets"] : []);
        }
        return;
      }
      case "resync":
        if (link === this.#link) this.#hooks.onResync();
        return;
      default:
        return; // `pong`, and anything a later server may add.
    }
  }

  #settleSub(link: Link, id: number): void {
    const key = link.subs.get(id);
    if (key === undefined) return;
    if (key === null) {
      // Unsubscribed while it was on its way.
      link.subs.delete(id);
      link.send({ type: "unsub", id });
      return;
    }
    const wanted = this.#wanted.get(key);
    if (wanted !== undefined && wanted.id === id) {
      wanted.settled = true;
      wanted.markReady();
    }
  }

  #accepted(link: Link): void {
    if (link !== this.#link || link.acked) return;
    link.acked = true;
    this.#attempt = 0;
    this.#refusedToken = null;
    this.#setStatus("open");
    for (const [key, wanted] of this.#wanted) this.#sendSub(link, key, wanted);
    // Through `request` again: a fetch of a subscribed instance waits for its `sub_ok`.
    for (const queued of this.#queue.splice(0)) {
      this.request(queued.request, queued.key).then(queued.resolve, queued.reject);
    }
    // A connection after another: pushes may have been lost in between.
    if (this.#hadConnection) this.#hooks.onResync();
    this.#hadConnection = true;
  }

  /** Lets `link` finish its requests, then closes it (the token changed). */
  #retire(link: Link): void {
    link.retiring = true;
    this.#link = null;
    for (const wanted of this.#wanted.values()) this.#unsend(wanted);
    this.#finishRetiring(link);
  }

  #finishRetiring(link: Link): void {
    if (link.retiring && link.pending.size === 0) link.ws.close(1000, "token changed");
  }

  /** Forgets a subscription's id on a connection that went away; waiters go on. */
  #unsend(wanted: Wanted): void {
    wanted.id = null;
    wanted.settled = false;
    wanted.markReady();
    const { promise, resolve } = deferred();
    wanted.ready = promise;
    wanted.markReady = resolve;
  }

  /** Ends what `link` had sent: calls reject, fetches are handed back to go another way. */
  #abandon(link: Link, code: number, reason: string): void {
    const error = this.#hooks.closedError(code, reason);
    for (const sent of link.pending.values()) {
      if (sent.type === "ctx") sent.resolve(null);
      else sent.reject(error);
    }
    link.pending.clear();
  }

  /** The current connection (if any) went away: its requests end, queued ones go another
   * way, subscriptions wait for the next connection. */
  #dropped(link: Link | null, code: number, reason: string): void {
    if (link !== null) {
      this.#abandon(link, code, reason);
      link.subs.clear();
    }
    for (const queued of this.#queue.splice(0)) queued.resolve(null);
    for (const wanted of this.#wanted.values()) this.#unsend(wanted);
  }

  #closed(link: Link | null, code: number, reason: string): void {
    if (link !== null && link !== this.#link) {
      // A retired (or disconnected) connection: only its own requests are concerned.
      this.#abandon(link, code, reason);
      return;
    }
    this.#link = null;
    this.#dropped(link, code, reason);
    if (FATAL_CLOSE_CODES.includes(code)) {
      this.#setStatus("failed", code);
      return;
    }
    if (code === UNAUTHENTICATED_CLOSE_CODE) {
      this.#refusedToken = link?.token ?? null;
      this.#setStatus("unauthenticated", code);
      // A token refreshed meanwhile (or one `getToken` refreshes now) reconnects at once.
      if (this.#hooks.tokenCanChange) {
        void this.#token().then((token) => {
          if (this.#status === "unauthenticated" && token !== this.#refusedToken) this.#schedule(code);
        });
      }
      return;
    }
    this.#schedule(code);
  }

  #schedule(code: number): void {
    const delay = backoffDelay(
      this.#attempt++,
      this.#options.initialDelay ?? 500,
      this.#options.maxDelay ?? 30_000,
      this.#options.random ?? Math.random,
    );
    this.#setStatus("reconnecting", code);
    this.#stopTimer();
    const setTimer = this.#options.setTimer ?? ((run: () => void, ms: number) => setTimeout(run, ms));
    this.#timer = setTimer(() => {
      this.#timer = null;
      if (this.#status === "reconnecting") void this.#connect();
    }, delay);
  }

  #stopTimer(): void {
    if (this.#timer === null) return;
    const clearTimer = this.#options.clearTimer ?? ((timer: unknown) => clearTimeout(timer as ReturnType<typeof setTimeout>));
    clearTimer(this.#timer);
    this.#timer = null;
  }

  #setStatus(status: SocketStatus, closeCode?: number): void {
    if (this.#status === status) return;
    this.#status = status;
    this.#options.onStatus?.(status, closeCode);
  }
}
