//! A Redis [`CacheBackend`] for Mizan's origin cache, on a single server or a Redis Cluster;
//! [`NearCache`], an optional in-process L1 in front of it; and [`RedisBus`], the invalidation
//! bus that carries each mutation's targets to every instance of the app.
//!
//! [`RedisCache`] keeps context bundles and their epochs in Redis, so every process serving the
//! same app shares one cache and sees the others' purges. Like every backend it only stores bytes
//! under keys with a time to live: keys, staleness and fail-open behaviour are the dispatcher's
//! job (see `mizan_core::cache`).
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use mizan_cache_redis::RedisCache;
//! use mizan_core::Mizan;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // `RedisCache::connect(url)` does the same with every option at its default.
//!     let cache = RedisCache::builder("redis://127.0.0.1:6379/")
//!         .with_prefix("shop:")
//!         .with_timeout(Duration::from_millis(100))
//!         .build()
//!         .await?;
//!     let app = Mizan::builder()
//!         .with_cache(cache)
//!         .with_cache_secret(std::env::var("MIZAN_CACHE_SECRET")?)
//!         .build()?;
//!     # let _ = app;
//!     Ok(())
//! }
//! ```
//!
//! # Options
//!
//! | builder method | default | what it sets |
//! |---|---|---|
//! | [`with_prefix`](RedisCacheBuilder::with_prefix) | `"mizan:"` | prepended to every key, so several apps can share one Redis database |
//! | [`with_pool_size`](RedisCacheBuilder::with_pool_size) | 50 | connections at most to a single server; each is multiplexed and opened on first use, and each thread keeps to one (threads share them when there are more threads than connections; a cluster cache has one multiplexed connection per node) |
//! | [`with_timeout`](RedisCacheBuilder::with_timeout) | 250 ms | the longest one Redis command may take |
//!
//! The time to live of each entry is the one the dispatcher passes (at most the app's
//! `with_cache_max_ttl`, 24 h by default); a zero time to live removes the key. This crate has
//! no Cargo features; it re-exports the [`redis`] crate it is built on.
//!
//! # Runtime
//!
//! [`build`](RedisCacheBuilder::build) must be awaited inside a Tokio runtime with its time
//! driver enabled (`#[tokio::main]` and `#[actix_web::main]` both enable it). Every operation
//! then runs as a task on *that* runtime, so the cache can be awaited from any executor (another
//! Tokio runtime, actix's workers, `futures::executor::block_on`), as long as that runtime keeps
//! running. Do not block the only thread of a current-thread runtime while waiting on the cache.
//!
//! # Failures
//!
//! No operation waits longer than the timeout for any one command: a stopped, unreachable or hung
//! (e.g. `SIGSTOP`ped) server yields a [`CacheError`], which the dispatcher turns into "execute
//! and do not cache". After a command times out, the cache fails at once for the length of one
//! timeout instead of waiting again, so a hung server costs each request about one timeout, not
//! one per cache operation. Connections reconnect by themselves, in the background, when the
//! server comes back. Errors are [`CacheError::Timeout`], [`CacheError::Unavailable`]
//! (connection refused or lost, runtime gone) or [`CacheError::Backend`] (Redis answered with an
//! error, bad URL), with the `redis` error as their source.
//!
//! # Redis Cluster
//!
//! [`RedisCache::builder_cluster`] (or [`RedisCache::connect_cluster`]) takes seed nodes instead
//! of one URL, as `redis://[user:password@]host:port` or bare `host:port`; one reachable node is
//! enough, the rest of the cluster is discovered. Everything else is the same: options, prefix,
//! timeouts, fail-fast, errors. The cache keeps one multiplexed connection per node (the `redis`
//! crate's cluster client), follows `MOVED`/`ASK` redirections and refreshes its slot map when the
//! topology changes:
//!
//! - `get`, `put`, `delete` go to the master owning the key's slot;
//! - `get_many` (one `MGET` on a single server) is split by slot, the parts are sent to their
//!   masters side by side and the answers put back in the order asked, so there is never a
//!   `CROSSSLOT` error;
//! - `delete_by_prefix` runs `SCAN MATCH` + `UNLINK` on every master, side by side, and fails if
//!   one of them cannot be reached (the dispatcher's epochs already made the entries
//!   unreachable; the purge only frees memory).
//!
//! The epochs the dispatcher relies on need nothing more than reads and writes of single keys, so
//! the never-stale guarantee holds on a cluster as on one server. When a master fails, commands
//! for its slots fail (within the timeout) until its replica has taken over, and the dispatcher
//! executes without the cache meanwhile. Known limit of Redis replication: it is asynchronous, so
//! a write the old master acknowledged just before dying may be missing on the replica that
//! replaces it; if that write was an epoch, a bundle stored before it can be served again until
//! its time to live runs out.
//!
//! ```no_run
//! use mizan_cache_redis::{RedisBus, RedisCache};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let nodes = ["10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"];
//!     let cache = RedisCache::builder_cluster(nodes).with_prefix("shop:").build().await?;
//!     let bus = RedisBus::builder_cluster(nodes).with_channel("shop:invalidate").build().await?;
//!     # let _ = (cache, bus);
//!     Ok(())
//! }
//! ```
//!
//! # Near cache (L1)
//!
//! [`NearCache`] keeps the bundles this process reads and writes in its own memory (bounded in
//! bytes, 64 MiB by default), in front of a [`RedisCache`] on one server or a cluster. What it
//! caches, and what it never does, keeps the never-stale guarantee across instances:
//!
//! - It keeps only bundle entries (keys `ctx:…`), never epochs (keys `gen:…`): every fetch still
//!   reads the current epochs from Redis, in the same round trip it would make anyway. The
//!   dispatcher serves an entry only when its stamp equals those epochs, wherever the entry's
//!   bytes came from; so when another instance's mutation has returned, its new epochs are what
//!   this instance reads next, and the bundle in the L1 is not served, exactly as with Redis
//!   alone. No bus, no clock and no timing is involved in that guarantee: the staleness bound is
//!   zero.
//! - What it saves is moving the bundle: on an L1 hit, Redis sends the epochs only (a few dozen
//!   bytes) instead of the entry too. That pays off for large bundles; for small ones a hit costs
//!   what a Redis-only hit does, since the round trip remains (see `docs/BENCHMARKS.md`).
//! - An entry read from Redis is kept for the time to live Redis still has for it (`PTTL`, in the
//!   same pipeline on one server), and an entry written for the one it was written with, so the
//!   L1 never keeps a bundle longer than Redis would.
//! - With [`with_bus`](NearCacheBuilder::with_bus) it follows the invalidation bus: a target of
//!   context `c` drops `c`'s bundles from the L1, so the next read takes the fresh entry another
//!   instance stored in Redis instead of executing again; a resync (the bus lost its connection,
//!   so targets may be lost) empties the L1. Without a bus, or while it is down, the L1 is just
//!   less effective: an outdated entry is found unusable by its stamp and replaced.
//!
//! ```no_run
//! use mizan_cache_redis::{NearCache, RedisBus, RedisCache};
//! use mizan_core::Mizan;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let url = "redis://127.0.0.1:6379/";
//!     let bus = RedisBus::connect(url).await?;
//!     let cache = NearCache::builder(RedisCache::connect(url).await?)
//!         .with_capacity(128 * 1024 * 1024)
//!         .with_bus(&bus)
//!         .build();
//!     let app = Mizan::builder()
//!         .with_cache(cache)
//!         .with_bus(bus)
//!         .with_cache_secret(std::env::var("MIZAN_CACHE_SECRET")?)
//!         .build()?;
//!     # let _ = app;
//!     Ok(())
//! }
//! ```
//!
//! # Invalidation bus
//!
//! When an app runs as several instances, a mutation served by one of them must reach the
//! WebSocket subscribers connected to all the others. [`RedisBus`] implements
//! [`InvalidationBus`](mizan_core::InvalidationBus) over one Redis pub/sub channel (default
//! `"mizan:invalidate"`; apps sharing a Redis each take their own, e.g. their cache prefix
//! followed by `invalidate`). Each message is the JSON array of one mutation's targets, as in a
//! call's `invalidate` (`["catalog", {"context": "user", "params": {"user_id": 5}}]`); every
//! instance, the publisher included, hands it to its local receivers.
//!
//! ```no_run
//! use mizan_cache_redis::RedisBus;
//! use mizan_core::{InvalidationBus, Target};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let bus = RedisBus::builder("redis://127.0.0.1:6379/")
//!         .with_channel("shop:invalidate")
//!         .build()
//!         .await?;
//!     // Give it to the app, which publishes after each successful mutation and subscribes
//!     // one receiver per socket: `Mizan::builder().with_bus(bus)`.
//!     bus.publish(&[Target::Context { context: "catalog".into(), params: None }]).await?;
//!     Ok(())
//! }
//! ```
//!
//! Delivery is at most once: Redis pub/sub keeps nothing for a listener that is not connected.
//! So a background task (on the Tokio runtime that built the bus) listens to the channel, and
//! when its connection closes, or stops answering a `PING` sent after a quiet spell
//! ([`with_health_check`](RedisBusBuilder::with_health_check), default 5 s), it reconnects with
//! a backoff growing from 50 ms to 2 s and then sends
//! [`BusEvent::Resync`](mizan_core::BusEvent::Resync) to every local receiver: anything
//! subscribed may be stale, so clients refetch rather than miss an invalidation. A message that
//! is not a list of targets is logged and skipped. A failed `PUBLISH` (within
//! [`with_timeout`](RedisBusBuilder::with_timeout), default 250 ms) is a
//! [`BusError`](mizan_core::BusError), never a panic. Dropping the last clone of the bus stops
//! its task and closes its connections.
//!
//! On a Redis Cluster ([`RedisBus::builder_cluster`]) the bus publishes through a cluster
//! connection and listens on one node: Redis Cluster forwards every `PUBLISH` to every node, so
//! one subscription hears the messages published on any node. It listens on the first seed node
//! that accepts; when that node's connection closes or stops answering (a crash, a failover), it
//! subscribes on another node it knows (the seeds, and the nodes `CLUSTER NODES` reported
//! healthy) and sends the resync, as on a single server. It publishes on the node it listens on
//! (known to be up; any node forwards a message to all). A `PUBLISH` that fails there (the node
//! just died) is still returned as an error, and is tried again in the background, with backoff,
//! for up to 30 s (at most 1024 messages wait so; more are dropped and logged): the other instances' listeners, on healthy nodes, get no resync, so they get
//! the targets late rather than never (twice at worst, which is harmless). Limit: a node cut off
//! from the rest of the cluster but still answering `PING` keeps its listener and misses messages
//! published elsewhere.

