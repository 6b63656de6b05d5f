// The Mizan store: one framework-agnostic cache of context bundles under the React, Vue and
// Svelte bindings. No dependencies besides the runtime.
//
// - An instance is a context plus its canonical params (sorted names, string values): `{b: 1,
//   a: "x"}` and `{a: "x", b: "1"}` are the same instance, fetched once.
// - One request in flight per instance: concurrent readers share it.
// - Observers are counted; an instance nobody observes is dropped after `gcTime` milliseconds.
// - A refetch keeps the previous data (`isFetching` is true meanwhile).
// - An invalidation (the `invalidate` list of a mutation's answer) marks the matching instances
//   stale and refetches the observed ones; `resync()` does it for all of them. An unobserved
//   stale instance is refetched when it is observed again.
// - With the socket transport, an observed instance is subscribed on the socket (`watch`): a
//   push naming it refetches it. Unobserved, it is unsubscribed; observed again after that, it
//   is refetched (pushes were not heard meanwhile).
// - Snapshots are immutable and change identity only when something changed, as
//   `useSyncExternalStore` requires.

import {
  addInvalidationListener,
  canonicalParams,
  fetchContext,
  instanceKey,
  liveUpdates,
  matches,
  MizanError,
  watch,
} from "./runtime.js";
import type { InvalidationListener, InvalidationTarget } from "./runtime.js";

/** Where a query stands: no data yet, failed, or has data. */
export type QueryStatus = "pending" | "error" | "success";

/** What a reader of one instance sees; a new object only when something changed. */
export interface QuerySnapshot<T> {
  /** The last data fetched (kept while refetching and after a failed refetch). */
  readonly data: T | undefined;
  /** The error of the last fetch, if it failed. */
  readonly error: MizanError | null;
  /** `pending` before the first answer, then `success` or `error` after each fetch. */
  readonly status: QueryStatus;
  /** Whether a request for this instance is in flight. */
  readonly isFetching: boolean;
}

/** Where a mutation stands. */
export type MutationStatus = "idle" | "pending" | "error" | "success";

/** What a reader of one mutation sees; a new object only when something changed. */
export interface MutationSnapshot<R> {
  /** `idle` until called, `pending` while the call runs, then `success` or `error`. */
  readonly status: MutationStatus;
  /** The result of the last successful call. */
  readonly data: R | undefined;
  /** The error of the last failed call. */
  readonly error: MizanError | null;
}

/** One instance's data, as `dehydrate()` gives and `hydrate()` / `initialData` take (e.g. from
 * a server-rendered page). */
export interface HydrationEntry {
  /** The context name, e.g. "user". */
  context: string;
  /** Its params, e.g. `{ user_id: 1 }`. */
  params: Record<string, unknown>;
  /** The bundle, as `GET ctx/<context>/` answers it. */
  data: unknown;
}

/** How a store behaves. */
export interface MizanStoreOptions {
  /** Bundles known in advance: observed without a request until invalidated. */
  initialData?: HydrationEntry[];
  /** How long an instance nobody observes is kept, in milliseconds (default 5 minutes). */
  gcTime?: number;
  /** How bundles are fetched (default: the runtime's `fetchContext`, configured by `configure`). */
  fetchContext?: (context: string, params: Record<string, unknown>) => Promise<unknown>;
}

