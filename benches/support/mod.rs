//! What the Redis benches (`redis_cache.rs`, `near_cache.rs`) share: the runtime they drive the
//! apps and clients on, and the apps' cache secret.

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
