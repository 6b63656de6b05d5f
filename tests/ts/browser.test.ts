// The example web app (examples/web, React over the generated hooks) in Debian's Chromium,
// against the running demo (MIZAN_E2E_URL). A small Node server serves the built app
// (WEB_DIST) and forwards `/api/` to the demo, WebSocket upgrades included, so the page and the
// API share one origin (the demo sends no CORS headers). Over HTTP first; then two tabs of the
// app over the socket (`?transport=ws`), where a change made in one shows in the other without
// a reload. Every wait is on a condition, never a fixed sleep.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, ConsoleMessage, Page } from "playwright-core";

import { launchChromium } from "./chromium.js";
import { until as pollUntil } from "./helpers.js";
import { forwardTo, forwardUpgrade } from "./proxy.js";

const demo = new URL(process.env.MIZAN_E2E_URL ?? "http://127.0.0.1:8000");
const dist = resolve(process.env.WEB_DIST ?? "../../examples/web/dist");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** Serves `dist` (index.html for unknown paths) and forwards `/api/` to the demo. */
function serve(): Promise<Server> {
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url.startsWith("/api/")) {
      forwardTo(demo, req, res);
      return;
    }
    const path = normalize(join(dist, decodeURIComponent(new URL(url, "http://x").pathname)));
    const file = path.startsWith(dist) && statSync(path, { throwIfNoEntry: false })?.isFile() ? path : join(dist, "index.html");
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  server.on("upgrade", (req, socket, head) => {
    if ((req.url ?? "").startsWith("/api/")) forwardUpgrade(demo, req, socket, head);
    else socket.destroy();
  });
  return new Promise((ready) => server.listen(0, "127.0.0.1", () => ready(server)));
}

/** Resolves once `predicate` holds, checking every 20 ms for at most 10 s. */
const until = (predicate: () => boolean, what: string) => pollUntil(predicate, what, { everyMs: 20 });

let server: Server;
let origin: string;
let context: BrowserContext;
let page: Page;
let profileDir: string;
/** Context requests the page sent, as `ctx/user/?user_id=1`. */
const fetched: string[] = [];
/** Console errors and uncaught exceptions of the page. */
const problems: string[] = [];
/** Requests the page is expected to fail (status >= 400), as `POST call/`. */
const failedCalls: string[] = [];

const count = (path: string) => fetched.filter((p) => p === path).length;
const counts = () => ({
  user1: count("ctx/user/?user_id=1"),
  user2: count("ctx/user/?user_id=2"),
  catalog: count("ctx/catalog/"),
  other: fetched.filter((p) => !/^ctx\/(user\/\?user_id=[12]|catalog\/)$/.test(p)).length,
});

before(async () => {
  server = await serve();
  profileDir = mkdtempSync(join(tmpdir(), "mizan-chromium-"));
  context = await launchChromium(profileDir);
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.pathname.startsWith("/api/mizan/ctx/")) fetched.push(url.pathname.slice("/api/mizan/".length) + url.search);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) failedCalls.push(`${response.request().method()} ${new URL(response.url()).pathname}`);
  });
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await page.goto(`${origin}/`);
});

