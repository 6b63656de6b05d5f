// The socket transport against a fake socket server (fake-socket.ts) and a fake `fetch`
// (fake.ts): `init` first, request ids, replies mapped to what HTTP gives, live subscriptions
// (exactly the named instance refetched on a push, everything on `resync`), reconnection with a
// jittered backoff (fake timers and jitter: nothing here waits on the clock), fatal close codes,
// the 4401 rule, and requests in flight rejected when their socket closes.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";

import {
  backoffDelay,
  callEcho,
  callUpdateName,
  callUpdateProfile,
  configure,
  disconnect,
  fetchUser,
  MizanError,
  MizanStore,
  reconnect,
  socketStatus,
  subscribeUser,
} from "../../target/ts-client/index.js";
import type { MizanConfig, UserBundle } from "../../target/ts-client/index.js";
import { FakeServer, settle, until } from "./fake.js";
import { rejection } from "./helpers.js";
import { FakeSocketServer } from "./fake-socket.js";
import type { FakeWebSocket, Sent } from "./fake-socket.js";

let http: FakeServer;
let ws: FakeSocketServer;
let token: string | null;
let store: MizanStore;
const stops: Array<() => void> = [];

function configureWs(extra: Partial<MizanConfig> = {}): void {
  configure({
    baseUrl: "http://mizan.test",
    fetch: http.fetch,
    getToken: () => token,
    transport: "ws",
    webSocket: ws.WebSocket,
    socket: ws.options,
    ...extra,
  });
}

beforeEach(() => {
  http = new FakeServer();
  ws = new FakeSocketServer(http);
  token = "t1";
  store = new MizanStore();
  configureWs();
});

afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await settle();
  disconnect();
  configure({ baseUrl: "http://mizan.test", fetch: http.fetch });
});

/** Observes one instance in the test's store; returns its snapshot reader. */
function observe(params: { user_id: number }) {
  stops.push(store.subscribe("user", params, () => {}));
  return () => store.getSnapshot<UserBundle>("user", params);
}

/** The `sub` message of user `id` on `socket`. */
function subOf(socket: FakeWebSocket, id: number): Sent | undefined {
  return socket.of("sub").find((m) => (m["params"] as { user_id?: unknown }).user_id === id);
}

const ctxOf = (socket: FakeWebSocket, id: number) =>
  socket.of("ctx").filter((m) => (m["params"] as { user_id?: unknown }).user_id === id).length;

