// The generated React hooks rendered on the server (react-dom/server), against a fake server
// (a fake `fetch`): `useMizan()` without a provider fails with a clear error, a store hydrated
// with initial data renders it without a request, and a render never fetches by itself. The
// hooks in a browser (fetching, refetching after calls, StrictMode) are driven in Chromium by
// browser.test.ts.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
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

describe("the documented components", () => {
  // examples/web/src/snippets/*.tsx hold them verbatim, under the type check of the web build.
  for (const [doc, snippet] of [
    ["README.md", "readme.tsx"],
    ["docs/FRONTEND.md", "frontend.tsx"],
  ] as const) {
    it(`${doc} shows examples/web/src/snippets/${snippet}`, () => {
      const text = readFileSync(`../../${doc}`, "utf8");
      const blocks = [...text.matchAll(/```tsx\n([\s\S]*?)```/g)].map((match) => match[1]);
      const code = readFileSync(`../../examples/web/src/snippets/${snippet}`, "utf8")
        .replace(/^(\/\/.*\n)+/, "") // the leading comment
        .replaceAll('"../api', '"./api'); // the documents import from ./api
      assert.ok(blocks.includes(code), `${doc} has no tsx block equal to the snippet:\n${code}`);
    });
  }
});
