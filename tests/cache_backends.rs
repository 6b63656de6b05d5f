//! The cache backend suite, written once and run against every backend: `MemoryCache`,
//! `RedisCache` (on a real `redis-server` that each test starts on a free loopback port),
//! `RedisCache` on a real six-node Redis Cluster (started by each test), and `NearCache` (the
//! in-process L1) in front of Redis.
//!
//! 1. The `CacheBackend` contract: reads, writes, expiry, deletes, literal prefix purges,
//!    batches, large values, many keys, many tasks.
//! 2. Never stale: a real `Mizan` app on the backend, driven by `TestClient` from concurrent
//!    tasks, never serves a bundle older than a mutation that has returned.
//! 3. Redis only: the key prefix, and faults (a stopped, restarted and paused server), where every
//!    request still succeeds with correct data within a bound, and the cache comes back by itself.
//! 4. Redis Cluster only: keys on every master, one `get_many` across slots, purges on every
//!    master, a killed master failing over and a paused one, with the same bounds and recovery.
//! 5. `NearCache` only: two instances with their own L1 never serve a bundle older than a
//!    mutation returned on the other (without any bus), the bus trims the L1 and a resync
//!    empties it, and the L1 never keeps a bundle longer than Redis does.
//!
//! A new backend gets parts 1 and 2 by adding a module to the `on_every_backend!` invocation.

#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mizan_cache_redis::{NearCache, RedisCache};
use mizan_core::testing::{block_on, TestClient};
use mizan_core::{ApiError, CacheBackend, CacheError, Function, Identity, MemoryCache, Mizan};
use redis_cluster::RedisCluster;
use redis_server::RedisServer;
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn put(cache: &impl CacheBackend, key: &str, value: &str) {
    cache.put(key, bytes(value), MINUTE).await.expect("put");
}

async fn get(cache: &impl CacheBackend, key: &str) -> Option<Bytes> {
    cache.get(key).await.expect("get")
}

/// Runs each test function (async, taking the backend) once per backend.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    // Room for the 100k-key test and its neighbours (the default bound is 100k).
                    super::$test(super::MemoryCache::new().with_capacity(1 << 20)).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let server = super::RedisServer::start();
                    super::$test(super::contract_redis(&server).await).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let cluster = super::RedisCluster::start();
                    super::$test(super::contract_cluster(&cluster).await).await;
                }
            )*
        }
        mod near_cache {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let server = super::RedisServer::start();
                    let redis = super::contract_redis(&server).await;
                    super::$test(super::NearCache::builder(redis).build()).await;
                }
            )*
        }
    };
}

on_every_backend!(
    put_get_overwrite_and_miss,
    entries_expire_after_their_ttl,
    delete_says_whether_the_key_existed,
    prefix_purges_take_glob_characters_literally,
    prefix_purges_count_what_they_removed,
    get_many_answers_in_the_order_asked,
    large_values_round_trip,
    a_hundred_thousand_keys_go_with_one_prefix_purge,
    many_tasks_share_one_backend,
    fetches_never_see_data_older_than_a_returned_mutation,
    scoped_purges_cover_extra_params_and_per_user_entries,
);

/// A `RedisCache` for the contract tests. Its timeout is generous so that a debug build on a
/// busy machine does not fail a contract test; the fault tests below use the default.
async fn contract_redis(server: &RedisServer) -> RedisCache {
    let builder = RedisCache::builder(server.url()).with_timeout(Duration::from_secs(5));
    builder.build().await.expect("connect to the test server")
}

/// A `RedisCache` on a cluster for the contract tests, with the same generous timeout.
async fn contract_cluster(cluster: &RedisCluster) -> RedisCache {
    let builder = RedisCache::builder_cluster(cluster.urls()).with_timeout(Duration::from_secs(5));
    let cache = builder.build().await.expect("connect to the test cluster");
    assert!(cache.is_cluster());
    cache
}

// ---------------------------------------------------------------------------
// 1. The CacheBackend contract
// ---------------------------------------------------------------------------

async fn put_get_overwrite_and_miss(cache: impl CacheBackend) {
    assert_eq!(get(&cache, "k").await, None);
    put(&cache, "k", "one").await;
    assert_eq!(get(&cache, "k").await, Some(bytes("one")));
    put(&cache, "k", "two").await;
    assert_eq!(get(&cache, "k").await, Some(bytes("two")));
    put(&cache, "empty", "").await;
    assert_eq!(
        get(&cache, "empty").await,
        Some(Bytes::new()),
        "empty is not a miss"
    );
    let binary = Bytes::from_static(b"\x00\xff\r\n$-1\r\n");
    cache.put("bin", binary.clone(), MINUTE).await.unwrap();
    assert_eq!(get(&cache, "bin").await, Some(binary));
    assert_eq!(get(&cache, "K").await, None, "keys are case-sensitive");
}

