//! SSR figures (see `docs/BENCHMARKS.md`): renders of a small React component through the pool
//! (one render at a time, and 8 at once on 2 workers), the same component rendered directly in
//! one Node process (no pool, no pipes: the baseline, printed before the criterion groups), and
//! the cost of building the page shell.
//!
//! ```sh
//! cargo bench -p mizan-ssr --bench ssr
//! ```
//!
//! Needs `node` and `npm` (the worker's dependencies are installed with `npm ci` when missing).
//! React runs in production mode (`NODE_ENV=production`) everywhere.

use std::path::PathBuf;
use std::process::Command;

use criterion::{Criterion, Throughput};
use futures_util::future::join_all;
use mizan_ssr::{Html, PageShell, SsrPool};
use serde_json::json;
use tokio::runtime::Runtime;

fn worker_dir() -> PathBuf {
    mizan_ssr::worker_dir()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn greeting_props() -> serde_json::Value {
    json!({ "name": "Alice", "items": ["one", "two", "three"] })
}

/// The baseline: `worker/example/bench-direct.mjs` renders `Greeting` in a loop in one process.
fn direct_baseline() {
    let output = Command::new("node")
        .arg(worker_dir().join("example/bench-direct.mjs"))
        .arg("50000")
        .env("NODE_ENV", "production")
        .output()
        .expect("node runs");
    assert!(output.status.success(), "bench-direct.mjs failed");
    print!("{}", String::from_utf8_lossy(&output.stderr));
}

fn pool(rt: &Runtime, workers: usize) -> SsrPool {
    rt.block_on(
        SsrPool::builder(worker_dir().join("example/server.mjs"))
            .with_env("NODE_ENV", "production")
            .with_workers(workers)
            .build(),
    )
    .expect("the pool starts")
}

fn renders(c: &mut Criterion) {
    let rt = runtime();
    let props = greeting_props();
    let mut group = c.benchmark_group("render_greeting");

    let one = pool(&rt, 1);
    group.throughput(Throughput::Elements(1));
    group.bench_function("pool_1_worker/sequential", |b| {
        b.iter(|| rt.block_on(one.render("Greeting", &props)).expect("html"))
    });
    rt.block_on(one.shutdown());

    let two = pool(&rt, 2);
    group.throughput(Throughput::Elements(8));
    group.bench_function("pool_2_workers/8_concurrent", |b| {
        b.iter(|| {
            let all = rt.block_on(join_all((0..8).map(|_| two.render("Greeting", &props))));
            all.into_iter().for_each(|html| {
                html.expect("html");
            });
        })
    });
    rt.block_on(two.shutdown());
    group.finish();
}

fn pages(c: &mut Criterion) {
    let props = json!({ "id": 1, "name": "alice", "email": "alice@company.com" });
    let shell = PageShell::new("alice's profile").with_script("/assets/profile.js");
    let html = Html::from_trusted(
        "<main><h1>alice</h1><p>alice@company.com</p><form action=\"/profile/1/update/\" \
         method=\"post\"><input name=\"name\" value=\"alice\"/><button>Rename</button></form></main>",
    );
    let mut group = c.benchmark_group("page_shell");
    group.bench_function("fallback", |b| {
        b.iter(|| shell.render(None, &props).expect("page"))
    });
    group.bench_function("with_html", |b| {
        b.iter(|| shell.render(Some(&html), &props).expect("page"))
    });
    // Props of 200 strings: 4.7 KiB of JSON, 1 200 of its characters escaped in the island.
    let big: Vec<String> = (0..200)
        .map(|i| format!("item {i} <b>&</b> \u{2028}"))
        .collect();
    let big = json!({ "items": big });
    group.bench_function("fallback_200_strings", |b| {
        b.iter(|| shell.render(None, &big).expect("page"))
    });
    group.finish();
}

fn main() {
    let rt = runtime();
    rt.block_on(mizan_ssr::ensure_node_modules(worker_dir()))
        .expect("npm ci in the worker directory");
    drop(rt);
    direct_baseline();
    let mut criterion = Criterion::default().configure_from_args();
    renders(&mut criterion);
    pages(&mut criterion);
    criterion.final_summary();
}
