// The Mizan client runtime, shipped with every generated client. No dependencies besides the
// socket (`socket.ts`), shipped beside it.

import { MizanSocket } from "./socket.js";
import type {
  SocketHooks,
  SocketOptions,
  SocketReply,
  SocketRequest,
  SocketStatus,
  Transport,
  WebSocketConstructor,
} from "./socket.js";

export type { SocketOptions, SocketStatus, Transport, WebSocketConstructor, WebSocketLike } from "./socket.js";
export { backoffDelay } from "./socket.js";

/** How the client reaches the server. */
export interface MizanConfig {
  /** Origin of the server, e.g. "http://127.0.0.1:8000". */
  baseUrl: string;
  /** The mount point of the protocol endpoints (default "/api/mizan/"). */
  mount?: string;
  /** The access token to send as `Authorization: Bearer`, if any. */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** The fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /**
   * Cookie authentication: `"include"` (or `"same-origin"`) sends the HttpOnly session cookies
   * that `login` sets, and then the client fetches the CSRF token from `session/` and sends it
   * in `X-CSRFToken` on every unsafe request (refetching it once when the server refuses it).
   */
  credentials?: RequestCredentials;
  /**
   * How calls and context fetches travel (default `"http"`). `"ws"`: over one shared WebSocket
   * (`{mount}ws/`), opened on first use, with live updates: every subscription (`subscribeXxx`)
   * and every instance a store observes is subscribed on the socket, and the server's pushes
   * refetch exactly the instances they name. Functions not declared `websocket`, and calls
   * carrying files, still go over HTTP, and so does everything while the socket is down.
   */
  transport?: Transport;
  /** The WebSocket constructor (default: the global `WebSocket`, which browsers and Node 22
   * have; Node 20 needs `--experimental-websocket` or a package such as `ws`). */
  webSocket?: WebSocketConstructor;
  /** The socket's URL, reconnection backoff, timers and status callback. */
  socket?: SocketOptions;
}

/** Options of one call or fetch. */
export interface CallOptions {
  /** This request's transport, instead of the configured one. */
  transport?: Transport;
}

/** What the generated client knows of a function from the IR. */
export interface FunctionInfo {
  /** Whether it is declared `websocket` (callable over the socket). */
  websocket?: boolean;
}

/** A 64-bit integer on the wire: a JSON number. Values beyond ±(2^53 − 1) cannot be represented
 * exactly by a JavaScript number; the runtime refuses such responses with a `MizanError` of code
 * `precision_loss` instead of rounding them silently. */
export type Int64 = number;

/** An error answered by the server (`status`, `code`, `message`, `details` of the error
 * envelope), or raised by the runtime (`status` 0). */
export class MizanError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details: unknown = null) {
    super(message);
    this.name = "MizanError";
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The form issues of a refused submit (`details.issues`), or none. */
  get issues(): Issue[] {
    const issues = (this.details as { issues?: unknown } | null)?.issues;
    return Array.isArray(issues) ? (issues as Issue[]) : [];
  }
}

/** One problem with submitted form data; `path` is empty for the form as a whole. */
export interface Issue {
  path: Array<string | number>;
  code: string;
  message: string;
  params: Record<string, unknown>;
}

/** What `validateXxx(data)` answers: every issue at once, without side effects. */
export interface Validation {
  valid: boolean;
  issues: Issue[];
}

/** A field of a form's schema. */
export interface FormField {
  name: string;
  type: string;
  required: boolean;
  label: string | null;
  help_text: string | null;
  widget: string | null;
  initial: unknown;
  choices: Array<{ value: unknown; label: string }> | null;
  constraints: Record<string, unknown>;
}

/** What `formXxx()` answers: how to draw the form. */
export interface FormSchema {
  name: string;
  fields: FormField[];
  json_schema: unknown;
  formset?: {
    min_num: number;
    max_num: number | null;
    absolute_max: number;
    can_delete: boolean;
    can_order: boolean;
    extra: number;
  };
}

/**
 * Issues grouped by dotted path (`"email"`, `"forms.2.qty"`; `""` for the form as a whole),
 * each with its messages in order: what a form shows next to each field.
 */
