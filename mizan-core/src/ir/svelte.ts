// Svelte stores over the Mizan store. Svelte (`svelte/store`) is a peer dependency.
import { readable } from "svelte/store";
import type { Readable } from "svelte/store";
import { defaultStore, MizanStore, MutationController } from "./store.js";
import type { MutationSnapshot, QuerySnapshot } from "./store.js";

/** A readable store of one context instance (`$user.data`, `$user.status`, ...), observed while
 * it has subscribers. */
export interface MizanQueryStore<T> extends Readable<QuerySnapshot<T>> {
  /** Fetches again. */
  refetch(): Promise<void>;
}

/** A store of one context instance (one function's slice of it when `fn` is given), read from
 * `store` (default: the shared store). The generated `createXxxQuery(params)` call this. */
export function createMizanQuery<T>(
  context: string,
  params: object,
  fn?: string,
  store: MizanStore = defaultStore(),
): MizanQueryStore<T> {
  const { subscribe } = readable(store.getSnapshot<T>(context, params, fn), (set) => {
    const read = () => set(store.getSnapshot<T>(context, params, fn));
    const stop = store.subscribe(context, params, read);
    read();
    return stop;
  });
  return { subscribe, refetch: () => store.refetch(context, params) };
}

/** A readable store of one call site's state (`$rename.status`, ...), with its triggers. */
export interface MizanMutationStore<A extends unknown[], R> extends Readable<MutationSnapshot<R>> {
  /** Calls the function; the outcome shows in the store. */
  mutate: (...args: A) => void;
  /** Calls the function; resolves once its invalidations are applied. */
  mutateAsync: (...args: A) => Promise<R>;
  /** Back to `idle`. */
  reset: () => void;
}

/** A store of calls to `fn`. The generated `createXxxMutation()` call this. */
export function createMizanMutation<A extends unknown[], R>(fn: (...args: A) => Promise<R>): MizanMutationStore<A, R> {
  const controller = new MutationController(fn);
  const { subscribe } = readable(controller.getSnapshot(), (set) => {
    set(controller.getSnapshot());
    return controller.subscribe(() => set(controller.getSnapshot()));
  });
  return { subscribe, mutate: controller.mutate, mutateAsync: controller.mutateAsync, reset: controller.reset };
}