describe("requests over the socket", () => {
  it("opens one socket lazily, sends init with the token first, then calls with distinct ids", async () => {
    assert.equal(ws.sockets.length, 0, "nothing opened before the first request");
    ws.hold.add("init");
    const first = callEcho({ message: "one" });
    const second = callEcho({ message: "two" });
    await until(() => ws.sockets.length === 1 && ws.latest.sent.length === 1, "init");
    const socket = ws.latest;
    assert.equal(socket.url, "ws://mizan.test/api/mizan/ws/");
    assert.equal(socket.protocols, "mizan.v1");
    assert.deepEqual(socket.sent, [{ type: "init", token: "t1" }]);
    await settle();
    assert.equal(socket.sent.length, 1, "requests wait for the ack");
    socket.push({ type: "ack" });
    assert.equal(await first, "one");
    assert.equal(await second, "two");
    const calls = socket.of("call");
    assert.deepEqual(
      calls.map((m) => [m["fn"], m["args"]]),
      [
        ["echo", { message: "one" }],
        ["echo", { message: "two" }],
      ],
    );
    assert.ok(calls.every((m) => Number.isInteger(m.id)) && calls[0]?.id !== calls[1]?.id, "distinct integer ids");
    assert.deepEqual(http.requests, [], "nothing over HTTP");
    assert.equal(ws.sockets.length, 1, "one shared socket");
    assert.equal(socketStatus(), "open");
  });

  it("sends init without a token when there is none", async () => {
    token = null;
    assert.equal(await callEcho({ message: "hi" }), "hi");
    assert.deepEqual(ws.latest.sent[0], { type: "init" });
  });

  it("resolves results and applies their invalidations as over HTTP", async () => {
    const user1 = observe({ user_id: 1 });
    const user2 = observe({ user_id: 2 });
    await until(() => user1().status === "success" && user2().status === "success", "both users");
    const socket = ws.latest;
    const updated = await callUpdateProfile({ user_id: 1, name: "Alicia" });
    assert.deepEqual(updated, { id: 1, name: "Alicia" });
    // The call resolves once its invalidations are applied: user 1 has been refetched.
    assert.equal(user1().data?.user_profile.name, "Alicia");
    assert.equal(ctxOf(socket, 1), 2);
    assert.equal(ctxOf(socket, 2), 1, "user 2 not refetched");
    assert.deepEqual(http.requests, []);
  });

  it("rejects with the MizanError HTTP would give", async () => {
    const error = await rejection(callUpdateProfile({ user_id: 1, name: " " }));
    assert.equal(error.status, 400);
    assert.equal(error.code, "bad_request");
    assert.equal(error.message, "invalid arguments");
    assert.deepEqual(error.details, { fields: { name: "1 to 64 characters" } });
    ws.hold.add("call");
    const pending = callEcho({ message: "x" });
    await until(() => ws.sentOf("call").length === 2, "the second call");
    const id = ws.latest.of("call")[1]?.id;
    ws.latest.push({ type: "error", id, error: { code: "forbidden", message: "no", details: null } });
    const forbidden = await rejection(pending);
    assert.deepEqual([forbidden.status, forbidden.code], [403, "forbidden"]);
  });

  it("refuses an integer a JavaScript number cannot hold, for the request it answers", async () => {
    ws.hold.add("call");
    const pending = callEcho({ message: "big" });
    await until(() => ws.sentOf("call").length === 1, "the call");
    const id = ws.latest.of("call")[0]?.id;
    ws.latest.push(`{"type":"result","id":${id},"result":9007199254740993,"invalidate":[]}`);
    assert.equal((await rejection(pending)).code, "precision_loss");
  });

  it("sends functions not declared websocket, and files, over HTTP", async () => {
    await rejection(callUpdateName({ user_id: 1, name: "x" })); // the fake HTTP server has no update_name
    assert.deepEqual(http.requests, ["POST call/ update_name"]);
    assert.equal(ws.sockets.length, 0, "no socket for an HTTP-only function");
  });

  it("takes a per-call transport", async () => {
    assert.equal(await callEcho({ message: "hi" }, { transport: "http" }).catch(() => "over http"), "over http");
    assert.deepEqual(http.requests, ["POST call/ echo"]);
    assert.equal(ws.sockets.length, 0);
    configureWs({ transport: "http" });
    assert.equal(await callEcho({ message: "hi" }, { transport: "ws" }), "hi");
    assert.equal(ws.latest.of("call").length, 1);
    const bundle = await fetchUser({ user_id: 2 }, { transport: "ws" });
    assert.equal(bundle.user_profile.name, "bob");
    assert.deepEqual(ws.latest.of("ctx")[0]?.["params"], { user_id: 2 });
    assert.equal(http.requests.length, 1, "nothing more over HTTP");
  });
});