use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use mizan_core::{CacheBackend, CacheError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, RedisError, RedisResult, RedisWrite, ToRedisArgs,
    Value,
};
use tokio::runtime::Handle;

pub use bus::{RedisBus, RedisBusBuilder};
pub use near::{NearCache, NearCacheBuilder};
pub use redis;

mod bus;
mod near;

/// The longest time to live stored; longer ones are cut to it (Redis refuses overflowing ones).
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Keys asked for per `SCAN` round trip, and so deleted per `UNLINK`.
const SCAN_COUNT: usize = 1000;
/// How long a new connection may take to answer its first `PING` in [`RedisCacheBuilder::build`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A [`CacheBackend`] on Redis, a single server or a Redis Cluster: self-reconnecting
/// multiplexed connections, a key prefix and a per-command timeout. See the [crate docs](crate)
/// for the options.
///
/// Cloning is cheap and shares the connections.
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    conns: Connections,
    prefix: String,
    timeout: Duration,
    runtime: Handle,
    /// The instant `cool_until` counts from.
    started: Instant,
    /// After a timeout, commands fail at once until this many nanoseconds after `started`; 0
    /// when not cooling down (read without a lock or a clock on every command).
    cool_until: AtomicU64,
}

/// How commands reach Redis.
enum Connections {
    /// One server: a pool of connection managers, one per calling thread.
    Single(Pool),
    /// A cluster: one cluster connection, which keeps a multiplexed connection to each node and
    /// routes every command (a multi-key one split by slot) to the node owning its keys.
    Cluster(ClusterConnection),
}