export function issuesByPath(issues: Issue[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const issue of issues) {
    const key = issue.path.join(".");
    (out[key] ??= []).push(issue.message);
  }
  return out;
}

/** An invalidation target as the server sends it in `invalidate`. */
export type InvalidationTarget =
  | string
  | { context: string; params?: Record<string, unknown>; function?: string };

let config: Required<Pick<MizanConfig, "baseUrl" | "mount" | "fetch" | "transport">> &
  Pick<MizanConfig, "getToken" | "credentials" | "webSocket" | "socket"> = {
  baseUrl: "",
  mount: "/api/mizan/",
  fetch: (...args) => fetch(...args),
  transport: "http",
};

/**
 * Configures the client; call once before any request. Configuring again closes the socket of
 * the previous configuration (its requests in flight reject); live subscriptions carry over to
 * the new one when its transport is `"ws"`.
 */
export function configure(options: MizanConfig): void {
  const transport = options.transport ?? "http";
  if (transport === "ws" && options.webSocket === undefined && globalWebSocket() === undefined) {
    throw new Error(
      'configure({ transport: "ws" }): no global WebSocket here; pass `webSocket` ' +
        "(Node 20: run with --experimental-websocket, or pass the `ws` package's WebSocket)",
    );
  }
  socket?.disconnect();
  socket = null;
  config = {
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    mount: options.mount ?? "/api/mizan/",
    fetch: options.fetch ?? ((...args) => fetch(...args)),
    transport,
    getToken: options.getToken,
    credentials: options.credentials,
    webSocket: options.webSocket,
    socket: options.socket,
  };
  csrfToken = null;
  if (transport === "ws") {
    for (const [key, entry] of live) openSocket()?.sub(key, entry.context, entry.params);
  }
}

/** The CSRF token of the cookie session, fetched from `session/` when first needed. */
let csrfToken: Promise<string | null> | null = null;

function usesCookies(): boolean {
  return config.credentials !== undefined && config.credentials !== "omit";
}

async function currentCsrfToken(): Promise<string | null> {
  csrfToken ??= send("GET", "session/").then(
    (session) => (session as { csrfToken?: string | null } | null)?.csrfToken ?? null,
    () => null,
  );
  return csrfToken;
}

/** JSON.parse that refuses integers a JavaScript number cannot hold exactly. */
export function parseJson(text: string): unknown {
  // Strings are matched (and skipped) first; then integers not part of a fraction or exponent.
  const integers = /"(?:[^"\\]|\\.)*"|(?<![\w.+-])(-?\d{16,})(?![.\deE])/g;
  for (const match of text.matchAll(integers)) {
    const digits = match[1];
    if (digits !== undefined && !Number.isSafeInteger(Number(digits))) {
      throw new MizanError(0, "precision_loss", `the integer ${digits} does not fit a JavaScript number`);
    }
  }
  return text === "" ? null : JSON.parse(text);
}

/**
 * Sends a request; with cookie authentication, an unsafe one carries the CSRF token, fetched
 * again once if the server refused it (a new session since it was fetched).
 */
async function request(method: string, path: string, body?: unknown): Promise<unknown> {
  if (!usesCookies() || method === "GET") return send(method, path, body);
  const token = await currentCsrfToken();
  try {
    return await send(method, path, body, token);
  } catch (error) {
    const csrf = error instanceof MizanError && error.status === 403 &&
      (error.details as { csrf?: unknown } | null)?.csrf !== undefined;
    if (!csrf) throw error;
    csrfToken = null;
    return send(method, path, body, await currentCsrfToken());
  }
}

