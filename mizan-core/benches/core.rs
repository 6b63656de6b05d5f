//! Micro benchmarks of the core, in process, with no runtime (`futures::executor::block_on`):
//! cache keys, a trivial call, a context bundle on a cache hit and a miss, the invalidation
//! header, JWT verification. `cargo bench -p mizan-core --bench core`; results in
//! `docs/BENCHMARKS.md`.

mod support;

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use mizan_core::auth::{Jwt, TokenKind, TokenUser};
use mizan_core::invalidation::{header_value, Target};
use mizan_core::testing::block_on;
use mizan_core::{client, derive_cache_key, ApiError, Dispatcher, Mizan};
use serde_json::json;
use support::SECRET;

/// Three bundle functions that each take 1 ms (a slow query, simulated by sleeping).
#[client(context = "dashboard")]
async fn slow_a(user_id: i64) -> Result<i64, ApiError> {
    std::thread::sleep(Duration::from_millis(1));
    Ok(user_id)
}

#[client(context = "dashboard")]
async fn slow_b(user_id: i64) -> Result<i64, ApiError> {
    std::thread::sleep(Duration::from_millis(1));
    Ok(user_id + 1)
}

#[client(context = "dashboard")]
async fn slow_c(user_id: i64) -> Result<i64, ApiError> {
    std::thread::sleep(Duration::from_millis(1));
    Ok(user_id + 2)
}

fn app(cached: bool) -> Mizan {
    support::app(
        Mizan::builder()
            .register::<slow_a>()
            .register::<slow_b>()
            .register::<slow_c>(),
        cached,
    )
}

fn call_request() -> http::Request<Bytes> {
    http::Request::post("/api/mizan/call/")
        .header("content-type", "application/json")
        .body(Bytes::from_static(
            br#"{"fn":"echo","args":{"message":"hi"}}"#,
        ))
        .expect("valid request")
}

fn fetch_request(context: &str) -> http::Request<Bytes> {
    http::Request::get(format!("/api/mizan/ctx/{context}/?user_id=5"))
        .body(Bytes::new())
        .expect("valid request")
}

fn keys(c: &mut Criterion) {
    let keyer = mizan_core::cache::CacheKeyer::new(SECRET.as_bytes());
    c.bench_function("cache_key/prekeyed", |b| {
        b.iter(|| {
            keyer.key(
                black_box("user"),
                [("user_id", "5"), ("tab", "orders")],
                Some("42"),
                2,
            )
        })
    });
    c.bench_function("derive_cache_key", |b| {
        b.iter(|| {
            derive_cache_key(
                black_box(SECRET.as_bytes()),
                black_box("user"),
                [("user_id", "5"), ("tab", "orders")],
                Some("42"),
                2,
            )
        })
    });
    let targets = [
        Target::Context {
            context: "user".into(),
            params: json!({"user_id": 5}).as_object().cloned(),
        },
        Target::Context {
            context: "notes".into(),
            params: json!({"folder": "a b;c"}).as_object().cloned(),
        },
        Target::Context {
            context: "catalog".into(),
            params: None,
        },
    ];
    c.bench_function("invalidation_header/3_targets", |b| {
        b.iter(|| header_value(black_box(&targets)))
    });
}

fn dispatch(c: &mut Criterion) {
    let plain = app(false);
    c.bench_function("dispatch/trivial_call", |b| {
        b.iter(|| block_on(plain.dispatch(call_request())))
    });
    // The dispatch alone: the request is built outside the timed region (an adapter has it
    // already); the response is dropped inside it.
    c.bench_function("dispatch/trivial_call_prebuilt", |b| {
        b.iter_batched(
            call_request,
            |request| drop(block_on(plain.dispatch(request))),
            BatchSize::SmallInput,
        )
    });

    let cached = app(true);
    assert_eq!(
        block_on(cached.dispatch(fetch_request("profile"))).status(),
        200
    );
    c.bench_function("bundle/trivial_x3/hit", |b| {
        b.iter(|| block_on(cached.dispatch(fetch_request("profile"))))
    });
    c.bench_function("bundle/trivial_x3/miss", |b| {
        b.iter(|| block_on(plain.dispatch(fetch_request("profile"))))
    });

    assert_eq!(
        block_on(cached.dispatch(fetch_request("dashboard"))).status(),
        200
    );
    c.bench_function("bundle/1ms_x3/hit", |b| {
        b.iter(|| block_on(cached.dispatch(fetch_request("dashboard"))))
    });
    let mut group = c.benchmark_group("bundle/1ms_x3");
    group.sample_size(20);
    group.bench_function("miss", |b| {
        b.iter(|| block_on(plain.dispatch(fetch_request("dashboard"))))
    });
    group.finish();
}

fn jwt(c: &mut Criterion) {
    let jwt = Jwt::hs256("bench-jwt-secret-0123456789abcdefghijkl");
    let user = TokenUser {
        user_id: "7".into(),
        sid: "session".into(),
        staff: false,
        superuser: false,
    };
    let now = 1_700_000_000;
    let token = jwt.mint(&user, now).expect("mint").access;
    c.bench_function("jwt_verify/hs256", |b| {
        b.iter(|| {
            jwt.verify(black_box(&token), TokenKind::Access, now)
                .expect("valid")
        })
    });
}

criterion_group!(benches, keys, dispatch, jwt);
criterion_main!(benches);
