//! Runs one WebSocket for a [`Mizan`] app: the pre-upgrade check and the driver loop that
//! feeds a [`Connection`] from the socket, the invalidation bus, a timer and the calls it
//! started; and the app's view of its open sockets (count, cap, shutdown).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::Stream as _;
use http::header::{HeaderValue, AUTHORIZATION, CONNECTION, HOST, ORIGIN, UPGRADE};
use http::request::Parts;
use http::{Method, Uri};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::app::Mizan;
use crate::bus::BusEvent;
use crate::cache::param_string;
use crate::error::ApiError;
use crate::identity::Identity;
use crate::socket::{Action, CloseReason, Connection, Expiry, Frame, Id, Outgoing, SocketIo};
use crate::transport::{parse_envelope, CallOutcome};

/// The WebSocket subprotocol of Mizan.
pub const SUBPROTOCOL: &str = "mizan.v1";

/// The runtime's sleep until the connection's next deadline.
type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the driver waits for; the first to happen is handled.
enum Event {
    Frame(Frame),
    Bus(Option<BusEvent>),
    Timer,
    Done(Box<Done>),
    /// The socket cannot be written to any more.
    Gone,
    /// The app closes its sockets ([`Mizan::close_sockets`]).
    Shutdown,
}

/// A finished piece of work the connection asked for.
enum Done {
    Auth(Parts, Result<(Identity, Expiry), ApiError>),
    Call(Id, Result<CallOutcome, ApiError>),
    Fetch(Id, http::Response<Bytes>),
    Recheck(Result<(), ApiError>),
}

impl Mizan {
    /// The path of the WebSocket endpoint: `{mount}ws/`.
    pub fn socket_path(&self) -> String {
        format!("{}ws/", self.inner.mount)
    }