after(async () => {
  await context?.close();
  server?.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

const suffix = String(Date.now() % 100000);

describe("the example web app in Chromium", () => {
  it("renders the profile and the catalog, one request each under StrictMode", async () => {
    await page.getByTestId("profile").getByRole("heading", { name: "alice" }).waitFor();
    await page.getByTestId("catalog").getByText("Widget").waitFor();
    await page.getByTestId("orders").getByText("2 orders").waitFor();
    assert.deepEqual(counts(), { user1: 1, user2: 0, catalog: 1, other: 0 });
  });

  it("a rename refetches exactly the renamed user's instance, not the catalog", async () => {
    const name = `Alicia ${suffix}`;
    await page.getByLabel("New name").fill(name);
    await page.getByRole("button", { name: "Rename" }).click();
    // The call resolves once its invalidations are applied: the refetch has been sent by then.
    await page.getByTestId("renamed").getByText(`Renamed to ${name}`).waitFor();
    await page.getByTestId("profile").getByRole("heading", { name }).waitFor();
    assert.deepEqual(counts(), { user1: 2, user2: 0, catalog: 1, other: 0 });
  });

  it("adding an item refetches the catalog only", async () => {
    const item = `Desk ${suffix}`;
    await page.getByLabel("Item name").fill(item);
    await page.getByRole("button", { name: "Add" }).click();
    await page.getByTestId("added").getByText(`Added ${item}`).waitFor();
    await page.getByTestId("catalog").getByText(item).waitFor();
    assert.deepEqual(counts(), { user1: 2, user2: 0, catalog: 2, other: 0 });
  });

  it("another user is fetched once and renamed alone; the first one comes back from the cache", async () => {
    await page.getByRole("button", { name: "User 2" }).click();
    await page.getByTestId("profile").getByRole("heading", { name: "bob" }).waitFor();
    await until(() => count("ctx/user/?user_id=2") === 1, "user 2's bundle");
    const name = `Robert ${suffix}`;
    await page.getByLabel("New name").fill(name);
    await page.getByRole("button", { name: "Rename" }).click();
    await page.getByTestId("profile").getByRole("heading", { name }).waitFor();
    await page.getByTestId("renamed").getByText(`Renamed to ${name}`).waitFor();
    assert.deepEqual(counts(), { user1: 2, user2: 2, catalog: 2, other: 0 });
    await page.getByRole("button", { name: "User 1" }).click();
    await page.getByTestId("profile").getByRole("heading", { name: `Alicia ${suffix}` }).waitFor();
  });

  it("failed calls render a typed MizanError and refetch nothing", async () => {
    await page.getByLabel("New name").fill("   ");
    await page.getByRole("button", { name: "Rename" }).click();
    await page
      .getByTestId("rename")
      .getByRole("alert")
      .getByText("MizanError 400 bad_request: name must be 1 to 64 characters")
      .waitFor();
    await page.getByRole("button", { name: "Read the secret" }).click();
    await page.getByTestId("secret").getByRole("alert").getByText("MizanError 401 unauthenticated:").waitFor();
    await until(() => failedCalls.length === 2, "the two failed calls");
    assert.deepEqual(failedCalls, ["POST /api/mizan/call/", "POST /api/mizan/call/"]);
    // User 1 came back from the cache (nothing had invalidated it): still two fetches.
    assert.deepEqual(counts(), { user1: 2, user2: 2, catalog: 2, other: 0 });
  });

  it("logged no console error and threw nothing", () => {
    // Chromium logs every HTTP error answer as a console error: exactly the two failed calls
    // above may appear, nothing else.
    const failedCall = (status: string) =>
      `console: Failed to load resource: the server responded with a status of ${status} (${origin}/api/mizan/call/)`;
    assert.deepEqual(problems, [failedCall("400 (Bad Request)"), failedCall("401 (Unauthorized)")]);
  });
});

describe("live updates over the socket, in two tabs", () => {
  /** A tab of the app over the socket, with what it does over HTTP and over sockets recorded. */
  async function openLiveTab() {
    const tab = await context.newPage();
    tab.setDefaultTimeout(10_000);
    const record = { overHttp: [] as string[], sockets: [] as string[], problems: [] as string[] };
    tab.on("request", (request) => {
      const url = new URL(request.url());
      if (url.pathname.startsWith("/api/") && request.resourceType() !== "websocket") record.overHttp.push(url.pathname);
    });
    tab.on("websocket", (socket) => record.sockets.push(new URL(socket.url()).pathname));
    tab.on("console", (message: ConsoleMessage) => {
      if (message.type() === "error") record.problems.push(`console: ${message.text()}`);
    });
    tab.on("pageerror", (error) => record.problems.push(`uncaught: ${error.message}`));
    await tab.goto(`${origin}/?transport=ws`);
    await tab.getByTestId("transport").getByText("Live over the socket: open").waitFor();
    // Marks this document: a reload would lose the mark.
    await tab.evaluate(() => ((window as unknown as { mark: string }).mark = "no reload"));
    return { tab, record };
  }

  const noReload = (tab: Page) => tab.evaluate(() => (window as unknown as { mark?: string }).mark);

  it("a rename in one tab shows in the other, and so does a new catalog item", async () => {
    const a = await openLiveTab();
    const b = await openLiveTab();
    try {
      for (const { tab } of [a, b]) {
        await tab.getByTestId("profile").getByRole("heading", { name: `Alicia ${suffix}` }).waitFor();
        await tab.getByTestId("catalog").getByText(`Desk ${suffix}`).waitFor();
      }
      const name = `Ali live ${suffix}`;
      await b.tab.getByLabel("New name").fill(name);
      await b.tab.getByRole("button", { name: "Rename" }).click();
      await b.tab.getByTestId("renamed").getByText(`Renamed to ${name}`).waitFor();
      // Tab A did nothing: the server pushed the invalidation, and A refetched over the socket.
      await a.tab.getByTestId("profile").getByRole("heading", { name }).waitFor();

      const item = `Lamp live ${suffix}`;
      await a.tab.getByLabel("Item name").fill(item);
      await a.tab.getByRole("button", { name: "Add" }).click();
      await b.tab.getByTestId("catalog").getByText(item).waitFor();

      for (const { tab, record } of [a, b]) {
        assert.equal(await noReload(tab), "no reload");
        assert.deepEqual(record.sockets, ["/api/mizan/ws/"], "one socket per tab");
        assert.deepEqual(record.overHttp, [], "calls and fetches over the socket");
        assert.deepEqual(record.problems, []);
      }
    } finally {
      await a.tab.close();
      await b.tab.close();
    }
  });

  it("a change made over HTTP by another client shows too", async () => {
    const a = await openLiveTab();
    try {
      await a.tab.getByTestId("catalog").getByText(`Lamp live ${suffix}`).waitFor();
      const item = `Chair http ${suffix}`;
      const response = await fetch(`${demo.origin}/api/mizan/call/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ fn: "add_item", args: { name: item } }),
      });
      assert.equal(response.status, 200);
      await a.tab.getByTestId("catalog").getByText(item).waitFor();
      assert.equal(await noReload(a.tab), "no reload");
    } finally {
      await a.tab.close();
    }
  });
});
