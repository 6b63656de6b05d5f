// What the tests against a real server share (live.test.ts, e2e.test.ts, browser.test.ts), and
// the rejection check socket.test.ts shares with them. (fake.ts has its own `until`, which counts
// event-loop turns instead of time: the fakes answer through promises only.)
import assert from "node:assert/strict";

import { MizanError } from "../../target/ts-client/index.js";

/** Resolves once `predicate` holds, checking every `everyMs` (default 10 ms) for at most
 * `withinMs` (default 10 s); fails naming `what` after that. */
export async function until(
  predicate: () => boolean,
  what: string,
  { everyMs = 10, withinMs = 10_000 }: { everyMs?: number; withinMs?: number } = {},
): Promise<void> {
  for (let i = 0; i < Math.ceil(withinMs / everyMs); i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** The `MizanError` `promise` rejects with; fails if it resolves (`expected` names what was
 * expected) or rejects with anything else. */
export async function rejection(promise: Promise<unknown>, expected = "a rejection"): Promise<MizanError> {
  const error = await promise.then(
    () => assert.fail(`expected ${expected}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof MizanError, `a MizanError, got ${String(error)}`);
  return error;
}