    /// Decides, from the head alone, whether a WebSocket upgrade to
    /// [`socket_path`](Self::socket_path) may proceed. Adapters call it before answering 101.
    ///
    /// In order: the method is `GET` (else 405); the request asks for a WebSocket
    /// (`Upgrade: websocket`, else 400); it offers the `mizan.v1` subprotocol (else 400); its
    /// `Origin`, when present, is allowed (else 403: by default only the request's own
    /// `Host`, see [`MizanBuilder::with_socket_origins`](crate::MizanBuilder::with_socket_origins));
    /// the app has room for one more socket and is not closing them (else 503, see
    /// [`MizanBuilder::with_max_sockets`](crate::MizanBuilder::with_max_sockets) and
    /// [`close_sockets`](Self::close_sockets)); and its credentials, if any (an
    /// `Authorization` header, a cookie), are valid (else 401).
    pub async fn check_upgrade(&self, head: &Parts) -> Result<(), ApiError> {
        if head.method != Method::GET {
            return Err(ApiError::method_not_allowed(&[Method::GET]));
        }
        if !is_websocket_upgrade(head) {
            return Err(ApiError::bad_request(
                "ws/ takes a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)",
            ));
        }
        let offered = head
            .headers
            .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|protocol| protocol.trim() == SUBPROTOCOL);
        if !offered {
            return Err(ApiError::bad_request(format!(
                "the WebSocket must offer the subprotocol {SUBPROTOCOL}"
            ))
            .with_details(serde_json::json!({ "subprotocol": SUBPROTOCOL })));
        }
        if let Some(origin) = head.headers.get(ORIGIN) {
            if !self.origin_allowed(origin, head.headers.get(HOST)) {
                return Err(ApiError::forbidden()
                    .with_details(serde_json::json!({ "origin": "not allowed" })));
            }
        }
        self.inner.sockets.has_room(self.inner.socket.max_sockets)?;
        self.identify(head).await?;
        Ok(())
    }

    /// How many WebSockets the app has open now: each counts from the moment its driver
    /// ([`serve_socket`](Self::serve_socket)) starts until it returns, however the socket ended
    /// (a close, a dropped connection, a dropped driver). At
    /// [`MizanBuilder::with_max_sockets`](crate::MizanBuilder::with_max_sockets) the next upgrade
    /// gets 503.
    pub fn open_sockets(&self) -> usize {
        self.inner.sockets.open.load(Ordering::SeqCst)
    }

    /// How many open sockets have a `resync` waiting that their client has not read: a client
    /// that stopped reading (its pushes were dropped for the `resync`; still unread after
    /// [`SocketLimits::resync_timeout`](crate::SocketLimits::resync_timeout) it is closed with
    /// 1013), or one the bus lost events for a moment ago. A number that stays high means slow
    /// clients, or a network that does not keep up.
    pub fn lagging_sockets(&self) -> usize {
        self.inner.sockets.lagging.load(Ordering::SeqCst)
    }

    /// How many sockets the app has closed with 1013 since it was built because their client
    /// stopped reading (a `resync` left unread, or replies piling up unread). Never decreases.
    pub fn slow_sockets_closed(&self) -> u64 {
        self.inner.sockets.slow_closed.load(Ordering::SeqCst)
    }

    /// Closes every open WebSocket with 1001 ("going away") and refuses new upgrades with 503
    /// from then on: call it when the server starts shutting down, before it stops serving.
    ///
    /// The sockets are told at once; the returned future (runtime-free) completes when none is
    /// open any more. Each socket waits at most
    /// [`SocketLimits::close_timeout`](crate::SocketLimits::close_timeout) for its close frame
    /// to go out, so awaiting it does not hang on a client that stopped reading.
    ///
    /// ```
    /// use mizan_core::Mizan;
    ///
    /// let app = Mizan::builder().build().unwrap();
    /// // On Ctrl-C, before the server stops:
    /// futures_executor::block_on(app.close_sockets());
    /// assert_eq!(app.open_sockets(), 0);
    /// ```
    pub fn close_sockets(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.sockets.close_all();
        let app = self.clone();
        poll_fn(move |cx| app.inner.sockets.poll_none_open(cx))
    }

    fn origin_allowed(&self, origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let allowed = &self.inner.socket.origins;
        if !allowed.is_empty() {
            return allowed.contains(&origin);
        }
        let authority = origin.split_once("://").map(|(_, authority)| authority);
        let host = host.and_then(|host| host.to_str().ok());
        matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
    }

    /// Runs one upgraded WebSocket until it closes: the protocol of the [`socket`](crate::socket)
    /// module, with calls, fetches and subscriptions checked and run exactly as over HTTP, and
    /// the invalidations of every mutation (from any transport, any instance sharing the bus)
    /// pushed to the subscriptions they make stale. `head` is the upgrade request's, which
    /// [`check_upgrade`](Self::check_upgrade) accepted; its credentials identify the caller
    /// unless `init` carries a token.
    pub async fn serve_socket(&self, head: Parts, io: SocketIo) {
        let SocketIo {
            mut incoming,
            mut outgoing,
            sleep,
        } = io;
        let limits = self.inner.socket.limits;
        let Some(mut guard) = self.inner.sockets.admit(self.inner.socket.max_sockets) else {
            // Another upgrade took the last place after this one was checked.
            let reason = CloseReason::Overloaded;
            let close = Outgoing::Close(reason.code(), reason.reason());
            send_close(&mut outgoing, close, sleep(limits.close_timeout)).await;
            return;
        };
        let clock = &self.inner.clock;
        let mut conn = Connection::new(limits, clock.now());
        let mut bus = self.inner.bus.subscribe();
        let mut bus_open = true;
        let mut work: FuturesUnordered<BoxFuture<'_, Done>> = FuturesUnordered::new();
        let mut timer: Option<(Instant, Sleep)> = None;
        // The caller, once `init` is accepted, and the head that identified it.
        let mut caller: Option<(Parts, Identity)> = None;
        let mut flushing = false;
        loop {
            while let Some(action) = conn.poll_action() {
                match action {
                    Action::Close(reason) => {
                        guard.set_lagging(false);
                        if reason == CloseReason::SlowReader {
                            self.inner
                                .sockets
                                .slow_closed
                                .fetch_add(1, Ordering::SeqCst);
                        }
                        let close = Outgoing::Close(reason.code(), reason.reason());
                        send_close(&mut outgoing, close, sleep(limits.close_timeout)).await;
                        return;
                    }
                    Action::Authenticate { token } => {
                        let mut parts = head.clone();
                        if let Some(token) = token {
                            match HeaderValue::try_from(format!("Bearer {}", token.expose())) {
                                Ok(value) => {
                                    parts.headers.insert(AUTHORIZATION, value);
                                }
                                Err(_) => {
                                    conn.on_init_verdict(
                                        clock.now(),
                                        Err(ApiError::unauthenticated()),
                                    );
                                    continue;
                                }
                            }
                        }
                        work.push(Box::pin(async move {
                            let verdict = self.socket_identity(&parts).await;
                            Done::Auth(parts, verdict)
                        }));
                    }
                    Action::Recheck => {
                        let Some((parts, identity)) = &caller else {
                            continue;
                        };
                        let (parts, user) = (parts.clone(), identity.user_id.clone());
                        work.push(Box::pin(async move {
                            let verdict = match self.socket_identity(&parts).await {
                                Ok((now, _)) if now.user_id == user => Ok(()),
                                Ok(_) => Err(ApiError::unauthenticated()),
                                Err(err) => Err(err),
                            };
                            Done::Recheck(verdict)
                        }));
                    }
                    Action::Call { id, function, args } => {
                        let Some((parts, identity)) = caller.clone() else {
                            continue;
                        };
                        work.push(Box::pin(async move {
                            let outcome = self
                                .run_socket_call(&function, &args, parts, identity)
                                .await;
                            Done::Call(id, outcome)
                        }));
                    }
                    Action::Fetch {
                        id,
                        context,
                        params,
                    } => {
                        let Some((parts, identity)) = caller.clone() else {
                            continue;
                        };
                        work.push(Box::pin(async move {
                            let response = match self.fetch_parts(parts, &params) {
                                Ok(parts) => self.fetch(&context, parts, identity).await,
                                Err(err) => Err(err),
                            };
                            Done::Fetch(id, response.unwrap_or_else(ApiError::into_response))
                        }));
                    }
                    Action::Subscribe { id, context, .. } => {
                        let Some((parts, identity)) = &caller else {
                            continue;
                        };
                        let verdict = self.context_access(&context, identity, parts);
                        conn.on_subscribe_verdict(clock.now(), id, verdict);
                    }
                }
            }
            let deadline = conn.next_deadline();
            if timer.as_ref().map(|(at, _)| *at) != deadline {
                timer = deadline.map(|at| (at, sleep(at.saturating_duration_since(clock.now()))));
            }

            let event = poll_fn(|cx| {
                // Send what is queued, as fast as the socket takes it.
                loop {
                    match outgoing.as_mut().poll_ready(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(_)) => return Poll::Ready(Event::Gone),
                        Poll::Pending => break,
                    }
                    let Some(text) = conn.poll_transmit(clock.now()) else {
                        break;
                    };
                    if outgoing.as_mut().start_send(Outgoing::Text(text)).is_err() {
                        return Poll::Ready(Event::Gone);
                    }
                    flushing = true;
                }
                if flushing {
                    match outgoing.as_mut().poll_flush(cx) {
                        Poll::Ready(Ok(())) => flushing = false,
                        Poll::Ready(Err(_)) => return Poll::Ready(Event::Gone),
                        Poll::Pending => {}
                    }
                }
                guard.set_lagging(conn.resync_pending());
                if guard.poll_closing(cx) {
                    return Poll::Ready(Event::Shutdown);
                }
                if let Poll::Ready(frame) = incoming.as_mut().poll_next(cx) {
                    return Poll::Ready(Event::Frame(frame.unwrap_or(Frame::Closed)));
                }
                if bus_open {
                    if let Poll::Ready(event) = Pin::new(&mut bus).poll_next(cx) {
                        return Poll::Ready(Event::Bus(event));
                    }
                }
                if !work.is_empty() {
                    if let Poll::Ready(Some(done)) = Pin::new(&mut work).poll_next(cx) {
                        return Poll::Ready(Event::Done(Box::new(done)));
                    }
                }
                if let Some((_, sleep)) = &mut timer {
                    if sleep.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Event::Timer);
                    }
                }
                Poll::Pending
            })
            .await;

            let now = clock.now();
            match event {
                Event::Done(done) => match *done {
                    Done::Auth(parts, verdict) => {
                        let verdict = verdict.map(|(identity, expiry)| {
                            caller = Some((parts, identity));
                            expiry
                        });
                        conn.on_init_verdict(now, verdict);
                    }
                    Done::Recheck(verdict) => conn.on_recheck_verdict(now, verdict),
                    Done::Call(id, Ok(outcome)) => conn.on_call_result(now, id, Ok(&outcome)),
                    Done::Call(id, Err(err)) => conn.on_call_result(now, id, Err(err)),
                    Done::Fetch(id, response) => conn.on_response(now, id, &response),
                },
                Event::Gone => return,
                Event::Frame(Frame::Closed) => {
                    // The client closed: flush the library's reply to its close frame, so the
                    // closing handshake completes cleanly (bounded, like every close).
                    use futures_util::SinkExt;
                    let close = outgoing.close();
                    futures_util::pin_mut!(close);
                    let _ = futures_util::future::select(close, sleep(limits.close_timeout)).await;
                    return;
                }
                Event::Shutdown => conn.shutdown(),
                Event::Frame(Frame::Text(text)) => conn.handle_text(now, &text),
                Event::Frame(Frame::Binary) => conn.handle_binary(),
                Event::Frame(Frame::TooLarge) => conn.handle_too_large(),
                Event::Bus(Some(BusEvent::Targets(targets))) => conn.on_invalidation(now, &targets),
                Event::Bus(Some(_)) => conn.on_resync(now),
                Event::Bus(None) => {
                    // The bus is gone: whatever it would have carried is lost.
                    bus_open = false;
                    conn.on_resync(now);
                }
                Event::Timer => {
                    timer = None;
                    conn.handle_timeout(now);
                }
            }
        }
    }

    /// The identity of a socket's caller and when it expires (the `exp` claim, if any).
    async fn socket_identity(&self, parts: &Parts) -> Result<(Identity, Expiry), ApiError> {
        let identity = self.identify(parts).await?;
        let clock = &self.inner.clock;
        let expiry = match identity.claims.get("exp").and_then(Value::as_u64) {
            Some(exp) => Expiry::from_unix(exp, clock.unix_seconds(), clock.now()),
            None => Expiry::Never,
        };
        Ok((identity, expiry))
    }

    /// Runs a socket `call`: only functions declared `websocket` (any other is `not_found`),
    /// then exactly as `POST call/`.
    pub(crate) async fn run_socket_call(
        &self,
        function: &str,
        args: &RawValue,
        mut parts: Parts,
        identity: Identity,
    ) -> Result<CallOutcome, ApiError> {
        let registry = &self.inner.registry;
        let socket_callable = registry
            .by_name
            .get(function)
            .is_some_and(|&index| registry.functions[index].is_websocket());
        if !socket_callable {
            return Err(ApiError::not_found(format!(
                "no function named {function:?} callable over the socket"
            )));
        }
        let body = Bytes::from(format!(
            r#"{{"fn":{},"args":{}}}"#,
            serde_json::to_string(function)?,
            args.get()
        ));
        let envelope = parse_envelope(&body, self.inner.limits.max_json_depth)?;
        parts.method = Method::POST;
        parts.uri =
            Uri::try_from(format!("{}call/", self.inner.mount)).map_err(ApiError::internal)?;
        self.run_call(envelope, parts, body.clone(), identity).await
    }

    /// The head of a socket fetch: `GET ctx/?<params>` with the caller's headers.
    fn fetch_parts(
        &self,
        mut parts: Parts,
        params: &Map<String, Value>,
    ) -> Result<Parts, ApiError> {
        let pairs: Vec<(&str, String)> = params
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), param_string(value)?)))
            .collect();
        let query = serde_urlencoded::to_string(pairs).map_err(ApiError::internal)?;
        parts.method = Method::GET;
        parts.uri = Uri::try_from(format!("{}ctx/?{query}", self.inner.mount))
            .map_err(|e| ApiError::bad_request("invalid context parameters").with_source(e))?;
        Ok(parts)
    }
}

