//! Origin cache figures (see `docs/BENCHMARKS.md`): one backend `get`; a context fetch through
//! `TestClient` that hits or misses, on the memory and Redis backends and without a cache; a
//! Redis hit (through `TestClient`, and dispatched from a prebuilt request) and a bare `GET`
//! interleaved, and a memory hit right after a bare `GET`; and a broad mutation that purges a
//! context holding 100 000 entries.
//!
//! Redis runs as a local `redis-server` on a free loopback port, started by the test fixture.
//!
//! ```sh
//! cargo bench --bench redis_cache
//! ```

#[path = "../tests/support/redis_server.rs"]
mod redis_server;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use mizan_cache_redis::{redis, RedisCache};
use mizan_core::testing::TestClient;
use mizan_core::{ApiError, CacheBackend, Dispatcher, Function, MemoryCache, Mizan, MizanBuilder};
use redis_server::RedisServer;
use serde_json::json;
use support::{bare_get, runtime, SECRET};
use tokio::runtime::Runtime;

const ENTRIES: usize = 100_000;

/// Context `catalog` (param `page`) whose one function does trivial work, and the broad
/// mutation `restock`.
fn builder() -> MizanBuilder {
    let items = Function::new("catalog_items")
        .with_context("catalog")
        .with_param::<i64>("page")
        .handler(|_req, mut args| async move {
            let page: i64 = args.take("page")?;
            Ok::<_, ApiError>(json!({"page": page, "items": [page * 10, page * 10 + 1]}))
        });
    let restock = Function::new("restock")
        .with_affects(["catalog"])
        .handler(|_req, _args| async { Ok::<_, ApiError>(true) });
    Mizan::builder().with_function(items).with_function(restock)
}

fn cached(backend: impl CacheBackend) -> Mizan {
    let builder = builder().with_cache(backend).with_cache_secret(SECRET);
    builder.build().expect("a valid app")
}

/// A runtime, a fresh `redis-server` and a `RedisCache` on it (each benchmark starts its own).
fn redis_fixture() -> (Runtime, RedisServer, RedisCache) {
    let rt = runtime();
    let server = RedisServer::start();
    let cache = rt
        .block_on(RedisCache::connect(server.url()))
        .expect("redis");
    (rt, server, cache)
}

fn fetches(c: &mut Criterion) {
    let (rt, _server, redis) = redis_fixture();
    let apps = [
        ("none", builder().build().expect("a valid app")),
        ("memory", cached(MemoryCache::new())),
        ("redis", cached(redis)),
    ];
    let mut group = c.benchmark_group("fetch");
    for (backend, app) in apps {
        let client = TestClient::new(&app);
        let fetch = |page: &str| {
            let response = rt.block_on(client.fetch("catalog", &[("page", page)]));
            assert_eq!(response.status(), 200);
        };
        if backend != "none" {
            group.bench_function(format!("{backend}/hit"), |b| b.iter(|| fetch("1")));
        }
        // A page never asked before: the bundle is executed and stored.
        let mut page = 1_000_000_u64;
        group.bench_function(format!("{backend}/miss"), |b| {
            b.iter(|| {
                page += 1;
                fetch(&page.to_string());
            })
        });
    }
    group.finish();
}

