// The generated Vue composables over the store, against a fake server (a fake `fetch`): they
// follow a ref of params, show calls' invalidations, and release their instance when their
// scope ends. An app context (`app.runWithContext`) stands in for a component's setup.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { createApp, effectScope, nextTick, ref } from "vue";
import type { EffectScope } from "vue";

import { configure, MizanError, MizanStore } from "../../target/ts-client/index.js";
import { createMizan, useMizan, useUpdateProfile, useUser, useUserProfile } from "../../target/ts-client/vue.js";
import { FakeServer, settle, until } from "./fake.js";

let server: FakeServer;
let store: MizanStore;
let scope: EffectScope;

/** Runs `setup` as a component's setup would: inside the app (for `inject`) and an effect scope
 * (stopped after the test, as an unmounted component's). */
function setup<T>(run: () => T): T {
  const app = createApp({}).use(createMizan(store));
  const result = app.runWithContext(() => scope.run(run));
  assert.ok(result !== undefined);
  return result;
}

beforeEach(() => {
  server = new FakeServer();
  configure({ baseUrl: "http://mizan.test", fetch: server.fetch });
  store = new MizanStore();
  scope = effectScope();
});

afterEach(() => scope.stop());

describe("Vue composables", () => {
  it("useMizan() outside an app with a Mizan store throws a clear error", () => {
    assert.throws(() => useMizan(), /no Mizan store here.*app\.use\(createMizan\(\)\)/);
    assert.throws(() => createApp({}).runWithContext(() => useUser({ user_id: 1 })), /no Mizan store here/);
  });

  it("a context composable gives refs that follow the instance and its params", async () => {
    const userId = ref(1);
    const user = setup(() => useUser(() => ({ user_id: userId.value })));
    assert.equal(user.status.value, "pending");
    await until(() => user.status.value === "success", "user 1");
    assert.equal(user.data.value?.user_profile.name, "alice");
    userId.value = 2;
    await until(() => user.data.value?.user_profile.name === "bob", "user 2");
    assert.deepEqual(server.requests, ["GET ctx/user/?user_id=1", "GET ctx/user/?user_id=2"]);
  });

  it("a call composable reports its state, and its invalidation refetches only the affected instance", async () => {
    server.invalidate = [{ context: "user", params: { user_id: 1 } }];
    const { profile, other, rename } = setup(() => ({
      profile: useUserProfile({ user_id: 1 }),
      other: useUserProfile({ user_id: 2 }),
      rename: useUpdateProfile(),
    }));
    await until(() => profile.status.value === "success" && other.status.value === "success", "both profiles");
    assert.equal(rename.status.value, "idle");
    const result = await rename.mutateAsync({ user_id: 1, name: "alicia" });
    assert.equal(result.name, "alicia");
    assert.equal(rename.status.value, "success");
    assert.equal(profile.data.value?.name, "alicia", "refetched before mutateAsync resolved");
    assert.equal(server.count("GET ctx/user/?user_id=1"), 2);
    assert.equal(server.count("GET ctx/user/?user_id=2"), 1);
    rename.mutate({ user_id: 1, name: " " });
    await until(() => rename.status.value === "error", "the failed rename");
    assert.ok(rename.error.value instanceof MizanError);
    assert.equal(rename.error.value.code, "bad_request");
  });

  it("releases its instance when its scope ends: no refetch for it afterwards", async () => {
    const user = setup(() => useUser({ user_id: 1 }));
    await until(() => user.status.value === "success", "the bundle");
    scope.stop();
    await nextTick();
    await store.invalidate(["user"]);
    await settle();
    assert.equal(server.count("GET ctx/user/"), 1);
  });
});
