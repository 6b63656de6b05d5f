// The socket transport against the running demo (MIZAN_E2E_URL): client A is the generated
// client configured with `transport: "ws"`; client B is plain HTTP (`fetch`), another browser
// tab as far as the server knows. Needs a global WebSocket (Node 22, or Node 20 with
// --experimental-websocket, which scripts/ts-e2e.sh passes). Every wait is on a condition.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  callAddItem,
  callEcho,
  callLogin,
  callUpdateName,
  callUpdateProfile,
  configure,
  disconnect,
  fetchGlobal,
  fetchUser,
  MizanError,
  socketStatus,
  subscribeInbox,
  subscribeNotes,
  subscribeUser,
} from "../../target/ts-client/index.js";
import type { NotesBundle, UserBundle } from "../../target/ts-client/index.js";
import { rejection, until } from "./helpers.js";

const baseUrl = process.env.MIZAN_E2E_URL ?? "http://127.0.0.1:8000";
let token: string | null = null;
/** Every HTTP request client A sent, as `POST call/` or `GET ctx/user/?user_id=1`. */
const overHttp: string[] = [];
const suffix = String(Date.now() % 100000);

/** Client B: a call over plain HTTP, outside the generated client. */
async function otherClientCalls(fn: string, args: object): Promise<unknown> {
  const response = await fetch(`${baseUrl}/api/mizan/call/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ fn, args }),
  });
  assert.equal(response.status, 200, `${fn} over HTTP`);
  return response.json();
}

before(() => {
  assert.equal(typeof globalThis.WebSocket, "function", "a global WebSocket (node --experimental-websocket)");
  configure({
    baseUrl,
    transport: "ws",
    getToken: () => token,
    fetch: (input, init) => {
      const url = new URL(String(input));
      overHttp.push(`${init?.method ?? "GET"} ${url.pathname.replace("/api/mizan/", "")}${url.search}`);
      return fetch(input, init);
    },
  });
});

after(() => disconnect());

describe("calls over the socket", () => {
  it("answers calls and fetches as HTTP does, without an HTTP request", async () => {
    assert.equal(await callEcho({ message: `hello ${suffix}` }), `hello ${suffix}`);
    assert.equal(socketStatus(), "open");
    const item = await callAddItem({ name: `Gizmo ${suffix}` });
    assert.equal(item.name, `Gizmo ${suffix}`);
    const overSocket: UserBundle = await fetchUser({ user_id: 1 });
    const overHttpToo = await fetchUser({ user_id: 1 }, { transport: "http" });
    assert.deepEqual(overSocket, overHttpToo);
    assert.deepEqual(overHttp, ["GET ctx/user/?user_id=1"], "only the fetch asked to go over HTTP");
    overHttp.length = 0;
  });

  it("rejects with the same MizanError as HTTP", async () => {
    const overSocket = await rejection(callUpdateProfile({ user_id: 1, name: "" }));
    const viaHttp = await rejection(callUpdateProfile({ user_id: 1, name: "" }, { transport: "http" }));
    assert.deepEqual(
      [overSocket.status, overSocket.code, overSocket.message, overSocket.details],
      [viaHttp.status, viaHttp.code, viaHttp.message, viaHttp.details],
    );
    assert.deepEqual([overSocket.status, overSocket.code], [400, "bad_request"]);
    overHttp.length = 0;
  });

  it("calls a function not declared websocket over HTTP", async () => {
    await callUpdateName({ user_id: 3, name: "root" });
    assert.deepEqual(overHttp, ["POST call/"]);
    overHttp.length = 0;
  });

  it("identifies the caller by the token in init", async () => {
    assert.equal((await fetchGlobal()).current_user, null);
    token = (await callLogin({ username: "alice", password: "alice" })).access; // over HTTP
    // The token changed: a new socket, whose init carries it.
    try {
      assert.equal((await fetchGlobal()).current_user?.id, 1);
    } finally {
      token = null;
    }
    assert.equal((await fetchGlobal()).current_user, null);
    overHttp.length = 0;
  });
});

describe("live subscriptions", () => {
  it("refetch when another client mutates over HTTP, exactly the instances it makes stale", async () => {
    overHttp.length = 0;
    const seen = { user1: [] as string[], user2: [] as string[], notes: [] as NotesBundle[] };
    const subscriptions = [
      subscribeUser({ user_id: 1 }, (bundle) => seen.user1.push(bundle.user_profile.name)),
      subscribeUser({ user_id: 2 }, (bundle) => seen.user2.push(bundle.user_profile.name)),
      subscribeNotes({ folder: `live-${suffix}` }, (bundle) => seen.notes.push(bundle)),
    ];
    try {
      await until(() => seen.user1.length === 1 && seen.user2.length === 1 && seen.notes.length === 1, "the first fetches");

      // Client B renames user 1: only A's user 1 subscription hears of it.
      const name = `Alice ${suffix}`;
      await otherClientCalls("update_profile", { user_id: 1, name });
      await until(() => seen.user1.length === 2, "user 1 pushed and refetched");
      assert.equal(seen.user1[1], name);

      // A later mutation's push comes after any earlier one on the same socket: once the notes
      // subscription has heard of it, user 2 would have heard of the rename too.
      await otherClientCalls("add_note", { folder: `live-${suffix}`, text: "hi" });
      await until(() => seen.notes.length === 2, "the notes pushed and refetched");
      assert.deepEqual(seen.notes[1]?.notes_list, ["hi"]);
      assert.equal(seen.user2.length, 1, "user 2's instance heard nothing");
      assert.equal(seen.user1.length, 2, "user 1 heard nothing of the note");
      assert.deepEqual(overHttp, [], "fetches and refetches over the socket");
    } finally {
      subscriptions.forEach((s) => s.unsubscribe());
      await otherClientCalls("update_profile", { user_id: 1, name: "alice" });
    }
  });

  it("reports a subscription the caller may not read through the fetch's error", async () => {
    token = null;
    const errors: unknown[] = [];
    const subscription = subscribeInbox({}, () => assert.fail("staff only"), (error) => errors.push(error));
    try {
      await until(() => errors.length === 1, "the error");
      const error = errors[0];
      assert.ok(error instanceof MizanError);
      assert.deepEqual([error.status, error.code], [401, "unauthenticated"]);
      assert.equal(socketStatus(), "open", "a refused sub does not close the socket");
    } finally {
      subscription.unsubscribe();
    }
  });
});
