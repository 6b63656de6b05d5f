// The generated React hooks rendered on the server (react-dom/server), against a fake server
// (a fake `fetch`): `useMizan()` without a provider fails with a clear error, a store hydrated
// with initial data renders it without a request, and a render never fetches by itself. The
// hooks in a browser (fetching, refetching after calls, StrictMode) are driven in Chromium by
// browser.test.ts.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { createElement } from "react";
import { renderToString } from "react-dom/server";

import { configure, MizanStore } from "../../target/ts-client/index.js";
import { MizanProvider, useUpdateProfile, useUserProfile } from "../../target/ts-client/react.js";
import { FakeServer, settle } from "./fake.js";

let server: FakeServer;

beforeEach(() => {
  server = new FakeServer();
  configure({ baseUrl: "http://mizan.test", fetch: server.fetch });
});

function Profile({ userId }: { userId: number }) {
  const { data, status } = useUserProfile({ user_id: userId });
  const rename = useUpdateProfile();
  return createElement("p", null, `${status}:${data?.name ?? "-"}:${rename.status}`);
}

describe("React hooks", () => {
  it("useMizan() without a <MizanProvider> throws a clear error", () => {
    assert.throws(() => renderToString(createElement(Profile, { userId: 1 })), /no <MizanProvider> above this component/);
  });

  it("render hydrated data without a request", async () => {
    const store = new MizanStore({
      initialData: [{ context: "user", params: { user_id: 1 }, data: { user_profile: { id: 1, name: "alice" }, user_orders: [] } }],
    });
    const html = renderToString(createElement(MizanProvider, { store }, createElement(Profile, { userId: 1 })));
    assert.equal(html, "<p>success:alice:idle</p>");
    await settle();
    assert.deepEqual(server.requests, []);
  });

  it("render the pending state without data, and fetch nothing while rendering", async () => {
    const html = renderToString(createElement(MizanProvider, null, createElement(Profile, { userId: 2 })));
    assert.equal(html, "<p>pending:-:idle</p>");
    await settle();
    assert.deepEqual(server.requests, []);
  });
});
