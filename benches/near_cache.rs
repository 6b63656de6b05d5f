//! Near cache and Redis Cluster figures (see `docs/BENCHMARKS.md`): a context fetch that hits,
//! with a small and a 64 KiB bundle, on the memory cache, on Redis alone, on the `NearCache` L1
//! in front of Redis, and on a Redis Cluster; a bare `GET` on the `redis` crate for comparison;
//! and how long an invalidation takes to reach another instance over `RedisBus`.
//!
//! Redis and the cluster run on free loopback ports, started by the test fixtures.
//!
//! ```sh
//! cargo bench --bench near_cache
//! ```

#[path = "../tests/support/redis_cluster.rs"]
mod redis_cluster;
#[path = "../tests/support/redis_server.rs"]
mod redis_server;
mod support;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::StreamExt;
use mizan_cache_redis::{NearCache, RedisBus, RedisCache};
use mizan_core::testing::TestClient;
use mizan_core::{
    ApiError, BusEvent, CacheBackend, Function, InvalidationBus, MemoryCache, Mizan, Target,
};
use redis_cluster::RedisCluster;
use redis_server::RedisServer;
use serde_json::json;
use support::{bare_get, runtime, SECRET};

/// Context `catalog` (param `size`): one function returning a string of `size` bytes.
fn app(backend: impl CacheBackend) -> Mizan {
    let items = Function::new("catalog_items")
        .with_context("catalog")
        .with_param::<usize>("size")
        .handler(|_req, mut args| async move {
            let size: usize = args.take("size")?;
            Ok::<_, ApiError>(json!("x".repeat(size)))
        });
    Mizan::builder()
        .with_function(items)
        .with_cache(backend)
        .with_cache_secret(SECRET)
        .build()
        .expect("a valid app")
}

fn hits(c: &mut Criterion) {
    let rt = runtime();
    let server = RedisServer::start();
    let cluster = RedisCluster::start();
    let redis = || {
        rt.block_on(RedisCache::connect(server.url()))
            .expect("redis")
    };
    let on_cluster = rt
        .block_on(RedisCache::connect_cluster(cluster.urls()))
        .expect("cluster");
    let apps = [
        ("memory", app(MemoryCache::new())),
        ("redis", app(redis())),
        ("near+redis", app(NearCache::builder(redis()).build())),
        ("redis_cluster", app(on_cluster.clone())),
        (
            "near+redis_cluster",
            app(NearCache::builder(on_cluster).build()),
        ),
    ];
    let mut group = c.benchmark_group("fetch_hit");
    for (backend, app) in &apps {
        let client = TestClient::new(app);
        for (label, size) in [("small", "16"), ("64k", "65536")] {
            let fetch = || {
                let response = rt.block_on(client.fetch("catalog", &[("size", size)]));
                assert_eq!(response.status(), 200);
            };
            fetch(); // stored: every measured fetch is a hit
            group.bench_function(format!("{backend}/{label}"), |b| b.iter(fetch));
        }
    }
    group.finish();

    // The floor: one bare `GET` of a present 16-byte value on the `redis` crate's own connection.
    let get = bare_get(&rt, &server.url());
    c.bench_function("redis_crate_get", |b| b.iter(&get));
}

/// How long a published invalidation takes to reach another instance's receiver: the time
/// during which that instance's L1 may still hold the bundles it makes unreachable (never
/// served: the epochs are read from Redis).
fn bus_latency(c: &mut Criterion) {
    let rt = runtime();
    let server = RedisServer::start();
    let (a, b) = rt.block_on(async {
        let a = RedisBus::connect(server.url()).await.expect("bus A");
        let b = RedisBus::connect(server.url()).await.expect("bus B");
        (a, b)
    });
    let mut on_b = b.subscribe();
    let targets = [Target::Context {
        context: "catalog".into(),
        params: None,
    }];
    c.bench_function("bus/publish_to_other_instance", |bench| {
        bench.iter(|| {
            rt.block_on(async {
                a.publish(&targets).await.expect("publish");
                match tokio::time::timeout(Duration::from_secs(5), on_b.next()).await {
                    Ok(Some(BusEvent::Targets(_))) => {}
                    other => panic!("{other:?}"),
                }
            })
        })
    });
}

criterion_group!(benches, hits, bus_latency);
criterion_main!(benches);
