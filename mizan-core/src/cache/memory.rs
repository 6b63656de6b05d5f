//! [`MemoryCache`]: the in-process backend, with TTLs read from a [`Clock`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::CacheBackend;
use crate::clock::{Clock, SystemClock};
use crate::error::CacheError;

/// An in-process [`CacheBackend`]: a sorted map with per-entry expiry and a bound on the number
/// of entries (expired entries go first, then the oldest keys in order).
///
/// Good for a single process, for tests and for docs; use a shared backend (Redis) when several
/// processes serve the same app.
pub struct MemoryCache {
    entries: Mutex<BTreeMap<String, Entry>>,
    capacity: usize,
    clock: Arc<dyn Clock>,
}

struct Entry {
    value: Bytes,
    expires: Instant,
}

impl MemoryCache {
    /// The default bound on entries.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty cache with the default capacity and the system clock.
    pub fn new() -> Self {
        Self {
            entries: Mutex::default(),
            capacity: Self::DEFAULT_CAPACITY,
            clock: Arc::new(SystemClock),
        }
    }

    /// Bounds the number of entries (at least 1).
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Reads time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many entries are stored (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding the lock leaves the map consistent (every operation is a single
        // map call), so a poisoned lock is safe to keep using.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn make_room(&self, entries: &mut BTreeMap<String, Entry>, now: Instant) {
        if entries.len() < self.capacity {
            return;
        }
        entries.retain(|_, entry| entry.expires > now);
        // Still full: drop a tenth of the keys, in key order, so that eviction is amortized.
        let excess = (entries.len() + 1).saturating_sub(self.capacity);
        let evict = excess.max(self.capacity / 10).min(entries.len());
        let victims: Vec<String> = entries.keys().take(evict).cloned().collect();
        for key in victims {
            entries.remove(&key);
        }
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[async_trait]
impl CacheBackend for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        let now = self.clock.now();
        let mut entries = self.lock();
        match entries.get(key) {
            Some(entry) if entry.expires > now => Ok(Some(entry.value.clone())),
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        let now = self.clock.now();
        let expires = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        let mut entries = self.lock();
        if !entries.contains_key(key) {
            self.make_room(&mut entries, now);
        }
        entries.insert(key.to_owned(), Entry { value, expires });
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let now = self.clock.now();
        Ok(self
            .lock()
            .remove(key)
            .is_some_and(|entry| entry.expires > now))
    }

    async fn delete_by_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        let now = self.clock.now();
        let mut entries = self.lock();
        let keys: Vec<String> = entries
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key.clone())
            .collect();
        let mut live = 0;
        for key in keys {
            if entries
                .remove(&key)
                .is_some_and(|entry| entry.expires > now)
            {
                live += 1;
            }
        }
        Ok(live)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, CacheError> {
        // One lock for all keys: the values are read at one instant.
        let now = self.clock.now();
        let entries = self.lock();
        Ok(keys
            .iter()
            .map(|key| match entries.get(key) {
                Some(entry) if entry.expires > now => Some(entry.value.clone()),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{block_on, ManualClock};

    #[test]
    fn entries_expire_with_the_clock() {
        let clock = ManualClock::new();
        let cache = MemoryCache::new().with_clock(clock.clone());
        block_on(async {
            cache
                .put("a", Bytes::from_static(b"1"), Duration::from_secs(10))
                .await
                .unwrap();
            assert_eq!(
                cache.get("a").await.unwrap(),
                Some(Bytes::from_static(b"1"))
            );
            clock.advance(Duration::from_secs(9));
            assert!(cache.get("a").await.unwrap().is_some());
            clock.advance(Duration::from_secs(1));
            assert_eq!(cache.get("a").await.unwrap(), None);
        });
    }

    #[test]
    fn delete_by_prefix_is_literal_and_exact() {
        let cache = MemoryCache::new();
        block_on(async {
            for key in [
                "ctx:user:1",
                "ctx:user:2",
                "ctx:user_x:1",
                "ctx:u*:1",
                "ctx:users",
            ] {
                cache
                    .put(key, Bytes::new(), Duration::from_secs(60))
                    .await
                    .unwrap();
            }
            assert_eq!(cache.delete_by_prefix("ctx:user:").await.unwrap(), 2);
            assert_eq!(cache.delete_by_prefix("ctx:u*").await.unwrap(), 1);
            assert!(cache.get("ctx:user_x:1").await.unwrap().is_some());
            assert!(cache.get("ctx:users").await.unwrap().is_some());
        });
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let cache = MemoryCache::new().with_capacity(10);
        block_on(async {
            for i in 0..25 {
                cache
                    .put(&format!("k{i:02}"), Bytes::new(), Duration::from_secs(60))
                    .await
                    .unwrap();
            }
        });
        assert!(cache.len() <= 10, "{}", cache.len());
        assert!(
            block_on(cache.get("k24")).unwrap().is_some(),
            "the newest entry stays"
        );
    }
}
