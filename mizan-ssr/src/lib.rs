//! Server-side rendering for Mizan: a pool of persistent JavaScript worker processes (Node by
//! default, Bun when configured) that render React components to HTML for a Rust server.
//!
//! Embedding V8 makes builds heavy and ties an isolate to a thread; a separate Node server is
//! one more service to run. `mizan-ssr` sits between: an [`SsrPool`] starts a few `node`
//! processes running your components, sends each one render at a time as a line of JSON on its
//! stdin, and reads the HTML back from its stdout. A view-path function renders a component
//! through the pool and wraps the HTML in a [`PageShell`], which also carries the props as JSON
//! for the client to hydrate from; when rendering fails (or is off), the same shell with an
//! empty root lets the client render instead.
//!
//! # Quick start
//!
//! The worker side is an ES module shipped with this crate ([`WORKER_JS`]); put it in your
//! frontend project, next to `node_modules` with `react` and `react-dom`, and write an entry
//! that imports it *first* and registers your components:
//!
//! ```js
//! // frontend/ssr.mjs (plain JS, or the output of your bundler's SSR build)
//! import { serve } from './mizan-worker.mjs';
//! import { ProfilePage } from './ProfilePage.js';
//!
//! serve({ ProfilePage });
//! ```
//!
//! Then start a pool on it and render:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use mizan_ssr::{PageShell, SsrPool};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Keep the worker module in step with this crate's version.
//!     mizan_ssr::write_worker("frontend")?;
//!     let pool = SsrPool::builder("frontend/ssr.mjs")
//!         .with_env("NODE_ENV", "production")
//!         .with_workers(2)
//!         .with_render_timeout(Duration::from_secs(2))
//!         .build()
//!         .await?; // every worker has announced it is ready
//!
//!     let props = serde_json::json!({ "id": 1, "name": "alice", "email": "alice@example.com" });
//!     let html = pool.render("ProfilePage", &props).await.ok(); // `None`: the client renders
//!     let page = PageShell::new("alice")
//!         .with_script("/assets/profile.js")
//!         .render(html.as_ref(), &props)?;
//!     println!("{page}");
//!
//!     pool.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! In this repository, [`worker_dir`] holds the worker with a committed `package-lock.json`
//! (`npm ci` installs React; [`ensure_node_modules`] runs it unless it already ran)
//! and `example/server.mjs`, an entry that registers the example components (`ProfilePage`,
//! `Greeting`).
//!
//! # In a view-path function
//!
//! The pool is cheap to clone, so it lives in the app state. A view-path function renders its
//! component and falls back to the client-rendered shell when SSR fails or is off:
//!
//! ```no_run
//! use mizan::http::{header, Response};
//! use mizan::{client, ApiError, Mizan, Request};
//! use mizan_ssr::{PageShell, SsrPool};
//! use serde::Serialize;
//!
//! #[derive(Serialize)]
//! struct Profile { id: i64, name: String, email: String }
//!
//! #[client(context = "user", route = "/profile/{user_id}/")]
//! async fn profile_page(req: &Request, user_id: i64) -> Result<Response<String>, ApiError> {
//!     let props = Profile { id: user_id, name: "alice".into(), email: "alice@example.com".into() };
//!     let html = match req.state::<SsrPool>() {
//!         Ok(pool) => pool
//!             .render("ProfilePage", &props)
//!             .await
//!             .inspect_err(|err| tracing::warn!(%err, "SSR failed; the client renders"))
//!             .ok(),
//!         Err(_) => None, // no pool in the state: SSR is off
//!     };
//!     let page = PageShell::new(format!("{}'s profile", props.name))
//!         .with_script("/assets/profile.js")
//!         .render(html.as_ref(), &props)
//!         .map_err(ApiError::internal)?;
//!     Response::builder()
//!         .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
//!         .body(page)
//!         .map_err(ApiError::internal)
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut app = Mizan::builder().register::<profile_page>();
//!     if std::env::var("MIZAN_SSR").as_deref() != Ok("off") {
//!         match SsrPool::builder("frontend/ssr.mjs").build().await {
//!             Ok(pool) => app = app.with_state(pool),
//!             Err(err) => eprintln!("server-side rendering is off: {err}"),
//!         }
//!     }
//!     let app = app.build()?;
//!     # let _ = app;
//!     Ok(())
//! }
//! ```
//!
//! # Errors
//!
//! | [`SsrError`] | when | the worker |
//! |---|---|---|
//! | `Timeout` | the render took longer than the render timeout (5 s) | killed and replaced; its late reply never reaches another render |
//! | `Crashed` | the process exited (or closed its pipes) during the render | replaced, with backoff |
//! | `Render(message)` | the component threw, is not registered, or the props are not an object | stays in service |
//! | `Protocol` | the reply line exceeds the bound (8 MiB), or the reply to this render is malformed | replaced |
//! | `Overloaded` | every worker busy and the queue full (at once), or no worker free within the queue timeout | — |
//! | `Startup` | at [`build`](SsrPoolBuilder::build): the program or script is missing, the script exits, no ready line in time | — |
//! | `Props` | the props do not serialize to JSON | — |
//! | `Closed` | the pool was shut down | — |
//!
//! Any of them is a reason to serve the fallback page, not to fail the request. A worker that
//! fails while idle (it exits, or does not answer the health-check ping, e.g. because it was
//! `SIGSTOP`ped) is replaced before a render reaches it. Restarts back off (100 ms doubling up to
//! 10 s) while workers keep failing, so a crash loop never spins.
//!
//! # The protocol
//!
//! Newline-delimited JSON: one object per line, UTF-8, on the worker's stdin (requests) and
//! stdout (replies). Ids are positive integers chosen by the pool; a worker has one request in
//! flight at a time.
//!
//! ```text
//! worker, once started:  {"id":0,"ready":true}
//! pool → worker:         {"id":1,"method":"render","params":{"component":"ProfilePage","props":{"id":1}}}
//! worker → pool:         {"id":1,"html":"<main>…</main>"}   or   {"id":1,"error":"message"}
//! pool → worker:         {"id":2,"method":"ping"}
//! worker → pool:         {"id":2,"pong":true}
//! ```
//!
//! - A stdout line that is not the reply awaited (console output, malformed JSON, an unknown,
//!   late or duplicate id) is logged at `debug` and discarded; it never corrupts a reply. A reply
//!   written after stray output that did not end its line (`loading…{"id":3,…}`) is still found,
//!   provided the reply object starts with its `"id"` key, as `JSON.stringify` writes it.
//! - Lines are bounded ([`with_max_line_bytes`](SsrPoolBuilder::with_max_line_bytes)); a longer
//!   line is skipped without being buffered.
//! - Stderr is free-form; each line is forwarded to `tracing` (target `mizan_ssr::worker`, level
//!   `info`), and its last lines are quoted in [`SsrError::Startup`].
//! - The worker exits when its stdin closes ([`SsrPool::shutdown`]); otherwise it is killed.
//!   Every process is spawned with `kill_on_drop` and waited for, so none is left as a zombie.
//!
//! The shipped worker sends every `console` method and every write to `process.stdout` to
//! stderr before React or your components load, so stdout carries replies only.
//!
//! # Cargo features
//!
//! This crate has no Cargo features. It needs a Tokio runtime (`process`, `io-util`, `sync`,
//! `time`, `rt`, `macros`); `mizan-core` itself stays runtime-free.