async fn entries_expire_after_their_ttl(cache: impl CacheBackend) {
    let second = Duration::from_secs(1);
    cache.put("short", bytes("s"), second).await.unwrap();
    put(&cache, "long", "l").await;
    put(&cache, "zeroed", "old").await;
    cache
        .put("zeroed", bytes("new"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        get(&cache, "zeroed").await,
        None,
        "a zero TTL leaves nothing"
    );
    assert_eq!(get(&cache, "short").await, Some(bytes("s")));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(get(&cache, "short").await, None);
    assert!(
        !cache.delete("short").await.unwrap(),
        "an expired key is gone"
    );
    assert_eq!(get(&cache, "long").await, Some(bytes("l")));
}

async fn delete_says_whether_the_key_existed(cache: impl CacheBackend) {
    put(&cache, "a", "1").await;
    put(&cache, "b", "2").await;
    assert!(cache.delete("a").await.unwrap());
    assert!(!cache.delete("a").await.unwrap());
    assert!(!cache.delete("never").await.unwrap());
    assert_eq!(get(&cache, "a").await, None);
    assert_eq!(get(&cache, "b").await, Some(bytes("2")));
}

async fn prefix_purges_take_glob_characters_literally(cache: impl CacheBackend) {
    let keys = [
        "ctx:a*:1",
        "ctx:a*:2",
        "ctx:ab:1",
        "ctx:a?:1",
        "ctx:ax:1",
        "ctx:[ab]:1",
        "ctx:a:1",
        "ctx:b:1",
        r"ctx:\:1",
        "ctx::1",
        "ctx:]:1",
        "ctx:x]:1",
    ];
    for key in keys {
        put(&cache, key, key).await;
    }
    // Each purge names a prefix that, read as a glob, would also match the key after it.
    let purges = [
        ("ctx:a*:", 2, "ctx:ab:1"),
        ("ctx:a?:", 1, "ctx:ax:1"),
        ("ctx:[ab]:", 1, "ctx:a:1"),
        (r"ctx:\:", 1, "ctx::1"),
        ("ctx:]:", 1, "ctx:x]:1"),
        ("ctx:nothing:", 0, "ctx:b:1"),
    ];
    for (prefix, count, survivor) in purges {
        assert_eq!(
            cache.delete_by_prefix(prefix).await.unwrap(),
            count,
            "{prefix}"
        );
        assert!(
            get(&cache, survivor).await.is_some(),
            "{prefix} took {survivor}"
        );
    }
    let mut left = BTreeSet::new();
    for key in keys {
        if get(&cache, key).await.is_some() {
            left.insert(key);
        }
    }
    let expected = [
        "ctx:ab:1", "ctx:ax:1", "ctx:a:1", "ctx:b:1", "ctx::1", "ctx:x]:1",
    ];
    assert_eq!(left, BTreeSet::from(expected));
}

async fn prefix_purges_count_what_they_removed(cache: impl CacheBackend) {
    // More keys than one SCAN batch, beside keys of a neighbouring prefix.
    for i in 0..2500 {
        put(&cache, &format!("ctx:n:{i}"), "x").await;
    }
    for i in 0..10 {
        put(&cache, &format!("ctx:nn:{i}"), "x").await;
    }
    assert_eq!(cache.delete_by_prefix("ctx:n:").await.unwrap(), 2500);
    assert_eq!(cache.delete_by_prefix("ctx:n:").await.unwrap(), 0);
    assert_eq!(get(&cache, "ctx:n:7").await, None);
    assert_eq!(cache.delete_by_prefix("ctx:nn:").await.unwrap(), 10);
}

async fn get_many_answers_in_the_order_asked(cache: impl CacheBackend) {
    put(&cache, "a", "1").await;
    put(&cache, "c", "3").await;
    let keys: Vec<String> = ["c", "b", "a", "c"].map(String::from).into();
    let values = cache.get_many(&keys).await.unwrap();
    assert_eq!(
        values,
        [Some(bytes("3")), None, Some(bytes("1")), Some(bytes("3"))]
    );
    assert_eq!(
        cache.get_many(&[]).await.unwrap(),
        Vec::<Option<Bytes>>::new()
    );
}

async fn large_values_round_trip(cache: impl CacheBackend) {
    let large: Bytes = (0..8 * 1024 * 1024_u32).map(|i| (i % 251) as u8).collect();
    cache.put("large", large.clone(), MINUTE).await.unwrap();
    assert_eq!(get(&cache, "large").await.as_deref(), Some(&large[..]));
    let many = cache.get_many(&["large".to_owned()]).await.unwrap();
    assert_eq!(many[0].as_ref().map(Bytes::len), Some(large.len()));
}

async fn a_hundred_thousand_keys_go_with_one_prefix_purge(cache: impl CacheBackend) {
    const KEYS: usize = 100_000;
    const TASKS: usize = 16;
    let cache = Arc::new(cache);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let cache = cache.clone();
        tasks.spawn(async move {
            for i in (task..KEYS).step_by(TASKS) {
                put(&*cache, &format!("ctx:big:{i}"), "v").await;
            }
        });
    }
    tasks.join_all().await;
    put(&*cache, "ctx:bigger:0", "stays").await;
    assert_eq!(
        cache.delete_by_prefix("ctx:big:").await.unwrap(),
        KEYS as u64
    );
    assert_eq!(get(&*cache, "ctx:big:99999").await, None);
    assert_eq!(get(&*cache, "ctx:bigger:0").await, Some(bytes("stays")));
}

