// The generated Svelte stores over the store, against a fake server (a fake `fetch`): a query
// store observes its instance while subscribed, a call store reports its state, and a call's
// invalidation refetches only the affected instance.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { get } from "svelte/store";

import { configure, MizanError, MizanStore } from "../../target/ts-client/index.js";
import type { QuerySnapshot, UserBundle } from "../../target/ts-client/index.js";
import {
  createCatalogItemsQuery,
  createUpdateProfileMutation,
  createUserQuery,
} from "../../target/ts-client/svelte.js";
import { FakeServer, settle, until } from "./fake.js";

let server: FakeServer;
let store: MizanStore;

beforeEach(() => {
  server = new FakeServer();
  configure({ baseUrl: "http://mizan.test", fetch: server.fetch });
  store = new MizanStore();
});

describe("Svelte stores", () => {
  it("a query store fetches while subscribed and follows invalidations", async () => {
    server.invalidate = [{ context: "user", params: { user_id: 1 } }];
    const user = createUserQuery({ user_id: 1 }, store);
    const catalog = createCatalogItemsQuery({}, store);
    assert.equal(server.requests.length, 0, "nothing is fetched before a subscriber");
    let latest: QuerySnapshot<UserBundle> | undefined;
    const stopUser = user.subscribe((value) => (latest = value));
    const stopCatalog = catalog.subscribe(() => {});
    await until(() => latest?.status === "success" && get(catalog).status === "success", "both stores");
    assert.equal(latest?.data?.user_profile.name, "alice");
    assert.deepEqual(get(catalog).data, [{ id: 1, name: "Lamp" }]);

    const rename = createUpdateProfileMutation();
    assert.equal(get(rename).status, "idle");
    await rename.mutateAsync({ user_id: 1, name: "alicia" });
    assert.equal(get(rename).status, "success");
    assert.equal(latest?.data?.user_profile.name, "alicia");
    assert.equal(server.count("GET ctx/user/"), 2);
    assert.equal(server.count("GET ctx/catalog/"), 1, "the catalog is not affected");

    stopUser();
    stopCatalog();
    await store.invalidate(["user", "catalog"]);
    await settle();
    assert.equal(server.count("GET ctx/"), 3, "no refetch without subscribers");
  });

  it("a call store reports a failure as a MizanError", async () => {
    const rename = createUpdateProfileMutation();
    rename.mutate({ user_id: 1, name: "" });
    await until(() => get(rename).status === "error", "the failure");
    const { error } = get(rename);
    assert.ok(error instanceof MizanError);
    assert.equal(error.status, 400);
    rename.reset();
    assert.equal(get(rename).status, "idle");
  });
});