/// Whether the head asks for a WebSocket: `Upgrade: websocket` (and `Connection: upgrade`).
pub(crate) fn is_websocket_upgrade(head: &Parts) -> bool {
    let has = |name, token: &str| {
        head.headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|value| value.trim().eq_ignore_ascii_case(token))
    };
    has(UPGRADE, "websocket") && has(CONNECTION, "upgrade")
}

/// Sends the close frame, waiting at most until `timeout` for the socket to take it.
async fn send_close(
    outgoing: &mut Pin<Box<dyn futures_util::Sink<Outgoing, Error = crate::BoxError> + Send>>,
    close: Outgoing,
    timeout: Sleep,
) {
    use futures_util::SinkExt;
    let send = outgoing.send(close);
    futures_util::pin_mut!(send);
    let _ = futures_util::future::select(send, timeout).await;
}

#[cfg(test)]
mod tests {
    use futures_channel::mpsc;
    use futures_util::{future, stream, FutureExt, StreamExt};

    use super::*;
    use crate::testing::block_on;
    use crate::BoxError;
    use crate::Function;
    use http::StatusCode;

    fn app() -> Mizan {
        Mizan::builder()
            .with_function(
                Function::new("echo")
                    .websocket()
                    .with_param::<String>("message")
                    .handler(|_, mut args| async move { args.take::<String>("message") }),
            )
            .with_function(
                Function::new("http_only").handler(|_, _| async { Ok::<_, ApiError>(1) }),
            )
            .build()
            .unwrap()
    }