/** A runtime failure of any kind as a `MizanError` (network failures get code `network_error`). */
export function toMizanError(error: unknown): MizanError {
  if (error instanceof MizanError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new MizanError(0, "network_error", message);
}

export { canonicalParams, instanceKey } from "./runtime.js";

interface Entry {
  readonly context: string;
  readonly params: Record<string, unknown>;
  snapshot: QuerySnapshot<unknown>;
  /** Snapshots of one function's slice, by function name, with the bundle snapshot they came from. */
  readonly slices: Map<string, { from: QuerySnapshot<unknown>; slice: QuerySnapshot<unknown> }>;
  readonly listeners: Set<() => void>;
  observers: number;
  stale: boolean;
  inFlight: Promise<void> | null;
  gcTimer: ReturnType<typeof setTimeout> | null;
  /** The end of its watch for pushes, while observed. */
  unwatch: (() => void) | null;
  /** Whether a watch of it ended: pushes may have been missed since. */
  unwatched: boolean;
}

const PENDING: QuerySnapshot<never> = Object.freeze({
  data: undefined,
  error: null,
  status: "pending",
  isFetching: false,
});

const DEFAULT_GC_TIME = 5 * 60 * 1000;

/** The cache of context bundles that the framework bindings read. */
export class MizanStore {
  readonly #entries = new Map<string, Entry>();
  readonly #gcTime: number;
  readonly #fetch: (context: string, params: Record<string, unknown>) => Promise<unknown>;
  /** Registered with the runtime only while the store holds instances, so that a store
   * dropped by its owner is not kept alive by the runtime. */
  #unlisten: (() => void) | null = null;
  readonly #listener: InvalidationListener = {
    invalidate: (targets) => this.invalidate(targets),
    resync: () => this.resync(),
  };

  constructor(options: MizanStoreOptions = {}) {
    this.#gcTime = options.gcTime ?? DEFAULT_GC_TIME;
    this.#fetch = options.fetchContext ?? ((context, params) => fetchContext(context, params));
    if (options.initialData) this.hydrate(options.initialData);
  }

  /** The snapshot of one instance (of one function's slice of it when `fn` is given). Stable
   * between changes. Reading does not fetch: observing (`subscribe`) does. */
  getSnapshot<T>(context: string, params: object, fn?: string): QuerySnapshot<T> {
    const entry = this.#entry(context, params);
    if (fn === undefined) return entry.snapshot as QuerySnapshot<T>;
    const cached = entry.slices.get(fn);
    if (cached && cached.from === entry.snapshot) return cached.slice as QuerySnapshot<T>;
    const bundle = entry.snapshot.data as Record<string, unknown> | undefined;
    const slice = Object.freeze({ ...entry.snapshot, data: bundle?.[fn] });
    entry.slices.set(fn, { from: entry.snapshot, slice });
    return slice as QuerySnapshot<T>;
  }

  /** Observes one instance: fetches it unless it has fresh data, then calls `onChange` after
   * each change of its snapshot. Returns the end of the observation. */
  subscribe(context: string, params: object, onChange: () => void): () => void {
    const entry = this.#entry(context, params);
    // A listener object of our own, so that the same callback observing twice counts twice.
    const listener = () => onChange();
    entry.listeners.add(listener);
    entry.observers += 1;
    if (entry.gcTimer !== null) {
      clearTimeout(entry.gcTimer);
      entry.gcTimer = null;
    }
    if (entry.unwatch === null) {
      entry.unwatch = watch(entry.context, entry.params, () => void this.#markStale(entry));
      // Live again after a pause: whatever was pushed meanwhile went unheard.
      if (entry.unwatched && liveUpdates()) entry.stale = true;
    }
    if (entry.stale || entry.snapshot.status !== "success") void this.#run(entry);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      entry.listeners.delete(listener);
      entry.observers -= 1;
      if (entry.observers === 0) {
        this.#scheduleGc(entry);
        // After the current task: an observer replaced at once (React's StrictMode mounts
        // twice) keeps the subscription.
        queueMicrotask(() => {
          if (entry.observers > 0 || entry.unwatch === null) return;
          entry.unwatch();
          entry.unwatch = null;
          entry.unwatched = true;
        });
      }
    };
  }

  /** Fetches one instance again (sharing a request already in flight); resolves once its
   * snapshot is updated. */
  refetch(context: string, params: object): Promise<void> {
    const entry = this.#entry(context, params);
    entry.stale = true;
    return this.#run(entry);
  }

  /** Marks the instances one of `targets` matches stale (a context name: all its instances;
   * `{context, params}`: those whose params match; a function-level target: its context's
   * matching instances, since a bundle is fetched whole) and refetches the observed ones. */
  async invalidate(targets: InvalidationTarget[]): Promise<void> {
    const stale = [...this.#entries.values()].filter((entry) => targets.some((target) => matches(target, entry)));
    await Promise.all(stale.map((entry) => this.#markStale(entry)));
  }

  /** Marks every instance stale and refetches the observed ones: what a transport calls after
   * reconnecting, when invalidations may have been missed. */
  async resync(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((entry) => this.#markStale(entry)));
  }

  /** Puts bundles known in advance in the store: they are observed without a request until
   * invalidated. */
  hydrate(entries: HydrationEntry[]): void {
    for (const { context, params, data } of entries) {
      const entry = this.#entry(context, params);
      entry.stale = false;
      this.#set(entry, { data, error: null, status: "success", isFetching: entry.inFlight !== null });
      if (entry.observers === 0) this.#scheduleGc(entry);
    }
  }

  /** Every instance that has data, for `hydrate()` / `initialData` elsewhere. */
  dehydrate(): HydrationEntry[] {
    return [...this.#entries.values()]
      .filter((entry) => entry.snapshot.data !== undefined)
      .map((entry) => ({ context: entry.context, params: { ...entry.params }, data: entry.snapshot.data }));
  }

  #entry(context: string, params: object): Entry {
    const key = instanceKey(context, params);
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = {
        context,
        params: { ...(params as Record<string, unknown>) },
        snapshot: PENDING,
        slices: new Map(),
        listeners: new Set(),
        observers: 0,
        stale: false,
        inFlight: null,
        gcTimer: null,
        unwatch: null,
        unwatched: false,
      };
      this.#entries.set(key, entry);
      this.#unlisten ??= addInvalidationListener(this.#listener);
      // Read during a render that never commits: dropped like any unobserved instance.
      this.#scheduleGc(entry);
    }
    return entry;
  }

  #scheduleGc(entry: Entry): void {
    if (entry.gcTimer !== null) clearTimeout(entry.gcTimer);
    const timer = setTimeout(() => {
      entry.gcTimer = null;
      if (entry.observers > 0) return;
      const key = instanceKey(entry.context, entry.params);
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
      if (this.#entries.size === 0 && this.#unlisten) {
        this.#unlisten();
        this.#unlisten = null;
      }
    }, this.#gcTime);
    // In Node, a pending collection must not keep the process alive.
    (timer as { unref?: () => void }).unref?.();
    entry.gcTimer = timer;
  }

  #markStale(entry: Entry): Promise<void> {
    entry.stale = true;
    return entry.observers > 0 ? this.#run(entry) : Promise.resolve();
  }

  #set(entry: Entry, next: QuerySnapshot<unknown>): void {
    const current = entry.snapshot;
    if (
      current.data === next.data &&
      current.error === next.error &&
      current.status === next.status &&
      current.isFetching === next.isFetching
    ) {
      return;
    }
    entry.snapshot = Object.freeze(next);
    for (const listener of [...entry.listeners]) listener();
  }

  /** Fetches `entry` unless a request is in flight; a request that was in flight when the
   * entry went stale is followed by another one, so that no answer older than an invalidation
   * is the last word. */
  #run(entry: Entry): Promise<void> {
    if (entry.inFlight !== null) return entry.inFlight;
    const fetchOnce = async (): Promise<void> => {
      for (;;) {
        entry.stale = false;
        this.#set(entry, { ...entry.snapshot, isFetching: true });
        let next: QuerySnapshot<unknown>;
        try {
          const data = await this.#fetch(entry.context, entry.params);
          next = { data, error: null, status: "success", isFetching: false };
        } catch (error) {
          next = { data: entry.snapshot.data, error: toMizanError(error), status: "error", isFetching: false };
        }
        const again = entry.stale && entry.observers > 0;
        this.#set(entry, again ? { ...next, isFetching: true } : next);
        if (!again) return;
      }
    };
    const inFlight = fetchOnce().finally(() => {
      entry.inFlight = null;
    });
    entry.inFlight = inFlight;
    return inFlight;
  }
}