/// One `get` of a present key: `MemoryCache`, `RedisCache`, a `get_many` of three keys (the one
/// `MGET` a cache hit sends), and a bare `GET` on the `redis` crate's own connection manager
/// (the floor a Redis backend can reach).
fn gets(c: &mut Criterion) {
    let (rt, server, redis_cache) = redis_fixture();
    let memory = MemoryCache::new();
    let client = redis::Client::open(server.url()).expect("a url");
    let manager = rt
        .block_on(redis::aio::ConnectionManager::new(client))
        .expect("a connection");
    let hour = Duration::from_secs(3600);
    rt.block_on(async {
        let value = Bytes::from_static(b"bundle");
        memory.put("k", value.clone(), hour).await.expect("put");
        redis_cache.put("k", value, hour).await.expect("put");
    });
    let mut group = c.benchmark_group("get");
    group.bench_function("memory", |b| {
        b.iter(|| rt.block_on(memory.get("k")).expect("get").expect("present"))
    });
    group.bench_function("redis", |b| {
        b.iter(|| {
            rt.block_on(redis_cache.get("k"))
                .expect("get")
                .expect("present")
        })
    });
    group.bench_function("redis_many_3", |b| {
        // Two of the three are absent, as epochs of other scopes may be.
        let keys = ["k".to_owned(), "k2".to_owned(), "k3".to_owned()];
        b.iter(|| rt.block_on(redis_cache.get_many(&keys)).expect("get"))
    });
    group.bench_function("redis_crate_baseline", |b| {
        b.iter(|| {
            let mut conn = manager.clone();
            let mut get = redis::cmd("GET");
            get.arg("mizan:k");
            rt.block_on(get.query_async::<Vec<u8>>(&mut conn))
                .expect("get")
        })
    });
    group.finish();
}

/// Puts `ENTRIES` entries of the `catalog` context into a backend (named as the dispatcher
/// names them), directly and as fast as the backend allows.
type Fill = Box<dyn Fn()>;

fn purges(c: &mut Criterion) {
    let (rt, server, redis_cache) = redis_fixture();
    let rt = Arc::new(rt);
    // Room for the entries, the epochs and a margin (the default bound is 100 000 entries).
    let memory = Arc::new(MemoryCache::new().with_capacity(2 * ENTRIES));

    let fill_memory: Fill = {
        let memory = memory.clone();
        let rt = rt.clone();
        Box::new(move || {
            rt.block_on(async {
                for i in 0..ENTRIES {
                    let key = format!("ctx:catalog:{i:064x}");
                    let value = Bytes::from_static(b"bundle");
                    let _ = memory.put(&key, value, Duration::from_secs(3600)).await;
                }
            })
        })
    };
    let fill_redis: Fill = {
        let url = server.url();
        let rt = rt.clone();
        Box::new(move || {
            rt.block_on(async {
                let client = redis::Client::open(url.as_str()).expect("a url");
                let mut conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("conn");
                for chunk in (0..ENTRIES).collect::<Vec<_>>().chunks(10_000) {
                    let mut pipe = redis::pipe();
                    for i in chunk {
                        let key = format!("mizan:ctx:catalog:{i:064x}");
                        pipe.cmd("SET")
                            .arg(key)
                            .arg("bundle")
                            .arg("EX")
                            .arg(3600)
                            .ignore();
                    }
                    pipe.exec_async(&mut conn).await.expect("fill");
                }
            })
        })
    };
    let memory_probe = memory.clone();
    let apps = [
        ("memory", cached(memory), fill_memory),
        ("redis", cached(redis_cache), fill_redis),
    ];

    // Once, untimed: the mutation really empties the context.
    for (backend, app, fill) in &apps {
        fill();
        let response = rt.block_on(TestClient::new(app).call("restock", json!({})));
        assert_eq!(response.status(), 200);
        let left = match *backend {
            "memory" => memory_probe.len(),
            _ => server.command(&["DBSIZE"]).expect("DBSIZE")[1..]
                .parse()
                .expect("a count"),
        };
        assert!(left < 10, "{backend}: {left} keys left after the purge");
    }

    let mut group = c.benchmark_group("purge_100k");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_millis(1));
    for (backend, app, fill) in apps {
        let client = TestClient::new(&app);
        group.bench_function(backend, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    fill();
                    let start = Instant::now();
                    let response = rt.block_on(client.call("restock", json!({})));
                    total += start.elapsed();
                    assert_eq!(response.status(), 200);
                }
                total
            })
        });
    }
    group.finish();
}

