//! [`MemoryCache`]: the in-process backend, on `quick_cache`'s concurrent cache, with TTLs read
//! from a [`Clock`].

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::CacheBackend;
use crate::clock::{Clock, SystemClock};
use crate::error::CacheError;

/// An in-process [`CacheBackend`]: a sharded concurrent map (`quick_cache`) bounded in entries,
/// with a deadline per entry.
///
/// When the cache is full, a write evicts entries with a CLOCK-Pro policy, an approximation of
/// least-recently-used that also resists scans: an entry read since it was stored is kept over
/// entries written once and never read again.
///
/// Expiry follows the cache's [`Clock`] (the system clock unless [`with_clock`](Self::with_clock)
/// says otherwise): an entry is served only while the clock is before its deadline, so tests on
/// a manual clock are deterministic. An expired entry is dropped when a read finds it, when a
/// prefix purge walks the cache, or when a write needs its room.
///
/// Good for a single process, for tests and for docs; use a shared backend (Redis) when several
/// processes serve the same app.
pub struct MemoryCache {
    entries: quick_cache::sync::Cache<String, Entry>,
    capacity: usize,
    clock: Arc<dyn Clock>,
}

/// A stored value and its deadline on the cache's clock.
#[derive(Clone)]
struct Entry {
    value: Bytes,
    expires: Instant,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires > now
    }
}

