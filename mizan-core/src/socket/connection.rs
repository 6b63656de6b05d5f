//! [`Connection`]: the state machine of one socket.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::close::CloseReason;
use super::filter::Filter;
use super::limits::SocketLimits;
use super::message::{decode, encode, ClientMessage, Id, Token};
use crate::error::ApiError;
use crate::invalidation::Target;
use crate::transport::CallOutcome;

/// Something the driver must do for the connection, taken with [`Connection::poll_action`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Check the identity of `init` (its token, or the credentials of the upgrade request when
    /// there is none), then answer with [`Connection::on_init_verdict`].
    Authenticate {
        /// The token of `init`, if it carried one.
        token: Option<Token>,
    },
    /// Run function `function` with `args` (a JSON object) as the authenticated caller, with
    /// the same guards, limits and invalidation as over HTTP, and only if the function accepts
    /// socket calls (else `not_found`). Answer with [`Connection::on_call_result`] (or
    /// [`Connection::on_response`]); publish the outcome's targets on the invalidation bus.
    Call {
        /// The call's id, to pass back.
        id: Id,
        /// The function's name.
        function: String,
        /// The arguments, a JSON object.
        args: Box<RawValue>,
    },
    /// Fetch the bundle of `context` with `params`, as `GET ctx/<context>/?params` would for the
    /// caller. Answer with [`Connection::on_fetch_result`] (or [`Connection::on_response`]).
    Fetch {
        /// The fetch's id, to pass back.
        id: Id,
        /// The context.
        context: String,
        /// Its params (strings, numbers, booleans; take their string form with
        /// [`param_string`](crate::param_string)).
        params: Map<String, Value>,
    },
    /// Decide whether the caller may watch `context` with `params`: the context exists and the
    /// caller passes the guards a fetch of it would. Answer with
    /// [`Connection::on_subscribe_verdict`].
    Subscribe {
        /// The subscription's id, to pass back.
        id: Id,
        /// The context.
        context: String,
        /// Its params.
        params: Map<String, Value>,
    },
    /// Check that the caller's session is still active (not logged out, not revoked), then
    /// answer with [`Connection::on_recheck_verdict`].
    Recheck,
    /// Close the socket with this code and reason. Nothing else is sent after it; the
    /// connection ignores every later input.
    Close(CloseReason),
}

/// When the identity accepted by `init` stops being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// It does not expire (an anonymous caller, a session without an expiring token).
    Never,
    /// At this instant the connection closes with 4401.
    At(Instant),
}

