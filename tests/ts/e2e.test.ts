// Drives the running demo through the generated client (MIZAN_E2E_URL), after `tsc --strict`
// has type-checked both. The `@ts-expect-error` lines are type tests: if the generated types
// stopped rejecting them, compilation would fail.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { parse } from "@bgotink/kdl";
import { before, describe, it } from "node:test";

import {
  callAddItem,
  callAdminAction,
  callAttachFiles,
  callContact,
  callPlaceOrder,
  callUploadAvatar,
  formContact,
  formPlaceOrder,
  issuesByPath,
  validateContact,
  validatePlaceOrder,
  callEcho,
  callLogin,
  callLogout,
  callSecret,
  callUpdateName,
  callUpdateProfile,
  configure,
  fetchUser,
  matches,
  MizanError,
  parseJson,
  subscribeCatalog,
  subscribeNotes,
  subscribeUser,
} from "../../target/ts-client/index.js";
import type { Profile, UserBundle, Int64 } from "../../target/ts-client/index.js";
import { rejection, until as pollUntil } from "./helpers.js";

const baseUrl = process.env.MIZAN_E2E_URL ?? "http://127.0.0.1:8000";
let token: string | null = null;

/** Polls briefly, for at most 2 s (subscriptions refetch asynchronously). */
const until = (predicate: () => boolean, what: string) => pollUntil(predicate, what, { withinMs: 2000 });

async function expectError(promise: Promise<unknown>, status: number, code: string): Promise<MizanError> {
  const error = await rejection(promise, `a ${status} ${code}`);
  assert.equal(error.status, status);
  assert.equal(error.code, code);
  return error;
}

before(() => configure({ baseUrl, getToken: () => token }));

describe("calls and fetches", () => {
  it("calls a standalone function", async () => {
    const echoed: string = await callEcho({ message: "hello" });
    assert.equal(echoed, "hello");
    // @ts-expect-error: `message` is a string
    void (() => callEcho({ message: 5 }));
    // @ts-expect-error: `message` is required
    void (() => callEcho({}));
  });

  it("fetches a context bundle, typed", async () => {
    const bundle: UserBundle = await fetchUser({ user_id: 1 });
    const profile: Profile = bundle.user_profile;
    const id: Int64 = profile.id;
    assert.equal(id, 1);
    assert.equal(profile.email, "alice@company.com");
    assert.deepEqual(
      bundle.user_orders.map((order) => order.total),
      [250, 75],
    );
    // @ts-expect-error: `user_id` is required
    void (() => fetchUser({}));
  });
});

