//! The demo app as several instances, as in production: three separate `Mizan` apps, each with
//! its own Redis connections (cache and bus), served over loopback by a different adapter (axum,
//! tower, actix), sharing one test-owned Redis and one PostgreSQL database of the test's own.
//!
//! What is checked is what a user of any instance can see: after a mutation has returned on any
//! instance, no read that starts afterwards, on any instance, shows older data; a logout on one
//! instance revokes the tokens on the others; a purge lost while Redis was unreachable is
//! re-applied without waiting for a request.
//!
//! The Redis setup is a parameter ([`SharedRedis`]): a Redis Cluster can take the single server's
//! place by implementing it.

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "support/database.rs"]
mod database;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "../examples/demo/serve.rs"]
#[allow(dead_code)]
mod serve;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mizan::Mizan;
use mizan_cache_redis::{RedisBus, RedisCache};
use reqwest::StatusCode;
use serde_json::{json, Value};
use serve::Adapter;

/// The Redis every instance connects to.
trait SharedRedis {
    /// A cache of one instance (its own connections).
    async fn cache(&self) -> RedisCache;
    /// The invalidation bus of one instance (its own connections).
    async fn bus(&self) -> RedisBus;
}

impl SharedRedis for redis_server::RedisServer {
    async fn cache(&self) -> RedisCache {
        RedisCache::connect(self.url()).await.expect("the cache")
    }

    async fn bus(&self) -> RedisBus {
        RedisBus::connect(self.url()).await.expect("the bus")
    }
}

impl SharedRedis for redis_cluster::RedisCluster {
    async fn cache(&self) -> RedisCache {
        RedisCache::connect_cluster(self.urls())
            .await
            .expect("the cache")
    }

    async fn bus(&self) -> RedisBus {
        RedisBus::connect_cluster(self.urls())
            .await
            .expect("the bus")
    }
}

/// One served instance.
struct Instance {
    adapter: Adapter,
    addr: SocketAddr,
    app: Mizan,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    retrying: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.serving.abort();
        self.retrying.abort();
    }
}

/// Three instances on one Redis and one database.
struct Fleet {
    instances: Vec<Instance>,
    client: reqwest::Client,
    _database: database::TestDatabase,
}

impl Fleet {
    async fn start(redis: &impl SharedRedis) -> Self {
        let database = database::TestDatabase::postgres().await;
        // All three start at once on the empty database: creating and seeding it must neither
        // fail nor happen twice.
        let stores = futures_util::future::join_all(
            Adapter::ALL.map(|_| app::Store::connect(database.url())),
        )
        .await;
        let mut instances = Vec::new();
        for (adapter, store) in Adapter::ALL.into_iter().zip(stores) {
            let store = store.expect("the demo's database");
            let app = app::builder_on(&app::Secrets::development(), store)
                .with_cache(redis.cache().await)
                .with_bus(redis.bus().await)
                .build()
                .expect("the demo builds");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let retrying = app::spawn_purge_retry(&app, app::PURGE_RETRY_PERIOD);
            let serving = tokio::spawn(adapter.serve(listener, app.clone()));
            instances.push(Instance {
                adapter,
                addr,
                app,
                serving,
                retrying,
            });
        }
        Self {
            instances,
            client: reqwest::Client::new(),
            _database: database,
        }
    }

    /// `POST call/` on instance `i`: the status and the JSON body.
    async fn call(&self, i: usize, bearer: Option<&str>, function: &str, args: Value) -> Reply {
        let instance = &self.instances[i];
        let mut request = self
            .client
            .post(format!("http://{}/api/mizan/call/", instance.addr))
            .json(&json!({"fn": function, "args": args}));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the instance answers");
        Reply {
            status: response.status(),
            body: response.json().await.unwrap_or(Value::Null),
        }
    }

