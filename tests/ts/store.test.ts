// The generated store against a fake server (a fake `fetch`): one request per instance, observer
// counting and collection, data kept while refetching, invalidation and resync, hydration,
// typed errors, and the mutation controller the bindings share.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";

import {
  callAddItem,
  callUpdateProfile,
  canonicalParams,
  configure,
  instanceKey,
  invalidatesQueryKey,
  MizanError,
  MizanStore,
  MutationController,
  resync,
  subscribeUser,
  updateProfileMutationOptions,
  userQueryOptions,
} from "../../target/ts-client/index.js";
import type { QuerySnapshot, UserBundle } from "../../target/ts-client/index.js";
import { FakeServer, settle, until } from "./fake.js";

let server: FakeServer;
let store: MizanStore;
/** Every observation a test started: stopped after it, so that no test's store refetches
 * during the next one (every store hears every invalidation). */
const observations: Array<() => void> = [];

beforeEach(() => {
  server = new FakeServer();
  configure({ baseUrl: "http://mizan.test", fetch: server.fetch });
  store = new MizanStore();
});

afterEach(() => {
  for (const stop of observations.splice(0)) stop();
});

/** Observes one instance; returns its snapshot reader and the end of the observation. */
function observe(context: string, params: object, s: MizanStore = store) {
  let changes = 0;
  const stop = s.subscribe(context, params, () => (changes += 1));
  observations.push(stop);
  return {
    stop,
    read: <T = UserBundle>() => s.getSnapshot<T>(context, params),
    changes: () => changes,
  };
}

describe("cache keys", () => {
  it("are canonical: sorted names, string values, null and undefined left out", () => {
    assert.deepEqual(canonicalParams({ b: 2, a: "x", c: null, d: undefined }), { a: "x", b: "2" });
    assert.equal(instanceKey("user", { user_id: 1 }), instanceKey("user", { user_id: "1" }));
    assert.notEqual(instanceKey("user", { user_id: 1 }), instanceKey("user", { user_id: 2 }));
    assert.notEqual(instanceKey("user", { user_id: 1 }), instanceKey("notes", { user_id: 1 }));
  });
});

describe("fetching", () => {
  it("sends one request for every observer of one instance, whatever the params' order or types", async () => {
    const first = observe("user", { user_id: 1 });
    const second = observe("user", { user_id: "1" });
    assert.equal(first.read().status, "pending");
    assert.equal(first.read().isFetching, true);
    await until(() => first.read().status === "success", "the bundle");
    assert.equal(server.count("GET ctx/user/"), 1);
    assert.equal(first.read(), second.read(), "one snapshot object for both readers");
    assert.equal(first.read().data?.user_profile.name, "alice");
  });

  it("gives the same snapshot object until something changes", async () => {
    const user = observe("user", { user_id: 1 });
    await until(() => user.read().status === "success", "the bundle");
    const before = user.read();
    assert.equal(user.read(), before);
    assert.ok(Object.isFrozen(before));
    const slice = store.getSnapshot("user", { user_id: 1 }, "user_profile");
    assert.equal(store.getSnapshot("user", { user_id: 1 }, "user_profile"), slice, "slices are cached too");
    assert.deepEqual(slice.data, { id: 1, name: "alice" });
  });

  it("keeps the data while refetching, then replaces it", async () => {
    const user = observe("user", { user_id: 1 });
    await until(() => user.read().status === "success", "the bundle");
    server.names.set(1, "alicia");
    server.holding = true;
    const done = store.refetch("user", { user_id: 1 });
    await until(() => server.held.length === 1, "the refetch");
    const during = user.read();
    assert.equal(during.isFetching, true);
    assert.equal(during.status, "success");
    assert.equal(during.data?.user_profile.name, "alice");
    server.releaseAll();
    await done;
    assert.equal(user.read().isFetching, false);
    assert.equal(user.read().data?.user_profile.name, "alicia");
  });

  it("reports failures as MizanError and keeps the last data", async () => {
    const user = observe("user", { user_id: 1 });
    await until(() => user.read().status === "success", "the bundle");
    server.failWith = 404;
    await store.refetch("user", { user_id: 1 });
    const failed = user.read();
    assert.equal(failed.status, "error");
    assert.ok(failed.error instanceof MizanError);
    assert.equal(failed.error.status, 404);
    assert.equal(failed.error.code, "not_found");
    assert.equal(failed.data?.user_profile.name, "alice");
    server.failWith = null;
    server.offline = true;
    const other = observe("user", { user_id: 2 });
    await until(() => other.read().status === "error", "the network failure");
    assert.equal(other.read().error?.code, "network_error");
    assert.equal(other.read().error?.status, 0);
  });

  it("retries a failed instance when it is observed again", async () => {
    server.failWith = 500;
    const user = observe("user", { user_id: 1 });
    await until(() => user.read().status === "error", "the failure");
    server.failWith = null;
    const again = observe("user", { user_id: 1 });
    await until(() => again.read().status === "success", "the retry");
    assert.equal(server.count("GET ctx/user/"), 2);
  });
});

