//! What the Redis benches (`redis_cache.rs`, `near_cache.rs`) share: the runtime they drive the
//! apps and clients on, the apps' cache secret, and the bare `GET` they compare a hit with.

use mizan_cache_redis::redis;
use tokio::runtime::Runtime;

/// The cache secret of every benchmarked app.
pub(crate) const SECRET: &str = "benchmark-cache-secret-0123456789abcdef";

/// A multi-threaded Tokio runtime with two workers and every driver enabled.
pub(crate) fn runtime() -> Runtime {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Sets a 16-byte value on the Redis server at `url` and returns a call that reads it back with
/// one bare `GET` on the `redis` crate's own connection manager: the floor any Redis backend can
/// reach.
pub(crate) fn bare_get<'a>(rt: &'a Runtime, url: &str) -> impl Fn() -> Vec<u8> + 'a {
    let client = redis::Client::open(url).expect("a url");
    let manager = rt
        .block_on(redis::aio::ConnectionManager::new(client))
        .expect("a connection");
    rt.block_on(
        redis::cmd("SET")
            .arg("bare")
            .arg("0123456789abcdef")
            .exec_async(&mut manager.clone()),
    )
    .expect("SET");
    move || {
        let mut conn = manager.clone();
        rt.block_on(
            redis::cmd("GET")
                .arg("bare")
                .query_async::<Vec<u8>>(&mut conn),
        )
        .expect("GET")
    }
}