/// A single server's connections.
struct Pool {
    conns: Vec<ConnectionManager>,
}

/// The slot the next thread to ask for a connection gets.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

impl Pool {
    /// The calling thread's connection: threads spread over the pool in the order they first
    /// ask, and each keeps to its own, so that a thread's commands find their connection (its
    /// task, its socket) warm. Handing out connections in turn made each one wait for all the
    /// others between two uses, which cost a sequential Redis hit 7–10 µs more.
    fn next(&self) -> ConnectionManager {
        thread_local! {
            static SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
        }
        let slot = SLOT.with(|slot| *slot);
        self.conns[slot % self.conns.len()].clone()
    }
}

/// Where a cache or bus connects: one server, or the seed nodes of a cluster.
#[derive(Clone)]
pub(crate) enum Topology {
    Server(String),
    Cluster(Vec<String>),
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server(url) => f.debug_tuple("Server").field(&redact(url)).finish(),
            Self::Cluster(nodes) => f
                .debug_tuple("Cluster")
                .field(&nodes.iter().map(|n| redact(n)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl Topology {
    /// The seed nodes as URLs: a bare `host:port` gets the `redis://` scheme.
    fn cluster(nodes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let url = |node: String| {
            if node.contains("://") {
                node
            } else {
                format!("redis://{node}")
            }
        };
        Self::Cluster(nodes.into_iter().map(|n| url(n.into())).collect())
    }
}

/// `url` with its password, if any, replaced by `***` (for `Debug` and logs).
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// Configures a [`RedisCache`]; made by [`RedisCache::builder`] or
/// [`RedisCache::builder_cluster`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisCacheBuilder {
    topology: Topology,
    prefix: String,
    pool_size: usize,
    timeout: Duration,
}

impl RedisCache {
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "mizan:";
    /// The default bound on connections.
    pub const DEFAULT_POOL_SIZE: usize = 50;
    /// The default per-command timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` when the
    /// `redis` crate has a TLS feature) with the default options.
    pub async fn connect(url: impl Into<String>) -> Result<Self, CacheError> {
        Self::builder(url).build().await
    }

    /// Starts configuring a cache on the single server at `url`.
    pub fn builder(url: impl Into<String>) -> RedisCacheBuilder {
        Self::builder_on(Topology::Server(url.into()))
    }

    /// Connects to the Redis Cluster that `nodes` belong to, with the default options. See
    /// [`builder_cluster`](Self::builder_cluster).
    pub async fn connect_cluster(
        nodes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, CacheError> {
        Self::builder_cluster(nodes).build().await
    }

    /// Starts configuring a cache on a Redis Cluster. `nodes` are seed nodes, as
    /// `redis://[user:password@]host:port` URLs or bare `host:port`: any one reachable node is
    /// enough, the others are discovered. See [Redis Cluster](crate#redis-cluster).
    pub fn builder_cluster(
        nodes: impl IntoIterator<Item = impl Into<String>>,
    ) -> RedisCacheBuilder {
        Self::builder_on(Topology::cluster(nodes))
    }

    fn builder_on(topology: Topology) -> RedisCacheBuilder {
        RedisCacheBuilder {
            topology,
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            pool_size: Self::DEFAULT_POOL_SIZE,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Whether it is connected to a Redis Cluster (rather than a single server).
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.conns, Connections::Cluster(_))
    }

    /// Runs `op` as a task on the cache's runtime, so that any executor can await it, and so
    /// that a write the caller stops waiting for (a dropped request) still completes.
    async fn run<T, F>(&self, op: impl FnOnce(Arc<Inner>) -> F) -> Result<T, CacheError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, CacheError>> + Send + 'static,
    {
        let task = self.inner.runtime.spawn(op(self.inner.clone()));
        task.await
            .map_err(|err| CacheError::Unavailable(Box::new(err)))?
    }

    /// Runs the read `op` in place when the caller already runs on the cache's runtime (no task
    /// spawned and woken across threads: one hop less per cache hit), else as [`run`](Self::run)
    /// does. Only for reads: dropping one half way loses nothing.
    async fn run_read<T, F>(&self, op: impl FnOnce(Arc<Inner>) -> F) -> Result<T, CacheError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, CacheError>> + Send + 'static,
    {
        match Handle::try_current() {
            Ok(current) if current.id() == self.inner.runtime.id() => op(self.inner.clone()).await,
            _ => self.run(op).await,
        }
    }

    /// The values of `keys` and the remaining time to live of `keys[ttl_of]` (`None` when it is
    /// missing or has no expiry), in one round trip on a single server. For [`NearCache`].
    pub(crate) async fn get_many_and_ttl(
        &self,
        keys: &[String],
        ttl_of: usize,
    ) -> Result<(Vec<Option<Bytes>>, Option<Duration>), CacheError> {
        let mut pttl = redis::cmd("PTTL");
        pttl.arg(self.inner.key(&keys[ttl_of]));
        let mut mget = redis::cmd("MGET");
        for key in keys {
            mget.arg(self.inner.key(key));
        }
        self.run_read(|inner| async move {
            let (values, millis): (Vec<Option<Vec<u8>>>, i64) = match &inner.conns {
                Connections::Single(pool) => {
                    let mut pipe = redis::pipe();
                    pipe.add_command(mget).add_command(pttl);
                    let mut conn = pool.next();
                    inner.guard(pipe.query_async(&mut conn)).await?
                }
                Connections::Cluster(conn) => {
                    let (mut a, mut b) = (conn.clone(), conn.clone());
                    let both = futures_util::future::try_join(
                        mget.query_async::<Vec<Option<Vec<u8>>>>(&mut a),
                        pttl.query_async::<i64>(&mut b),
                    );
                    inner.guard(both).await?
                }
            };
            let ttl = u64::try_from(millis)
                .ok()
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis);
            Ok((
                values.into_iter().map(|v| v.map(Bytes::from)).collect(),
                ttl,
            ))
        })
        .await
    }
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pool_size = match &self.inner.conns {
            Connections::Single(pool) => pool.conns.len(),
            Connections::Cluster(_) => 1,
        };
        f.debug_struct("RedisCache")
            .field("cluster", &self.is_cluster())
            .field("prefix", &self.inner.prefix)
            .field("pool_size", &pool_size)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisCacheBuilder {
    /// Prepends `prefix` to every key (default `"mizan:"`; may be empty).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Opens at most `size` connections to a single server (at least 1; default 50). A cluster
    /// cache keeps one multiplexed connection per node instead.
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Gives up on a Redis command after `timeout` (default 250 ms; at least 1 ms).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Checks that Redis answers `PING` and makes the cache: [`CacheError::Unavailable`] when
    /// it cannot be reached or no Tokio runtime is running (see [Runtime](crate#runtime)),
    /// [`CacheError::Backend`] for a malformed URL or an empty list of cluster nodes. A single
    /// server's pool opens its connections on first use; a cluster cache connects to every node
    /// and learns the slot map here.
    pub async fn build(self) -> Result<RedisCache, CacheError> {
        let runtime = Handle::try_current().map_err(|err| CacheError::Unavailable(err.into()))?;
        let conns = match &self.topology {
            Topology::Server(url) => self.connect_server(url).await?,
            Topology::Cluster(nodes) => self.connect_cluster(nodes).await?,
        };
        Ok(RedisCache {
            inner: Arc::new(Inner {
                conns,
                prefix: self.prefix,
                timeout: self.timeout,
                runtime,
                started: Instant::now(),
                cool_until: AtomicU64::new(0),
            }),
        })
    }

    async fn connect_server(&self, url: &str) -> Result<Connections, CacheError> {
        let client = redis::Client::open(url).map_err(backend)?;
        let probe = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&probe)
            .await
            .map_err(classify)?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(classify)?;
        // Our own timeout bounds every command; reconnect attempts back off to at most 1 s apart.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(self.timeout.max(Duration::from_secs(1))))
            .set_max_delay(Duration::from_secs(1));
        let conns = (0..self.pool_size)
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        Ok(Connections::Single(Pool { conns }))
    }

    async fn connect_cluster(&self, nodes: &[String]) -> Result<Connections, CacheError> {
        let client = cluster_client(nodes, self.timeout).map_err(backend)?;
        let connect = async {
            let mut conn = client.get_async_connection().await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok::<_, RedisError>(conn)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(conn) => Ok(Connections::Cluster(conn.map_err(classify)?)),
            Err(elapsed) => Err(CacheError::Unavailable(elapsed.into())),
        }
    }
}

/// A cluster client on the seed `nodes`; `timeout` bounds connecting to a node (at least 1 s)
/// and each response.
pub(crate) fn cluster_client(
    nodes: &[String],
    timeout: Duration,
) -> RedisResult<redis::cluster::ClusterClient> {
    if nodes.is_empty() {
        let why = "a Redis Cluster needs at least one seed node";
        return Err(RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            why,
        )));
    }
    ClusterClientBuilder::new(nodes.iter().map(String::as_str))
        .connection_timeout(timeout.max(Duration::from_secs(1)))
        .response_timeout(timeout.max(Duration::from_secs(1)))
        .build()
}

