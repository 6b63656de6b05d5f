//! [`RedisBus`]: the invalidation bus over Redis pub/sub, for apps served by several instances.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use mizan_core::bus::{decode_targets, encode_targets};
use mizan_core::{BusError, BusReceiver, InvalidationBus, MemoryBus, Target};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, PubSub};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Client, ConnectionAddr, Msg, RedisError, RedisResult};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::{cluster_client, Topology};

/// How long opening and subscribing a pub/sub connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait before reconnecting; it doubles after each failed attempt, up to the next.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a cluster bus keeps trying to publish a message whose `PUBLISH` failed.
const REPUBLISH_FOR: Duration = Duration::from_secs(30);
/// At most this many messages wait to be published again; more are dropped (and logged).
const MAX_REPUBLISHING: usize = 1024;

/// A connection to the cluster node the listener is subscribed on, once it is.
type ListeningNode = Arc<Mutex<Option<MultiplexedConnection>>>;

/// An [`InvalidationBus`] over a Redis pub/sub channel: every instance of the app connected to
/// the same Redis (one server, or one Redis Cluster) and channel receives the targets any of
/// them publishes, itself included. See [the crate docs](crate#invalidation-bus).
///
/// Cloning is cheap and shares the connections. Dropping the last clone stops the task that
/// listens to the channel; receivers already handed out then stay silent.
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

struct Inner {
    local: MemoryBus,
    publisher: Publisher,
    channel: String,
    timeout: Duration,
    runtime: Handle,
    listener: JoinHandle<()>,
    /// Messages being published again after a failed `PUBLISH` (cluster only).
    republishing: AtomicUsize,
}

