//! [`NearCache`]: an in-process L1 of context bundles in front of a [`RedisCache`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use mizan_core::{BusEvent, BusReceiver, CacheBackend, CacheError, InvalidationBus};
use tokio::task::JoinHandle;

use crate::RedisCache;

/// The keys the dispatcher stores context bundles under (`ctx:{context}:{hmac}`, see
/// `mizan_core::derive_cache_key`); the only keys the L1 keeps.
const ENTRY_PREFIX: &str = "ctx:";

/// A [`CacheBackend`] that keeps the context bundles it reads and writes in process memory, in
/// front of a [`RedisCache`], while every epoch is still read from Redis: it saves moving each
/// bundle over the network and never serves a stale one. See
/// [Near cache](crate#near-cache-l1).
///
/// Cloning is cheap and shares the L1.
#[derive(Clone)]
pub struct NearCache {
    inner: Arc<Inner>,
}

struct Inner {
    redis: RedisCache,
    l1: Arc<L1>,
    listener: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

/// The in-process entries, bounded in bytes, each with the deadline Redis has for it.
struct L1 {
    entries: quick_cache::sync::Cache<String, Entry, ByBytes>,
    hits: AtomicU64,
}

#[derive(Clone)]
struct Entry {
    value: Bytes,
    expires: Instant,
}

/// Weighs an entry by its key and value bytes.
#[derive(Clone)]
struct ByBytes;

impl quick_cache::Weighter<String, Entry> for ByBytes {
    fn weight(&self, key: &String, entry: &Entry) -> u64 {
        (key.len() + entry.value.len()) as u64
    }
}

/// Configures a [`NearCache`]; made by [`NearCache::builder`].
#[must_use]
pub struct NearCacheBuilder {
    redis: RedisCache,
    capacity: u64,
    receiver: Option<BusReceiver>,
}

impl std::fmt::Debug for NearCacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearCacheBuilder")
            .field("redis", &self.redis)
            .field("capacity", &self.capacity)
            .field("bus", &self.receiver.is_some())
            .finish()
    }
}

impl NearCache {
    /// The default bound on the L1, in bytes of keys and bundles.
    pub const DEFAULT_CAPACITY: u64 = 64 * 1024 * 1024;

    /// Starts configuring an L1 in front of `redis`.
    pub fn builder(redis: RedisCache) -> NearCacheBuilder {
        NearCacheBuilder {
            redis,
            capacity: Self::DEFAULT_CAPACITY,
            receiver: None,
        }
    }

    /// The Redis cache behind the L1.
    pub fn redis(&self) -> &RedisCache {
        &self.inner.redis
    }

    /// How many bundles the L1 holds (expired ones included until they are dropped).
    pub fn l1_len(&self) -> usize {
        self.inner.l1.entries.len()
    }

    /// How many reads of a bundle the L1 has answered so far.
    pub fn l1_hits(&self) -> u64 {
        self.inner.l1.hits.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for NearCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearCache")
            .field("redis", &self.inner.redis)
            .field("l1_len", &self.l1_len())
            .field("l1_bytes", &self.inner.l1.entries.weight())
            .field("bus", &self.inner.listener.is_some())
            .finish()
    }
}

impl NearCacheBuilder {
    /// Bounds the L1 to `bytes` of keys and bundles (default 64 MiB; at least 1 KiB). The bound
    /// is split over the map's shards; a bundle larger than a shard's share is not kept.
    pub fn with_capacity(mut self, bytes: u64) -> Self {
        self.capacity = bytes.max(1024);
        self
    }

    /// Trims the L1 from `bus`: a target of context `c` drops every bundle of `c` (so the next
    /// read takes the one another instance stored in Redis rather than recomputing), and a
    /// [`BusEvent::Resync`] empties the L1. Freshness never depends on it; see
    /// [Near cache](crate#near-cache-l1).
    pub fn with_bus(mut self, bus: &impl InvalidationBus) -> Self {
        self.receiver = Some(bus.subscribe());
        self
    }