impl Expiry {
    /// The expiry of a token whose `exp` is `exp` (seconds since the Unix epoch), given the
    /// current time both as Unix seconds and as the instant the connection is driven with.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use mizan_core::socket::Expiry;
    ///
    /// let now = Instant::now();
    /// assert_eq!(Expiry::from_unix(1_000_060, 1_000_000, now), Expiry::At(now + Duration::from_secs(60)));
    /// assert_eq!(Expiry::from_unix(999, 1_000, now), Expiry::At(now));
    /// ```
    pub fn from_unix(exp: u64, unix_now: u64, now: Instant) -> Self {
        now.checked_add(Duration::from_secs(exp.saturating_sub(unix_now)))
            .map_or(Self::Never, Self::At)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingInit,
    Authenticating,
    Ready,
    Closed,
}

/// What an id in use stands for.
#[derive(Debug)]
enum Op {
    /// A call or fetch the driver is running.
    Running { fetch: bool },
    /// A subscription, waiting for its verdict or active.
    Subscription(Subscription),
    /// A reply is queued for the id; it stays in use until the reply leaves the queue.
    Replied { subscription: bool },
}

#[derive(Debug)]
struct Subscription {
    filter: Filter,
    active: bool,
    /// Unsubscribed while its verdict was pending.
    cancelled: bool,
    /// Targets not yet sent (coalesced), and whether an entry for them is queued.
    pending: Vec<Target>,
    queued: bool,
}

#[derive(Debug)]
enum Entry {
    Text(String),
    Pong,
    /// A reply that frees its id once sent.
    Reply(Id, String),
    /// The pending targets of a subscription.
    Invalidate(Id),
    Resync,
}

/// The protocol state machine of one WebSocket connection: messages in, actions and messages
/// out, time passed in. It owns no socket, reads no clock and runs nothing; the driver does
/// (see the [module docs](super)).
#[derive(Debug)]
pub struct Connection {
    limits: SocketLimits,
    state: State,
    init_deadline: Option<Instant>,
    expires_at: Option<Instant>,
    recheck_at: Option<Instant>,
    recheck_pending: bool,
    early: VecDeque<ClientMessage>,
    early_bytes: usize,
    ops: HashMap<Id, Op>,
    calls: usize,
    subscriptions: usize,
    /// Active subscriptions by context.
    index: HashMap<String, Vec<Id>>,
    queue: VecDeque<Entry>,
    /// While messages are queued: when the driver last made progress (queued into an empty
    /// queue, or pulled a message).
    progress_at: Option<Instant>,
    pong_queued: bool,
    resync_queued: bool,
    resync_deadline: Option<Instant>,
    actions: VecDeque<Action>,
    closed: Option<CloseReason>,
}

impl Connection {
    /// A connection accepted at `now`, waiting for `init`.
    pub fn new(limits: SocketLimits, now: Instant) -> Self {
        Self {
            limits,
            state: State::AwaitingInit,
            init_deadline: now.checked_add(limits.init_timeout),
            expires_at: None,
            recheck_at: None,
            recheck_pending: false,
            early: VecDeque::new(),
            early_bytes: 0,
            ops: HashMap::new(),
            calls: 0,
            subscriptions: 0,
            index: HashMap::new(),
            queue: VecDeque::new(),
            progress_at: None,
            pong_queued: false,
            resync_queued: false,
            resync_deadline: None,
            actions: VecDeque::new(),
            closed: None,
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &SocketLimits {
        &self.limits
    }

    /// Whether `init` has been accepted and the connection is not closed.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the connection is closed (a [`Action::Close`] was emitted).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Why it closed, once closed.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// Whether a `resync` waits in the queue: the client has not read it yet (it stopped
    /// reading, or the bus lost events a moment ago). A closed connection has none.
    pub fn resync_pending(&self) -> bool {
        self.resync_queued
    }

    /// Subscriptions held, pending or active.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions
    }

    /// The next thing for the driver to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next message to send, in order. Pull only when the socket can take it: what is not
    /// pulled stays queued (bounded, see [`SocketLimits::max_queued_messages`]), and a client
    /// that takes nothing for [`SocketLimits::stall_timeout`] is treated as not reading.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<String> {
        let text = self.next_text();
        self.progress_at = if self.queue.is_empty() {
            None
        } else if text.is_some() {
            Some(now)
        } else {
            self.progress_at
        };
        text
    }