describe("live subscriptions", () => {
  it("subscribes each observed instance once, fetches it after sub_ok, unsubscribes when the last observer leaves", async () => {
    ws.hold.add("sub");
    const read = observe({ user_id: 1 });
    const second = store.subscribe("user", { user_id: "1" }, () => {});
    await until(() => ws.sockets.length === 1 && ws.latest.of("sub").length === 1, "the sub");
    const socket = ws.latest;
    const sub = subOf(socket, 1);
    assert.deepEqual(sub, { type: "sub", id: sub?.id, context: "user", params: { user_id: 1 } });
    await settle();
    assert.equal(ctxOf(socket, 1), 0, "the fetch waits for sub_ok");
    socket.push({ type: "sub_ok", id: sub?.id });
    await until(() => read().status === "success", "the bundle");
    assert.equal(ctxOf(socket, 1), 1);
    second();
    await settle();
    assert.equal(socket.of("unsub").length, 0, "one observer left");
    stops.pop()?.();
    await settle();
    assert.deepEqual(socket.of("unsub"), [{ type: "unsub", id: sub?.id }]);
  });

  it("keeps the subscription when an observer is replaced at once (StrictMode)", async () => {
    const stop = store.subscribe("user", { user_id: 1 }, () => {});
    stop();
    stops.push(store.subscribe("user", { user_id: 1 }, () => {}));
    await until(() => store.getSnapshot("user", { user_id: 1 }).status === "success", "the bundle");
    assert.equal(ws.latest.of("sub").length, 1);
    assert.equal(ws.latest.of("unsub").length, 0);
    assert.equal(ctxOf(ws.latest, 1), 1);
  });

  it("refetches exactly the instance a push names", async () => {
    const user1 = observe({ user_id: 1 });
    const user2 = observe({ user_id: 2 });
    const seen: string[] = [];
    const subscription = subscribeUser({ user_id: 2 }, (bundle) => seen.push(bundle.user_profile.name));
    stops.push(() => subscription.unsubscribe());
    await until(() => user1().status === "success" && user2().status === "success" && seen.length === 1, "the first fetches");
    const socket = ws.latest;
    assert.equal(socket.of("sub").length, 2, "one sub per instance, shared by the store and subscribeUser");
    assert.deepEqual([ctxOf(socket, 1), ctxOf(socket, 2)], [1, 2]);
    // Another client renamed user 2: the server pushes to user 2's subscription only.
    http.names.set(2, "Robert");
    socket.push({ type: "invalidate", id: subOf(socket, 2)?.id, targets: [{ context: "user", params: { user_id: 2 } }] });
    await until(() => user2().data?.user_profile.name === "Robert" && seen.length === 2, "user 2 refetched");
    assert.deepEqual(seen, ["bob", "Robert"]);
    assert.deepEqual([ctxOf(socket, 1), ctxOf(socket, 2)], [1, 4], "user 1 not refetched");
    // A push for an id that is no subscription of ours changes nothing.
    socket.push({ type: "invalidate", id: 999, targets: ["user"] });
    await settle();
    assert.deepEqual([ctxOf(socket, 1), ctxOf(socket, 2)], [1, 4]);
  });

  it("refetches everything subscribed on resync", async () => {
    const user1 = observe({ user_id: 1 });
    const user2 = observe({ user_id: 2 });
    await until(() => user1().status === "success" && user2().status === "success", "the first fetches");
    const socket = ws.latest;
    socket.push({ type: "resync" });
    await until(() => ctxOf(socket, 1) === 2 && ctxOf(socket, 2) === 2, "both refetched");
  });

  it("refetches an instance observed again after its subscription ended", async () => {
    const stop = store.subscribe("user", { user_id: 1 }, () => {});
    await until(() => store.getSnapshot("user", { user_id: 1 }).status === "success", "the bundle");
    stop();
    await until(() => ws.sentOf("unsub").length === 1, "the unsub");
    stops.push(store.subscribe("user", { user_id: 1 }, () => {}));
    await until(() => ctxOf(ws.latest, 1) === 2, "the refetch");
    assert.equal(ws.latest.of("sub").length, 2);
  });
});