async function send(method: string, path: string, body?: unknown, csrf?: string | null): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (csrf) headers["x-csrftoken"] = csrf;
  // FormData sets its own multipart content type (with the boundary).
  if (body !== undefined && !(body instanceof FormData)) headers["content-type"] = "application/json";
  const token = config.getToken ? await config.getToken() : undefined;
  if (token) headers["authorization"] = `Bearer ${token}`;
  const response = await config.fetch(config.baseUrl + config.mount + path, {
    method,
    headers,
    body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
    ...(config.credentials === undefined ? {} : { credentials: config.credentials }),
  });
  const text = await response.text();
  let data: unknown;
  try {
    data = parseJson(text);
  } catch (error) {
    if (error instanceof MizanError) throw error;
    throw new MizanError(response.status, "invalid_response", "the server did not answer JSON");
  }
  if (!response.ok) {
    const envelope = (data as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
    throw new MizanError(
      response.status,
      envelope?.code ?? "http_error",
      envelope?.message ?? `HTTP ${response.status}`,
      envelope?.details ?? null,
    );
  }
  return data;
}

/**
 * Arguments with every `Blob` (a `File` is one) replaced by a `{"$upload": "<part>"}` reference,
 * and the blobs by part name; none found means a plain JSON call.
 */
function extractUploads(value: unknown, files: Map<string, Blob>): unknown {
  if (value instanceof Blob) {
    const part = `f${files.size}`;
    files.set(part, value);
    return { $upload: part };
  }
  if (Array.isArray(value)) return value.map((item) => extractUploads(item, files));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = extractUploads(item, files);
    return out;
  }
  return value;
}

/**
 * The body of a call: JSON, or multipart when the arguments hold files (`__mizan` first with
 * the envelope, then one part per file).
 */
function callBody(fn: string, args: object): unknown {
  const files = new Map<string, Blob>();
  const envelope = { fn, args: extractUploads(args, files) };
  if (files.size === 0) return { fn, args };
  const form = new FormData();
  form.append("__mizan", JSON.stringify(envelope));
  for (const [part, blob] of files) {
    form.append(part, blob, blob instanceof File ? blob.name : part);
  }
  return form;
}

/**
 * Calls a function (`POST call/`, or a `call` message over the socket); applies its
 * invalidations, then resolves to its result. Arguments holding a `File` or `Blob` are sent as a
 * multipart upload (always over HTTP). `info` is what the generated client knows of the
 * function: only a function declared `websocket` goes over the socket.
 */
export async function call<T>(fn: string, args: object, options: CallOptions = {}, info: FunctionInfo = {}): Promise<T> {
  const body = callBody(fn, args);
  const overSocket =
    info.websocket === true && !(body instanceof FormData) ? await viaSocket({ type: "call", fn, args }, options) : null;
  const data = (overSocket === null ? await request("POST", "call/", body) : overSocket.value) as {
    result: T;
    invalidate?: InvalidationTarget[];
  };
  await invalidate(data.invalidate ?? []);
  return data.result;
}

/** Params as they are sent: `null` and `undefined` left out, non-scalar values as strings. */
function sendable(params: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    out[name] = typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? value : String(value);
  }
  return out;
}

function query(params: object): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(sendable(params))) search.append(name, String(value));
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

/** Params in canonical form: names sorted, values as the strings sent in the query string,
 * `null` and `undefined` left out (they are not sent). */
export function canonicalParams(params: object): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(params).sort()) {
    const value = (params as Record<string, unknown>)[name];
    if (value !== undefined && value !== null) out[name] = String(value);
  }
  return out;
}

/** The key of one context instance: its name and canonical params. */
export function instanceKey(context: string, params: object): string {
  return JSON.stringify([context, Object.entries(canonicalParams(params))]);
}

// ---------------------------------------------------------------------------------------------
// The socket transport

/** The socket of the current configuration, once opened. */
let socket: MizanSocket | null = null;

function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

/** `ws:`/`wss:` for the base URL's `http:`/`https:` (the page's, when the base URL is empty),
 * then `{mount}ws/`. */