    /// Runs a socket fed `frames`, until the server sent `replies` messages.
    fn exchange(frames: &[&str], replies: usize) -> Vec<Outgoing> {
        let app = app();
        let incoming = stream::iter(
            frames
                .iter()
                .map(|f| Frame::Text((*f).to_owned()))
                .collect::<Vec<_>>(),
        )
        .chain(stream::pending());
        let (sink, received) = mpsc::unbounded();
        let io = SocketIo::new(incoming, sink, |_| future::pending::<()>());
        let head = http::Request::get("/api/mizan/ws/")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let serve = app.serve_socket(head, io).boxed_local();
        let read = received.take(replies).collect::<Vec<_>>();
        // Bound first: the select's temporaries borrow `app`, which must outlive them.
        #[allow(clippy::let_and_return)]
        let sent = match block_on(future::select(serve, read)) {
            future::Either::Right((sent, _)) => sent,
            future::Either::Left(((), read)) => block_on(read),
        };
        sent
    }

    #[test]
    fn runs_socket_calls_of_websocket_functions_only() {
        let sent = exchange(
            &[
                r#"{"type":"init"}"#,
                r#"{"type":"call","id":1,"fn":"echo","args":{"message":"hi"}}"#,
                r#"{"type":"call","id":2,"fn":"http_only","args":{}}"#,
            ],
            3,
        );
        assert_eq!(sent[0], Outgoing::Text(r#"{"type":"ack"}"#.into()));
        assert!(sent.contains(&Outgoing::Text(
            r#"{"type":"result","id":1,"result":"hi","invalidate":[]}"#.into()
        )));
        assert!(sent.iter().any(|m| matches!(m, Outgoing::Text(t) if t.starts_with(r#"{"type":"error","id":2,"error":{"code":"not_found""#))));
    }

    #[test]
    fn a_call_before_init_closes_with_4401() {
        let sent = exchange(&[r#"{"type":"call","id":1,"fn":"echo","args":{}}"#], 1);
        assert!(matches!(&sent[0], Outgoing::Close(4401, _)));
    }

    /// The upgrade head the tests serve.
    fn head() -> Parts {
        http::Request::get("/api/mizan/ws/")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    /// A socket that sends nothing and never ends, and what the server sent on it.
    fn quiet_socket() -> (SocketIo, mpsc::UnboundedReceiver<Outgoing>) {
        let (sink, sent) = mpsc::unbounded();
        let io = SocketIo::new(stream::pending(), sink, |_| future::pending::<()>());
        (io, sent)
    }

    /// Polls `serve` once; whether it finished.
    fn poll_once(serve: &mut future::BoxFuture<'_, ()>) -> bool {
        let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        serve.as_mut().poll(&mut cx).is_ready()
    }

    fn upgrade_head() -> Parts {
        http::Request::get("/api/mizan/ws/")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-protocol", "mizan.v1")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn close_sockets_closes_each_open_socket_with_1001_and_refuses_new_upgrades() {
        let app = app();
        let (io_a, mut sent_a) = quiet_socket();
        let (io_b, mut sent_b) = quiet_socket();
        let mut a = app.serve_socket(head(), io_a).boxed();
        let mut b = app.serve_socket(head(), io_b).boxed();
        assert!(!poll_once(&mut a) && !poll_once(&mut b));
        assert_eq!(app.open_sockets(), 2);
        assert_eq!(block_on(app.check_upgrade(&upgrade_head())).ok(), Some(()));

        let closed = app.close_sockets();
        assert!(poll_once(&mut a) && poll_once(&mut b));
        for sent in [&mut sent_a, &mut sent_b] {
            let close = sent.try_recv().unwrap();
            assert!(matches!(close, Outgoing::Close(1001, _)), "{close:?}");
        }
        assert_eq!(app.open_sockets(), 0);
        block_on(closed);
        let refused = block_on(app.check_upgrade(&upgrade_head())).unwrap_err();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        // A socket that still got through closes at once.
        let (io, mut sent) = quiet_socket();
        assert!(poll_once(&mut app.serve_socket(head(), io).boxed()));
        assert!(matches!(sent.try_recv(), Ok(Outgoing::Close(1001, _))));
    }

    #[test]
    fn the_socket_cap_refuses_upgrades_with_503_and_a_dropped_driver_frees_its_place() {
        let app = Mizan::builder().with_max_sockets(1).build().unwrap();
        let (io, _sent) = quiet_socket();
        let mut first = app.serve_socket(head(), io).boxed();
        assert!(!poll_once(&mut first));
        assert_eq!(app.open_sockets(), 1);
        let refused = block_on(app.check_upgrade(&upgrade_head())).unwrap_err();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.details().unwrap()["reason"], "max_sockets");

        // One that raced past the check is closed with 1013 ("try again later").
        let (io, mut sent) = quiet_socket();
        assert!(poll_once(&mut app.serve_socket(head(), io).boxed()));
        assert!(matches!(sent.try_recv(), Ok(Outgoing::Close(1013, _))));
        assert_eq!(app.open_sockets(), 1);

        // The driver dropped (its task aborted, its connection gone): the place is free.
        drop(first);
        assert_eq!(app.open_sockets(), 0);
        assert_eq!(block_on(app.check_upgrade(&upgrade_head())).ok(), Some(()));
        block_on(app.close_sockets());
    }

    #[test]
    fn a_close_frame_the_socket_does_not_take_is_given_up_after_close_timeout() {
        let app = app();
        // The sink never has room; the sleep is the close timeout, already over.
        let blocked = futures_util::sink::unfold((), |(), _: Outgoing| {
            future::pending::<Result<(), BoxError>>()
        });
        let io = SocketIo::new(stream::pending(), blocked, |_| future::ready(()));
        let mut serve = app.serve_socket(head(), io).boxed();
        let _closed = app.close_sockets();
        assert!(poll_once(&mut serve));
        assert_eq!(app.open_sockets(), 0);
    }

    #[test]
    fn upgrades_need_the_subprotocol_and_an_allowed_origin() {
        let app = app();
        let head = |origin: &str, protocol: &str| {
            http::Request::get("/api/mizan/ws/")
                .header("host", "example.com")
                .header("connection", "Upgrade")
                .header("upgrade", "websocket")
                .header("origin", origin)
                .header("sec-websocket-protocol", protocol)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let status =
            |head: Parts| block_on(app.check_upgrade(&head)).map_err(|e| e.status().as_u16());
        assert_eq!(status(head("https://example.com", "mizan.v1")), Ok(()));
        assert_eq!(status(head("https://evil.example", "mizan.v1")), Err(403));
        assert_eq!(status(head("https://example.com", "graphql-ws")), Err(400));
    }
}
