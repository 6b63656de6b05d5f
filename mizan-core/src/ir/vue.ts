// Vue composables over the Mizan store. Vue (3.3 or later) is a peer dependency.
import { computed, getCurrentScope, hasInjectionContext, inject, onScopeDispose, provide, shallowRef, toValue, watch } from "vue";
import type { App, ComputedRef, InjectionKey, MaybeRefOrGetter } from "vue";
import { instanceKey, MizanStore, MutationController } from "./store.js";
import type { MutationSnapshot, MutationStatus, QuerySnapshot, QueryStatus } from "./store.js";
import type { MizanError } from "./runtime.js";

/** Where the composables find their store. */
export const MIZAN_STORE: InjectionKey<MizanStore> = Symbol("mizan-store");

/** A Vue plugin giving the whole app one store: `app.use(createMizan())`. */
export function createMizan(store: MizanStore = new MizanStore()): { store: MizanStore; install(app: App): void } {
  return {
    store,
    install(app: App) {
      app.provide(MIZAN_STORE, store);
    },
  };
}

/** Gives the components below the current one a store (call in `setup`). */
export function provideMizan(store: MizanStore = new MizanStore()): MizanStore {
  provide(MIZAN_STORE, store);
  return store;
}

/** The store given by `createMizan()` or `provideMizan()`; throws when there is none. */
export function useMizan(): MizanStore {
  const store = hasInjectionContext() ? inject(MIZAN_STORE, null) : null;
  if (store === null) {
    throw new Error(
      "useMizan(): no Mizan store here. Install one with app.use(createMizan()), or call " +
        "provideMizan() in a parent component's setup, before using Mizan composables.",
    );
  }
  return store;
}

/** What a context composable returns: refs following the instance. */
export interface MizanQueryRefs<T> {
  /** The last data fetched. */
  data: ComputedRef<T | undefined>;
  /** The error of the last fetch, if it failed. */
  error: ComputedRef<MizanError | null>;
  /** `pending`, `error` or `success`. */
  status: ComputedRef<QueryStatus>;
  /** Whether a request is in flight. */
  isFetching: ComputedRef<boolean>;
  /** Fetches again. */
  refetch: () => Promise<void>;
}

/** Observes one context instance while the calling component (or effect scope) lives; follows
 * `params` when it is a ref or a getter. The generated `useXxx(params)` composables call this. */
export function useMizanQuery<T>(context: string, params: MaybeRefOrGetter<object>, fn?: string): MizanQueryRefs<T> {
  const store = useMizan();
  let current = toValue(params);
  const snapshot = shallowRef<QuerySnapshot<T>>(store.getSnapshot<T>(context, current, fn));
  watch(
    () => instanceKey(context, toValue(params)),
    (_key, _previous, onCleanup) => {
      const instance = toValue(params);
      current = instance;
      const read = () => {
        snapshot.value = store.getSnapshot<T>(context, instance, fn);
      };
      onCleanup(store.subscribe(context, instance, read));
      read();
    },
    { immediate: true },
  );
  return {
    data: computed(() => snapshot.value.data),
    error: computed(() => snapshot.value.error),
    status: computed(() => snapshot.value.status),
    isFetching: computed(() => snapshot.value.isFetching),
    refetch: () => store.refetch(context, current),
  };
}

/** What a call composable returns. */
export interface MizanMutationRefs<A extends unknown[], R> {
  /** `idle`, `pending`, `error` or `success`. */
  status: ComputedRef<MutationStatus>;
  /** The result of the last successful call. */
  data: ComputedRef<R | undefined>;
  /** The error of the last failed call. */
  error: ComputedRef<MizanError | null>;
  /** Calls the function; the outcome shows in the refs. */
  mutate: (...args: A) => void;
  /** Calls the function; resolves once its invalidations are applied. */
  mutateAsync: (...args: A) => Promise<R>;
  /** Back to `idle`. */
  reset: () => void;
}

/** State and triggers of one call site of `fn`. The generated call composables use this. */
export function useMizanMutation<A extends unknown[], R>(fn: (...args: A) => Promise<R>): MizanMutationRefs<A, R> {
  const controller = new MutationController(fn);
  const snapshot = shallowRef<MutationSnapshot<R>>(controller.getSnapshot());
  const stop = controller.subscribe(() => {
    snapshot.value = controller.getSnapshot();
  });
  if (getCurrentScope()) onScopeDispose(stop);
  return {
    status: computed(() => snapshot.value.status),
    data: computed(() => snapshot.value.data),
    error: computed(() => snapshot.value.error),
    mutate: controller.mutate,
    mutateAsync: controller.mutateAsync,
    reset: controller.reset,
  };
}