function socketUrl(): string {
  if (config.socket?.url !== undefined) return config.socket.url;
  const page = (globalThis as { location?: { href?: string } }).location?.href;
  const url =
    config.baseUrl !== "" ? new URL(config.baseUrl + config.mount + "ws/") : new URL(config.mount + "ws/", page);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/** What the wire errors' codes are over HTTP: a socket error gets the same `status`. */
const STATUS_OF_CODE: Record<string, number> = {
  bad_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  internal: 500,
};

const hooks: SocketHooks = {
  getToken: async () => (config.getToken ? ((await config.getToken()) ?? null) : null),
  get tokenCanChange() {
    return config.getToken !== undefined;
  },
  parse: parseJson,
  closedError: (code, reason) =>
    new MizanError(
      0,
      "socket_closed",
      `the socket closed (${code}${reason === "" ? "" : `: ${reason}`}) before the answer came`,
      { code, reason },
    ),
  onInvalidate: (key) => {
    for (const onStale of [...(live.get(key)?.watchers ?? [])]) onStale();
  },
  onResync: () => void resync(),
};

function openSocket(): MizanSocket | null {
  if (socket !== null) return socket;
  const WebSocket = config.webSocket ?? globalWebSocket();
  if (WebSocket === undefined) return null;
  socket = new MizanSocket(socketUrl(), WebSocket, hooks, config.socket);
  return socket;
}

/** Sends `request` over the socket when the transport says so and the socket can take it;
 * `null` when it was not sent (send it over HTTP). */
async function viaSocket(request: SocketRequest, options: CallOptions, key?: string): Promise<{ value: unknown } | null> {
  if ((options.transport ?? config.transport) !== "ws") return null;
  const reply = await openSocket()?.request(request, key);
  return reply === undefined || reply === null ? null : { value: fromSocket(reply, request.type) };
}

/** A socket answer as the HTTP transport gives it: the body, or the `MizanError`. */
function fromSocket(reply: SocketReply, sent: SocketRequest["type"]): unknown {
  if (reply.type === "error") {
    const code = reply.error?.code ?? "internal";
    throw new MizanError(STATUS_OF_CODE[code] ?? 0, code, reply.error?.message ?? code, reply.error?.details ?? null);
  }
  if (reply.type === "result" && sent === "call") return { result: reply.result, invalidate: reply.invalidate ?? [] };
  if (reply.type === "data" && sent === "ctx") return reply.data;
  throw new MizanError(0, "invalid_response", `the server answered a ${sent} with ${String(reply.type)}`);
}

/** Where the socket stands (`"idle"` when it was never opened). */
export function socketStatus(): SocketStatus {
  return socket?.status ?? "idle";
}

/** Opens the socket again now: after a fatal close, after a 4401 once a fresh token is
 * available, or to skip the rest of a backoff delay. */
export function reconnect(): void {
  if (config.transport === "ws") openSocket()?.reconnect();
  else socket?.reconnect();
}

/** Closes the socket (calls in flight over it reject, fetches go over HTTP; live subscriptions
 * are kept and sent again when the next request or subscription opens it). */
export function disconnect(): void {
  socket?.disconnect();
}

/** Whether observed instances are live: subscribed on the socket (the transport is `"ws"`). */
export function liveUpdates(): boolean {
  return config.transport === "ws";
}

interface Live {
  context: string;
  params: Record<string, unknown>;
  watchers: Set<() => void>;
}

/** The instances watched for pushes, by instance key. */
const live = new Map<string, Live>();

/**
 * Watches one context instance for server pushes: with the `"ws"` transport, the first watcher
 * of an instance subscribes it on the socket (`sub`) and the last one to stop unsubscribes it
 * (`unsub`); `onStale` runs for every push that names it. With `"http"` nothing is sent (and
 * nothing pushed). `subscribeXxx` and the stores' observed instances use this. Returns the stop.
 */
export function watch(context: string, params: object, onStale: () => void): () => void {
  const key = instanceKey(context, params);
  let entry = live.get(key);
  if (entry === undefined) {
    entry = { context, params: sendable(params), watchers: new Set() };
    live.set(key, entry);
    if (config.transport === "ws") openSocket()?.sub(key, context, entry.params);
  }
  const watched = entry;
  // A watcher of our own, so that one callback watching twice counts twice.
  const watcher = () => onStale();
  watched.watchers.add(watcher);
  let active = true;
  return () => {
    if (!active) return;
    active = false;
    watched.watchers.delete(watcher);
    if (watched.watchers.size === 0 && live.get(key) === watched) {
      live.delete(key);
      socket?.unsub(key);
    }
  };
}

/** A form's schema (`GET form/<name>/`). */
export async function formSchema(name: string): Promise<FormSchema> {
  return (await request("GET", `form/${encodeURIComponent(name)}/`)) as FormSchema;
}

/** Validates form data without submitting it (`POST form/<name>/validate/`). */
export async function validateForm(name: string, data: object): Promise<Validation> {
  return (await request("POST", `form/${encodeURIComponent(name)}/validate/`, data)) as Validation;
}

/** Fetches a context bundle (`GET ctx/<name>/`, or a `ctx` message over the socket). */
export async function fetchContext<T>(context: string, params: object, options: CallOptions = {}): Promise<T> {
  const message: SocketRequest = { type: "ctx", name: context, params: sendable(params) };
  const overSocket = await viaSocket(message, options, instanceKey(context, params));
  if (overSocket !== null) return overSocket.value as T;
  return (await request("GET", `ctx/${encodeURIComponent(context)}/${query(params)}`)) as T;
}

/** A live subscription to one instance of a context. */
export interface Subscription {
  /** Stops refetching. */
  unsubscribe(): void;
  /** Refetches now. */
  refresh(): Promise<void>;
}

interface Instance {
  context: string;
  params: Record<string, unknown>;
  refresh(): Promise<void>;
}

const instances = new Set<Instance>();

/** Subscribes to one instance of a context: fetches it now and again whenever a mutation
 * invalidates it: a call of this client, and, with the `"ws"` transport, any mutation the
 * server pushes (then also after a `resync` or a reconnection). */
export function subscribe<T>(
  context: string,
  params: object,
  onData: (bundle: T) => void,
  onError: (error: unknown) => void = () => {},
): Subscription {
  const instance: Instance = {
    context,
    params: { ...params } as Record<string, unknown>,
    async refresh() {
      try {
        onData(await fetchContext<T>(context, params));
      } catch (error) {
        onError(error);
      }
    },
  };
  instances.add(instance);
  const stop = watch(context, params, () => void instance.refresh());
  void instance.refresh();
  return {
    unsubscribe: () => {
      instances.delete(instance);
      stop();
    },
    refresh: () => instance.refresh(),
  };
}

/** Whether `target` makes `instance` stale: a broad target any instance of its context; a
 * scoped or function-level one the instances whose params match its params. */
export function matches(target: InvalidationTarget, instance: { context: string; params: Record<string, unknown> }): boolean {
  if (typeof target === "string") return target === instance.context;
  if (target.context !== instance.context) return false;
  return Object.entries(target.params ?? {}).every(
    ([name, value]) => name in instance.params && String(instance.params[name]) === String(value),
  );
}

/** Something that holds fetched instances (a `MizanStore`) and keeps them fresh. */
export interface InvalidationListener {
  /** Marks the instances one of `targets` matches stale and refetches the observed ones. */
  invalidate(targets: InvalidationTarget[]): Promise<void>;
  /** Marks every instance stale and refetches the observed ones (after a reconnection, when
   * invalidations may have been missed). */
  resync(): Promise<void>;
}

const listeners = new Set<InvalidationListener>();

/** Registers `listener` with every later invalidation and resync; returns its removal. */
export function addInvalidationListener(listener: InvalidationListener): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** Refetches every subscribed instance that one of `targets` makes stale, in the subscriptions
 * and in every store. */
export async function invalidate(targets: InvalidationTarget[]): Promise<void> {
  const stale = [...instances].filter((instance) => targets.some((target) => matches(target, instance)));
  await Promise.all([
    ...stale.map((instance) => instance.refresh()),
    ...[...listeners].map((listener) => listener.invalidate(targets)),
  ]);
}

/** Refetches every subscription and every observed instance of every store: what a transport
 * calls after reconnecting, when invalidations may have been missed. */
export async function resync(): Promise<void> {
  await Promise.all([
    ...[...instances].map((instance) => instance.refresh()),
    ...[...listeners].map((listener) => listener.resync()),
  ]);
}