async fn many_tasks_share_one_backend(cache: impl CacheBackend) {
    let cache = Arc::new(cache);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..32 {
        let cache = cache.clone();
        tasks.spawn(async move {
            for i in 0..50 {
                let (key, value) = (format!("task:{task}:{i}"), format!("{task}/{i}"));
                put(&*cache, &key, &value).await;
                assert_eq!(
                    get(&*cache, &key).await,
                    Some(bytes(&value)),
                    "reads its writes"
                );
                if i % 5 == 0 {
                    assert!(cache.delete(&key).await.unwrap());
                }
                put(&*cache, "shared", &value).await;
            }
        });
    }
    tasks.join_all().await;
    let shared = get(&*cache, "shared").await.expect("the shared key");
    assert!(
        String::from_utf8_lossy(&shared).ends_with("/49"),
        "a last write wins"
    );
    assert_eq!(cache.delete_by_prefix("task:").await.unwrap(), 32 * 40);
}

// ---------------------------------------------------------------------------
// 2. Never stale, through a real app
// ---------------------------------------------------------------------------

const SECRET: &str = "cache-backend-suite-secret-0123456789abcdef";

/// The app's data: a version per user, bumped by mutations, and how often the context ran.
#[derive(Clone, Default)]
struct Store {
    versions: Arc<Mutex<HashMap<i64, u64>>>,
    runs: Arc<AtomicUsize>,
}

impl Store {
    fn version(&self, user_id: i64) -> u64 {
        let versions = self.versions.lock().unwrap();
        versions.get(&user_id).copied().unwrap_or(0)
    }
    fn bump(&self, user_id: i64) -> u64 {
        let mut versions = self.versions.lock().unwrap();
        let version = versions.entry(user_id).or_default();
        *version += 1;
        *version
    }
    fn runs(&self) -> usize {
        self.runs.load(SeqCst)
    }
}

/// Context `profile` (params `user_id` and `tab`; user-scoped through `user_id`), the scoped
/// mutation `bump(user_id)` and the broad `bump_all()`.
fn profile_app(backend: impl CacheBackend) -> (Mizan, Store) {
    let store = Store::default();
    (profile_app_on(backend, &store), store)
}

/// Another instance of the app on `store`'s data.
fn profile_app_on(backend: impl CacheBackend, store: &Store) -> Mizan {
    let card = Function::new("profile_card")
        .with_context("profile")
        .with_param::<i64>("user_id")
        .with_param::<String>("tab")
        .handler(|req, mut args| async move {
            let (user_id, tab): (i64, String) = (args.take("user_id")?, args.take("tab")?);
            let store = req.state::<Store>()?.clone();
            store.runs.fetch_add(1, SeqCst);
            let version = store.version(user_id);
            // Let other tasks (a mutation) run between reading the data and returning it.
            tokio::task::yield_now().await;
            let viewer = req.identity().user_id.clone();
            Ok::<_, ApiError>(json!({"version": version, "tab": tab, "viewer": viewer}))
        });
    let bump = Function::new("bump")
        .with_affects(["profile"])
        .with_param::<i64>("user_id")
        .handler(|req, mut args| async move {
            let user_id: i64 = args.take("user_id")?;
            Ok::<_, ApiError>(req.state::<Store>()?.bump(user_id))
        });
    let bump_all =
        Function::new("bump_all")
            .with_affects(["profile"])
            .handler(|req, _args| async move {
                let store = req.state::<Store>()?;
                Ok::<_, ApiError>([store.bump(1), store.bump(2)])
            });
    let app = Mizan::builder()
        .with_state(store.clone())
        .with_function(card)
        .with_function(bump)
        .with_function(bump_all)
        .with_cache(backend)
        .with_cache_secret(SECRET)
        .build()
        .expect("a valid app");
    assert!(app.cache_enabled());
    app
}

/// The `profile` bundle of `user_id` on `tab`: its version, checking the viewer.
async fn profile(client: &TestClient, viewer: Option<&str>, user_id: i64, tab: &str) -> u64 {
    let user_id = user_id.to_string();
    let response = client
        .fetch("profile", &[("user_id", &user_id), ("tab", tab)])
        .await;
    let text = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(response.status(), 200, "{text}");
    let card = &response.json()["profile_card"];
    assert_eq!(card["tab"], tab, "{text}");
    assert_eq!(
        card["viewer"],
        json!(viewer),
        "a bundle served to the wrong identity: {text}"
    );
    card["version"].as_u64().expect("a version")
}