describe("observers and collection", () => {
  it("drops an instance nobody observes after the grace period, not before", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const gcStore = new MizanStore({ gcTime: 1000 });
      const user = observe("user", { user_id: 1 }, gcStore);
      await until(() => user.read().status === "success", "the bundle");
      user.stop();
      user.stop(); // stopping twice counts once
      mock.timers.tick(999);
      const back = observe("user", { user_id: 1 }, gcStore);
      assert.equal(back.read().status, "success", "still cached within the grace period");
      await settle();
      assert.equal(server.count("GET ctx/user/"), 1, "no refetch for a fresh instance");
      back.stop();
      mock.timers.tick(1000);
      const later = observe("user", { user_id: 1 }, gcStore);
      assert.equal(later.read().status, "pending", "collected after the grace period");
      await until(() => later.read().status === "success", "the new fetch");
      assert.equal(server.count("GET ctx/user/"), 2);
    } finally {
      mock.timers.reset();
    }
  });

  it("keeps an instance while one observer of two remains", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const gcStore = new MizanStore({ gcTime: 10 });
      const first = observe("user", { user_id: 1 }, gcStore);
      const second = observe("user", { user_id: 1 }, gcStore);
      await until(() => first.read().status === "success", "the bundle");
      first.stop();
      mock.timers.tick(100);
      assert.equal(second.read().status, "success");
      assert.equal(gcStore.dehydrate().length, 1);
    } finally {
      mock.timers.reset();
    }
  });
});

describe("invalidation", () => {
  async function threeInstances() {
    const one = observe("user", { user_id: 1 });
    const two = observe("user", { user_id: 2 });
    const catalog = observe("catalog", {});
    await until(
      () => [one, two, catalog].every((o) => o.read<unknown>().status === "success"),
      "three bundles",
    );
    server.requests.length = 0;
    return { one, two, catalog };
  }

  it("a scoped target refetches exactly the matching instance, before the call resolves", async () => {
    const { one } = await threeInstances();
    server.invalidate = [{ context: "user", params: { user_id: 1 } }];
    const profile = await callUpdateProfile({ user_id: 1, name: "alicia" });
    assert.equal(profile.name, "alicia");
    assert.deepEqual(server.requests, ["POST call/ update_profile", "GET ctx/user/?user_id=1"]);
    assert.equal(one.read().data?.user_profile.name, "alicia", "refetched before the call resolved");
  });

  it("a broad target refetches every instance of its context, and no other", async () => {
    await threeInstances();
    server.invalidate = ["user"];
    await callUpdateProfile({ user_id: 2, name: "robert" });
    assert.deepEqual(server.requests.slice(1).sort(), ["GET ctx/user/?user_id=1", "GET ctx/user/?user_id=2"]);
  });

  it("a function-level target refetches its context's matching instances", async () => {
    await threeInstances();
    server.invalidate = [{ context: "user", function: "user_profile", params: { user_id: 2 } }];
    await callUpdateProfile({ user_id: 2, name: "robert" });
    assert.deepEqual(server.requests, ["POST call/ update_profile", "GET ctx/user/?user_id=2"]);
  });

  it("marks unobserved instances stale and refetches them when observed again", async () => {
    const { catalog } = await threeInstances();
    catalog.stop();
    server.invalidate = ["catalog"];
    await callAddItem({ name: "Desk" });
    assert.equal(server.count("GET ctx/catalog/"), 0, "nobody observes the catalog");
    const back = observe("catalog", {});
    assert.equal(back.read<{ catalog_items: unknown[] }>().data?.catalog_items.length, 1, "old data shown meanwhile");
    await until(() => back.read<{ catalog_items: unknown[] }>().data?.catalog_items.length === 2, "the refetch");
    assert.equal(server.count("GET ctx/catalog/"), 1);
  });

  it("refetches again when invalidated while a request is in flight", async () => {
    // The first answer is held; meanwhile a rename lands and invalidates the instance.
    server.holding = true;
    const user = observe("user", { user_id: 1 });
    await until(() => server.held.length === 1, "the held answer");
    server.holding = false;
    server.names.set(1, "alicia");
    const invalidated = store.invalidate(["user"]);
    server.releaseAll();
    await invalidated;
    assert.equal(user.read().isFetching, false);
    assert.equal(server.count("GET ctx/user/"), 2);
    assert.equal(user.read().data?.user_profile.name, "alicia", "the answer older than the invalidation is not the last word");
  });

  it("resync refetches every observed instance", async () => {
    await threeInstances();
    await resync();
    assert.deepEqual(server.requests.sort(), [
      "GET ctx/catalog/",
      "GET ctx/user/?user_id=1",
      "GET ctx/user/?user_id=2",
    ]);
    server.requests.length = 0;
    await store.resync();
    assert.equal(server.requests.length, 3);
  });

  it("reaches the plain subscriptions and every store alike", async () => {
    const other = new MizanStore();
    const inOther = observe("user", { user_id: 1 }, other);
    const names: string[] = [];
    const subscription = subscribeUser({ user_id: 1 }, (bundle) => names.push(bundle.user_profile.name));
    await until(() => names.length === 1 && inOther.read().status === "success", "the first fetches");
    server.invalidate = [{ context: "user", params: { user_id: 1 } }];
    await callUpdateProfile({ user_id: 1, name: "alicia" });
    assert.deepEqual(names, ["alice", "alicia"]);
    assert.equal(inOther.read().data?.user_profile.name, "alicia");
    subscription.unsubscribe();
  });
});