/// The connection `PUBLISH` goes through.
enum Publisher {
    Single(ConnectionManager),
    /// A cluster connection: a message published on any node reaches every node, so it is
    /// published on the node the listener is subscribed on, known to be up (and through the
    /// cluster connection when that fails).
    Cluster {
        conn: ClusterConnection,
        listening: ListeningNode,
    },
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Configures a [`RedisBus`]; made by [`RedisBus::builder`] or [`RedisBus::builder_cluster`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisBusBuilder {
    topology: Topology,
    channel: String,
    timeout: Duration,
    health_check: Duration,
}

impl RedisBus {
    /// The default channel.
    pub const DEFAULT_CHANNEL: &'static str = "mizan:invalidate";
    /// The default timeout of one `PUBLISH`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
    /// The default quiet time after which the listening connection is checked with `PING`.
    pub const DEFAULT_HEALTH_CHECK: Duration = Duration::from_secs(5);

    /// Connects to `url` (the same URLs as [`RedisCache`](crate::RedisCache)) with the default
    /// options.
    pub async fn connect(url: impl Into<String>) -> Result<Self, BusError> {
        Self::builder(url).build().await
    }

    /// Starts configuring a bus on the single server at `url`.
    pub fn builder(url: impl Into<String>) -> RedisBusBuilder {
        Self::builder_on(Topology::Server(url.into()))
    }

    /// Connects to the Redis Cluster that `nodes` belong to, with the default options. See
    /// [`builder_cluster`](Self::builder_cluster).
    pub async fn connect_cluster(
        nodes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, BusError> {
        Self::builder_cluster(nodes).build().await
    }

    /// Starts configuring a bus on a Redis Cluster; `nodes` are seed nodes, as for
    /// [`RedisCache::builder_cluster`](crate::RedisCache::builder_cluster). It listens on one
    /// node at a time (Redis Cluster forwards every `PUBLISH` to every node) and moves to
    /// another node, with a resync, when that one fails. See
    /// [Redis Cluster](crate#redis-cluster).
    pub fn builder_cluster(nodes: impl IntoIterator<Item = impl Into<String>>) -> RedisBusBuilder {
        Self::builder_on(Topology::cluster(nodes))
    }

    fn builder_on(topology: Topology) -> RedisBusBuilder {
        RedisBusBuilder {
            topology,
            channel: Self::DEFAULT_CHANNEL.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
            health_check: Self::DEFAULT_HEALTH_CHECK,
        }
    }

    /// The Redis channel it publishes to and listens on.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("channel", &self.inner.channel)
            .field("timeout", &self.inner.timeout)
            .field("local", &self.inner.local)
            .finish_non_exhaustive()
    }
}

impl RedisBusBuilder {
    /// Publishes to and listens on `channel` (default `"mizan:invalidate"`). Apps sharing one
    /// Redis need distinct channels, e.g. their cache prefix followed by `invalidate`.
    pub fn with_channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    /// Gives up on a `PUBLISH` after `timeout` (default 250 ms; at least 1 ms).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sends `PING` on the listening connection after `quiet` without a message (default 5 s;
    /// at least 10 ms), and reconnects when no answer comes within the publish timeout (at
    /// least 1 s): a hung server is noticed like a closed connection.
    pub fn with_health_check(mut self, quiet: Duration) -> Self {
        self.health_check = quiet.max(Duration::from_millis(10));
        self
    }

    /// Subscribes to the channel and starts listening: [`BusError::Unavailable`] when Redis
    /// cannot be reached or no Tokio runtime is running, [`BusError::Backend`] for a malformed
    /// URL or an empty list of cluster nodes. Must be awaited inside a Tokio runtime with its
    /// time driver enabled; the listening task and every publish run on that runtime.
    pub async fn build(self) -> Result<RedisBus, BusError> {
        let runtime = Handle::try_current().map_err(|err| BusError::Unavailable(err.into()))?;
        let (nodes, publisher, cluster) = match &self.topology {
            Topology::Server(url) => {
                let client = Client::open(url.as_str()).map_err(|e| BusError::Backend(e.into()))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout.max(Duration::from_secs(1))))
                    .set_max_delay(Duration::from_secs(1));
                let publisher = ConnectionManager::new_lazy_with_config(client.clone(), config)
                    .map_err(|e| BusError::Backend(e.into()))?;
                (vec![client], Publisher::Single(publisher), None)
            }
            Topology::Cluster(urls) => {
                let nodes = urls
                    .iter()
                    .map(|url| Client::open(url.as_str()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| BusError::Backend(e.into()))?;
                let client = cluster_client(urls, self.timeout).map_err(classify)?;
                let conn = match timeout(CONNECT_TIMEOUT, client.get_async_connection()).await {
                    Ok(conn) => conn.map_err(classify)?,
                    Err(elapsed) => return Err(BusError::Unavailable(elapsed.into())),
                };
                let listening = ListeningNode::default();
                let publisher = Publisher::Cluster {
                    conn: conn.clone(),
                    listening: listening.clone(),
                };
                (nodes, publisher, Some((conn, listening)))
            }
        };
        let local = MemoryBus::new();
        let mut listener = Listener {
            // So that the first node tried is the first seed.
            current: nodes.len().saturating_sub(1),
            nodes,
            cluster,
            channel: self.channel.clone(),
            local: local.clone(),
            health_check: self.health_check,
            ping_timeout: self.timeout.max(Duration::from_secs(1)),
        };
        let pubsub = listener.subscribe_any().await?;
        let listener = runtime.spawn(listener.run(pubsub));
        Ok(RedisBus {
            inner: Arc::new(Inner {
                local,
                publisher,
                channel: self.channel,
                timeout: self.timeout,
                runtime,
                listener,
                republishing: AtomicUsize::new(0),
            }),
        })
    }
}

#[async_trait]
impl InvalidationBus for RedisBus {
    async fn publish(&self, targets: &[Target]) -> Result<(), BusError> {
        if targets.is_empty() {
            return Ok(());
        }
        let message = encode_targets(targets);
        let inner = self.inner.clone();
        // On the bus's runtime, so that any executor can await it.
        let task = self.inner.runtime.spawn(async move {
            let published = inner.publish_once(&message).await;
            if published.is_err() && matches!(inner.publisher, Publisher::Cluster { .. }) {
                // The listeners of other instances may be on healthy nodes, so no resync would
                // tell them: deliver late rather than never (up to a bound on pending messages).
                if inner.republishing.fetch_add(1, Ordering::Relaxed) < MAX_REPUBLISHING {
                    let bus = Arc::downgrade(&inner);
                    inner.runtime.spawn(republish(bus, message));
                } else {
                    inner.republishing.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(channel = %inner.channel, "invalidation bus dropped a message: too many waiting to be published again");
                }
            }
            published
        });
        task.await
            .map_err(|err| BusError::Unavailable(err.into()))?
    }