mod error;
mod lines;
mod page;
mod pool;
mod worker;

use std::path::{Path, PathBuf};

pub use error::SsrError;
pub use page::{props_island, Html, PageShell, PROPS_ID};
pub use pool::{SsrPool, SsrPoolBuilder, SsrStats};

/// The worker module (`worker/worker.mjs` of this crate), to write into your frontend project:
/// it exports `serve(components)` and imports `react` and `react-dom/server` from where it is
/// written. [`write_worker`] does it.
pub const WORKER_JS: &str = include_str!("../worker/worker.mjs");

/// The file name [`write_worker`] gives the worker module.
pub const WORKER_FILE_NAME: &str = "mizan-worker.mjs";

/// Writes [`WORKER_JS`] as `dir/mizan-worker.mjs` (unless it is already there, identical) and
/// returns its path. Call it at startup or from a build script so that the worker always
/// matches the version of this crate.
pub fn write_worker(dir: impl AsRef<Path>) -> std::io::Result<PathBuf> {
    let path = dir.as_ref().join(WORKER_FILE_NAME);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(WORKER_JS) {
        std::fs::write(&path, WORKER_JS)?;
    }
    Ok(path)
}

/// The `worker` directory of this crate's sources: `worker.mjs`, its `package.json` with
/// `react` and `react-dom` pinned by a committed `package-lock.json`, and `example/` (an entry,
/// `example/server.mjs`, registering the example components).
///
/// The path is fixed at compile time, so it exists only where the crate was built from source
/// (a checkout of this repository, or the Cargo registry of the build machine); a deployed
/// binary should use [`write_worker`] instead.
pub fn worker_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("worker")
}

/// Runs `npm ci` in `dir`, installing exactly what its `package-lock.json` pins, unless
/// `node_modules` already holds a complete install of that lockfile (npm's
/// `node_modules/.package-lock.json`, newer than `package-lock.json`); returns whether it ran.
/// For development setups (the demo, tests, benchmarks); needs `npm` on the `PATH`. Do not run
/// two at once in the same directory.
pub async fn ensure_node_modules(dir: impl AsRef<Path>) -> std::io::Result<bool> {
    let dir = dir.as_ref();
    let modified = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let installed = modified(dir.join("node_modules/.package-lock.json"));
    let locked = modified(dir.join("package-lock.json"));
    if let (Some(installed), Some(locked)) = (installed, locked) {
        if installed >= locked {
            return Ok(false);
        }
    }
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .kill_on_drop(true)
        .status()
        .await?;
    if status.success() {
        Ok(true)
    } else {
        Err(std::io::Error::other(format!(
            "`npm ci` in {} failed ({status})",
            dir.display()
        )))
    }
}