/// A Redis-hit context fetch against a bare `GET`, interleaved: each iteration runs both and
/// times only its own, so that both see the same state of the runtime and the connection
/// (separate benchmarks of a round trip drift by ±25 % from one to the next).
/// `fetch_redis_hit` goes through `TestClient` (the request built from its parts in the timed
/// region, the response read back); `fetch_redis_hit_prebuilt` dispatches a request built
/// before the bare `GET` that precedes it, as an adapter hands over a parsed request, and
/// `ratio_prebuilt_hit_to_get` how many times the `GET` that takes;
/// `fetch_memory_hit_after_get` is a memory-cache hit, each right after a bare `GET`.
fn hit_against_get(c: &mut Criterion) {
    let (rt, server, redis_cache) = redis_fixture();
    let app = cached(redis_cache);
    let client = TestClient::new(&app);
    let fetch = || {
        let response = rt.block_on(client.fetch("catalog", &[("page", "1")]));
        assert_eq!(response.status(), 200);
    };
    fetch(); // stored: every measured fetch is a hit
    let uri = format!("{}ctx/catalog/?page=1", app.mount());
    let request = || {
        let request = http::Request::builder().uri(uri.as_str());
        request.body(Bytes::new()).expect("a request")
    };
    let get = bare_get(&rt, &server.url());
    let mut group = c.benchmark_group("interleaved");
    group.bench_function("fetch_redis_hit", |b| {
        b.iter_custom(|iters| timed_after(iters, || drop(get()), |()| fetch()))
    });
    let dispatch = |request| {
        let response = rt.block_on(app.dispatch(request));
        assert_eq!(response.status(), 200);
    };
    group.bench_function("fetch_redis_hit_prebuilt", |b| {
        b.iter_custom(|iters| {
            let before = || {
                let request = request();
                drop(get());
                request
            };
            timed_after(iters, before, dispatch)
        })
    });
    // A prebuilt hit against the bare `GET` right before it, both timed in the same iterations:
    // a slow spell of the machine moves both alike, so this drifts less than the ratio of two
    // benchmarks of the group, which run one after the other. Reported as a time per
    // iteration of 1 ms per 1× (1.150 ms reads "1.150× the GET").
    group.bench_function("ratio_prebuilt_hit_to_get", |b| {
        b.iter_custom(|iters| {
            let (mut hits, mut gets) = (Duration::ZERO, Duration::ZERO);
            for _ in 0..iters {
                let request = request();
                let start = Instant::now();
                drop(get());
                let between = Instant::now();
                dispatch(request);
                hits += between.elapsed();
                gets += between - start;
            }
            let ratio = hits.as_secs_f64() / gets.as_secs_f64();
            Duration::from_millis(1).mul_f64(ratio * iters as f64)
        })
    });
    group.bench_function("bare_get", |b| {
        b.iter_custom(|iters| timed_after(iters, fetch, |()| drop(get())))
    });
    // The in-process part of a hit, timed right after a round trip as a Redis hit runs it (on
    // the memory cache, so no I/O of its own): against `fetch/memory/hit`, where the same work
    // runs back to back, it shows what running after a wake-up costs.
    let memory = cached(MemoryCache::new());
    let memory_client = TestClient::new(&memory);
    let memory_fetch = || {
        let response = rt.block_on(memory_client.fetch("catalog", &[("page", "1")]));
        assert_eq!(response.status(), 200);
    };
    memory_fetch();
    group.bench_function("fetch_memory_hit_after_get", |b| {
        b.iter_custom(|iters| timed_after(iters, || drop(get()), |()| memory_fetch()))
    });
    group.finish();
}

/// The time `timed` takes over `iters` runs, each run right after an untimed `before`, which
/// hands it its input.
fn timed_after<T>(iters: u64, before: impl Fn() -> T, timed: impl Fn(T)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = before();
        let start = Instant::now();
        timed(input);
        total += start.elapsed();
    }
    total
}

criterion_group!(benches, gets, fetches, hit_against_get, purges);
criterion_main!(benches);