    fn subscribe(&self) -> BusReceiver {
        self.inner.local.subscribe()
    }
}

impl Inner {
    /// One `PUBLISH` of `message`, within the timeout.
    async fn publish_once(&self, message: &str) -> Result<(), BusError> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.channel).arg(message);
        let published = async {
            match &self.publisher {
                Publisher::Single(conn) => publish_on(&cmd, &mut conn.clone()).await,
                Publisher::Cluster { conn, listening } => {
                    let node = listening.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if let Some(mut node) = node {
                        if publish_on(&cmd, &mut node).await.is_ok() {
                            return Ok(());
                        }
                    }
                    publish_on(&cmd, &mut conn.clone()).await
                }
            }
        };
        match timeout(self.timeout, published).await {
            Ok(published) => published.map_err(classify),
            Err(elapsed) => Err(BusError::Unavailable(elapsed.into())),
        }
    }
}

/// One `PUBLISH` on `conn`.
async fn publish_on(
    cmd: &redis::Cmd,
    conn: &mut impl redis::aio::ConnectionLike,
) -> RedisResult<()> {
    cmd.query_async::<i64>(conn).await.map(drop)
}

/// Publishes `message` again, with backoff, until it goes through, [`REPUBLISH_FOR`] has
/// passed, or the bus is dropped. A message may then arrive twice: targets are idempotent.
async fn republish(bus: Weak<Inner>, message: String) {
    /// Counts the message out of `republishing` however the task ends.
    struct Done(Weak<Inner>);
    impl Drop for Done {
        fn drop(&mut self) {
            if let Some(inner) = self.0.upgrade() {
                inner.republishing.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    let _done = Done(bus.clone());
    let deadline = Instant::now() + REPUBLISH_FOR;
    let mut backoff = MIN_BACKOFF;
    while Instant::now() < deadline {
        tokio::time::sleep(backoff).await;
        let Some(inner) = bus.upgrade() else {
            return;
        };
        match inner.publish_once(&message).await {
            Ok(()) => {
                tracing::info!(channel = %inner.channel, "invalidation bus published a message late");
                return;
            }
            Err(err) => tracing::debug!(error = %err, "invalidation bus republish failed"),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    tracing::warn!(
        "invalidation bus gave up publishing a message; other instances' subscribers keep \
         what they have until their next refetch"
    );
}

/// The task that hands the channel's messages to the local receivers.
struct Listener {
    /// The nodes it may listen on: the one server, or the cluster's known nodes.
    nodes: Vec<Client>,
    /// The index in `nodes` of the node it listens on (or last tried).
    current: usize,
    /// On a cluster, the connection it asks for the current list of nodes, and where it tells
    /// the publisher which node it listens on.
    cluster: Option<(ClusterConnection, ListeningNode)>,
    channel: String,
    local: MemoryBus,
    health_check: Duration,
    ping_timeout: Duration,
}

impl Listener {
    /// Listens until aborted; after each lost connection, reconnects with backoff and sends
    /// [`BusEvent::Resync`](mizan_core::BusEvent::Resync) to the local receivers, since
    /// messages published meanwhile are lost.
    async fn run(mut self, mut pubsub: PubSub) {
        loop {
            self.listen(pubsub).await;
            tracing::warn!(channel = %self.channel, "invalidation bus lost Redis; reconnecting");
            let mut backoff = MIN_BACKOFF;
            pubsub = loop {
                tokio::time::sleep(backoff).await;
                self.discover().await;
                match self.subscribe_any().await {
                    Ok(pubsub) => break pubsub,
                    Err(err) => tracing::debug!(error = %err, "invalidation bus reconnect failed"),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            };
            tracing::info!(channel = %self.channel, "invalidation bus reconnected; resync");
            self.local.resync();
        }
    }

    /// Subscribes on the first node that accepts, trying each known node once, starting after
    /// the one used last (so a node that just failed is tried last).
    async fn subscribe_any(&mut self) -> Result<PubSub, BusError> {
        let mut failure = BusError::Unavailable("no Redis node to listen on".into());
        for step in 1..=self.nodes.len() {
            let node = (self.current + step) % self.nodes.len();
            match subscribe(&self.nodes[node], &self.channel).await {
                Ok(pubsub) => {
                    self.current = node;
                    if let Some((_, listening)) = &self.cluster {
                        let connect = self.nodes[node].get_multiplexed_async_connection();
                        let conn = timeout(CONNECT_TIMEOUT, connect)
                            .await
                            .ok()
                            .and_then(Result::ok);
                        *listening.lock().unwrap_or_else(|p| p.into_inner()) = conn;
                    }
                    return Ok(pubsub);
                }
                Err(err) => failure = err,
            }
        }
        Err(failure)
    }

    /// On a cluster, adds the nodes that `CLUSTER NODES` reports healthy and that are not known
    /// yet (with the seed nodes' credentials); keeps the list as it is when that fails.
    async fn discover(&mut self) {
        let Some((cluster, _)) = &self.cluster else {
            return;
        };
        let mut conn = cluster.clone();
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        let ask = conn.route_command(redis::cmd("CLUSTER").arg("NODES").clone(), route);
        let Ok(Ok(reply)) = timeout(self.ping_timeout, ask).await else {
            return;
        };
        let Ok(text) = redis::from_redis_value::<String>(reply) else {
            return;
        };
        let seed = self.nodes[0].get_connection_info().clone();
        for (host, port) in healthy_nodes(&text) {
            let known = self.nodes.iter().any(|client| {
                matches!(client.get_connection_info().addr(),
                    ConnectionAddr::Tcp(h, p) if *h == host && *p == port)
            });
            if known || !matches!(seed.addr(), ConnectionAddr::Tcp(..)) {
                continue;
            }
            let info = seed.clone().set_addr(ConnectionAddr::Tcp(host, port));
            if let Ok(client) = Client::open(info) {
                self.nodes.push(client);
            }
        }
    }

    /// Delivers messages until the connection closes or stops answering.
    async fn listen(&self, pubsub: PubSub) {
        let (mut sink, mut messages) = pubsub.split();
        loop {
            match timeout(self.health_check, messages.next()).await {
                Ok(Some(message)) => self.deliver(&message),
                Ok(None) => return,
                Err(_quiet) => {
                    let pong = timeout(self.ping_timeout, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        return;
                    }
                }
            }
        }
    }

    fn deliver(&self, message: &Msg) {
        let decoded = std::str::from_utf8(message.get_payload_bytes())
            .map_err(|err| BusError::Malformed(err.into()))
            .and_then(decode_targets);
        match decoded {
            Ok(targets) => self.local.deliver(&targets),
            Err(err) => {
                tracing::warn!(channel = %self.channel, error = %err, "skipped a bus message")
            }
        }
    }
}

/// The nodes (`host`, `port`) of a `CLUSTER NODES` reply that are connected and not failing.
fn healthy_nodes(reply: &str) -> Vec<(String, u16)> {
    let mut nodes = Vec::new();
    for line in reply.lines() {
        // `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> ...`
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(address), Some(flags), Some(link)) =
            (fields.get(1), fields.get(2), fields.get(7))
        else {
            continue;
        };
        let unhealthy = ["fail", "fail?", "noaddr", "handshake"];
        if *link != "connected" || flags.split(',').any(|flag| unhealthy.contains(&flag)) {
            continue;
        }
        let address = address.split(['@', ',']).next().unwrap_or_default();
        if let Some((host, port)) = address.rsplit_once(':') {
            if let (false, Ok(port)) = (host.is_empty(), port.parse()) {
                nodes.push((host.to_owned(), port));
            }
        }
    }
    nodes
}

/// A pub/sub connection subscribed to `channel`, within [`CONNECT_TIMEOUT`].
async fn subscribe(client: &Client, channel: &str) -> Result<PubSub, BusError> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, RedisError>(pubsub)
    };
    match timeout(CONNECT_TIMEOUT, connect).await {
        Ok(subscribed) => subscribed.map_err(classify),
        Err(elapsed) => Err(BusError::Unavailable(elapsed.into())),
    }
}

/// Maps a `redis` error onto [`BusError`], keeping it as the source.
fn classify(err: RedisError) -> BusError {
    if err.is_timeout()
        || err.is_io_error()
        || err.is_connection_dropped()
        || err.is_cluster_error()
    {
        BusError::Unavailable(err.into())
    } else {
        BusError::Backend(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_replies_give_the_healthy_nodes() {
        let reply = "\
07c3 127.0.0.1:30004@40004 replica e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002,node-b master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1426238318243 3 disconnected 10923-16383
6ec2 127.0.0.1:30005@40005 replica,fail? 67ed 0 1426238316232 5 connected
824f 127.0.0.1:30006@40006 replica 292f 0 1426238317741 6 disconnected
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
garbage
ab12 :0@0 master,noaddr - 0 0 0 connected
";
        assert_eq!(
            healthy_nodes(reply),
            [
                ("127.0.0.1".to_owned(), 30004),
                ("127.0.0.1".to_owned(), 30002),
                ("127.0.0.1".to_owned(), 30001),
            ]
        );
        assert!(healthy_nodes("").is_empty());
    }
}