    /// Makes the cache. With a bus, a task on the Redis cache's runtime follows it until the
    /// last clone of the cache is dropped.
    pub fn build(self) -> NearCache {
        let weight = self.capacity;
        // An estimate of the entry count for the map's sizing: bundles of about 4 KiB.
        let items = usize::try_from(weight / 4096).unwrap_or(usize::MAX).max(16);
        let l1 = Arc::new(L1 {
            entries: quick_cache::sync::Cache::with_weighter(items, weight, ByBytes),
            hits: AtomicU64::new(0),
        });
        let listener = self.receiver.map(|receiver| {
            let runtime = self.redis.inner.runtime.clone();
            runtime.spawn(follow(Arc::downgrade(&l1), receiver))
        });
        NearCache {
            inner: Arc::new(Inner {
                redis: self.redis,
                l1,
                listener,
            }),
        }
    }
}

/// Applies the bus's events to the L1 while it lives.
async fn follow(l1: Weak<L1>, mut receiver: BusReceiver) {
    while let Some(event) = receiver.next().await {
        let Some(l1) = l1.upgrade() else {
            return;
        };
        match event {
            BusEvent::Targets(targets) => {
                let contexts: HashSet<&str> = targets.iter().map(|t| t.context()).collect();
                for context in contexts {
                    l1.remove_prefix(&format!("{ENTRY_PREFIX}{context}:"));
                }
            }
            // A resync, or anything this version does not know: events were lost.
            _ => l1.entries.clear(),
        }
    }
}

impl L1 {
    /// The live bundle under `key`; an expired one is dropped.
    fn get(&self, key: &str, now: Instant) -> Option<Bytes> {
        let entry = self.entries.get(key)?;
        if entry.expires > now {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(entry.value);
        }
        self.entries.remove_if(key, |entry| entry.expires <= now);
        None
    }

    fn insert(&self, key: &str, value: Bytes, ttl: Duration) {
        match Instant::now().checked_add(ttl) {
            Some(expires) if !ttl.is_zero() => {
                self.entries
                    .insert(key.to_owned(), Entry { value, expires });
            }
            _ => {
                self.entries.remove(key);
            }
        }
    }

    fn remove_prefix(&self, prefix: &str) {
        let now = Instant::now();
        self.entries
            .retain(|key, entry| !key.starts_with(prefix) && entry.expires > now);
    }
}

fn is_entry(key: &str) -> bool {
    key.starts_with(ENTRY_PREFIX)
}

#[async_trait]
impl CacheBackend for NearCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        let values = self.get_many(&[key.to_owned()]).await?;
        Ok(values.into_iter().next().flatten())
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        let stored = self.inner.redis.put(key, value.clone(), ttl).await;
        if is_entry(key) {
            match stored {
                Ok(()) => self.inner.l1.insert(key, value, ttl),
                Err(_) => drop(self.inner.l1.entries.remove(key)),
            }
        }
        stored
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.inner.l1.entries.remove(key);
        self.inner.redis.delete(key).await
    }

    async fn delete_by_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        self.inner.l1.remove_prefix(prefix);
        self.inner.redis.delete_by_prefix(prefix).await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, CacheError> {
        let now = Instant::now();
        let l1 = &self.inner.l1;
        let mut values: Vec<Option<Bytes>> = Vec::with_capacity(keys.len());
        // The keys Redis is asked for, and where their values go.
        let (mut remote, mut slots) = (Vec::new(), Vec::new());
        for (i, key) in keys.iter().enumerate() {
            match is_entry(key).then(|| l1.get(key, now)).flatten() {
                Some(value) => values.push(Some(value)),
                None => {
                    values.push(None);
                    remote.push(key.clone());
                    slots.push(i);
                }
            }
        }
        if remote.is_empty() {
            return Ok(values);
        }
        // The first bundle missing from the L1 is read with its remaining time to live, so the
        // L1 never keeps it longer than Redis would.
        let fetched = match remote.iter().position(|key| is_entry(key)) {
            Some(entry) => {
                let (fetched, ttl) = self.inner.redis.get_many_and_ttl(&remote, entry).await?;
                if let (Some(Some(value)), Some(ttl)) = (fetched.get(entry), ttl) {
                    l1.insert(&remote[entry], value.clone(), ttl);
                }
                fetched
            }
            None => self.inner.redis.get_many(&remote).await?,
        };
        for (slot, value) in slots.into_iter().zip(fetched) {
            values[slot] = value;
        }
        Ok(values)
    }
}
