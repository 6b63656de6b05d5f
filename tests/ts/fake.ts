// A fake Mizan server behind a fake `fetch`, for the store and binding unit tests: it records
// every request, answers bundles and calls from small in-memory data, and can hold answers back
// to test what happens while a request is in flight.
import type { InvalidationTarget } from "../../target/ts-client/index.js";

export interface Held {
  path: string;
  release(): void;
}

export class FakeServer {
  /** Every request, as `GET ctx/user/?user_id=1` or `POST call/ update_profile`. */
  readonly requests: string[] = [];
  /** Names by user id; a bundle answer carries the current name and a per-instance version. */
  readonly names = new Map<number, string>([
    [1, "alice"],
    [2, "bob"],
  ]);
  catalog: string[] = ["Lamp"];
  /** Answers are held (not sent) while this is true, until released. */
  holding = false;
  readonly held: Held[] = [];
  /** The status of the next bundle answers (an error envelope unless 200). */
  failWith: number | null = null;
  /** Whether the network fails (fetch rejects). */
  offline = false;
  /** The invalidation list of the next call answers. */
  invalidate: InvalidationTarget[] = [];

  count(prefix: string): number {
    return this.requests.filter((r) => r.startsWith(prefix)).length;
  }

  fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const path = url.pathname.replace(/^\/api\/mizan\//, "") + url.search;
    const method = init?.method ?? "GET";
    let label = `${method} ${path}`;
    let call: { fn: string; args: Record<string, unknown> } | null = null;
    if (method === "POST") {
      call = JSON.parse(String(init?.body)) as { fn: string; args: Record<string, unknown> };
      label += ` ${call.fn}`;
    }
    this.requests.push(label);
    if (this.offline) throw new TypeError("fetch failed");
    if (this.holding) {
      await new Promise<void>((release) => this.held.push({ path: label, release }));
    }
    if (call !== null) return this.#call(call);
    if (this.failWith !== null) {
      return json(this.failWith, { error: { code: "not_found", message: "no such thing", details: null } });
    }
    if (url.pathname.endsWith("/ctx/user/")) {
      const id = Number(url.searchParams.get("user_id"));
      return json(200, { user_profile: { id, name: this.names.get(id) ?? "?" }, user_orders: [] });
    }
    if (url.pathname.endsWith("/ctx/catalog/")) {
      return json(200, { catalog_items: this.catalog.map((name, i) => ({ id: i + 1, name })) });
    }
    return json(404, { error: { code: "not_found", message: "unknown context", details: null } });
  };

  /** Releases every held answer. */
  releaseAll(): void {
    for (const held of this.held.splice(0)) held.release();
  }

  #call(call: { fn: string; args: Record<string, unknown> }): Response {
    if (call.fn === "update_profile") {
      const name = String(call.args["name"]);
      if (name.trim() === "") {
        return json(400, { error: { code: "bad_request", message: "name must be 1 to 64 characters", details: null } });
      }
      this.names.set(Number(call.args["user_id"]), name);
      return json(200, { result: { id: call.args["user_id"], name }, invalidate: this.invalidate });
    }
    if (call.fn === "add_item") {
      this.catalog.push(String(call.args["name"]));
      return json(200, { result: { id: this.catalog.length, name: call.args["name"] }, invalidate: this.invalidate });
    }
    return json(404, { error: { code: "not_found", message: `no function ${call.fn}`, details: null } });
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** Resolves once `predicate` holds, letting pending promise callbacks and I/O run between
 * checks; fails after a bounded number of turns. */
export async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Lets every pending promise callback run (the fake server answers through promises only). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}
