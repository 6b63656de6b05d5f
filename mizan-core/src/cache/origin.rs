//! How the dispatcher uses a [`CacheBackend`] for context bundles without ever serving a bundle
//! computed before a mutation that has returned.
//!
//! # The race, and the epochs that close it
//!
//! Deleting entries on mutation is not enough: a fetch that read the data *before* a mutation
//! committed can finish executing *after* the mutation's purge and store its old bundle, which
//! would then be served until its TTL runs out.
//!
//! So every context has *epochs*: small values in the backend under `gen:{context}` (broad),
//! `gen:{context}:{hmac}` (one per scope a mutation can target, e.g. `user_id=5`) and
//! `gen:{context}:~{names}` (bumped by every scoped mutation over those names, read by fetches
//! that do not carry all of them, e.g. an optional param left out). They are
//! read together with the entry (one `get_many`), and a fetch stores its bundle *stamped* with
//! the epochs it read **before executing**. A mutation, after its function succeeded and before
//! it returns, writes a fresh epoch for each target. An entry is served only when its stamp
//! equals the current epochs, so:
//!
//! - a fetch that started before the mutation's epoch write carries the old stamp, and whatever
//!   it stores is never served after that write;
//! - a fetch that read the new epoch started after the mutation's data was committed.
//!
//! The entries themselves are then deleted as far as that can be exact (every entry of the
//! context for a broad target; the one unscoped key for a scoped target); other stale entries
//! (extra params, per-user entries) are unreachable and expire with their TTL, which is never
//! longer than an epoch's.
//!
//! A missing epoch is never taken as a known state: the backend may have evicted it after a
//! mutation wrote it. A fetch that finds one missing writes a fresh epoch before executing and
//! stamps with that, so nothing stored earlier can match.
//!
//! # Lost purges, and the window that remains
//!
//! When writing an epoch fails, the context is marked *dirty* in this process: its reads skip the
//! cache (execute, do not store) until the purge is re-applied by writing a fresh broad epoch
//! `gen:{context}`, which covers every scope of the context (written late, it only invalidates
//! more, which is safe). This process retries before each of its own cache operations and
//! whenever the app calls `Mizan::retry_lost_purges`, meant for a timer (the demo runs it every
//! 50 ms) so that an idle instance retries too. A purge lost while a retry is under way keeps the
//! context dirty.
//!
//! A write reported as failed may still land (a frozen Redis applies a timed-out `SET` when it
//! resumes); that is harmless. When it never lands, *another* process sharing the backend could
//! serve a bundle computed before the mutation, because the entry's stamp still matches the
//! epochs in the backend. Two rules keep that window small:
//!
//! - the losing process retries as said above: with a timer of period `P`, its retry lands at
//!   most `P` + the time its backend client needs to be usable again + one round trip after the
//!   backend answers it again. For `RedisCache` that client delay is its fail-fast cool-off
//!   after a timeout (at most one command timeout, 250 ms by default) or its reconnect backoff
//!   after a dropped connection (at most 1 s);
//! - *outage grace*: a process whose own backend operation failed does not trust the cache
//!   (executes, stores nothing) until that failure is older than the grace (2 s by default,
//!   `MizanBuilder::with_cache_outage_grace`). An outage that every process sees (Redis frozen,
//!   killed, restarted) thus leaves each of them the grace to re-apply what it lost before
//!   anyone serves from the cache again.
//!
//! So another process can serve a pre-mutation bundle only while all of these hold:
//!
//! 1. the entry was stored before the mutation and has not expired (TTL: the context's `cache`
//!    hint, at most the app's max TTL);
//! 2. the backend answers that process, and its own last backend failure is older than the
//!    grace;
//! 3. the losing process's retry has not landed.
//!
//! By fault, with `P` = 50 ms and the default grace:
//!
//! - Redis frozen (`SIGSTOP`) and resumed, or killed and restarted (empty, or from a snapshot):
//!   no window for a process whose last failed cache operation came less than grace − (`P` +
//!   client delay) before Redis answered again (1.7 s after a freeze, 0.95 s after a restart),
//!   which any process with steady traffic satisfies; a process quiet at the end of the outage
//!   has too short a grace, and can serve the old bundle until the retry lands. (A restart that
//!   comes back empty still counts: the other processes refill the cache with fresh epochs
//!   while the losing one is still reconnecting and loses the purges of new mutations.)
//! - a partition cutting only the losing process off the backend, or a command timeout of that
//!   process alone (a slow answer, its own CPU starved): the other processes saw no failure, so
//!   the window is the whole partition (the cool-off, for a lone timeout) + `P` + one round
//!   trip;
//! - the losing process exits before its retry lands (the dirty set lives in its memory): until
//!   the entry's TTL runs out.
//!
//! The chaos run (`scripts/chaos.sh`, three instances under load, Redis frozen, killed and
//! restarted) measures the retries landing 5–285 ms after a resume and 604–1005 ms after
//! a restart, and 0 stale reads; without the grace it saw 17.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::key::{write_message, CacheKeyer};
use super::CacheBackend;
use crate::clock::{Clock, SystemClock};
use crate::secret::Secret;