    fn next_text(&mut self) -> Option<String> {
        while let Some(entry) = self.queue.pop_front() {
            match entry {
                Entry::Text(text) => return Some(text),
                Entry::Pong => {
                    self.pong_queued = false;
                    return Some(encode::PONG.to_owned());
                }
                Entry::Reply(id, text) => {
                    match self.ops.remove(&id) {
                        Some(Op::Replied { subscription }) if subscription => {
                            self.subscriptions -= 1;
                        }
                        Some(Op::Replied { .. }) => self.calls -= 1,
                        Some(other) => {
                            self.ops.insert(id, other);
                        }
                        None => {}
                    }
                    return Some(text);
                }
                Entry::Invalidate(id) => {
                    if let Some(Op::Subscription(sub)) = self.ops.get_mut(&id) {
                        sub.queued = false;
                        let targets = std::mem::take(&mut sub.pending);
                        if !targets.is_empty() {
                            return Some(encode::invalidate(&id, &targets));
                        }
                    }
                }
                Entry::Resync => {
                    self.resync_queued = false;
                    self.resync_deadline = None;
                    return Some(encode::RESYNC.to_owned());
                }
            }
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let ready = self.state == State::Ready;
        [
            self.init_deadline
                .filter(|_| self.state == State::AwaitingInit),
            self.expires_at.filter(|_| ready),
            self.recheck_at.filter(|_| ready && !self.recheck_pending),
            self.resync_deadline.filter(|_| self.resync_queued),
            self.stall_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When the queue counts as stalled, if messages wait and no `resync` is queued yet.
    fn stall_deadline(&self) -> Option<Instant> {
        self.progress_at
            .filter(|_| !self.resync_queued)
            .and_then(|at| at.checked_add(self.limits.stall_timeout))
    }

    /// Acts on every deadline that has passed at `now`: no `init` in time (4408), the token's
    /// expiry (4401), a client that has read nothing for a while (its pending invalidations
    /// give way to a `resync`), a `resync` not read in time (1013), or a session re-check
    /// that is due ([`Action::Recheck`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        let passed = |deadline: Option<Instant>| deadline.is_some_and(|d| d <= now);
        match self.state {
            State::Closed => return,
            State::AwaitingInit if passed(self.init_deadline) => {
                return self.close(CloseReason::InitTimeout(self.limits.init_timeout));
            }
            State::Ready if passed(self.expires_at) => {
                return self.close(CloseReason::TokenExpired);
            }
            _ => {}
        }
        if self.resync_queued && passed(self.resync_deadline) {
            return self.close(CloseReason::SlowReader);
        }
        if passed(self.stall_deadline()) {
            self.queue_resync(now);
        }
        if self.state == State::Ready && !self.recheck_pending && passed(self.recheck_at) {
            self.recheck_pending = true;
            self.recheck_at = None;
            self.actions.push_back(Action::Recheck);
        }
    }

    /// A text message from the client.
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        if self.is_closed() {
            return;
        }
        match decode(text, &self.limits) {
            Err(reason) => self.close(reason),
            Ok(message) => self.handle_message(now, message, text.len()),
        }
    }

    /// A binary message from the client: the protocol has none (4400).
    pub fn handle_binary(&mut self) {
        self.close(CloseReason::Binary);
    }

    /// A message the driver refused to read because it is larger than
    /// [`SocketLimits::max_message_bytes`] (1009).
    pub fn handle_too_large(&mut self) {
        self.close(CloseReason::MessageTooBig {
            limit: self.limits.max_message_bytes,
        });
    }

    /// The server is shutting down (1001).
    pub fn shutdown(&mut self) {
        self.close(CloseReason::Shutdown);
    }

    fn handle_message(&mut self, now: Instant, message: ClientMessage, len: usize) {
        match (self.state, message) {
            (State::Closed, _) => {}
            (State::AwaitingInit, ClientMessage::Init { token }) => {
                self.state = State::Authenticating;
                self.init_deadline = None;
                self.actions.push_back(Action::Authenticate { token });
            }
            (State::AwaitingInit, _) => self.close(CloseReason::NotInitialized),
            (State::Authenticating | State::Ready, ClientMessage::Init { .. }) => {
                self.close(CloseReason::SecondInit);
            }
            (State::Authenticating, message) => {
                self.early_bytes += len;
                if self.early.len() >= self.limits.max_early_messages
                    || self.early_bytes > self.limits.max_message_bytes
                {
                    return self.close(CloseReason::TooManyEarlyMessages);
                }
                self.early.push_back(message);
            }
            (State::Ready, message) => self.handle_ready(now, message),
        }
    }

    fn handle_ready(&mut self, now: Instant, message: ClientMessage) {
        match message {
            ClientMessage::Init { .. } => self.close(CloseReason::SecondInit),
            ClientMessage::Call { id, function, args } => {
                if self.admit_call(now, &id, false) {
                    self.actions.push_back(Action::Call { id, function, args });
                }
            }
            ClientMessage::Fetch {
                id,
                context,
                params,
            } => {
                if self.admit_call(now, &id, true) {
                    self.actions.push_back(Action::Fetch {
                        id,
                        context,
                        params,
                    });
                }
            }
            ClientMessage::Sub {
                id,
                context,
                params,
            } => self.subscribe(now, id, context, params),
            ClientMessage::Unsub { id } => self.unsubscribe(now, id),
            ClientMessage::Ping => {
                if !self.pong_queued {
                    self.pong_queued = true;
                    self.push_reply(now, Entry::Pong);
                }
            }
        }
    }

    /// Whether a call or fetch under `id` may run; closes on a duplicate id, answers an
    /// `error` over the limit.
    fn admit_call(&mut self, now: Instant, id: &Id, fetch: bool) -> bool {
        if self.ops.contains_key(id) {
            self.close(CloseReason::DuplicateId(id.clone()));
            return false;
        }
        if self.calls >= self.limits.max_calls_in_flight {
            let limit = self.limits.max_calls_in_flight;
            let err = too_many("calls", format!("at most {limit} calls in flight"));
            self.push_reply(now, Entry::Text(encode::error(id, &err)));
            return false;
        }
        self.calls += 1;
        self.ops.insert(id.clone(), Op::Running { fetch });
        true
    }

    fn subscribe(&mut self, now: Instant, id: Id, context: String, params: Map<String, Value>) {
        if self.ops.contains_key(&id) {
            return self.close(CloseReason::DuplicateId(id));
        }
        let limit = self.limits.max_subscriptions;
        if self.subscriptions >= limit {
            let err = too_many("subscriptions", format!("at most {limit} subscriptions"));
            return self.push_reply(now, Entry::Text(encode::error(&id, &err)));
        }
        let filter = Filter::new(context.clone(), &params);
        if filter.size() > self.limits.max_subscription_bytes {
            let err = ApiError::bad_request(format!(
                "a subscription is at most {} bytes",
                self.limits.max_subscription_bytes
            ))
            .with_details(serde_json::json!({"limit": "subscription"}));
            return self.push_reply(now, Entry::Text(encode::error(&id, &err)));
        }
        self.subscriptions += 1;
        self.ops.insert(
            id.clone(),
            Op::Subscription(Subscription {
                filter,
                active: false,
                cancelled: false,
                pending: Vec::new(),
                queued: false,
            }),
        );
        self.actions.push_back(Action::Subscribe {
            id,
            context,
            params,
        });
    }

    /// `unsub` of an active subscription ends it at once (nothing is sent); of a pending one,
    /// its verdict is awaited and dropped (the id stays in use until then). Any other id gets
    /// a `not_found` error for that id.
    fn unsubscribe(&mut self, now: Instant, id: Id) {
        match self.ops.get_mut(&id) {
            Some(Op::Subscription(sub)) if sub.active => {
                let context = sub.filter.context().to_owned();
                self.ops.remove(&id);
                self.subscriptions -= 1;
                if let Some(ids) = self.index.get_mut(&context) {
                    ids.retain(|other| *other != id);
                    if ids.is_empty() {
                        self.index.remove(&context);
                    }
                }
                self.queue
                    .retain(|entry| !matches!(entry, Entry::Invalidate(queued) if *queued == id));
            }
            Some(Op::Subscription(sub)) if !sub.cancelled => sub.cancelled = true,
            _ => {
                let err = ApiError::not_found(format!("no subscription with id {id}"));
                self.push_reply(now, Entry::Text(encode::error(&id, &err)));
            }
        }
    }

    /// The verdict on `init`'s identity ([`Action::Authenticate`]). Accepted: the client gets
    /// `ack` and the messages it pipelined after `init` are handled in order. Refused: 4401.
    pub fn on_init_verdict(&mut self, now: Instant, verdict: Result<Expiry, ApiError>) {
        if self.state != State::Authenticating {
            return;
        }
        let expiry = match verdict {
            Err(_) => return self.close(CloseReason::Unauthenticated),
            Ok(expiry) => expiry,
        };
        self.state = State::Ready;
        if let Expiry::At(at) = expiry {
            if at <= now {
                return self.close(CloseReason::TokenExpired);
            }
            self.expires_at = Some(at);
        }
        self.recheck_at = now.checked_add(self.limits.recheck_interval);
        self.push_reply(now, Entry::Text(encode::ACK.to_owned()));
        self.early_bytes = 0;
        while let Some(message) = self.early.pop_front() {
            if self.is_closed() {
                break;
            }
            self.handle_ready(now, message);
        }
    }

    /// The verdict of a session re-check ([`Action::Recheck`]): refused closes with 4401.
    pub fn on_recheck_verdict(&mut self, now: Instant, verdict: Result<(), ApiError>) {
        if self.state != State::Ready || !self.recheck_pending {
            return;
        }
        self.recheck_pending = false;
        match verdict {
            Err(_) => self.close(CloseReason::SessionRevoked),
            Ok(()) => self.recheck_at = now.checked_add(self.limits.recheck_interval),
        }
    }

    /// The outcome of an [`Action::Call`]: `result` with the call's body, or `error`.
    pub fn on_call_result(
        &mut self,
        now: Instant,
        id: Id,
        outcome: Result<&CallOutcome, ApiError>,
    ) {
        let text = match outcome {
            Ok(outcome) => encode::result(&id, outcome.result(), &outcome.invalidate()),
            Err(err) => encode::error(&id, &err),
        };
        self.reply(now, id, text);
    }

    /// The bundle of an [`Action::Fetch`] (its JSON), or its error.
    pub fn on_fetch_result(&mut self, now: Instant, id: Id, bundle: Result<&RawValue, ApiError>) {
        let text = match bundle {
            Ok(data) => encode::data(&id, data),
            Err(err) => encode::error(&id, &err),
        };
        self.reply(now, id, text);
    }

    /// The reply to an [`Action::Call`] or [`Action::Fetch`] that the driver ran as an HTTP
    /// request through the app: a 2xx body is the call's `{"result", "invalidate"}` or the
    /// bundle, any other status carries the error envelope.
    pub fn on_response(&mut self, now: Instant, id: Id, response: &http::Response<Bytes>) {
        #[derive(Deserialize)]
        struct CallBody<'a> {
            #[serde(borrow)]
            result: &'a RawValue,
            #[serde(borrow)]
            invalidate: &'a RawValue,
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            error: Value,
        }
        let fetch = match self.ops.get(&id) {
            Some(Op::Running { fetch }) => *fetch,
            _ => return,
        };
        let body = response.body();
        let text = if response.status().is_success() {
            if fetch {
                serde_json::from_slice::<&RawValue>(body).map(|data| encode::data(&id, data))
            } else {
                serde_json::from_slice::<CallBody<'_>>(body)
                    .map(|call| encode::result(&id, call.result, &call.invalidate))
            }
        } else {
            serde_json::from_slice::<ErrorBody>(body)
                .map(|body| encode::error_envelope(&id, &body.error))
        };
        let text = text.unwrap_or_else(|e| encode::error(&id, &ApiError::internal(e)));
        self.reply(now, id, text);
    }