    /// `GET ctx/...` on instance `i`: the bundle (a non-200 is a failure).
    async fn fetch(&self, i: usize, path: &str) -> Value {
        let instance = &self.instances[i];
        let url = format!("http://{}/api/mizan/ctx/{path}", instance.addr);
        let response = self
            .client
            .get(url)
            .send()
            .await
            .expect("the instance answers");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{:?} {path}",
            instance.adapter
        );
        response.json().await.expect("a JSON bundle")
    }

    async fn login(&self, i: usize, user: &str) -> (String, String) {
        let reply = self
            .call(
                i,
                None,
                "login",
                json!({"username": user, "password": user}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let token = |name: &str| reply.body["result"][name].as_str().unwrap().to_owned();
        (token("access"), token("refresh"))
    }
}

struct Reply {
    status: StatusCode,
    body: Value,
}

/// Polls `condition` until it holds, for at most `limit`; whether it held.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// What the mixed workload writes: a user's name (`update_profile`, context `user`) or a note in
/// a folder (`add_note`, context `notes`). Each key has one writer, which writes `v1`, `v2`, ...
/// in order, so a value's number tells how recent it is.
#[derive(Clone)]
enum Key {
    User(i64),
    Folder(String),
}

impl Key {
    async fn write(&self, fleet: &Fleet, instance: usize, n: u64) -> Reply {
        let value = format!("v{n}");
        match self {
            Key::User(id) => {
                let args = json!({"user_id": id, "name": value});
                fleet.call(instance, None, "update_profile", args).await
            }
            Key::Folder(folder) => {
                let args = json!({"folder": folder, "text": value});
                fleet.call(instance, None, "add_note", args).await
            }
        }
    }

    /// Reads the key's bundle on `instance`; the newest value number it shows (0: none).
    async fn read(&self, fleet: &Fleet, instance: usize) -> u64 {
        let number = |text: &str| {
            text.strip_prefix('v')
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        match self {
            Key::User(id) => {
                let bundle = fleet.fetch(instance, &format!("user/?user_id={id}")).await;
                number(bundle["user_profile"]["name"].as_str().unwrap_or(""))
            }
            Key::Folder(folder) => {
                let bundle = fleet
                    .fetch(instance, &format!("notes/?folder={folder}"))
                    .await;
                let notes = bundle["notes_list"].as_array().cloned().unwrap_or_default();
                notes
                    .iter()
                    .map(|note| number(note.as_str().unwrap_or("")))
                    .max()
                    .unwrap_or(0)
            }
        }
    }
}

/// A read that showed a value older than one whose mutation had returned before it started.
#[derive(Debug)]
#[allow(dead_code)] // read by Debug, in the failure message
struct StaleRead {
    key: usize,
    adapter: Adapter,
    seen: u64,
    returned_before_start: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_mutation_returns_on_any_instance_no_instance_serves_older_data() {
    let redis = redis_server::RedisServer::start();
    no_instance_serves_older_data(&redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_no_instance_serves_older_data_either() {
    let cluster = redis_cluster::RedisCluster::start();
    no_instance_serves_older_data(&cluster).await;
}

/// Concurrent writers and readers spread over the three instances: no read that starts after a
/// mutation returned shows older data, and at the end every instance shows the last values.
async fn no_instance_serves_older_data(redis: &impl SharedRedis) {
    let fleet = Arc::new(Fleet::start(redis).await);
    let n = fleet.instances.len();

    // Seeded once, although three instances created the schema at the same moment.
    for i in 0..n {
        let catalog = fleet.fetch(i, "catalog/").await;
        assert_eq!(catalog["catalog_items"].as_array().map(Vec::len), Some(2));
    }

    let keys: Vec<Key> = (1..=3)
        .map(Key::User)
        .chain((0..3).map(|i| Key::Folder(format!("f{i}"))))
        .collect();
    // Per key: the newest value whose mutation has returned.
    let returned: Arc<Vec<AtomicU64>> = Arc::new(keys.iter().map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let stale = Arc::new(Mutex::new(Vec::<StaleRead>::new()));
    let reads = Arc::new(AtomicUsize::new(0));
    const WRITES_PER_KEY: u64 = 25;

    let mut writers = Vec::new();
    for (k, key) in keys.iter().cloned().enumerate() {
        let (fleet, returned) = (Arc::clone(&fleet), Arc::clone(&returned));
        writers.push(tokio::spawn(async move {
            for v in 1..=WRITES_PER_KEY {
                // Each write on another instance than the last.
                let reply = key.write(&fleet, (k + v as usize) % n, v).await;
                assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
                returned[k].fetch_max(v, Ordering::SeqCst);
            }
        }));
    }
    let mut readers = Vec::new();
    for r in 0..6 {
        let (fleet, keys, returned) = (Arc::clone(&fleet), keys.clone(), Arc::clone(&returned));
        let (done, stale, reads) = (Arc::clone(&done), Arc::clone(&stale), Arc::clone(&reads));
        readers.push(tokio::spawn(async move {
            let mut turn = r;
            while !done.load(Ordering::SeqCst) {
                turn += 1;
                let (k, instance) = (turn % keys.len(), (turn / keys.len()) % n);
                let floor = returned[k].load(Ordering::SeqCst);
                let seen = keys[k].read(&fleet, instance).await;
                reads.fetch_add(1, Ordering::Relaxed);
                if seen < floor {
                    stale.lock().unwrap().push(StaleRead {
                        key: k,
                        adapter: fleet.instances[instance].adapter,
                        seen,
                        returned_before_start: floor,
                    });
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("a writer");
    }
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        reader.await.expect("a reader");
    }

    {
        let stale = stale.lock().unwrap();
        assert!(stale.is_empty(), "stale reads: {stale:#?}");
    }
    let reads = reads.load(Ordering::Relaxed);
    assert!(reads >= 100, "only {reads} reads ran alongside the writes");
    // And at the end every instance shows every key's last value.
    for (k, key) in keys.iter().enumerate() {
        for i in 0..n {
            assert_eq!(key.read(&fleet, i).await, WRITES_PER_KEY, "key {k} on {i}");
        }
    }
    eprintln!(
        "{reads} reads alongside {} writes",
        WRITES_PER_KEY * keys.len() as u64
    );
}

#[tokio::test]
async fn a_logout_on_one_instance_revokes_the_token_on_the_others() {
    let redis = redis_server::RedisServer::start();
    let fleet = Fleet::start(&redis).await;
    let (access, refresh) = fleet.login(0, "bob").await;
    for i in 0..3 {
        let reply = fleet.call(i, Some(&access), "secret", json!({})).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "instance {i} accepts the token"
        );
    }
    let reply = fleet.call(1, Some(&access), "logout", json!({})).await;
    assert_eq!(reply.status, StatusCode::OK);
    for i in 0..3 {
        let adapter = fleet.instances[i].adapter;
        let reply = fleet.call(i, Some(&access), "secret", json!({})).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{adapter:?}: access"
        );
        let reply = fleet
            .call(i, None, "refresh", json!({"refresh": refresh}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{adapter:?}: refresh"
        );
    }
    // Another session of the same user is untouched.
    let (other, _) = fleet.login(2, "bob").await;
    let reply = fleet.call(0, Some(&other), "secret", json!({})).await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// Caches user 2's bundle on instance `reader` (a second fetch is a hit).
async fn cache_bob(fleet: &Fleet, reader: usize) {
    for _ in 0..2 {
        let bundle = fleet.fetch(reader, "user/?user_id=2").await;
        assert_eq!(bundle["user_profile"]["name"], "bob");
    }
}

#[tokio::test]
async fn a_purge_lost_while_redis_was_down_is_reapplied_without_a_request() {
    let mut redis = redis_server::RedisServer::start();
    let fleet = Fleet::start(&redis).await;
    let (writer, reader) = (0, 1);
    cache_bob(&fleet, reader).await;
    // Redis goes down with the cached bundle and its epochs on disk, and comes back with them:
    // the purge of the rename below, made while it was down, is lost.
    redis.save();
    redis.stop();
    let reply = fleet
        .call(
            writer,
            None,
            "update_profile",
            json!({"user_id": 2, "name": "Robert"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "fail open: {:?}", reply.body);
    assert!(fleet.instances[writer].app.lost_purges() > 0);
    redis.restart();
    let back = Instant::now();
    // Nothing is asked of the writer: its retry timer re-applies the purge on its own.
    let writer_app = &fleet.instances[writer].app;
    assert!(
        eventually(Duration::from_secs(10), || writer_app.lost_purges() == 0).await,
        "the lost purge was not re-applied"
    );
    eprintln!(
        "lost purge re-applied {:?} after Redis came back",
        back.elapsed()
    );
    for i in 0..3 {
        let bundle = fleet.fetch(i, "user/?user_id=2").await;
        assert_eq!(bundle["user_profile"]["name"], "Robert", "instance {i}");
    }
}

#[tokio::test]
async fn a_paused_redis_fails_open_and_nothing_older_is_served_after_it() {
    let redis = redis_server::RedisServer::start();
    let fleet = Fleet::start(&redis).await;
    let (writer, reader) = (2, 0);
    cache_bob(&fleet, reader).await;
    redis.pause();
    let reply = fleet
        .call(
            writer,
            None,
            "update_profile",
            json!({"user_id": 2, "name": "Robbie"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "fail open: {:?}", reply.body);
    // While Redis is frozen every instance executes instead of serving from the cache.
    for i in 0..3 {
        let bundle = fleet.fetch(i, "user/?user_id=2").await;
        assert_eq!(
            bundle["user_profile"]["name"], "Robbie",
            "instance {i}, paused"
        );
    }
    redis.resume();
    let writer_app = &fleet.instances[writer].app;
    assert!(
        eventually(Duration::from_secs(10), || writer_app.lost_purges() == 0).await,
        "the lost purge was not re-applied"
    );
    for i in 0..3 {
        let bundle = fleet.fetch(i, "user/?user_id=2").await;
        assert_eq!(bundle["user_profile"]["name"], "Robbie", "instance {i}");
    }
}
