// The demo's server-rendered profile page in Debian's Chromium: hydration from the props island
// (no second fetch) and a rename in place, the island's escaping on the client-rendered fallback,
// and a cookie login followed by a rename through the plain view form (CSRF token in its field).
// A small Node server serves the example app's `/assets/` (WEB_DIST) and forwards everything
// else to a demo: MIZAN_E2E_URL (SSR on) or MIZAN_E2E_FALLBACK_URL (MIZAN_SSR=off).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, normalize, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";

import { launchChromium } from "./chromium.js";
import { forwardTo } from "./proxy.js";

const dist = resolve(process.env.WEB_DIST ?? "../../examples/web/dist");

/** Serves `/assets/` from `dist` and forwards every other path to `upstream`. */
function serve(upstream: URL): Promise<Server> {
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url.startsWith("/assets/")) {
      const path = normalize(join(dist, new URL(url, "http://x").pathname));
      if (!path.startsWith(dist) || !statSync(path, { throwIfNoEntry: false })?.isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      res.end(readFileSync(path));
      return;
    }
    forwardTo(upstream, req, res);
  });
  return new Promise((ready) => server.listen(0, "127.0.0.1", () => ready(server)));
}

const origin = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

let ssr: Server;
let fallback: Server;
const contexts: BrowserContext[] = [];
const dirs: string[] = [];
/** Console errors and uncaught exceptions of every page. */
const problems: string[] = [];
/** `METHOD path?query` of every API request the pages sent. */
const requests: string[] = [];

/** A fresh browser; its console errors count as problems unless `quiet` (a page that is meant
 * to show a refused request). */
async function browser(options: { javaScriptEnabled?: boolean } = {}, quiet = false): Promise<Page> {
  const dir = mkdtempSync(join(tmpdir(), "mizan-chromium-"));
  dirs.push(dir);
  const context = await launchChromium(dir, options);
  contexts.push(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  if (!quiet) {
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  }
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.pathname.startsWith("/api/mizan/")) requests.push(`${request.method()} ${url.pathname.slice(11)}${url.search}`);
  });
  return page;
}

/** Renames a user through a demo's API (as another client would). */
async function rename(server: Server, userId: number, name: string): Promise<void> {
  const response = await fetch(`${origin(server)}/api/mizan/call/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ fn: "update_profile", args: { user_id: userId, name } }),
  });
  assert.equal(response.status, 200, await response.text());
}

before(async () => {
  ssr = await serve(new URL(process.env.MIZAN_E2E_URL ?? "http://127.0.0.1:8000"));
  fallback = await serve(new URL(process.env.MIZAN_E2E_FALLBACK_URL ?? process.env.MIZAN_E2E_URL ?? "http://127.0.0.1:8000"));
});

after(async () => {
  for (const context of contexts) await context.close();
  ssr?.close();
  fallback?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("the server-rendered profile page in Chromium", () => {
  it("hydrates from its island without a fetch, then renames in place without a reload", async () => {
    const page = await browser();
    requests.length = 0;
    await page.goto(`${origin(ssr)}/profile/1/`);
    assert.equal(await page.getAttribute("#root", "data-mizan-render"), "server", "server-rendered");
    await page.waitForSelector("body[data-hydrated=true]");
    assert.deepEqual(requests.filter((r) => r.startsWith("GET ctx/")), [], "no second fetch");
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const name = `Hydrated ${Date.now() % 100000}`;
    await page.fill("input[name=name]", name);
    await page.click("button");
    await page.waitForFunction((expected) => document.querySelector("h1")?.textContent === expected, name);
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, "no reload");
    assert.deepEqual(requests.filter((r) => r.startsWith("POST") || r.startsWith("GET ctx/")), [
      "POST call/",
      "GET ctx/user/?user_id=1",
    ]);
  });

  it("renders the fallback page from escaped props: nothing in them runs", async () => {
    const hostile = "</script><script>window.pwned=1</script><!--\u2028x";
    await rename(fallback, 3, hostile);
    const page = await browser();
    await page.goto(`${origin(fallback)}/profile/3/`);
    assert.equal(await page.getAttribute("#root", "data-mizan-render"), "client", "SSR is off here");
    await page.waitForSelector("body[data-hydrated=true]");
    assert.equal(await page.textContent("h1"), hostile, "the props arrive intact, as text");
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
    assert.equal(await page.locator("script").count(), 2, "only the island and the client bundle");
  });

  it("logs in with cookies and renames through the plain view form with its CSRF field", async () => {
    const page = await browser({ javaScriptEnabled: false }, true);
    const login = await page.request.post(`${origin(ssr)}/api/mizan/call/`, {
      data: { fn: "login", args: { username: "bob", password: "bob" } },
    });
    assert.equal(login.status(), 200);
    const cookies = await page.context().cookies();
    const access = cookies.find((cookie) => cookie.name === "mizan_access");
    assert.ok(access?.httpOnly && access.sameSite === "Lax", "an HttpOnly, SameSite=Lax cookie");
    await page.goto(`${origin(ssr)}/profile/2/`);
    assert.equal(await page.locator("input[name=csrfmiddlewaretoken]").count(), 1);
    const name = `Cookie Bob ${Date.now() % 100000}`;
    await page.fill("input[name=name]", name);
    await Promise.all([page.waitForURL(`${origin(ssr)}/profile/2/`), page.click("button")]);
    assert.equal(await page.textContent("h1"), name, "renamed, back on the profile (303)");

    // Without the token, the same cookie-authenticated post is refused.
    await page.evaluate(() => document.querySelector("input[name=csrfmiddlewaretoken]")?.remove());
    const [refused] = await Promise.all([
      page.waitForResponse((response) => response.url().endsWith("/profile/2/update/")),
      page.click("button"),
    ]);
    assert.equal(refused.status(), 403);
  });

  it("logged no console error and threw nothing", () => {
    assert.deepEqual(problems, []);
  });
});