/// Parameter names → string forms, sorted.
pub(crate) type ParamStrings = BTreeMap<String, String>;

/// The origin cache of an app: a backend, the keyed key deriver, and the epoch bookkeeping.
pub(crate) struct OriginCache {
    backend: Arc<dyn CacheBackend>,
    keyer: CacheKeyer,
    max_ttl: Duration,
    /// Contexts whose purge was lost → the number of the last failure, so that a retry clears
    /// only the failures it covered (one that happens during the retry stays dirty).
    dirty: Mutex<HashMap<String, u64>>,
    dirty_seq: AtomicU64,
    /// When this process's last backend operation failed.
    last_failure: Mutex<Option<Instant>>,
    outage_grace: Duration,
    clock: Arc<dyn Clock>,
    epoch_seed: u64,
    epoch_counter: AtomicU64,
}

/// The keys one context fetch reads.
pub(crate) struct FetchPlan<'a> {
    context: &'a str,
    /// The entry's key, then the epochs' keys: read in this order with one `get_many`.
    keys: Vec<String>,
}

impl FetchPlan<'_> {
    fn entry_key(&self) -> &str {
        &self.keys[0]
    }

    fn epoch_keys(&self) -> &[String] {
        &self.keys[1..]
    }
}

/// The epochs a fetch read before executing.
pub(crate) struct Stamp(Bytes);

/// What a lookup found.
pub(crate) enum Lookup {
    /// A current entry: serve these bytes.
    Hit(Bytes),
    /// No current entry; store the result with this stamp (`None`: do not store).
    Miss(Option<Stamp>),
}

impl OriginCache {
    pub(crate) fn new(backend: Arc<dyn CacheBackend>, secret: Secret, max_ttl: Duration) -> Self {
        Self {
            backend,
            keyer: CacheKeyer::new(secret.expose()),
            max_ttl,
            dirty: Mutex::default(),
            dirty_seq: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            outage_grace: Self::DEFAULT_OUTAGE_GRACE,
            clock: Arc::new(SystemClock),
            epoch_seed: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
            epoch_counter: AtomicU64::new(0),
        }
    }

    /// How long after a backend failure of its own a process does not trust cached bundles.
    pub(crate) const DEFAULT_OUTAGE_GRACE: Duration = Duration::from_secs(2);

    /// Sets the outage grace, and the clock it is measured with.
    pub(crate) fn with_outage_grace(mut self, grace: Duration, clock: Arc<dyn Clock>) -> Self {
        self.outage_grace = grace;
        self.clock = clock;
        self
    }