/// A key with the cache's prefix, written into a command as one argument without building the
/// prefixed string first.
struct Prefixed<'a> {
    prefix: &'a str,
    key: &'a str,
}

impl ToRedisArgs for Prefixed<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = arg.write_all(self.prefix.as_bytes());
        let _ = arg.write_all(self.key.as_bytes());
    }
}

impl Inner {
    /// `key` with the cache's prefix, as one command argument.
    fn key<'a>(&'a self, key: &'a str) -> Prefixed<'a> {
        Prefixed {
            prefix: &self.prefix,
            key,
        }
    }

    /// Nanoseconds since `started`, at least 1 (0 means "not cooling down").
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).map_or(u64::MAX, |n| n.max(1))
    }

    /// Sends one command, within the timeout; a cluster routes it by its keys.
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, CacheError> {
        match &self.conns {
            Connections::Single(pool) => {
                let mut conn = pool.next();
                self.guard(cmd.query_async::<T>(&mut conn)).await
            }
            Connections::Cluster(conn) => {
                let mut conn = conn.clone();
                self.guard(cmd.query_async::<T>(&mut conn)).await
            }
        }
    }

    /// Runs one Redis operation within the timeout: fails at once while cooling down after a
    /// timeout, and starts a cool-down when this one times out.
    async fn guard<T>(&self, op: impl Future<Output = RedisResult<T>>) -> Result<T, CacheError> {
        let until = self.cool_until.load(Ordering::Relaxed);
        if until != 0 && self.now_nanos() < until {
            let why = "a Redis command timed out less than one timeout ago; not waiting again yet";
            return Err(CacheError::Unavailable(why.into()));
        }
        match tokio::time::timeout(self.timeout, op).await {
            Ok(result) => result.map_err(classify),
            Err(_elapsed) => {
                let timeout = u64::try_from(self.timeout.as_nanos()).unwrap_or(u64::MAX);
                let until = self.now_nanos().saturating_add(timeout);
                self.cool_until.store(until, Ordering::Relaxed);
                Err(CacheError::Timeout)
            }
        }
    }

    /// Deletes the keys matching `pattern` on one server (`node` `None`) or on the cluster
    /// node `node`; how many.
    async fn purge(&self, node: Option<&(String, u16)>, pattern: &str) -> Result<u64, CacheError> {
        let (mut cursor, mut removed) = (0_u64, 0_u64);
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(pattern);
            scan.arg("COUNT").arg(SCAN_COUNT);
            let (next, keys): (u64, Vec<Vec<u8>>) = match (node, &self.conns) {
                (Some((host, port)), Connections::Cluster(conn)) => {
                    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    });
                    let mut conn = conn.clone();
                    let reply = self.guard(conn.route_command(scan, route)).await?;
                    redis::from_redis_value(reply).map_err(|e| backend(e.into()))?
                }
                _ => self.query(&scan).await?,
            };
            if !keys.is_empty() {
                // UNLINK counts what it removed, so keys SCAN returns twice count once. On a
                // cluster it is split by slot and summed.
                removed += self.query::<u64>(redis::cmd("UNLINK").arg(keys)).await?;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// The cluster's masters (`host`, `port`), as the connection's slot map has them; an error
    /// when one of them does not answer `PING`.
    async fn masters(&self, conn: &ClusterConnection) -> Result<Vec<(String, u16)>, CacheError> {
        let all = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let mut conn = conn.clone();
        let reply = self
            .guard(conn.route_command(redis::cmd("PING"), all))
            .await?;
        let Value::Map(replies) = reply else {
            return Err(CacheError::Backend(
                "unexpected reply to PING on every master".into(),
            ));
        };
        let mut masters = Vec::with_capacity(replies.len());
        for (address, answer) in replies {
            if let Value::ServerError(err) = answer {
                return Err(backend(err.into()));
            }
            let address: String =
                redis::from_redis_value(address).map_err(|e| backend(e.into()))?;
            let parsed = address
                .rsplit_once(':')
                .and_then(|(host, port)| Some((host.to_owned(), port.parse().ok()?)));
            match parsed {
                Some(node) => masters.push(node),
                None => {
                    return Err(CacheError::Backend(
                        format!("bad node address {address:?}").into(),
                    ))
                }
            }
        }
        Ok(masters)
    }
}