async fn call(client: &TestClient, function: &str, args: Value) -> Value {
    let response = client.call(function, args).await;
    let text = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(response.status(), 200, "{text}");
    response.result()
}

/// The identities the readers act as.
const VIEWERS: [Option<&str>; 3] = [None, Some("1"), Some("2")];

fn client(app: &Mizan, viewer: Option<&str>) -> TestClient {
    let client = TestClient::new(app);
    match viewer {
        Some(id) => client.with_identity(Identity::user(id)),
        None => client,
    }
}

/// Four tasks fetching `profile` bundles from one instance of the app, as every viewer, each
/// asserting it never sees a version older than the one last [`commit`](Self::commit)ted.
struct Readers {
    /// The version of each user that a returned mutation committed.
    committed: Arc<[AtomicU64; 3]>,
    stop: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
    tasks: tokio::task::JoinSet<()>,
}

impl Readers {
    /// Starts the readers on `app`, with every user's current version committed.
    fn start(app: &Mizan, store: &Store) -> Self {
        let mut readers = Self {
            committed: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            fetches: Arc::new(AtomicUsize::new(0)),
            tasks: tokio::task::JoinSet::new(),
        };
        for id in [1, 2] {
            readers.commit(store, id);
        }
        for reader in 0..4_usize {
            let (app, committed) = (app.clone(), readers.committed.clone());
            let (stop, fetches) = (readers.stop.clone(), readers.fetches.clone());
            readers.tasks.spawn(async move {
                let mut n = reader;
                while !stop.load(SeqCst) {
                    n += 1;
                    let (viewer, user_id, tab) =
                        (VIEWERS[n % 3], 1 + (n / 3) % 2, ["a", "b"][n / 6 % 2]);
                    let floor = committed[user_id].load(SeqCst);
                    let seen = profile(&client(&app, viewer), viewer, user_id as i64, tab).await;
                    assert!(
                        seen >= floor,
                        "saw version {seen} of user {user_id} after {floor} returned"
                    );
                    fetches.fetch_add(1, SeqCst);
                    // A cache hit on the memory backend never waits: give the other tasks a turn.
                    tokio::task::yield_now().await;
                }
            });
        }
        readers
    }

    /// Records user `user_id`'s version in `store` as committed by a returned mutation.
    fn commit(&self, store: &Store, user_id: usize) {
        self.committed[user_id].store(store.version(user_id as i64), SeqCst);
    }

    /// Stops the readers (failing if one of them did); how many fetches they made.
    async fn stop(self) -> usize {
        self.stop.store(true, SeqCst);
        self.tasks.join_all().await;
        self.fetches.load(SeqCst)
    }
}