    fn reply(&mut self, now: Instant, id: Id, text: String) {
        if let Some(op @ Op::Running { .. }) = self.ops.get_mut(&id) {
            *op = Op::Replied {
                subscription: false,
            };
            self.push_reply(now, Entry::Reply(id, text));
        }
    }

    /// The verdict on an [`Action::Subscribe`]: `sub_ok` and the subscription starts receiving
    /// matching targets, or an `error` for its id (a context the caller may not read, an
    /// unknown context).
    pub fn on_subscribe_verdict(&mut self, now: Instant, id: Id, verdict: Result<(), ApiError>) {
        let Some(Op::Subscription(sub)) = self.ops.get_mut(&id) else {
            return;
        };
        if sub.active {
            return;
        }
        if sub.cancelled {
            self.ops.remove(&id);
            self.subscriptions -= 1;
            return;
        }
        match verdict {
            Ok(()) => {
                sub.active = true;
                let context = sub.filter.context().to_owned();
                self.index.entry(context).or_default().push(id.clone());
                self.push_reply(now, Entry::Text(encode::sub_ok(&id)));
            }
            Err(err) => {
                let text = encode::error(&id, &err);
                self.ops
                    .insert(id.clone(), Op::Replied { subscription: true });
                self.push_reply(now, Entry::Reply(id, text));
            }
        }
    }