impl MemoryCache {
    /// The default bound on entries.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty cache with the default capacity and the system clock.
    pub fn new() -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(Self::DEFAULT_CAPACITY),
            capacity: Self::DEFAULT_CAPACITY,
            clock: Arc::new(SystemClock),
        }
    }

    /// Bounds the number of entries (at least 1). Entries already stored are kept, up to the new
    /// bound.
    ///
    /// The bound is split evenly over the map's shards (up to four per CPU, each with room for at
    /// least 32 entries), so a shard that gets more than its share of keys starts evicting a little before
    /// the whole cache holds `capacity` entries.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        // A new map rather than a resize, so that its shards are sized for the new bound.
        let entries = quick_cache::sync::Cache::new(self.capacity);
        for (key, entry) in self.entries.iter() {
            entries.insert(key, entry);
        }
        self.entries = entries;
        self
    }

    /// Reads time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many entries are stored (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value under `key` if it is live at `now`; an expired entry is dropped.
    fn live(&self, key: &str, now: Instant) -> Option<Bytes> {
        let entry = self.entries.get(key)?;
        if entry.is_live(now) {
            return Some(entry.value);
        }
        // Only if it is still the expired entry: a concurrent write may have replaced it.
        self.entries.remove_if(key, |entry| !entry.is_live(now));
        None
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
        Ok(self.live(key, self.clock.now()))
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        if ttl.is_zero() {
            // Nothing to keep: the previous value is replaced by nothing.
            self.entries.remove(key);
            return Ok(());
        }
        let now = self.clock.now();
        let expires = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.entries
            .insert(key.to_owned(), Entry { value, expires });
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let now = self.clock.now();
        Ok(self
            .entries
            .remove(key)
            .is_some_and(|(_, entry)| entry.is_live(now)))
    }

    async fn delete_by_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        let now = self.clock.now();
        let live = Cell::new(0);
        // One walk over the map: it drops the prefix's entries and, on the way, every expired one.
        self.entries.retain(|key, entry| {
            let is_live = entry.is_live(now);
            if key.starts_with(prefix) {
                live.set(live.get() + u64::from(is_live));
                return false;
            }
            is_live
        });
        Ok(live.get())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, CacheError> {
        // Every key is judged at one instant of the cache's clock, and read in the order given.
        let now = self.clock.now();
        Ok(keys.iter().map(|key| self.live(key, now)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{block_on, ManualClock};

    fn put(cache: &MemoryCache, key: &str, ttl: Duration) {
        block_on(cache.put(key, Bytes::from(key.to_owned()), ttl)).unwrap();
    }

    fn get(cache: &MemoryCache, key: &str) -> Option<Bytes> {
        block_on(cache.get(key)).unwrap()
    }

    const MINUTE: Duration = Duration::from_secs(60);

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
            assert_eq!(
                cache.get_many(&["a".to_owned()]).await.unwrap(),
                [None],
                "a batch read judges by the same clock"
            );
            assert!(!cache.delete("a").await.unwrap(), "an expired key is gone");
        });
    }

    #[test]
    fn a_write_sets_a_new_deadline() {
        let clock = ManualClock::new();
        let cache = MemoryCache::new().with_clock(clock.clone());
        put(&cache, "a", Duration::from_secs(10));
        clock.advance(Duration::from_secs(8));
        put(&cache, "a", Duration::from_secs(10));
        clock.advance(Duration::from_secs(8));
        assert!(get(&cache, "a").is_some(), "the rewrite's deadline counts");
        put(&cache, "a", Duration::ZERO);
        assert_eq!(get(&cache, "a"), None, "a zero TTL leaves nothing");
    }

    #[test]
    fn the_longest_ttl_is_accepted() {
        let cache = MemoryCache::new();
        put(&cache, "forever", Duration::MAX);
        assert!(get(&cache, "forever").is_some());
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
    fn delete_by_prefix_counts_only_live_entries() {
        let clock = ManualClock::new();
        let cache = MemoryCache::new().with_clock(clock.clone());
        put(&cache, "ctx:a:short", Duration::from_secs(1));
        put(&cache, "ctx:a:long", MINUTE);
        clock.advance(Duration::from_secs(2));
        assert_eq!(block_on(cache.delete_by_prefix("ctx:a:")).unwrap(), 1);
        assert_eq!(get(&cache, "ctx:a:long"), None);
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let cache = MemoryCache::new().with_capacity(10);
        for i in 0..25 {
            put(&cache, &format!("k{i:02}"), MINUTE);
        }
        assert!(cache.len() <= 10, "{}", cache.len());
        assert!(get(&cache, "k24").is_some(), "the newest entry stays");
    }

    #[test]
    fn a_full_cache_keeps_an_entry_in_use_over_one_off_writes() {
        let cache = MemoryCache::new().with_capacity(100);
        // "a" sorts first: eviction in key order would take it at the first overflow.
        put(&cache, "a", MINUTE);
        for i in 0..1_000 {
            put(&cache, &format!("b{i:04}"), MINUTE);
            assert!(get(&cache, "a").is_some(), "evicted after {i} writes");
        }
        assert!(cache.len() <= 100, "{}", cache.len());
        assert!(get(&cache, "b0999").is_some(), "the newest entry stays");
    }

    #[test]
    fn expired_entries_are_dropped_when_read_or_walked() {
        let clock = ManualClock::new();
        let cache = MemoryCache::new().with_clock(clock.clone());
        for key in ["ctx:a:1", "ctx:b:1", "gen:a"] {
            put(&cache, key, Duration::from_secs(1));
        }
        put(&cache, "ctx:b:2", MINUTE);
        clock.advance(Duration::from_secs(2));
        assert_eq!(get(&cache, "gen:a"), None);
        assert_eq!(cache.len(), 3, "the expired entry that was read is gone");
        assert_eq!(block_on(cache.delete_by_prefix("ctx:a:")).unwrap(), 0);
        assert_eq!(cache.len(), 1, "the walk dropped every expired entry");
        assert!(get(&cache, "ctx:b:2").is_some());
    }

    #[test]
    fn a_new_capacity_keeps_the_entries() {
        let cache = MemoryCache::new();
        put(&cache, "a", MINUTE);
        let cache = cache.with_capacity(5);
        assert_eq!(get(&cache, "a"), Some(Bytes::from_static(b"a")));
        assert_eq!(cache.len(), 1);
    }
}