    /// Records a failed backend operation (for the outage grace).
    fn failed(&self) {
        let now = self.clock.now();
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
    }

    /// Whether the last backend failure of this process is more recent than the outage grace.
    fn in_outage_grace(&self) -> bool {
        let last = *self.last_failure.lock().unwrap_or_else(|p| p.into_inner());
        last.is_some_and(|at| self.clock.now().saturating_duration_since(at) < self.outage_grace)
    }

    pub(crate) fn max_ttl(&self) -> Duration {
        self.max_ttl
    }

    /// The keys of a fetch of `context` with `params` (string forms of the declared params
    /// present), by `user` when the context is user-scoped, at revision `rev`. `scopes` are the
    /// parameter sets mutations of this context can be scoped by.
    pub(crate) fn plan<'a>(
        &self,
        context: &'a str,
        params: &ParamStrings,
        user: Option<&str>,
        rev: u64,
        scopes: &[Vec<String>],
    ) -> FetchPlan<'a> {
        let mut keys = Vec::with_capacity(2 + scopes.len());
        keys.push(self.keyer.key_of_sorted(context, pairs(params), user, rev));
        keys.push(["gen:", context].concat());
        for scope in scopes {
            // The scope's names and their values, sorted by name, if every one has a value.
            let mut values: Vec<(&str, &str)> = Vec::with_capacity(scope.len());
            for name in scope {
                match params.get(name) {
                    Some(value) => values.push((name, value)),
                    None => break,
                }
            }
            keys.push(if values.len() == scope.len() {
                values.sort_unstable_by_key(|&(name, _)| name);
                values.dedup_by_key(|&mut (name, _)| name);
                self.scoped_epoch_key(context, values.into_iter())
            } else {
                names_epoch_key(context, scope.iter().map(String::as_str))
            });
        }
        FetchPlan { context, keys }
    }

    /// The epoch of `context` scoped by `values` (sorted by name, distinct).
    fn scoped_epoch_key<'a>(
        &self,
        context: &str,
        values: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> String {
        let message = write_message(context, values, None, 0);
        self.keyer.signed_key("gen", context, message.as_bytes())
    }

    fn dirty(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.dirty.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_dirty(&self, context: &str) -> bool {
        self.dirty().contains_key(context)
    }

    /// How many contexts have a lost purge.
    pub(crate) fn dirty_count(&self) -> usize {
        self.dirty().len()
    }

    /// Records that a purge of `context` was lost.
    fn mark_dirty(&self, context: &str) {
        let seq = self.dirty_seq.fetch_add(1, Ordering::Relaxed);
        self.dirty().insert(context.to_owned(), seq);
    }

    /// Retries the broad epoch write of every context whose purge was lost; how many contexts
    /// still have a lost purge afterwards.
    ///
    /// A fresh broad epoch makes every entry of the context unreachable, whatever scope the lost
    /// purge had; writing it late only invalidates more, which is safe.
    pub(crate) async fn flush_dirty(&self) -> usize {
        let dirty: Vec<(String, u64)> = {
            let dirty = self.dirty();
            if dirty.is_empty() {
                return 0;
            }
            dirty.iter().map(|(c, seq)| (c.clone(), *seq)).collect()
        };
        for (context, seq) in dirty {
            if self.write_epoch(&format!("gen:{context}")).await.is_some() {
                // A purge lost while this write was under way is not covered by it (its data
                // may have committed after the write): keep that one.
                let mut dirty = self.dirty();
                if dirty.get(&context) == Some(&seq) {
                    dirty.remove(&context);
                }
            }
        }
        self.dirty().len()
    }

    /// Reads the entry and the current epochs.
    pub(crate) async fn lookup(&self, plan: &FetchPlan<'_>) -> Lookup {
        // Lost purges are rare, and so are missing epochs: their writes run boxed, so that the
        // future of every lookup is not as large as theirs.
        if self.dirty_count() > 0 {
            Box::pin(self.flush_dirty()).await;
        }
        if self.is_dirty(plan.context) || self.in_outage_grace() {
            // A purge of ours is still lost, or the backend failed us a moment ago and another
            // process may have lost one: skip the cache.
            return Lookup::Miss(None);
        }
        let values = match self.backend.get_many(&plan.keys).await {
            Ok(values) if values.len() == plan.keys.len() => values,
            Ok(_) => {
                tracing::warn!(context = %plan.context, "mizan: cache backend returned a short batch; executing");
                self.failed();
                return Lookup::Miss(None);
            }
            Err(err) => {
                tracing::warn!(context = %plan.context, error = %err, "mizan: cache read failed; executing");
                self.failed();
                return Lookup::Miss(None);
            }
        };
        let mut values = values.into_iter();
        let entry = values.next().flatten();
        let mut epochs = Vec::with_capacity(plan.epoch_keys().len());
        for (key, epoch) in plan.epoch_keys().iter().zip(values) {
            match epoch {
                Some(epoch) => epochs.push(epoch),
                // Missing (never written, or evicted after a mutation): start a new epoch, so
                // that no entry stored before can match.
                None => match Box::pin(self.write_epoch(key)).await {
                    Some(epoch) => epochs.push(epoch),
                    None => return Lookup::Miss(None),
                },
            }
        }
        let stamp = Stamp::from_epochs(epochs);
        match entry.and_then(|entry| split_entry(&entry)) {
            Some((stored, bundle)) if stored == stamp.0 => Lookup::Hit(bundle),
            _ => Lookup::Miss(Some(stamp)),
        }
    }

    /// Stores a bundle computed after `stamp` was read.
    pub(crate) async fn store(
        &self,
        plan: &FetchPlan<'_>,
        stamp: Stamp,
        bundle: &Bytes,
        ttl: Duration,
    ) {
        let mut value = BytesMut::with_capacity(4 + stamp.0.len() + bundle.len());
        value.put_u32(stamp.0.len() as u32);
        value.put_slice(&stamp.0);
        value.put_slice(bundle);
        let ttl = ttl.min(self.max_ttl);
        if let Err(err) = self
            .backend
            .put(plan.entry_key(), value.freeze(), ttl)
            .await
        {
            tracing::warn!(context = %plan.context, error = %err, "mizan: cache write failed; dropped");
            self.failed();
        }
    }

    /// Makes every entry that `scope` of `context` covers unreachable, then deletes what can be
    /// deleted exactly. `scope` is `None` for a broad target.
    pub(crate) async fn invalidate(&self, context: &str, scope: Option<&ParamStrings>, rev: u64) {
        self.flush_dirty().await;
        let epoch_keys = match scope {
            None => vec![format!("gen:{context}")],
            Some(values) => vec![
                self.scoped_epoch_key(context, pairs(values)),
                names_epoch_key(context, values.keys().map(String::as_str)),
            ],
        };
        for key in epoch_keys {
            if self.write_epoch(&key).await.is_none() {
                self.mark_dirty(context);
            }
        }
        let cleanup = match scope {
            None => self
                .backend
                .delete_by_prefix(&format!("ctx:{context}:"))
                .await
                .map(drop),
            Some(values) => {
                let key = self.keyer.key_of_sorted(context, pairs(values), None, rev);
                self.backend.delete(&key).await.map(drop)
            }
        };
        if let Err(err) = cleanup {
            // Harmless for correctness: the new epoch already makes the entries unreachable.
            tracing::warn!(context, error = %err, "mizan: cache purge failed; entries expire by TTL");
            self.failed();
        }
    }

    /// Writes a fresh epoch value; the value, if the write succeeded.
    async fn write_epoch(&self, key: &str) -> Option<Bytes> {
        let n = self.epoch_counter.fetch_add(1, Ordering::Relaxed);
        let epoch = Bytes::from(format!("{:016x}{n:x}", self.epoch_seed));
        match self.backend.put(key, epoch.clone(), self.max_ttl).await {
            Ok(()) => Some(epoch),
            Err(err) => {
                tracing::warn!(key, error = %err, "mizan: cache epoch write failed");
                self.failed();
                None
            }
        }
    }
}