/// Maps a `redis` error onto the three kinds of [`CacheError`], keeping it as the source.
fn classify(err: RedisError) -> CacheError {
    if err.is_timeout() {
        CacheError::Timeout
    } else if err.is_io_error() || err.is_connection_dropped() || err.is_cluster_error() {
        CacheError::Unavailable(Box::new(err))
    } else {
        backend(err)
    }
}

fn backend(err: RedisError) -> CacheError {
    CacheError::Backend(Box::new(err))
}

/// `prefix` as a `SCAN MATCH` pattern matching exactly the keys that start with it.
fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 8);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// A time to live in whole milliseconds for `SET PX`: rounded up, at most [`MAX_TTL`].
fn ttl_millis(ttl: Duration) -> u64 {
    let millis = ttl.min(MAX_TTL).as_nanos().div_ceil(1_000_000);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[async_trait]
impl CacheBackend for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        let mut get = redis::cmd("GET");
        get.arg(self.inner.key(key));
        self.run_read(|inner| async move {
            let value: Option<Vec<u8>> = inner.query(&get).await?;
            Ok(value.map(Bytes::from))
        })
        .await
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        let cmd = if ttl.is_zero() {
            // Expired at once: what was there is gone, and nothing new is readable.
            let mut unlink = redis::cmd("UNLINK");
            unlink.arg(self.inner.key(key));
            unlink
        } else {
            let mut set = redis::cmd("SET");
            set.arg(self.inner.key(key)).arg(&value[..]);
            set.arg("PX").arg(ttl_millis(ttl));
            set
        };
        self.run(|inner| async move { inner.query(&cmd).await })
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let mut unlink = redis::cmd("UNLINK");
        unlink.arg(self.inner.key(key));
        self.run(|inner| async move {
            let removed: u64 = inner.query(&unlink).await?;
            Ok(removed > 0)
        })
        .await
    }

    async fn delete_by_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        let pattern = prefix_pattern(&[self.inner.prefix.as_str(), prefix].concat());
        self.run(|inner| async move {
            let Connections::Cluster(conn) = &inner.conns else {
                return inner.purge(None, &pattern).await;
            };
            // Each master holds its own slots' keys: scan every one of them, side by side.
            let masters = inner.masters(conn).await?;
            let purges = masters.iter().map(|node| inner.purge(Some(node), &pattern));
            let removed = futures_util::future::try_join_all(purges).await?;
            Ok(removed.into_iter().sum())
        })
        .await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut mget = redis::cmd("MGET");
        for key in keys {
            mget.arg(self.inner.key(key));
        }
        self.run_read(|inner| async move {
            // On a cluster, `MGET` is split by slot and the answers put back in order.
            let values: Vec<Option<Vec<u8>>> = inner.query(&mget).await?;
            Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_of_the_prefix_are_escaped() {
        assert_eq!(prefix_pattern("mizan:ctx:user:"), "mizan:ctx:user:*");
        assert_eq!(prefix_pattern(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f*");
        assert_eq!(prefix_pattern(""), "*");
        assert_eq!(prefix_pattern("é^-"), "é^-*");
    }

    #[test]
    fn passwords_never_reach_debug_output() {
        assert_eq!(
            redact("redis://user:s3cret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://:s3cret@host"), "redis://:***@host");
        assert_eq!(redact("redis://host:6379/"), "redis://host:6379/");
        assert_eq!(redact("host:6379"), "host:6379");
        let single = format!("{:?}", RedisCache::builder("redis://:s3cret@host/"));
        let cluster = RedisCache::builder_cluster(["redis://u:s3cret@a:1", "b:2"]);
        let cluster = format!("{cluster:?}");
        let bus = format!("{:?}", RedisBus::builder("rediss://u:s3cret@host/"));
        for debug in [single, cluster.clone(), bus] {
            assert!(!debug.contains("s3cret"), "{debug}");
        }
        assert!(cluster.contains("redis://b:2"), "{cluster}");
    }

    #[test]
    fn ttls_round_up_to_milliseconds_and_are_bounded() {
        assert_eq!(ttl_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_millis(Duration::from_millis(1500)), 1500);
        assert_eq!(ttl_millis(Duration::from_secs(86_400)), 86_400_000);
        assert_eq!(ttl_millis(Duration::MAX), MAX_TTL.as_millis() as u64);
    }

    #[test]
    fn building_outside_a_runtime_is_an_error_not_a_panic() {
        let built = futures_executor::block_on(RedisCache::connect("redis://127.0.0.1:1/"));
        assert!(
            matches!(built, Err(CacheError::Unavailable(_))),
            "{built:?}"
        );
    }

    #[tokio::test]
    async fn a_bad_url_is_a_backend_error() {
        let built = RedisCache::connect("http://example/").await;
        assert!(matches!(built, Err(CacheError::Backend(_))), "{built:?}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable_with_its_cause() {
        // Port 1 on loopback: nothing listens there (and it is not anyone's Redis).
        let built = RedisCache::connect("redis://127.0.0.1:1/").await;
        let Err(CacheError::Unavailable(source)) = built else {
            panic!("{built:?}")
        };
        assert!(source.downcast_ref::<RedisError>().is_some(), "{source}");
    }
}