describe("hydration", () => {
  it("serves initial data without a request until invalidated", async () => {
    const bundle = { user_profile: { id: 1, name: "from the server" }, user_orders: [] };
    const hydrated = new MizanStore({ initialData: [{ context: "user", params: { user_id: 1 }, data: bundle }] });
    const user = observe("user", { user_id: "1" }, hydrated);
    const first: QuerySnapshot<UserBundle> = user.read();
    assert.equal(first.status, "success");
    assert.equal(first.data, bundle);
    await settle();
    assert.equal(server.requests.length, 0);
    await hydrated.invalidate(["user"]);
    assert.equal(user.read().data?.user_profile.name, "alice");
    // The instance keeps the params it was first seen with.
    assert.deepEqual(hydrated.dehydrate(), [{ context: "user", params: { user_id: 1 }, data: user.read().data }]);
  });

  it("hydrate() replaces data in place and notifies observers", async () => {
    const user = observe("user", { user_id: 1 });
    await until(() => user.read().status === "success", "the bundle");
    const changes = user.changes();
    store.hydrate([{ context: "user", params: { user_id: 1 }, data: { user_profile: { id: 1, name: "pushed" }, user_orders: [] } }]);
    assert.equal(user.read().data?.user_profile.name, "pushed");
    assert.equal(user.changes(), changes + 1);
  });
});

describe("mutations", () => {
  it("go idle → pending → success, and report only the latest call", async () => {
    const controller = new MutationController(callUpdateProfile);
    const seen: string[] = [];
    controller.subscribe(() => seen.push(controller.getSnapshot().status));
    assert.equal(controller.getSnapshot().status, "idle");
    server.holding = true;
    const first = controller.mutateAsync({ user_id: 1, name: "first" });
    const second = controller.mutateAsync({ user_id: 1, name: "second" });
    await until(() => server.held.length === 2, "both calls");
    server.held[1]!.release();
    await second;
    server.releaseAll();
    await first;
    assert.equal(controller.getSnapshot().data?.name, "second");
    assert.deepEqual(seen, ["pending", "success"]);
  });

  it("report a failed call as a MizanError; mutate() does not throw; reset() goes back to idle", async () => {
    const controller = new MutationController(callUpdateProfile);
    controller.mutate({ user_id: 1, name: "  " });
    await until(() => controller.getSnapshot().status === "error", "the failure");
    const { error } = controller.getSnapshot();
    assert.ok(error instanceof MizanError);
    assert.equal(error.status, 400);
    assert.equal(error.code, "bad_request");
    await assert.rejects(controller.mutateAsync({ user_id: 1, name: "" }), MizanError);
    controller.reset();
    assert.deepEqual({ ...controller.getSnapshot() }, { status: "idle", data: undefined, error: null });
  });
});

describe("TanStack Query options", () => {
  it("carry canonical keys that invalidation targets match", async () => {
    const options = userQueryOptions({ user_id: 1 });
    assert.deepEqual(options.queryKey, ["mizan", "user", { user_id: "1" }]);
    assert.equal((await options.queryFn()).user_profile.name, "alice");
    assert.ok(invalidatesQueryKey(["user"], options.queryKey));
    assert.ok(invalidatesQueryKey([{ context: "user", params: { user_id: 1 } }], options.queryKey));
    assert.ok(!invalidatesQueryKey([{ context: "user", params: { user_id: 2 } }], options.queryKey));
    assert.ok(!invalidatesQueryKey(["catalog"], options.queryKey));
    assert.ok(!invalidatesQueryKey(["user"], ["todos", "user"]));
    const mutation = updateProfileMutationOptions();
    assert.deepEqual(mutation.mutationKey, ["mizan", "update_profile"]);
    assert.equal((await mutation.mutationFn({ user_id: 1, name: "alicia" })).name, "alicia");
  });
});