    /// Targets published on the invalidation bus: each active subscription they match gets
    /// them in one `invalidate` (coalesced while it waits to be sent).
    pub fn on_invalidation(&mut self, now: Instant, targets: &[Target]) {
        if self.state != State::Ready || self.resync_queued {
            // Nothing subscribed yet, or a queued `resync` already covers these targets.
            return;
        }
        let cap = self.limits.max_pending_targets;
        let mut newly_pending = Vec::new();
        for target in targets {
            let Some(ids) = self.index.get(target.context()) else {
                continue;
            };
            for id in ids {
                if let Some(Op::Subscription(sub)) = self.ops.get_mut(id) {
                    if sub.filter.matches(target) {
                        add_target(&mut sub.pending, target, cap);
                        if !sub.queued {
                            sub.queued = true;
                            newly_pending.push(id.clone());
                        }
                    }
                }
            }
        }
        for id in newly_pending {
            if self.resync_queued {
                break;
            }
            if self.backlog() >= self.limits.max_queued_messages {
                self.queue_resync(now);
            } else {
                self.enqueue(now, Entry::Invalidate(id));
            }
        }
    }

    /// The invalidation bus lost messages (a reconnect, a lagging receiver): the client gets
    /// `resync` if it holds any subscription.
    pub fn on_resync(&mut self, now: Instant) {
        if self.state == State::Ready && self.subscriptions > 0 {
            self.queue_resync(now);
        }
    }

