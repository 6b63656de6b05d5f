// React bindings over the Mizan store (`useSyncExternalStore`). React is a peer dependency.
import { createContext, createElement, useCallback, useContext, useMemo, useState, useSyncExternalStore } from "react";
import type { ReactElement, ReactNode } from "react";
import { instanceKey, MizanStore, MutationController } from "./store.js";
import type { MutationSnapshot, QuerySnapshot } from "./store.js";

const MizanContext = createContext<MizanStore | null>(null);

/** The props of `<MizanProvider>`. */
export interface MizanProviderProps {
  /** The store the hooks below read (default: a new one per provider, e.g. per request in
   * server rendering). Pass one built with `initialData` to hydrate server-rendered data. */
  store?: MizanStore;
  /** The app. */
  children?: ReactNode;
}

/** Gives the hooks below it their store. */
export function MizanProvider({ store, children }: MizanProviderProps): ReactElement {
  const [own] = useState(() => store ?? new MizanStore());
  return createElement(MizanContext.Provider, { value: store ?? own }, children);
}

/** The store of the nearest `<MizanProvider>`; throws when there is none. */
export function useMizan(): MizanStore {
  const store = useContext(MizanContext);
  if (store === null) {
    throw new Error(
      "useMizan(): no <MizanProvider> above this component. Wrap the app in <MizanProvider> " +
        "(optionally <MizanProvider store={new MizanStore()}>) before using Mizan hooks.",
    );
  }
  return store;
}

/** What a context hook returns. */
export interface MizanQuery<T> extends QuerySnapshot<T> {
  /** Fetches again; resolves once the new data (or error) is in. */
  refetch: () => Promise<void>;
}

/** Observes one context instance (one function's slice of it when `fn` is given). The generated
 * `useXxx(params)` hooks call this. */
export function useMizanQuery<T>(context: string, params: object, fn?: string): MizanQuery<T> {
  const store = useMizan();
  const key = instanceKey(context, params);
  // The params of the render where the key last changed: equal params keep every callback.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const stable = useMemo(() => params, [key]);
  const subscribe = useCallback(
    (onChange: () => void) => store.subscribe(context, stable, onChange),
    [store, context, stable],
  );
  const getSnapshot = useCallback(() => store.getSnapshot<T>(context, stable, fn), [store, context, stable, fn]);
  const snapshot = useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
  const refetch = useCallback(() => store.refetch(context, stable), [store, context, stable]);
  return useMemo(() => ({ ...snapshot, refetch }), [snapshot, refetch]);
}

/** What a call hook returns. */
export interface MizanMutation<A extends unknown[], R> extends MutationSnapshot<R> {
  /** Calls the function; the outcome shows in `status`, `data` and `error`. */
  mutate: (...args: A) => void;
  /** Calls the function; resolves to its result once its invalidations are applied (the
   * affected components have refetched), or rejects with a `MizanError`. */
  mutateAsync: (...args: A) => Promise<R>;
  /** Back to `idle`. */
  reset: () => void;
}

/** State and triggers of one call site of `fn`. The generated `useXxx()` call hooks use this. */
export function useMizanMutation<A extends unknown[], R>(fn: (...args: A) => Promise<R>): MizanMutation<A, R> {
  const [controller] = useState(() => new MutationController(fn));
  const snapshot = useSyncExternalStore(controller.subscribe, controller.getSnapshot, controller.getSnapshot);
  return useMemo(
    () => ({ ...snapshot, mutate: controller.mutate, mutateAsync: controller.mutateAsync, reset: controller.reset }),
    [snapshot, controller],
  );
}