/// The names and values of `params`, as `&str`s, in the map's order (sorted, distinct).
fn pairs(params: &ParamStrings) -> impl ExactSizeIterator<Item = (&str, &str)> {
    params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
}

/// The epoch every scoped mutation over `names` bumps, whatever the values.
fn names_epoch_key<'a>(context: &str, names: impl Iterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    format!("gen:{context}:~{}", names.join(","))
}

impl Stamp {
    fn from_epochs(mut epochs: Vec<Bytes>) -> Self {
        // Most contexts have one epoch: its bytes are the stamp, not copied.
        match epochs.len() {
            1 => Self(epochs.pop().unwrap_or_default()),
            _ => Self(Bytes::from(epochs.join(&b","[..]))),
        }
    }
}

/// Splits a stored value into its stamp and bundle.
fn split_entry(entry: &Bytes) -> Option<(Bytes, Bytes)> {
    let len = u32::from_be_bytes(entry.get(..4)?.try_into().ok()?) as usize;
    let end = len.checked_add(4).filter(|&end| end <= entry.len())?;
    Some((entry.slice(4..end), entry.slice(end..)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;
    use crate::testing::block_on;

    fn cache() -> OriginCache {
        OriginCache::new(
            Arc::new(MemoryCache::new()),
            Secret::new("0123456789abcdef-cache"),
            Duration::from_secs(3600),
        )
    }

    fn params(pairs: &[(&str, &str)]) -> ParamStrings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn a_fetch_that_straddles_a_mutation_never_stores_a_servable_bundle() {
        let cache = cache();
        let scopes = vec![vec!["user_id".to_owned()]];
        let p = params(&[("user_id", "5")]);
        block_on(async {
            let plan = cache.plan("user", &p, None, 0, &scopes);
            // The fetch reads its stamp, then executes (reading old data)...
            let Lookup::Miss(Some(stamp)) = cache.lookup(&plan).await else {
                panic!("miss")
            };
            // ...meanwhile a scoped mutation commits and invalidates...
            cache
                .invalidate("user", Some(&params(&[("user_id", "5")])), 0)
                .await;
            // ...and only then does the fetch store its old bundle.
            cache
                .store(&plan, stamp, &Bytes::from_static(b"old"), TTL)
                .await;
            assert!(
                matches!(cache.lookup(&plan).await, Lookup::Miss(Some(_))),
                "old bundle served"
            );

            // A fetch after the mutation stores a bundle that is served.
            let Lookup::Miss(Some(stamp)) = cache.lookup(&plan).await else {
                panic!("miss")
            };
            cache
                .store(&plan, stamp, &Bytes::from_static(b"new"), TTL)
                .await;
            assert!(matches!(cache.lookup(&plan).await, Lookup::Hit(b) if b == "new"));
        });
    }

    #[test]
    fn scoped_invalidation_covers_extra_params_and_users_but_not_other_scopes() {
        let cache = cache();
        let scopes = vec![vec!["user_id".to_owned()]];
        block_on(async {
            let mut plans = Vec::new();
            for (uid, tab, user) in [
                ("5", "a", Some("1")),
                ("5", "b", None),
                ("6", "a", Some("1")),
            ] {
                let plan = cache.plan(
                    "user",
                    &params(&[("user_id", uid), ("tab", tab)]),
                    user,
                    0,
                    &scopes,
                );
                let Lookup::Miss(Some(stamp)) = cache.lookup(&plan).await else {
                    panic!()
                };
                cache
                    .store(&plan, stamp, &Bytes::from_static(b"x"), TTL)
                    .await;
                assert!(matches!(cache.lookup(&plan).await, Lookup::Hit(_)));
                plans.push(plan);
            }
            cache
                .invalidate("user", Some(&params(&[("user_id", "5")])), 0)
                .await;
            assert!(matches!(cache.lookup(&plans[0]).await, Lookup::Miss(_)));
            assert!(matches!(cache.lookup(&plans[1]).await, Lookup::Miss(_)));
            assert!(
                matches!(cache.lookup(&plans[2]).await, Lookup::Hit(_)),
                "user 6 untouched"
            );

            cache.invalidate("user", None, 0).await;
            assert!(
                matches!(cache.lookup(&plans[2]).await, Lookup::Miss(_)),
                "broad covers all"
            );
        });
    }

    #[test]
    fn an_evicted_epoch_never_makes_an_old_entry_current_again() {
        let backend = Arc::new(MemoryCache::new());
        let cache = OriginCache::new(backend.clone(), Secret::new("0123456789abcdef-cache"), TTL);
        block_on(async {
            let plan = cache.plan("catalog", &params(&[]), None, 0, &[]);
            let Lookup::Miss(Some(stamp)) = cache.lookup(&plan).await else {
                panic!()
            };
            cache
                .store(&plan, stamp, &Bytes::from_static(b"old"), TTL)
                .await;
            cache.invalidate("catalog", None, 0).await;
            // The purge of the entry was lost, and then the epoch was evicted.
            let Lookup::Miss(Some(stamp)) = cache.lookup(&plan).await else {
                panic!()
            };
            cache
                .store(&plan, stamp, &Bytes::from_static(b"old again"), TTL)
                .await;
            backend.delete_by_prefix("gen:").await.unwrap();
            assert!(matches!(cache.lookup(&plan).await, Lookup::Miss(Some(_))));
        });
    }

    #[test]
    fn a_fetch_without_the_scoped_param_is_covered_by_any_scoped_mutation() {
        let cache = cache();
        let scopes = vec![vec!["user_id".to_owned()]];
        block_on(async {
            let plan = cache.plan("user", &params(&[]), None, 0, &scopes);
            let Lookup::Miss(Some(stamp)) = cache.lookup(&plan).await else {
                panic!()
            };
            cache
                .store(&plan, stamp, &Bytes::from_static(b"all users"), TTL)
                .await;
            assert!(matches!(cache.lookup(&plan).await, Lookup::Hit(_)));
            cache
                .invalidate("user", Some(&params(&[("user_id", "9")])), 0)
                .await;
            assert!(matches!(cache.lookup(&plan).await, Lookup::Miss(_)));
        });
    }

    /// A backend that can be down, and can run a hook during the next `put` (to play something
    /// that happens while a write is under way).
    #[derive(Default)]
    struct Flaky {
        inner: MemoryCache,
        down: std::sync::atomic::AtomicBool,
        during_put: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    }

    impl Flaky {
        fn check(&self) -> Result<(), crate::CacheError> {
            match self.down.load(Ordering::SeqCst) {
                true => Err(crate::CacheError::Timeout),
                false => Ok(()),
            }
        }
    }

    #[async_trait::async_trait]
    impl CacheBackend for Flaky {
        async fn get(&self, key: &str) -> Result<Option<Bytes>, crate::CacheError> {
            self.check()?;
            self.inner.get(key).await
        }
        async fn put(
            &self,
            key: &str,
            value: Bytes,
            ttl: Duration,
        ) -> Result<(), crate::CacheError> {
            self.check()?;
            let hook = self.during_put.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
            self.inner.put(key, value, ttl).await
        }
        async fn delete(&self, key: &str) -> Result<bool, crate::CacheError> {
            self.check()?;
            self.inner.delete(key).await
        }
        async fn delete_by_prefix(&self, prefix: &str) -> Result<u64, crate::CacheError> {
            self.check()?;
            self.inner.delete_by_prefix(prefix).await
        }
    }

    /// Caches `catalog` and returns its plan.
    async fn cached_catalog(cache: &OriginCache) -> FetchPlan<'static> {
        let plan = cache.plan("catalog", &params(&[]), None, 0, &[]);
        let Lookup::Miss(Some(stamp)) = cache.lookup(&plan).await else {
            panic!("miss")
        };
        cache
            .store(&plan, stamp, &Bytes::from_static(b"old"), TTL)
            .await;
        assert!(matches!(cache.lookup(&plan).await, Lookup::Hit(_)));
        plan
    }

    #[test]
    fn a_lost_purge_is_reapplied_by_a_retry_without_any_other_operation() {
        let backend = Arc::new(Flaky::default());
        let one = cache_on(backend.clone());
        // Another instance on the same backend.
        let two = cache_on(backend.clone());
        block_on(async {
            let plan = cached_catalog(&two).await;
            backend.down.store(true, Ordering::SeqCst);
            one.invalidate("catalog", None, 0).await;
            assert_eq!(one.dirty_count(), 1, "lost");
            assert_eq!(one.flush_dirty().await, 1, "still down: still lost");
            backend.down.store(false, Ordering::SeqCst);
            // The window: until instance one retries, instance two serves the old entry.
            assert!(matches!(two.lookup(&plan).await, Lookup::Hit(_)));
            assert_eq!(one.flush_dirty().await, 0, "re-applied");
            assert!(matches!(two.lookup(&plan).await, Lookup::Miss(Some(_))));
        });
    }

    #[test]
    fn a_purge_lost_while_a_retry_is_under_way_stays_lost() {
        let backend = Arc::new(Flaky::default());
        let one = Arc::new(cache_on(backend.clone()));
        block_on(async {
            backend.down.store(true, Ordering::SeqCst);
            one.invalidate("catalog", None, 0).await;
            backend.down.store(false, Ordering::SeqCst);
            // While the retry's epoch write is under way, another purge of the context is lost
            // (its data may have changed after that write).
            let again = Arc::clone(&one);
            *backend.during_put.lock().unwrap() = Some(Box::new(move || {
                again.mark_dirty("catalog");
            }));
            assert_eq!(one.flush_dirty().await, 1, "the later loss is kept");
            assert_eq!(one.flush_dirty().await, 0);
        });
    }

    #[test]
    fn after_its_own_backend_failure_a_process_does_not_trust_the_cache_for_the_grace() {
        use crate::testing::ManualClock;
        let backend = Arc::new(Flaky::default());
        let clock = ManualClock::new();
        let grace = Duration::from_secs(2);
        let one = cache_on(backend.clone());
        let two = cache_on(backend.clone()).with_outage_grace(grace, Arc::new(clock.clone()));
        block_on(async {
            let plan = cached_catalog(&two).await;
            // An outage that both see: one loses its purge, two's read fails.
            backend.down.store(true, Ordering::SeqCst);
            one.invalidate("catalog", None, 0).await;
            assert!(matches!(two.lookup(&plan).await, Lookup::Miss(None)));
            backend.down.store(false, Ordering::SeqCst);
            // The backend is back, one has not retried yet: two still executes, and stores
            // nothing.
            clock.advance(Duration::from_millis(1500));
            assert!(matches!(two.lookup(&plan).await, Lookup::Miss(None)));
            assert_eq!(one.flush_dirty().await, 0);
            clock.advance(Duration::from_millis(600));
            assert!(
                matches!(two.lookup(&plan).await, Lookup::Miss(Some(_))),
                "past the grace, the cache is used again, and the old entry is gone"
            );
        });
    }

    fn cache_on(backend: Arc<Flaky>) -> OriginCache {
        OriginCache::new(backend, Secret::new("0123456789abcdef-cache"), TTL)
    }
}