    /// Messages queued, not counting a queued `resync`.
    fn backlog(&self) -> usize {
        self.queue.len() - usize::from(self.resync_queued)
    }

    fn enqueue(&mut self, now: Instant, entry: Entry) {
        if self.queue.is_empty() {
            self.progress_at = Some(now);
        }
        self.queue.push_back(entry);
    }

    /// Queues a reply. When the queue is full, pending invalidations give way to a `resync`;
    /// if replies alone still fill it, the client sends requests without reading: 1013.
    fn push_reply(&mut self, now: Instant, entry: Entry) {
        if self.backlog() >= self.limits.max_queued_messages {
            self.queue_resync(now);
            if self.backlog() >= self.limits.max_queued_messages {
                return self.close(CloseReason::SlowReader);
            }
        }
        self.enqueue(now, entry);
    }

    /// Drops every pending invalidation and queues one `resync` (once): the client refetches
    /// everything it watches, so nothing it missed is lost.
    fn queue_resync(&mut self, now: Instant) {
        self.queue
            .retain(|entry| !matches!(entry, Entry::Invalidate(_)));
        for op in self.ops.values_mut() {
            if let Op::Subscription(sub) = op {
                sub.pending.clear();
                sub.queued = false;
            }
        }
        if !self.resync_queued {
            self.resync_queued = true;
            self.resync_deadline = now.checked_add(self.limits.resync_timeout);
            self.enqueue(now, Entry::Resync);
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.queue.clear();
        self.progress_at = None;
        self.resync_queued = false;
        self.resync_deadline = None;
        self.pong_queued = false;
        self.early.clear();
        self.ops.clear();
        self.index.clear();
        self.calls = 0;
        self.subscriptions = 0;
        self.actions.clear();
        self.actions.push_back(Action::Close(reason.clone()));
        self.closed = Some(reason);
    }
}

/// Adds `target` to a subscription's pending targets: duplicates once, a broad target absorbs
/// the others, and past `cap` distinct targets they collapse into the broad target.
fn add_target(pending: &mut Vec<Target>, target: &Target, cap: usize) {
    if pending.iter().any(Target::is_broad) || pending.contains(target) {
        return;
    }
    if target.is_broad() || pending.len() >= cap {
        let broad = Target::Context {
            context: target.context().to_owned(),
            params: None,
        };
        pending.clear();
        pending.push(broad);
        return;
    }
    pending.push(target.clone());
}

fn too_many(limit: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
        .with_details(serde_json::json!({ "limit": limit }))
}
