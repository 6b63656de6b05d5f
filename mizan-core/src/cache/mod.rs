//! The origin cache: key derivation, the [`CacheBackend`] trait, and [`MemoryCache`].
//!
//! Context bundles are cached under HMAC-derived keys ([`derive_cache_key`]) in a backend. The
//! cache is on only when the app has both a cache secret and a backend.
//!
//! # Writing a backend
//!
//! A backend stores bytes under string keys with a time to live. Four methods; everything else
//! (keys, staleness, fail-open) is the dispatcher's job:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use mizan_core::{async_trait, CacheBackend, CacheError};
//!
//! /// A cache that never expires anything (fine for a test, not for production).
//! #[derive(Default)]
//! struct MapCache(Mutex<HashMap<String, Bytes>>);
//!
//! #[async_trait]
//! impl CacheBackend for MapCache {
//!     async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
//!         Ok(self.0.lock().unwrap().get(key).cloned())
//!     }
//!     async fn put(&self, key: &str, value: Bytes, _ttl: Duration) -> Result<(), CacheError> {
//!         self.0.lock().unwrap().insert(key.to_owned(), value);
//!         Ok(())
//!     }
//!     async fn delete(&self, key: &str) -> Result<bool, CacheError> {
//!         Ok(self.0.lock().unwrap().remove(key).is_some())
//!     }
//!     async fn delete_by_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
//!         let mut map = self.0.lock().unwrap();
//!         let before = map.len();
//!         map.retain(|key, _| !key.starts_with(prefix));
//!         Ok((before - map.len()) as u64)
//!     }
//! }
//!
//! let app = mizan_core::Mizan::builder()
//!     .with_cache(MapCache::default())
//!     .with_cache_secret("a-long-random-cache-secret-0123456789")
//!     .build()
//!     .unwrap();
//! # let _ = app;
//! ```

mod key;
mod memory;
pub(crate) mod origin;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::CacheError;

pub use key::{derive_cache_key, param_string, CacheKeyer};
pub use memory::MemoryCache;

/// Where cached bundles live: bytes under string keys, each with a time to live.
///
/// Object safe; the app holds an `Arc<dyn CacheBackend>`. A failing backend never fails a
/// request: the dispatcher logs the error and carries on without the cache.
#[async_trait]
pub trait CacheBackend: Send + Sync + 'static {
    /// The value under `key`, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError>;

    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError>;

    /// Deletes `key`; whether it existed.
    async fn delete(&self, key: &str) -> Result<bool, CacheError>;

    /// Deletes every key starting with `prefix` (taken literally: no glob characters); how many.
    async fn delete_by_prefix(&self, prefix: &str) -> Result<u64, CacheError>;

    /// The values of several keys at once. The default calls [`get`](Self::get) for each;
    /// backends with a batch read (Redis `MGET`) should override it.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, CacheError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }
}

/// The boxed future of a backend operation, as `#[async_trait]` spells the return type of
/// [`CacheBackend`]'s methods (written out where an implementation hands back a future as it is).
type CacheFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CacheError>> + Send + 'a>>;

/// Forwards to the shared backend, handing back its boxed future as it is instead of boxing one
/// more future around it (the app holds its backend in an `Arc`: every cache read goes through
/// here).
impl<T: CacheBackend + ?Sized> CacheBackend for std::sync::Arc<T> {
    fn get<'s, 'k, 'f>(&'s self, key: &'k str) -> CacheFuture<'f, Option<Bytes>>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).get(key)
    }

    fn put<'s, 'k, 'f>(&'s self, key: &'k str, value: Bytes, ttl: Duration) -> CacheFuture<'f, ()>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).put(key, value, ttl)
    }

    fn delete<'s, 'k, 'f>(&'s self, key: &'k str) -> CacheFuture<'f, bool>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).delete(key)
    }

    fn delete_by_prefix<'s, 'k, 'f>(&'s self, prefix: &'k str) -> CacheFuture<'f, u64>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).delete_by_prefix(prefix)
    }

    fn get_many<'s, 'k, 'f>(&'s self, keys: &'k [String]) -> CacheFuture<'f, Vec<Option<Bytes>>>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).get_many(keys)
    }
}