async fn fetches_never_see_data_older_than_a_returned_mutation(backend: impl CacheBackend) {
    let (app, store) = profile_app(backend);
    let readers = Readers::start(&app, &store);
    let mutator = client(&app, None);
    for round in 0..40 {
        let user_id = 1 + round % 2;
        if round % 10 == 9 {
            call(&mutator, "bump_all", json!({})).await;
        } else {
            call(&mutator, "bump", json!({"user_id": user_id})).await;
        }
        for id in [1, 2] {
            readers.commit(&store, id);
        }
        let viewer = VIEWERS[round % 3];
        let seen = profile(&client(&app, viewer), viewer, user_id as i64, "a").await;
        assert_eq!(
            seen,
            store.version(user_id as i64),
            "right after the mutation returned"
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let fetches = readers.stop().await;
    assert!(fetches > 100, "the readers ran ({fetches} fetches)");
    assert!(store.runs() < fetches, "the cache served some fetches");
}

async fn scoped_purges_cover_extra_params_and_per_user_entries(backend: impl CacheBackend) {
    let (app, store) = profile_app(backend);
    let fetches = [
        (None, 1, "a"),
        (None, 1, "b"),
        (Some("1"), 1, "a"),
        (Some("2"), 1, "b"),
    ];
    let others = [(None, 2, "a"), (Some("1"), 2, "a")];
    let all = || fetches.iter().chain(&others);
    let versions = || async {
        let mut versions = Vec::new();
        for &(viewer, user_id, tab) in all() {
            versions.push(profile(&client(&app, viewer), viewer, user_id, tab).await);
        }
        versions
    };
    assert_eq!(versions().await, [0; 6]);
    assert_eq!(store.runs(), 6, "one entry per tab and per viewer");
    assert_eq!(versions().await, [0; 6]);
    assert_eq!(store.runs(), 6, "all cached");

    // `bump(user_id=1)` matches one of the context's two params: every user-1 entry, whatever
    // its tab or viewer, is refreshed; user 2's stay cached.
    assert_eq!(
        call(&client(&app, None), "bump", json!({"user_id": 1})).await,
        1
    );
    assert_eq!(versions().await, [1, 1, 1, 1, 0, 0]);
    assert_eq!(store.runs(), 10, "only the four user-1 entries ran again");
    assert_eq!(versions().await, [1, 1, 1, 1, 0, 0]);
    assert_eq!(store.runs(), 10);

    // A broad mutation refreshes everything.
    call(&client(&app, Some("2")), "bump_all", json!({})).await;
    assert_eq!(versions().await, [2, 2, 2, 2, 1, 1]);
    assert_eq!(store.runs(), 16);
}

// ---------------------------------------------------------------------------
// 3. Redis only: the prefix, any executor, and faults
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_live_under_the_prefix_which_is_taken_literally() {
    let server = RedisServer::start();
    let glob = RedisCache::builder(server.url()).with_prefix("app[1]*:");
    let glob = glob.build().await.unwrap();
    let plain = RedisCache::builder(server.url()).with_prefix("app1:");
    let plain = plain.build().await.unwrap();
    assert_eq!(glob.prefix(), "app[1]*:");
    put(&glob, "ctx:user:1", "glob").await;
    put(&plain, "ctx:user:1", "plain").await;
    // What another client of the server sees: the prefixed keys, with their TTL.
    assert_eq!(
        server.command(&["GET", "app[1]*:ctx:user:1"]).unwrap(),
        "glob"
    );
    let ttl: u64 = server.command(&["PTTL", "app1:ctx:user:1"]).unwrap()[1..]
        .parse()
        .unwrap();
    assert!((59_000..=60_000).contains(&ttl), "{ttl}");
    // `app[1]*:ctx:*` read as a glob would match `app1:ctx:user:1` too.
    assert_eq!(glob.delete_by_prefix("ctx:").await.unwrap(), 1);
    assert_eq!(get(&plain, "ctx:user:1").await, Some(bytes("plain")));
    let default = RedisCache::connect(server.url()).await.unwrap();
    put(&default, "k", "v").await;
    assert_eq!(server.command(&["EXISTS", "mizan:k"]).unwrap(), ":1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_connections_are_bounded_by_the_pool_size() {
    let server = RedisServer::start();
    let cache = RedisCache::builder(server.url()).with_pool_size(3);
    let cache = Arc::new(cache.build().await.unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..64 {
        let cache = cache.clone();
        tasks.spawn(async move { put(&*cache, &format!("k{task}"), "v").await });
    }
    tasks.join_all().await;
    // The pool's connections plus the one asking; `build`'s probe connection is closed (the
    // server may take a moment to notice).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = server.command(&["INFO", "clients"]).unwrap();
        let clients: usize = info
            .lines()
            .find_map(|line| line.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("connected_clients");
        if clients <= 3 + 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{clients} connections for a pool of 3"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(&*cache, "k63").await, Some(bytes("v")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_backed_app_can_be_driven_from_any_executor() {
    let server = RedisServer::start();
    let (app, store) = profile_app(RedisCache::connect(server.url()).await.unwrap());
    // A plain thread with a futures executor, no Tokio context: the cache runs its operations
    // on the runtime it was built in.
    let client = TestClient::new(&app);
    let fetch = move || block_on(profile(&client, None, 1, "a"));
    let (first, second) = tokio::task::spawn_blocking(move || (fetch(), fetch()))
        .await
        .unwrap();
    assert_eq!((first, second), (0, 0));
    assert_eq!(store.runs(), 1, "the second fetch was a hit through Redis");
}

/// Runs `request`, asserting that it took less than five Redis timeouts (a hang check, not a
/// benchmark).
async fn within_bound<T>(what: &str, request: impl Future<Output = T>) -> T {
    let bound = RedisCache::DEFAULT_TIMEOUT * 5;
    let start = Instant::now();
    let output = request.await;
    let took = start.elapsed();
    assert!(took < bound, "{what} took {took:?}, more than {bound:?}");
    output
}

/// Waits a little longer than one timeout, so that the next request meets the failure itself
/// rather than the quick refusal that follows a timeout.
async fn past_the_cool_down() {
    tokio::time::sleep(RedisCache::DEFAULT_TIMEOUT + Duration::from_millis(50)).await;
}

/// The `profile` app on `cache`, and a client of it that has fetched user 1's bundle twice: once
/// run, then a hit.
async fn cached_profile(cache: impl CacheBackend) -> (TestClient, Store) {
    let (app, store) = profile_app(cache);
    let c = client(&app, None);
    assert_eq!(profile(&c, None, 1, "a").await, 0);
    assert_eq!(profile(&c, None, 1, "a").await, 0);
    assert_eq!(store.runs(), 1, "cached");
    (c, store)
}

/// With the cache out of reach (the server stopped or paused), after [`cached_profile`]: every
/// request answers within the bound, the fetches with the bundle from before, and a mutation
/// succeeds and is seen by the next fetch.
async fn serves_and_mutates_without_its_cache(c: &TestClient) {
    for _ in 0..2 {
        assert_eq!(within_bound("a fetch", profile(c, None, 1, "a")).await, 0);
        past_the_cool_down().await;
    }
    let bumped = within_bound("a mutation", call(c, "bump", json!({"user_id": 1}))).await;
    assert_eq!(bumped, 1, "the mutation succeeds without its cache");
    assert_eq!(within_bound("a fetch", profile(c, None, 1, "a")).await, 1);
}

/// The backend itself, its server paused: a read of `key` times out, then the next is refused at
/// once (for the length of one timeout).
async fn times_out_then_refuses_at_once(cache: &RedisCache, key: &str) {
    past_the_cool_down().await;
    let read = within_bound("a read", cache.get(key)).await;
    assert!(matches!(read, Err(CacheError::Timeout)), "{read:?}");
    let start = Instant::now();
    let read = cache.get(key).await;
    assert!(matches!(read, Err(CacheError::Unavailable(_))), "{read:?}");
    assert!(
        start.elapsed() < RedisCache::DEFAULT_TIMEOUT,
        "refused at once"
    );
}

/// Fetches user 1's bundle until one is a hit (the function did not run), checking every
/// answer is `version`; panics if the cache has not come back within ten seconds.
async fn until_a_hit(client: &TestClient, store: &Store, version: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let runs = store.runs();
        let seen = within_bound("a fetch", profile(client, None, 1, "a")).await;
        assert_eq!(
            seen, version,
            "stale or wrong data while the cache recovers"
        );
        if store.runs() == runs {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cache did not recover by itself"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_fails_open_keeps_lost_purges_and_recovers() {
    let mut server = RedisServer::start();
    let cache = RedisCache::connect(server.url()).await.unwrap();
    let (c, store) = cached_profile(cache).await;

    // Redis dies with the cached bundle in its last snapshot.
    server.save();
    server.stop();
    serves_and_mutates_without_its_cache(&c).await;
    past_the_cool_down().await;
    assert_eq!(within_bound("a fetch", profile(&c, None, 1, "a")).await, 1);

    // Redis comes back from the snapshot, with the old bundle and the old epochs: the purge the
    // mutation could not write must not be forgotten.
    let runs = store.runs();
    server.restart();
    until_a_hit(&c, &store, 1).await;
    assert!(
        store.runs() > runs,
        "the old bundle was served after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_never_blocks_a_request_and_recovers() {
    let server = RedisServer::start();
    let cache = Arc::new(RedisCache::connect(server.url()).await.unwrap());
    let (c, store) = cached_profile(cache.clone()).await;

    server.pause();
    serves_and_mutates_without_its_cache(&c).await;
    times_out_then_refuses_at_once(&cache, "k").await;

    server.resume();
    until_a_hit(&c, &store, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_lost_by_one_instance_is_not_served_stale_by_another_after_a_restart() {
    let mut server = RedisServer::start();
    let backend = Arc::new(RedisCache::connect(server.url()).await.unwrap());
    let (one, store) = profile_app(backend.clone());
    // A second instance of the same app: same data, same secret, same Redis.
    let two = profile_app_on(backend, &store);
    let reader = client(&two, None);
    assert_eq!(profile(&reader, None, 1, "a").await, 0);
    // Instance one retries its lost purges on a timer, as an app does (see
    // `Mizan::retry_lost_purges`); it gets no request after the mutation.
    let retrying = {
        let one = one.clone();
        tokio::spawn(async move {
            loop {
                one.retry_lost_purges().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    server.save();
    server.stop();
    call(&client(&one, None), "bump", json!({"user_id": 1})).await;
    assert_eq!(
        one.lost_purges(),
        1,
        "the purge is lost while Redis is down"
    );
    // Redis comes back from its snapshot: the old entry and its old epochs with it.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while one.lost_purges() > 0 {
        assert!(
            Instant::now() < deadline,
            "the lost purge was never re-applied"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    retrying.abort();
    assert_eq!(
        profile(&reader, None, 1, "a").await,
        1,
        "instance two served the old bundle"
    );
}

// ---------------------------------------------------------------------------
// 4. Redis Cluster: slots, every master, failover
// ---------------------------------------------------------------------------

/// Keys spread over the cluster's slots, so over its three masters.
fn spread_keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_keys_land_on_every_master_and_one_get_many_reads_across_slots() {
    let cluster = RedisCluster::start();
    let cache = RedisCache::connect_cluster(cluster.urls()).await.unwrap();
    let keys = spread_keys("ctx:spread:", 300);
    for key in &keys {
        put(&cache, key, key).await;
    }
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3, "{masters:?}");
    let counts: Vec<u64> = masters.iter().map(|&m| cluster.key_count(m)).collect();
    assert!(counts.iter().all(|&n| n > 0), "keys per master: {counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), 300);

    // One batch over every master, with misses and a repeat, answered in the order asked.
    let mut asked = keys.clone();
    asked.insert(7, "ctx:spread:missing".to_owned());
    asked.push(keys[0].clone());
    let values = cache.get_many(&asked).await.expect("no CROSSSLOT error");
    assert_eq!(values.len(), asked.len());
    for (key, value) in asked.iter().zip(&values) {
        let expected = (!key.ends_with("missing")).then(|| bytes(key));
        assert_eq!(value, &expected, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_prefix_purges_remove_the_keys_of_every_master() {
    let cluster = RedisCluster::start();
    let cache = RedisCache::connect_cluster(cluster.urls()).await.unwrap();
    for key in spread_keys("ctx:gone:", 600) {
        put(&cache, &key, "x").await;
    }
    for key in spread_keys("ctx:kept:", 30) {
        put(&cache, &key, "y").await;
    }
    let masters = cluster.masters();
    let before: Vec<u64> = masters.iter().map(|&m| cluster.key_count(m)).collect();
    assert_eq!(cache.delete_by_prefix("ctx:gone:").await.unwrap(), 600);
    let after: Vec<u64> = masters.iter().map(|&m| cluster.key_count(m)).collect();
    for (b, a) in before.iter().zip(&after) {
        assert!(a < b, "a master kept its keys: {before:?} -> {after:?}");
    }
    assert_eq!(
        after.iter().sum::<u64>(),
        30,
        "only the other prefix is left"
    );
    let kept = cache.get_many(&spread_keys("ctx:kept:", 30)).await.unwrap();
    assert!(kept.iter().all(|v| v.as_deref() == Some(&b"y"[..])));
    assert_eq!(cache.delete_by_prefix("ctx:gone:").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_failing_over_fails_open_and_the_cache_recovers() {
    let mut cluster = RedisCluster::start();
    let cache = RedisCache::connect_cluster(cluster.urls()).await.unwrap();
    let (c, store) = cached_profile(cache).await;

    // The master of the context's broad epoch, which every fetch and mutation reads or writes.
    let master = cluster.owner_of("mizan:gen:profile");
    cluster.kill(master);
    // While the cluster notices and fails over: correct answers, never a hang.
    let bumped = within_bound("a mutation", call(&c, "bump", json!({"user_id": 1}))).await;
    assert_eq!(bumped, 1, "the mutation succeeds with or without its cache");
    for _ in 0..3 {
        assert_eq!(within_bound("a fetch", profile(&c, None, 1, "a")).await, 1);
        past_the_cool_down().await;
    }
    let promoted = tokio::task::block_in_place(|| cluster.kill_and_fail_over(master));
    assert!(cluster.masters().contains(&promoted));
    // The cache comes back by itself, and still never serves the bundle from before the bump.
    until_a_hit(&c, &store, 1).await;
    assert_eq!(call(&c, "bump", json!({"user_id": 1})).await, 2);
    assert_eq!(profile(&c, None, 1, "a").await, 2);
    until_a_hit(&c, &store, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_cluster_master_never_blocks_a_request_and_the_cache_recovers() {
    let cluster = RedisCluster::start();
    let cache = Arc::new(RedisCache::connect_cluster(cluster.urls()).await.unwrap());
    let (c, store) = cached_profile(cache.clone()).await;

    // The master of the broad epoch hangs: every command for its slots would wait forever.
    let master = cluster.owner_of("mizan:gen:profile");
    cluster.pause(master);
    serves_and_mutates_without_its_cache(&c).await;
    times_out_then_refuses_at_once(&cache, "gen:profile").await;

    // It comes back (by then its replica may have taken over its slots).
    cluster.resume(master);
    tokio::task::block_in_place(|| cluster.wait_ok());
    until_a_hit(&c, &store, 1).await;
}

// ---------------------------------------------------------------------------
// 5. NearCache: an in-process L1 shared by nothing, coherent across instances
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_caches_of_two_instances_never_serve_a_bundle_older_than_a_returned_mutation() {
    let server = RedisServer::start();
    let near =
        || async { NearCache::builder(RedisCache::connect(server.url()).await.unwrap()).build() };
    two_near_instances_stay_coherent(near().await, near().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_caches_on_a_cluster_stay_coherent_and_keep_redis_ttls() {
    let cluster = RedisCluster::start();
    let redis = || async { RedisCache::connect_cluster(cluster.urls()).await.unwrap() };
    let near = NearCache::builder(redis().await).build();
    // A bundle stored by another instance with one second to live, read with keys of other
    // slots: kept in the L1, for no longer than Redis keeps it.
    redis()
        .await
        .put("ctx:t:1", bytes("soon gone"), Duration::from_secs(1))
        .await
        .unwrap();
    let keys = ["gen:t", "ctx:t:1", "gen:t:~user_id"].map(String::from);
    let values = near.get_many(&keys).await.unwrap();
    assert_eq!(values, [None, Some(bytes("soon gone")), None]);
    assert_eq!(near.l1_len(), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(get(&near, "ctx:t:1").await, None);

    let b = NearCache::builder(redis().await).build();
    two_near_instances_stay_coherent(near, b).await;
}

/// Two instances of one app, on `near_a` and `near_b`, sharing their Redis and the data.
async fn two_near_instances_stay_coherent(near_a: NearCache, near_b: NearCache) {
    // Two instances of one app, each with its own L1, sharing Redis and the data; no bus at
    // all: freshness does not depend on it.
    let (one, store) = profile_app(near_a.clone());
    let two = profile_app_on(near_b.clone(), &store);

    // Step by step: B's L1 holds the bundle, A mutates, B's next read is the new version.
    let (on_one, on_two) = (client(&one, None), client(&two, None));
    for version in 0..5 {
        assert_eq!(profile(&on_two, None, 1, "a").await, version);
        let hits = near_b.l1_hits();
        assert_eq!(profile(&on_two, None, 1, "a").await, version);
        assert!(near_b.l1_hits() > hits, "the second read came from B's L1");
        assert_eq!(
            call(&on_one, "bump", json!({"user_id": 1})).await,
            version + 1
        );
    }
    // A broad mutation on B, read on A.
    assert_eq!(profile(&on_one, None, 2, "b").await, 0);
    call(&on_two, "bump_all", json!({})).await;
    assert_eq!(profile(&on_one, None, 2, "b").await, 1);

    // Under load: readers on B, mutations on A.
    let readers = Readers::start(&two, &store);
    let hits = near_b.l1_hits();
    for round in 0..40 {
        let user_id = 1 + round % 2;
        call(&on_one, "bump", json!({"user_id": user_id})).await;
        readers.commit(&store, user_id);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    readers.stop().await;
    assert!(near_b.l1_hits() > hits, "B's L1 served some reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_trims_the_l1_and_a_resync_empties_it() {
    let server = RedisServer::start();
    let bus = mizan_cache_redis::RedisBus::connect(server.url())
        .await
        .unwrap();
    let redis = RedisCache::connect(server.url()).await.unwrap();
    let near = NearCache::builder(redis.clone()).with_bus(&bus).build();
    for key in ["ctx:a:1", "ctx:a:2", "ctx:b:1", "gen:a"] {
        put(&near, key, key).await;
    }
    assert_eq!(
        near.l1_len(),
        3,
        "bundles only; epochs always come from Redis"
    );

    // A target of context `a`, from any instance: `a`'s bundles leave the L1, `b`'s stay.
    use mizan_core::InvalidationBus;
    bus.publish(&[mizan_core::Target::Context {
        context: "a".into(),
        params: None,
    }])
    .await
    .unwrap();
    eventually("the L1 dropping context a", || near.l1_len() == 1).await;
    let hits = near.l1_hits();
    assert_eq!(get(&near, "ctx:b:1").await, Some(bytes("ctx:b:1")));
    assert_eq!(near.l1_hits(), hits + 1);
    // Still in Redis: the next read takes it from there, and keeps it again.
    assert_eq!(get(&near, "ctx:a:1").await, Some(bytes("ctx:a:1")));
    assert_eq!(near.l1_len(), 2);

    // The bus loses its connection: whatever it missed, the L1 is emptied.
    let killed = server
        .command(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .unwrap();
    assert_eq!(killed, ":1");
    eventually("the L1 emptied on resync", || near.l1_len() == 0).await;
    assert_eq!(get(&near, "ctx:b:1").await, Some(bytes("ctx:b:1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_l1_keeps_a_bundle_no_longer_than_redis_does() {
    let server = RedisServer::start();
    let redis = RedisCache::connect(server.url()).await.unwrap();
    let near = NearCache::builder(redis.clone()).build();
    // Stored by another instance, with one second to live; read here, so kept in the L1.
    redis
        .put("ctx:t:1", bytes("soon gone"), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(get(&near, "ctx:t:1").await, Some(bytes("soon gone")));
    assert_eq!(near.l1_len(), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(get(&near, "ctx:t:1").await, None);
    // A zero time to live removes the bundle from both.
    put(&near, "ctx:t:2", "x").await;
    near.put("ctx:t:2", bytes("y"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(get(&near, "ctx:t:2").await, None);
    assert_eq!(get(&redis, "ctx:t:2").await, None);
}

/// Polls `condition` until it holds, failing after ten seconds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