/** Runs one function call at a time for a mutation binding and tells its observers how it
 * stands. Only the latest call's outcome is reported. */
export class MutationController<A extends unknown[], R> {
  #snapshot: MutationSnapshot<R> = Object.freeze({ status: "idle", data: undefined, error: null });
  #calls = 0;
  readonly #listeners = new Set<() => void>();
  readonly #fn: (...args: A) => Promise<R>;

  constructor(fn: (...args: A) => Promise<R>) {
    this.#fn = fn;
  }

  /** The current state; a new object only when something changed. */
  getSnapshot = (): MutationSnapshot<R> => this.#snapshot;

  /** Calls `onChange` after each change; returns the end of the observation. */
  subscribe = (onChange: () => void): (() => void) => {
    const listener = () => onChange();
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  };

  /** Calls the function; resolves to its result (after its invalidations are applied) or
   * rejects with a `MizanError`. */
  mutateAsync = async (...args: A): Promise<R> => {
    const call = ++this.#calls;
    this.#set({ status: "pending", data: this.#snapshot.data, error: null });
    try {
      const data = await this.#fn(...args);
      if (call === this.#calls) this.#set({ status: "success", data, error: null });
      return data;
    } catch (error) {
      const failure = toMizanError(error);
      if (call === this.#calls) this.#set({ status: "error", data: undefined, error: failure });
      throw failure;
    }
  };

  /** Calls the function; the outcome is reported through the state only. */
  mutate = (...args: A): void => {
    this.mutateAsync(...args).catch(() => {});
  };

  /** Back to `idle`; the outcome of a call still running is ignored. */
  reset = (): void => {
    this.#calls += 1;
    this.#set({ status: "idle", data: undefined, error: null });
  };

  #set(next: MutationSnapshot<R>): void {
    const current = this.#snapshot;
    if (current.status === next.status && current.data === next.data && current.error === next.error) return;
    this.#snapshot = Object.freeze(next);
    for (const listener of [...this.#listeners]) listener();
  }
}

let shared: MizanStore | null = null;

/** The store shared by the bindings that are not given one (the Svelte stores). */
export function defaultStore(): MizanStore {
  shared ??= new MizanStore();
  return shared;
}

/** A TanStack Query key of one context instance: `["mizan", context, canonical params]`. */
export type MizanQueryKey = readonly ["mizan", string, Readonly<Record<string, string>>];

/** The TanStack Query key of one context instance. */
export function mizanQueryKey(context: string, params: object): MizanQueryKey {
  return ["mizan", context, canonicalParams(params)];
}

/** Options for TanStack Query's `useQuery` / `queryOptions`. */
export interface MizanQueryOptions<T> {
  /** `["mizan", context, canonical params]`. */
  queryKey: MizanQueryKey;
  /** Fetches the bundle. */
  queryFn: () => Promise<T>;
}

/** Options for TanStack Query's `useMutation`. */
export interface MizanMutationOptions<A, R> {
  /** `["mizan", function]`. */
  mutationKey: readonly ["mizan", string];
  /** Calls the function (its invalidations reach Mizan's stores and listeners). */
  mutationFn: (args: A) => Promise<R>;
}

/** Whether one of `targets` makes the TanStack Query with `queryKey` stale; for
 * `queryClient.invalidateQueries({ predicate: (query) => invalidatesQueryKey(targets, query.queryKey) })`
 * in an invalidation listener. Keys not made by `mizanQueryKey` never match. */
export function invalidatesQueryKey(targets: InvalidationTarget[], queryKey: readonly unknown[]): boolean {
  const [scope, context, params] = queryKey;
  if (scope !== "mizan" || typeof context !== "string" || params === null || typeof params !== "object") return false;
  const instance = { context, params: params as Record<string, unknown> };
  return targets.some((target) => matches(target, instance));
}