describe("invalidation", () => {
  it("refetches exactly the subscriptions a mutation makes stale", async () => {
    const seen = { user1: 0, user2: 0, notes: 0, catalog: 0 };
    let user1: UserBundle | null = null;
    let catalogSize = 0;
    const subscriptions = [
      subscribeUser({ user_id: 1 }, (bundle) => {
        seen.user1++;
        user1 = bundle;
      }),
      subscribeUser({ user_id: 2 }, () => void seen.user2++),
      subscribeNotes({ folder: "inbox" }, () => void seen.notes++),
      subscribeCatalog({}, (bundle) => {
        seen.catalog++;
        catalogSize = bundle.catalog_items.length;
      }),
    ];
    await until(() => Object.values(seen).every((n) => n === 1), "the first fetches");

    // Scoped by user_id: only user 1's subscription refetches.
    const updated = await callUpdateProfile({ user_id: 1, name: "Alicia" });
    assert.equal(updated.name, "Alicia");
    await until(() => seen.user1 === 2, "user 1 refetched");
    assert.equal((user1 as UserBundle | null)?.user_profile.name, "Alicia");
    assert.deepEqual(seen, { user1: 2, user2: 1, notes: 1, catalog: 1 });

    // Function-level, scoped: user 2's subscription only.
    await callUpdateName({ user_id: 2, name: "Robert" });
    await until(() => seen.user2 === 2, "user 2 refetched");
    assert.deepEqual(seen, { user1: 2, user2: 2, notes: 1, catalog: 1 });

    // Broad: every catalog subscription, nothing else.
    await callAddItem({ name: "Doohickey" });
    await until(() => seen.catalog === 2, "catalog refetched");
    assert.equal(catalogSize, 3);
    assert.deepEqual(seen, { user1: 2, user2: 2, notes: 1, catalog: 2 });

    subscriptions.forEach((s) => s.unsubscribe());
    await callUpdateProfile({ user_id: 1, name: "Alice" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(seen.user1, 2, "no refetch after unsubscribe");
  });

  it("matches targets the way the protocol says", () => {
    const user5 = { context: "user", params: { user_id: 5 } };
    assert.ok(matches("user", user5));
    assert.ok(matches({ context: "user", params: { user_id: 5 } }, user5));
    assert.ok(matches({ context: "user", params: { user_id: "5" } }, user5), "header values are strings");
    assert.ok(!matches({ context: "user", params: { user_id: 6 } }, user5));
    assert.ok(matches({ context: "user", function: "user_profile", params: { user_id: 5 } }, user5));
    assert.ok(!matches("notes", user5));
  });
});

describe("typed errors", () => {
  it("400 bad_request with details", async () => {
    const error = await expectError(callUpdateProfile({ user_id: 1, name: "" }), 400, "bad_request");
    assert.deepEqual(error.details, { fields: { name: "1 to 64 characters" } });
  });

  it("401 unauthenticated without a token", async () => {
    token = null;
    await expectError(callSecret(), 401, "unauthenticated");
  });

  it("403 forbidden for a user who is not staff", async () => {
    const tokens = await callLogin({ username: "bob", password: "bob" });
    token = tokens.access;
    await expectError(callAdminAction(), 403, "forbidden");
    const secret = await callSecret();
    assert.deepEqual(secret, { secret: "the cake is a lie", for: "2" });
    token = null;
  });
});

describe("64-bit integers", () => {
  it("are refused rather than rounded when a JavaScript number cannot hold them", () => {
    assert.deepEqual(parseJson('{"id": 9007199254740991, "x": 0.12345678901234567}'), {
      id: 9007199254740991,
      x: 0.12345678901234567,
    });
    assert.deepEqual(parseJson('{"s": "12345678901234567890"}'), { s: "12345678901234567890" });
    assert.throws(
      () => parseJson('{"id": 9007199254740993}'),
      (e: unknown) => e instanceof MizanError && e.code === "precision_loss",
    );
  });
});

describe("the IR", () => {
  it("parses with an independent KDL v2 parser and lists only public functions", async () => {
    const response = await fetch(`${baseUrl}/api/mizan/schema/`);
    assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    const document = parse(await response.text());
    assert.equal(document.nodes[0]?.getName(), "mizan-ir");
    const functions = document.nodes.filter((node) => node.getName() === "function");
    const names = functions.map((node) => node.getArgument(0));
    assert.ok(names.includes("update_profile") && names.includes("user_profile"));
    assert.ok(!names.includes("stripe_webhook"), "private functions are absent");
    assert.ok(!names.includes("profile_page"), "view-path functions are absent");
    const update = functions.find((node) => node.getArgument(0) === "update_profile");
    assert.equal(update?.getProperty("kind"), "mutation");
  });
});

describe("uploads", () => {
  const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

  it("sends File and Blob arguments as multipart, and the bytes arrive unchanged", async () => {
    const first = new Uint8Array(randomBytes(200_000));
    const second = new Uint8Array(randomBytes(3));
    const files = await callAttachFiles({
      files: [new File([first], "../photo.png", { type: "image/png" }), new Blob([second])],
    });
    assert.deepEqual(files, [
      { file_name: "photo.png", size: first.length, sha256: sha256(first) },
      { file_name: "f1", size: second.length, sha256: sha256(second) },
    ]);
    // @ts-expect-error: an upload argument takes a File or Blob, not a string
    void (() => callAttachFiles({ files: ["not a file"] }));
  });

  it("keeps guards and limits on a multipart call", async () => {
    token = null;
    const avatar = new Blob([new Uint8Array([1, 2, 3])]);
    await expectError(callUploadAvatar({ user_id: 2, avatar }), 401, "unauthenticated");
    token = (await callLogin({ username: "bob", password: "bob" })).access;
    const info = await callUploadAvatar({ user_id: 2, avatar });
    assert.equal(info.size, 3);
    const tooBig = new Blob([new Uint8Array(1024 * 1024 + 1)]);
    const error = await expectError(callUploadAvatar({ user_id: 2, avatar: tooBig }), 413, "payload_too_large");
    assert.deepEqual(error.details, { limit: "file", max: 1024 * 1024 });
    token = null;
  });
});

describe("forms", () => {
  it("draws, validates and submits the contact form", async () => {
    token = null;
    const schema = await formContact();
    assert.deepEqual(
      schema.fields.map((field) => field.name),
      ["name", "email", "topic", "message"],
    );
    assert.equal(schema.fields[0]?.constraints["max_length"], 100);
    const bad = await validateContact({ name: "", email: "ann@", topic: "jobs", message: 5 });
    assert.equal(bad.valid, false);
    assert.deepEqual(Object.keys(issuesByPath(bad.issues)), ["name", "email", "topic", "message"]);
    const good = { name: "Ann", email: "ann@example.com", topic: "support" as const, message: "hi" };
    assert.deepEqual(await validateContact(good), { valid: true, issues: [] });
    const refused = await expectError(callContact({ ...good, message: "spam!" }), 400, "bad_request");
    assert.deepEqual(issuesByPath(refused.issues), { "": ["this message looks like spam"] });
    const created = await callContact(good);
    assert.ok(created.id >= 1);
    // @ts-expect-error: the topic is one of the choices
    void (() => callContact({ ...good, topic: "jobs" }));
  });

  it("validates and submits the place_order formset", async () => {
    token = (await callLogin({ username: "bob", password: "bob" })).access;
    const schema = await formPlaceOrder();
    assert.equal(schema.formset?.max_num, 20);
    const checked = await validatePlaceOrder({ forms: [{ sku: "ABC-12", qty: 1 }, { sku: "x", qty: 0, _delete: true }] });
    assert.deepEqual(issuesByPath(checked.issues), { "forms.0.sku": ["this value does not have the expected format"] });
    const placed = await callPlaceOrder({ user_id: 2, lines: { forms: [{ sku: "ABC-123", qty: 2 }] } });
    assert.deepEqual(placed, { lines: 1, total_qty: 2 });
    token = null;
  });
});

describe("cookie sessions", () => {
  it("logs in with cookies and sends the CSRF token by itself", async () => {
    // Node's fetch keeps no cookies: a tiny jar stands in for the browser's.
    const jar = new Map<string, string>();
    const jarFetch: typeof fetch = async (input, init) => {
      const headers = new Headers(init?.headers);
      if (jar.size > 0) headers.set("cookie", [...jar].map(([name, value]) => `${name}=${value}`).join("; "));
      const response = await fetch(input, { ...init, headers });
      for (const line of response.headers.getSetCookie()) {
        const pair = line.split(";")[0] ?? "";
        const [name = "", value = ""] = pair.split("=");
        if (/Max-Age=0/i.test(line)) jar.delete(name);
        else jar.set(name, value);
      }
      return response;
    };
    token = null;
    configure({ baseUrl, credentials: "include", fetch: jarFetch });
    try {
      await callLogin({ username: "alice", password: "alice" });
      assert.ok(jar.has("mizan_access") && jar.has("mizan_refresh"), "HttpOnly token cookies");
      // An unsafe call by cookie needs the CSRF token: the client fetches and sends it.
      const secret = (await callSecret()) as { for: string };
      assert.equal(secret.for, "1");
      await callLogout();
      assert.ok(!jar.has("mizan_access"), "logout clears the cookies");
      await expectError(callSecret(), 401, "unauthenticated");
    } finally {
      configure({ baseUrl, getToken: () => token });
    }
  });
});
