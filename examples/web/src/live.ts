// The socket's status as React state: `configure({ socket: { onStatus: setSocketStatus } })`
// reports it here, and `useSocketStatus()` re-renders on each change.
import { useSyncExternalStore } from "react";

import type { SocketStatus } from "./api";

let status: SocketStatus | null = null;
const listeners = new Set<() => void>();

/** Records the socket's status (`null`: the app runs over HTTP). */
export function setSocketStatus(next: SocketStatus): void {
  status = next;
  for (const listener of [...listeners]) listener();
}

/** The socket's status, or `null` when the app runs over HTTP. */
export function useSocketStatus(): SocketStatus | null {
  return useSyncExternalStore(
    (onChange) => {
      listeners.add(onChange);
      return () => void listeners.delete(onChange);
    },
    () => status,
    () => status,
  );
}
