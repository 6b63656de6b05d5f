// A fake Mizan socket server behind a fake `WebSocket` constructor, for the socket unit tests (as
// fake.ts fakes `fetch`): it records every socket the client opens and every message it sends,
// answers them from the same small data as the fake HTTP server (unless told to hold a kind of
// message back), and lets a test push, close and time everything itself. Timers are fake too:
// the client's reconnection delays are recorded, and fire only when a test says so.
import type { SocketOptions, WebSocketConstructor, WebSocketLike } from "../../target/ts-client/index.js";
import type { FakeServer } from "./fake.js";

/** A message the client sent, parsed. */
export type Sent = Record<string, unknown> & { type: string; id?: number };

export class FakeWebSocket implements WebSocketLike {
  /** Every message sent, parsed, in order. */
  readonly sent: Sent[] = [];
  /** The close the client asked for, if it did. */
  closedByClient: { code: number | undefined; reason: string | undefined } | null = null;
  /** Whether a close event was delivered. */
  closed = false;
  readonly #listeners = new Map<string, Array<(event: unknown) => void>>();

  constructor(
    readonly url: string,
    readonly protocols: string | string[] | undefined,
    readonly server: FakeSocketServer,
  ) {}

  addEventListener(type: string, listener: (event: any) => void): void {
    const list = this.#listeners.get(type) ?? [];
    list.push(listener);
    this.#listeners.set(type, list);
  }

  send(data: string): void {
    if (this.closed) throw new Error("send on a closed socket");
    const message = JSON.parse(data) as Sent;
    this.sent.push(message);
    this.server.answer(this, message);
  }

  close(code?: number, reason?: string): void {
    if (this.closedByClient !== null || this.closed) return;
    this.closedByClient = { code, reason };
    queueMicrotask(() => this.drop(code ?? 1005, reason ?? ""));
  }

  /** The server accepts the connection. */
  open(): void {
    this.#emit("open", {});
  }

  /** The server sends `message` (an object is sent as JSON, a string as it is). */
  push(message: object | string): void {
    if (this.closed) return;
    this.#emit("message", { data: typeof message === "string" ? message : JSON.stringify(message) });
  }

  /** The connection closes with `code`. */
  drop(code: number, reason = ""): void {
    if (this.closed) return;
    this.closed = true;
    this.#emit("close", { code, reason });
  }

  /** The messages of one type that were sent. */
  of(type: string): Sent[] {
    return this.sent.filter((message) => message.type === type);
  }

  #emit(type: string, event: unknown): void {
    for (const listener of this.#listeners.get(type) ?? []) listener(event);
  }
}

export class FakeSocketServer {
  /** Every socket the client opened, in order. */
  readonly sockets: FakeWebSocket[] = [];
  /** Message types not answered by themselves (the test answers them, or not). */
  readonly hold = new Set<string>();
  /** Whether sockets open by themselves (else the test calls `open()`). */
  autoOpen = true;
  /** Reconnection timers the client started: their delay, and whether they were cleared. */
  readonly timers: Array<{ ms: number; run: () => void; cleared: boolean }> = [];
  /** Random numbers the jitter will get, in order (then 0.5). */
  readonly randoms: number[] = [];
  /** Every status the client reported, with the close code. */
  readonly statuses: string[] = [];

  constructor(readonly http: FakeServer) {}

  /** The constructor to pass as `webSocket`. */
  readonly WebSocket: WebSocketConstructor = ((server: FakeSocketServer) =>
    class {
      constructor(url: string, protocols?: string | string[]) {
        const socket = new FakeWebSocket(url, protocols, server);
        server.sockets.push(socket);
        if (server.autoOpen) queueMicrotask(() => socket.open());
        return socket;
      }
    } as unknown as WebSocketConstructor)(this);

  /** The options to pass as `socket`: fake timers and jitter, statuses recorded. */
  readonly options: SocketOptions = {
    initialDelay: 500,
    maxDelay: 4000,
    random: () => this.randoms.shift() ?? 0.5,
    setTimer: (run, ms) => {
      const timer = { ms, run, cleared: false };
      this.timers.push(timer);
      return timer;
    },
    clearTimer: (timer) => {
      (timer as { cleared: boolean }).cleared = true;
    },
    onStatus: (status, code) => void this.statuses.push(code === undefined ? status : `${status} ${code}`),
  };

  /** The socket opened last. */
  get latest(): FakeWebSocket {
    const socket = this.sockets.at(-1);
    if (socket === undefined) throw new Error("no socket was opened");
    return socket;
  }

  /** The messages of one type sent on the latest socket (none before the first one opens). */
  sentOf(type: string): Sent[] {
    return this.sockets.at(-1)?.of(type) ?? [];
  }

  /** Fires the last timer started (a reconnection). */
  fireTimer(): void {
    const timer = this.timers.at(-1);
    if (timer === undefined || timer.cleared) throw new Error("no pending timer");
    timer.run();
  }

  /** Answers `message` as the demo would, unless its type is held. */
  answer(socket: FakeWebSocket, message: Sent): void {
    if (this.hold.has(message.type)) return;
    const reply = this.#reply(message);
    if (reply !== null) queueMicrotask(() => socket.push(reply));
  }

  #reply(message: Sent): object | null {
    switch (message.type) {
      case "init":
        return message["token"] === "refused" ? null : { type: "ack" };
      case "sub":
        return { type: "sub_ok", id: message.id };
      case "ctx": {
        const params = message["params"] as Record<string, unknown>;
        if (message["name"] === "user") {
          const id = Number(params["user_id"]);
          return {
            type: "data",
            id: message.id,
            data: { user_profile: { id, name: this.http.names.get(id) ?? "?" }, user_orders: [] },
          };
        }
        if (message["name"] === "catalog") {
          const items = this.http.catalog.map((name, i) => ({ id: i + 1, name }));
          return { type: "data", id: message.id, data: { catalog_items: items } };
        }
        return { type: "error", id: message.id, error: { code: "not_found", message: "no such context", details: null } };
      }
      case "call": {
        const args = message["args"] as Record<string, unknown>;
        if (message["fn"] === "echo") return { type: "result", id: message.id, result: args["message"], invalidate: [] };
        if (message["fn"] === "update_profile") {
          const name = String(args["name"]);
          if (name.trim() === "") {
            const error = { code: "bad_request", message: "invalid arguments", details: { fields: { name: "1 to 64 characters" } } };
            return { type: "error", id: message.id, error };
          }
          const id = Number(args["user_id"]);
          this.http.names.set(id, name);
          return {
            type: "result",
            id: message.id,
            result: { id, name },
            invalidate: [{ context: "user", params: { user_id: id } }],
          };
        }
        return { type: "error", id: message.id, error: { code: "not_found", message: "not over the socket", details: null } };
      }
      default:
        return null;
    }
  }
}