describe("reconnection", () => {
  it("jitters each delay within [base / 2, base), the base doubling up to the cap", () => {
    assert.equal(backoffDelay(0, 500, 30_000, () => 0), 250);
    assert.equal(backoffDelay(0, 500, 30_000, () => 0.999), 499.75);
    assert.equal(backoffDelay(3, 500, 30_000, () => 0), 2000);
    assert.equal(backoffDelay(10, 500, 30_000, () => 0), 15_000);
    assert.equal(backoffDelay(10, 500, 30_000, () => 0.999), 29_985);
    assert.equal(backoffDelay(1000, 500, 30_000, () => 0.5), 22_500, "no overflow far out");
  });

  it("rejects requests in flight, reconnects after a jittered backoff with the current token, re-subscribes and refetches", async () => {
    const user1 = observe({ user_id: 1 });
    await until(() => user1().status === "success", "the bundle");
    const first = ws.latest;
    ws.hold.add("call");
    const pending = callEcho({ message: "lost" });
    await until(() => first.of("call").length === 1, "the call");
    ws.randoms.push(0, 0.999, 0.5);
    first.drop(1006);
    const error = await rejection(pending);
    assert.equal(error.code, "socket_closed");
    assert.equal(error.status, 0);
    assert.match(error.message, /closed \(1006\)/);
    assert.equal(socketStatus(), "reconnecting");
    assert.deepEqual(ws.timers.map((t) => t.ms), [250], "attempt 1: base 500, jitter 0");
    // While the socket is down, requests go over HTTP rather than wait.
    ws.hold.delete("call");
    await callEcho({ message: "meanwhile" }).catch(() => {});
    assert.deepEqual(http.requests, ["POST call/ echo"]);
    // The next attempt fails before the ack: the delay doubles.
    ws.autoOpen = false;
    ws.fireTimer();
    await until(() => ws.sockets.length === 2, "the second socket");
    ws.latest.drop(1006);
    assert.deepEqual(ws.timers.map((t) => t.ms), [250, 999.5], "attempt 2: base 1000, jitter 0.999");
    ws.autoOpen = true;
    token = "t2";
    ws.fireTimer();
    await until(() => ws.sockets.length === 3 && ctxOf(ws.latest, 1) === 1, "the reconnection and its refetch");
    const third = ws.latest;
    assert.deepEqual(third.sent[0], { type: "init", token: "t2" }, "init again, with the current token");
    assert.deepEqual(subOf(third, 1)?.["params"], { user_id: 1 }, "subscribed again");
    assert.ok(third.sent.indexOf(subOf(third, 1) as Sent) < third.sent.findIndex((m) => m.type === "ctx"), "sub before the refetch");
    assert.equal(socketStatus(), "open");
    // A successful connection resets the backoff.
    third.drop(1001, "server shutdown");
    assert.deepEqual(ws.timers.map((t) => t.ms), [250, 999.5, 375]);
  });

  it("sends a fetch in flight again over HTTP when its socket closes: no error shows", async () => {
    ws.hold.add("ctx");
    const read = observe({ user_id: 1 });
    await until(() => ws.sentOf("ctx").length === 1, "the fetch");
    ws.latest.drop(1006);
    await until(() => read().status === "success", "the bundle");
    assert.equal(read().data?.user_profile.name, "alice");
    assert.equal(read().error, null);
    assert.deepEqual(http.requests, ["GET ctx/user/?user_id=1"]);
  });

  it("hands back requests waiting for a connection that disconnect() abandons", async () => {
    ws.autoOpen = false;
    const answer = callEcho({ message: "x" }).then(
      () => "answered",
      (error: unknown) => (error instanceof MizanError ? `${error.status} ${error.code}` : String(error)),
    );
    await until(() => ws.sockets.length === 1, "the socket");
    disconnect();
    assert.equal(await answer, "404 not_found", "sent over HTTP (where the fake has no echo)");
    assert.equal(socketStatus(), "idle");
    ws.autoOpen = true;
    assert.equal(await callEcho({ message: "again" }), "again", "the next request opens it again");
  });

  it("caps the delay", async () => {
    ws.autoOpen = false;
    ws.randoms.push(0, 0, 0, 0, 0, 0);
    // Never answered over the socket: it goes over HTTP once the first attempt fails.
    const answer = callEcho({ message: "x" }).catch(() => {});
    for (let i = 0; i < 5; i++) {
      await until(() => ws.sockets.length === i + 1, "a socket");
      ws.latest.drop(1006);
      if (i < 4) ws.fireTimer();
    }
    await answer;
    assert.deepEqual(http.requests, ["POST call/ echo"]);
    assert.deepEqual(ws.timers.map((t) => t.ms), [250, 500, 1000, 2000, 2000], "base capped at maxDelay 4000");
  });

  for (const code of [4400, 4409, 4429, 1009]) {
    it(`does not reconnect after close code ${code}; requests go over HTTP until reconnect()`, async () => {
      assert.equal(await callEcho({ message: "hi" }), "hi");
      ws.latest.drop(code);
      assert.equal(socketStatus(), "failed");
      assert.deepEqual(ws.statuses.slice(-1), [`failed ${code}`]);
      await settle();
      assert.deepEqual(ws.timers, [], "no reconnection scheduled");
      await callEcho({ message: "hi" }).catch(() => {});
      assert.deepEqual(http.requests, ["POST call/ echo"]);
      assert.equal(ws.sockets.length, 1);
      reconnect();
      await until(() => socketStatus() === "open", "reconnected");
      assert.equal(ws.sockets.length, 2);
    });
  }

  it("after 4401, reconnects only with a token other than the refused one", async () => {
    token = "refused";
    // The init is refused: the call, not sent yet, goes over HTTP instead.
    const answer = callEcho({ message: "hi" });
    await until(() => ws.sockets.length === 1 && ws.latest.sent.length === 1, "init");
    ws.latest.drop(4401, "unauthenticated");
    await answer.catch(() => {});
    assert.deepEqual(http.requests, ["POST call/ echo"]);
    assert.equal(socketStatus(), "unauthenticated");
    await settle();
    assert.deepEqual(ws.timers, [], "the same token: no reconnection");
    await callEcho({ message: "again" }).catch(() => {});
    assert.equal(ws.sockets.length, 1, "still the refused token: HTTP");
    assert.equal(http.requests.length, 2);
    token = "fresh";
    assert.equal(await callEcho({ message: "fresh" }), "fresh");
    assert.equal(ws.sockets.length, 2);
    assert.deepEqual(ws.latest.sent[0], { type: "init", token: "fresh" });
  });

  it("after 4401 with a token refreshed meanwhile, reconnects by itself and refetches", async () => {
    const user1 = observe({ user_id: 1 });
    await until(() => user1().status === "success", "the bundle");
    token = "refreshed";
    ws.latest.drop(4401, "token expired");
    await until(() => ws.timers.length === 1, "a reconnection scheduled");
    ws.fireTimer();
    await until(() => ws.sockets.length === 2 && ctxOf(ws.latest, 1) === 1, "reconnected and refetched");
    assert.deepEqual(ws.latest.sent[0], { type: "init", token: "refreshed" });
  });

  it("opens a new socket when the token changes, letting the old one finish its calls", async () => {
    ws.hold.add("call");
    const pending = callEcho({ message: "slow" });
    await until(() => ws.sentOf("call").length === 1, "the call");
    const old = ws.latest;
    token = "t2";
    ws.hold.delete("call");
    assert.equal(await callEcho({ message: "new" }), "new");
    assert.equal(ws.sockets.length, 2);
    assert.deepEqual(ws.latest.sent[0], { type: "init", token: "t2" });
    assert.equal(old.closedByClient, null, "the old socket waits for its call");
    old.push({ type: "result", id: old.of("call")[0]?.id, result: "slow", invalidate: [] });
    assert.equal(await pending, "slow");
    await until(() => old.closedByClient !== null, "the old socket closed");
    assert.equal((old.closedByClient as { code?: number } | null)?.code, 1000);
    assert.equal(socketStatus(), "open");
  });
});
