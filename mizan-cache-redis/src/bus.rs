//! [`RedisBus`]: the invalidation bus over Redis pub/sub, for apps served by several instances.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use mizan_core::bus::{decode_targets, encode_targets};
use mizan_core::{BusError, BusReceiver, InvalidationBus, MemoryBus, Target};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{Client, Msg, RedisError};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How long opening and subscribing a pub/sub connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait before reconnecting; it doubles after each failed attempt, up to the next.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// An [`InvalidationBus`] over a Redis pub/sub channel: every instance of the app connected to
/// the same Redis and channel receives the targets any of them publishes, itself included.
/// See [the crate docs](crate#invalidation-bus).
///
/// Cloning is cheap and shares the connections. Dropping the last clone stops the task that
/// listens to the channel; receivers already handed out then stay silent.
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

struct Inner {
    local: MemoryBus,
    publisher: ConnectionManager,
    channel: String,
    timeout: Duration,
    runtime: Handle,
    listener: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Configures a [`RedisBus`]; made by [`RedisBus::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisBusBuilder {
    url: String,
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

    /// Starts configuring a bus on `url`.
    pub fn builder(url: impl Into<String>) -> RedisBusBuilder {
        RedisBusBuilder {
            url: url.into(),
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
    /// URL. Must be awaited inside a Tokio runtime with its time driver enabled; the listening
    /// task and every publish run on that runtime.
    pub async fn build(self) -> Result<RedisBus, BusError> {
        let runtime = Handle::try_current().map_err(|err| BusError::Unavailable(err.into()))?;
        let client = Client::open(self.url.as_str()).map_err(|e| BusError::Backend(e.into()))?;
        let pubsub = subscribe(&client, &self.channel).await?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout.max(Duration::from_secs(1))))
            .set_max_delay(Duration::from_secs(1));
        let publisher = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| BusError::Backend(e.into()))?;
        let local = MemoryBus::new();
        let listener = Listener {
            client,
            channel: self.channel.clone(),
            local: local.clone(),
            health_check: self.health_check,
            ping_timeout: self.timeout.max(Duration::from_secs(1)),
        };
        let listener = runtime.spawn(listener.run(pubsub));
        Ok(RedisBus {
            inner: Arc::new(Inner {
                local,
                publisher,
                channel: self.channel,
                timeout: self.timeout,
                runtime,
                listener,
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
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.inner.channel).arg(encode_targets(targets));
        let (mut conn, limit) = (self.inner.publisher.clone(), self.inner.timeout);
        // On the bus's runtime, so that any executor can await it.
        let task = self.inner.runtime.spawn(async move {
            match timeout(limit, cmd.query_async::<i64>(&mut conn)).await {
                Ok(published) => published.map(drop).map_err(classify),
                Err(elapsed) => Err(BusError::Unavailable(elapsed.into())),
            }
        });
        task.await
            .map_err(|err| BusError::Unavailable(err.into()))?
    }

    fn subscribe(&self) -> BusReceiver {
        self.inner.local.subscribe()
    }
}

/// The task that hands the channel's messages to the local receivers.
struct Listener {
    client: Client,
    channel: String,
    local: MemoryBus,
    health_check: Duration,
    ping_timeout: Duration,
}

impl Listener {
    /// Listens until aborted; after each lost connection, reconnects with backoff and sends
    /// [`BusEvent::Resync`](mizan_core::BusEvent::Resync) to the local receivers, since
    /// messages published meanwhile are lost.
    async fn run(self, mut pubsub: PubSub) {
        loop {
            self.listen(pubsub).await;
            tracing::warn!(channel = %self.channel, "invalidation bus lost Redis; reconnecting");
            let mut backoff = MIN_BACKOFF;
            pubsub = loop {
                tokio::time::sleep(backoff).await;
                match subscribe(&self.client, &self.channel).await {
                    Ok(pubsub) => break pubsub,
                    Err(err) => tracing::debug!(error = %err, "invalidation bus reconnect failed"),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            };
            tracing::info!(channel = %self.channel, "invalidation bus reconnected; resync");
            self.local.resync();
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
    if err.is_timeout() || err.is_io_error() || err.is_connection_dropped() {
        BusError::Unavailable(err.into())
    } else {
        BusError::Backend(err.into())
    }
}
