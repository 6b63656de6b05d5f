//! [`SocketLimits`]: every bound of one socket connection, in one place.

use std::time::Duration;

/// The limits of one socket connection. [`Default`] gives the protocol's defaults; set a field
/// to tune one (new fields come with a default, so build it with `..SocketLimits::default()`).
///
/// ```
/// use std::time::Duration;
/// use mizan_core::socket::SocketLimits;
///
/// let limits = SocketLimits { max_subscriptions: 16, ..SocketLimits::default() };
/// assert_eq!(limits.init_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketLimits {
    /// Largest client message in bytes; a larger one closes the socket with 1009. Default 1 MiB.
    pub max_message_bytes: usize,
    /// Deepest JSON nesting of a client message; deeper closes with 4400. Default 32.
    pub max_json_depth: usize,
    /// Longest string `id` in bytes; longer closes with 4400. Default 128.
    pub max_id_bytes: usize,
    /// Subscriptions per connection (pending and active); the next `sub` gets an `error` for
    /// its id. Default 128.
    pub max_subscriptions: usize,
    /// Calls and context fetches in flight per connection (a reply counts until it has been
    /// handed to the socket); the next one gets an `error` for its id. Default 32.
    pub max_calls_in_flight: usize,
    /// Size of one subscription (context name, parameter names and values, in bytes); a larger
    /// `sub` gets an `error` for its id. Default 4 KiB.
    pub max_subscription_bytes: usize,
    /// How long a new connection may take to send `init`; then it closes with 4408. Default 5 s.
    pub init_timeout: Duration,
    /// Messages the client may pipeline after `init`, before the server has checked the
    /// token; they are handled in order once it has. More, or more than
    /// [`max_message_bytes`](Self::max_message_bytes) in all, close with 4429. Default 32.
    pub max_early_messages: usize,
    /// How often a ready connection asks the driver to check that its session is still
    /// active, so a logout closes it within this interval (4401). Default 5 s.
    pub recheck_interval: Duration,
    /// Messages waiting to be sent. Pending invalidations of one subscription take one entry;
    /// when the queue is full they are dropped for one `resync`. Default 256.
    pub max_queued_messages: usize,
    /// Distinct targets kept for one subscription between two sends; beyond that they collapse
    /// into the broad target of the subscription's context. Default 16.
    pub max_pending_targets: usize,
    /// How long queued messages may wait without the driver pulling any (the socket takes
    /// nothing: the client stopped reading) before pending invalidations are dropped for one
    /// `resync`. Default 10 s.
    pub stall_timeout: Duration,
    /// How long a queued `resync` may wait for the client to read it; then the connection
    /// closes with 1013. Default 10 s.
    pub resync_timeout: Duration,
    /// How long the server waits for the socket to take its close frame (a client that stopped
    /// reading takes nothing) before it drops the connection without one. Default 5 s.
    pub close_timeout: Duration,
}

impl Default for SocketLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1 << 20,
            max_json_depth: 32,
            max_id_bytes: 128,
            max_subscriptions: 128,
            max_calls_in_flight: 32,
            max_subscription_bytes: 4096,
            init_timeout: Duration::from_secs(5),
            max_early_messages: 32,
            recheck_interval: Duration::from_secs(5),
            max_queued_messages: 256,
            max_pending_targets: 16,
            stall_timeout: Duration::from_secs(10),
            resync_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
        }
    }
}
