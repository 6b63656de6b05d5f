//! What the core's benchmarks share: the cache secret, the trivial call, the three trivial
//! functions of the `profile` context, and the app built on them with or without a cache.

use mizan_core::{client, ApiError, MemoryCache, Mizan, MizanBuilder};

/// The cache secret of every benchmark app.
pub(crate) const SECRET: &str = "bench-cache-secret-0123456789abcdefghij";

/// The trivial call of every benchmark: returns its argument.
#[client]
pub(crate) async fn echo(message: String) -> Result<String, ApiError> {
    Ok(message)
}

/// Three trivial functions of one context, keyed by `user_id`: the protocol's own cost.
#[client(context = "profile")]
pub(crate) async fn name(user_id: i64) -> Result<String, ApiError> {
    Ok(format!("user {user_id}"))
}

#[client(context = "profile")]
pub(crate) async fn email(user_id: i64) -> Result<String, ApiError> {
    Ok(format!("user{user_id}@example.com"))
}

#[client(context = "profile")]
pub(crate) async fn score(user_id: i64) -> Result<f64, ApiError> {
    Ok(user_id as f64 / 3.0)
}

/// `builder` with `echo` and the `profile` context registered, built with a memory cache
/// when `cached`.
pub(crate) fn app(builder: MizanBuilder, cached: bool) -> Mizan {
    let builder = builder
        .register::<echo>()
        .register::<name>()
        .register::<email>()
        .register::<score>();
    let builder = if cached {
        builder
            .with_cache(MemoryCache::new())
            .with_cache_secret(SECRET)
    } else {
        builder
    };
    builder.build().expect("valid app")
}
