//! Heap allocations per request of the call path, counted by a counting global allocator
//! (`stats_alloc` around the system allocator), in process and with no runtime
//! (`futures::executor::block_on`), as `benches/core.rs` drives the app.
//!
//! ```text
//! cargo bench -p mizan-core --bench alloc
//! ```
//!
//! Each scenario builds its request outside the counted region, then counts what
//! `Dispatcher::dispatch` allocates until its response is dropped, over many requests after a
//! warm-up, and prints allocations and bytes per request. The counts do not depend on the
//! machine; results are in `docs/BENCHMARKS.md` ("Call path").

mod support;

use std::alloc::System;

use bytes::Bytes;
use mizan_core::testing::block_on;
use mizan_core::{client, ApiError, Dispatcher, Mizan};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Builds the request of a scenario.
type MakeRequest = Box<dyn Fn() -> http::Request<Bytes>>;

const WARM_UP: usize = 100;
const REQUESTS: usize = 10_000;

/// A mutation scoped by `user_id` (its targets need the canonical form of that argument).
#[client(affects = "profile")]
async fn rename(user_id: i64, name: String) -> Result<bool, ApiError> {
    Ok(user_id > 0 && !name.is_empty())
}

fn app(cached: bool) -> Mizan {
    support::app(Mizan::builder().register::<rename>(), cached)
}

fn call(body: &'static str) -> impl Fn() -> http::Request<Bytes> {
    move || {
        http::Request::post("/api/mizan/call/")
            .header("content-type", "application/json")
            .body(Bytes::from_static(body.as_bytes()))
            .expect("valid request")
    }
}

fn fetch() -> http::Request<Bytes> {
    http::Request::get("/api/mizan/ctx/profile/?user_id=5")
        .body(Bytes::new())
        .expect("valid request")
}

/// One request through the app, run to completion. Not inlined, so that
/// `valgrind --tool=callgrind --toggle-collect=alloc::dispatch_once` counts the instructions of
/// exactly this (see docs/BENCHMARKS.md).
#[inline(never)]
fn dispatch_once(app: &Mizan, request: http::Request<Bytes>) -> http::Response<Bytes> {
    block_on(app.dispatch(request))
}

/// Allocations and bytes per request of `app.dispatch(make())`, the request built outside the
/// counted region.
fn count(app: &Mizan, make: impl Fn() -> http::Request<Bytes>) -> (f64, f64) {
    for _ in 0..WARM_UP {
        assert_eq!(dispatch_once(app, make()).status(), 200);
    }
    let (mut allocations, mut bytes) = (0usize, 0usize);
    for _ in 0..REQUESTS {
        let request = make();
        let region = Region::new(GLOBAL);
        let response = dispatch_once(app, request);
        drop(response);
        let change = region.change();
        allocations += change.allocations + change.reallocations;
        bytes += change.bytes_allocated + change.bytes_reallocated.max(0) as usize;
    }
    (
        allocations as f64 / REQUESTS as f64,
        bytes as f64 / REQUESTS as f64,
    )
}

fn main() {
    // `cargo bench` passes `--bench`; a name among the arguments selects one scenario.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let plain = app(false);
    let cached = app(true);
    let scenarios: [(&str, &Mizan, MakeRequest); 5] = [
        (
            "call/echo",
            &plain,
            Box::new(call(r#"{"fn":"echo","args":{"message":"hi"}}"#)),
        ),
        (
            "call/mutation_scoped",
            &plain,
            Box::new(call(r#"{"fn":"rename","args":{"user_id":5,"name":"Ann"}}"#)),
        ),
        ("ctx/trivial_x3/miss (no cache)", &plain, Box::new(fetch)),
        (
            "ctx/trivial_x3/hit (memory cache)",
            &cached,
            Box::new(fetch),
        ),
        (
            "call/mutation_purge (memory cache)",
            &cached,
            Box::new(call(r#"{"fn":"rename","args":{"user_id":5,"name":"Ann"}}"#)),
        ),
    ];
    println!("| scenario | allocations per request | bytes allocated per request |");
    println!("|---|---:|---:|");
    for (label, app, make) in &scenarios {
        if !filter.is_empty() && !filter.iter().any(|f| label.contains(f.as_str())) {
            continue;
        }
        let (allocations, bytes) = count(app, make);
        println!("| `{label}` | {allocations:.1} | {bytes:.0} |");
    }
}
