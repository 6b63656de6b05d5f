//! The WebSocket transport of the reference app, over real loopback sockets, on every adapter
//! (axum, tower, actix): calls, subscriptions fed by HTTP mutations, the refusals before and
//! after the upgrade, and the faults: a client that stops reading, a bus that loses its Redis,
//! dropped connections, server shutdown, expired and revoked tokens, the connection cap.

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "../examples/demo/serve.rs"]
#[allow(dead_code)]
mod serve;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use mizan::{MemoryBus, Mizan, MizanBuilder, SocketLimits};
use serde_json::{json, Value};
use serve::Adapter;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The bound on waiting for anything that normally happens within milliseconds.
const WAIT: Duration = Duration::from_secs(20);

/// A running demo; stopped when dropped.
struct Server {
    addr: SocketAddr,
    app: Mizan,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The demo's builder, on the memory cache.
fn demo() -> MizanBuilder {
    app::builder(&app::Secrets::development()).with_cache(mizan::MemoryCache::new())
}

async fn start(adapter: Adapter) -> Server {
    serve_app(adapter, demo()).await
}

async fn serve_app(adapter: Adapter, builder: MizanBuilder) -> Server {
    let app = builder.build().expect("the demo builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(adapter.serve(listener, app.clone()));
    Server { addr, app, task }
}

impl Server {
    /// The upgrade request: subprotocol `mizan.v1`, the server's own origin.
    fn request(&self) -> Request {
        let mut request = format!("ws://{}/api/mizan/ws/", self.addr)
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        headers.insert("sec-websocket-protocol", "mizan.v1".parse().unwrap());
        headers.insert("origin", format!("http://{}", self.addr).parse().unwrap());
        request
    }

    async fn connect_request(&self, request: Request) -> Result<Ws, WsError> {
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(ws, _)| ws)
    }

    async fn connect_with(&self, origin: &str) -> Result<Ws, WsError> {
        let mut request = self.request();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        self.connect_request(request).await
    }

    async fn connect(&self) -> Ws {
        self.connect_request(self.request())
            .await
            .expect("the upgrade")
    }

    /// A socket past `init` (anonymous).
    async fn ready(&self) -> Ws {
        self.ready_as(None).await
    }

    /// A socket past `init`, with the access token if given.
    async fn ready_as(&self, token: Option<&str>) -> Ws {
        let mut ws = self.connect().await;
        let init = match token {
            Some(token) => json!({"type": "init", "token": token}),
            None => json!({"type": "init"}),
        };
        send(&mut ws, init).await;
        assert_eq!(recv(&mut ws).await, json!({"type": "ack"}));
        ws
    }

    async fn http_call(&self, function: &str, args: Value) -> Value {
        self.http_call_as(None, function, args).await
    }

    async fn http_call_as(&self, token: Option<&str>, function: &str, args: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/api/mizan/call/", self.addr))
            .json(&json!({"fn": function, "args": args}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// Logs `username` in over HTTP; its access token.
    async fn login(&self, username: &str) -> String {
        let reply = self
            .http_call("login", json!({"username": username, "password": username}))
            .await;
        reply["result"]["access"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {reply}"))
            .to_owned()
    }
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// The next message, which must be a JSON text message (a safety timeout keeps a broken server
/// from hanging the suite).
async fn recv(ws: &mut Ws) -> Value {
    match next(ws).await {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn next(ws: &mut Ws) -> Message {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the server answers")
            .expect("the socket is open")
            .expect("a message");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

/// Sends `sub` (a `sub` message) and asserts that the next message is its `sub_ok`.
async fn subscribe(adapter: Adapter, ws: &mut Ws, sub: Value) {
    send(ws, sub.clone()).await;
    assert_eq!(
        recv(ws).await,
        json!({"type": "sub_ok", "id": sub["id"]}),
        "{adapter:?}: {sub}"
    );
}

/// The close code the server ends the socket with.
async fn close_code(ws: &mut Ws) -> u16 {
    match next(ws).await {
        Message::Close(Some(frame)) => u16::from(frame.code),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Polls `condition` until it holds, failing after [`WAIT`].
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The status of a refused upgrade, whose body is the error envelope with the code that goes
/// with it.
fn refused(result: Result<Ws, WsError>) -> u16 {
    let response = match result {
        Err(WsError::Http(response)) => response,
        other => panic!("expected a refused upgrade, got {:?}", other.map(|_| ())),
    };
    let status = response.status().as_u16();
    let body: Value =
        serde_json::from_slice(response.body().as_deref().expect("a body")).expect("JSON");
    let code = match status {
        400 => "bad_request",
        403 => "forbidden",
        503 => "service_unavailable",
        other => panic!("unexpected status {other}: {body}"),
    };
    assert_eq!(body["error"]["code"], code, "{body}");
    status
}

/// Runs `test` on every adapter at once, each in a task of its own (for tests that mostly
/// wait); a failure on any fails the test.
async fn on_every_adapter<F>(test: impl Fn(Adapter) -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let tasks = Adapter::ALL.map(|adapter| tokio::spawn(test(adapter)));
    for task in tasks {
        if let Err(err) = task.await {
            std::panic::resume_unwind(err.into_panic());
        }
    }
}

#[tokio::test]
async fn socket_calls_return_the_result() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut ws = server.ready().await;
        send(
            &mut ws,
            json!({"type": "call", "id": 1, "fn": "echo", "args": {"message": "hi"}}),
        )
        .await;
        assert_eq!(
            recv(&mut ws).await,
            json!({"type": "result", "id": 1, "result": "hi", "invalidate": []}),
            "{adapter:?}"
        );
        // A function not declared `websocket` does not exist on the socket.
        send(
            &mut ws,
            json!({"type": "call", "id": 2, "fn": "secret", "args": {}}),
        )
        .await;
        let reply = recv(&mut ws).await;
        assert_eq!(reply["error"]["code"], "not_found", "{adapter:?}");
    }
}

#[tokio::test]
async fn a_client_s_close_is_answered_with_a_close_frame() {
    on_every_adapter(|adapter| async move {
        let server = start(adapter).await;
        let mut ws = server.ready().await;
        ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();
        // The closing handshake completes: the server's close frame, then a clean end.
        assert_eq!(close_code(&mut ws).await, 1000, "{adapter:?}");
        let end = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the end");
        assert!(end.is_none(), "{adapter:?}: {end:?}");
        eventually("the socket is released", || server.app.open_sockets() == 0).await;
    })
    .await;
}

#[tokio::test]
async fn a_call_pipelined_right_after_init_is_answered_after_the_ack() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut ws = server.connect().await;
        // Both leave before the server has answered anything.
        send(&mut ws, json!({"type": "init"})).await;
        send(
            &mut ws,
            json!({"type": "call", "id": "c", "fn": "echo", "args": {"message": "early"}}),
        )
        .await;
        assert_eq!(recv(&mut ws).await, json!({"type": "ack"}), "{adapter:?}");
        assert_eq!(
            recv(&mut ws).await,
            json!({"type": "result", "id": "c", "result": "early", "invalidate": []}),
            "{adapter:?}"
        );
    }
}

#[tokio::test]
async fn an_http_mutation_reaches_exactly_the_matching_subscribers() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut bob = server.ready().await;
        let mut alice = server.ready().await;
        subscribe(
            adapter,
            &mut bob,
            json!({"type": "sub", "id": "u2", "context": "user", "params": {"user_id": 2}}),
        )
        .await;
        subscribe(
            adapter,
            &mut alice,
            json!({"type": "sub", "id": "u1", "context": "user", "params": {"user_id": 1}}),
        )
        .await;

        let reply = server
            .http_call("update_profile", json!({"user_id": 2, "name": "Robert"}))
            .await;
        assert_eq!(reply["result"]["name"], "Robert", "{adapter:?}");

        assert_eq!(
            recv(&mut bob).await,
            json!({"type": "invalidate", "id": "u2",
                   "targets": [{"context": "user", "params": {"user_id": 2}}]}),
            "{adapter:?}"
        );
        // The other user's subscriber got nothing: its next message answers its ping.
        send(&mut alice, json!({"type": "ping"})).await;
        assert_eq!(
            recv(&mut alice).await,
            json!({"type": "pong"}),
            "{adapter:?}"
        );
    }
}

#[tokio::test]
async fn subscription_refusals_are_errors_for_their_id_and_the_socket_stays_open() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut ws = server.ready().await;
        // The inbox is for staff: an anonymous caller may not watch it.
        send(
            &mut ws,
            json!({"type": "sub", "id": "in", "context": "inbox"}),
        )
        .await;
        let reply = recv(&mut ws).await;
        assert_eq!(
            (&reply["type"], &reply["id"]),
            (&json!("error"), &json!("in")),
            "{adapter:?}: {reply}"
        );
        assert_eq!(reply["error"]["code"], "unauthenticated", "{adapter:?}");
        send(
            &mut ws,
            json!({"type": "sub", "id": "nope", "context": "no_such_context"}),
        )
        .await;
        let reply = recv(&mut ws).await;
        assert_eq!(reply["id"], "nope", "{adapter:?}");
        assert_eq!(reply["error"]["code"], "not_found", "{adapter:?}");
        // Unsubscribing from what was never subscribed: `not_found` for that id.
        send(&mut ws, json!({"type": "unsub", "id": "ghost"})).await;
        let reply = recv(&mut ws).await;
        assert_eq!(
            (&reply["type"], &reply["id"], &reply["error"]["code"]),
            (&json!("error"), &json!("ghost"), &json!("not_found")),
            "{adapter:?}"
        );
        send(&mut ws, json!({"type": "ping"})).await;
        assert_eq!(recv(&mut ws).await, json!({"type": "pong"}), "{adapter:?}");
    }
}

#[tokio::test]
async fn the_129th_subscription_gets_an_error_for_its_id() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut ws = server.ready().await;
        for i in 0..129 {
            send(
                &mut ws,
                json!({"type": "sub", "id": format!("s{i}"), "context": "notes",
                       "params": {"folder": format!("f{i}")}}),
            )
            .await;
        }
        for i in 0..128 {
            assert_eq!(
                recv(&mut ws).await,
                json!({"type": "sub_ok", "id": format!("s{i}")}),
                "{adapter:?}"
            );
        }
        let reply = recv(&mut ws).await;
        assert_eq!(reply["id"], "s128", "{adapter:?}");
        assert_eq!(reply["error"]["code"], "too_many_requests", "{adapter:?}");
        assert_eq!(
            reply["error"]["details"]["limit"], "subscriptions",
            "{adapter:?}"
        );
        // The 128 work: a note in the last folder reaches its subscription.
        server
            .http_call("add_note", json!({"folder": "f127", "text": "hi"}))
            .await;
        assert_eq!(
            recv(&mut ws).await,
            json!({"type": "invalidate", "id": "s127",
                   "targets": [{"context": "notes", "params": {"folder": "f127"}}]}),
            "{adapter:?}"
        );
    }
}

#[tokio::test]
async fn a_call_before_init_closes_with_4401() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut ws = server.connect().await;
        send(
            &mut ws,
            json!({"type": "call", "id": 1, "fn": "echo", "args": {"message": "hi"}}),
        )
        .await;
        assert_eq!(close_code(&mut ws).await, 4401, "{adapter:?}");
    }
}

#[tokio::test]
async fn no_init_in_time_closes_with_4408() {
    let limits = SocketLimits {
        init_timeout: Duration::from_millis(300),
        ..SocketLimits::default()
    };
    for adapter in Adapter::ALL {
        let server = serve_app(adapter, demo().with_socket_limits(limits)).await;
        let mut ws = server.connect().await;
        assert_eq!(close_code(&mut ws).await, 4408, "{adapter:?}");
    }
}

#[tokio::test]
async fn a_binary_frame_closes_with_4400() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut ws = server.ready().await;
        ws.send(Message::binary(b"{\"type\":\"ping\"}".to_vec()))
            .await
            .unwrap();
        assert_eq!(close_code(&mut ws).await, 4400, "{adapter:?}");
    }
}

#[tokio::test]
async fn a_foreign_origin_is_refused_before_the_upgrade() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let status = refused(server.connect_with("https://evil.example").await);
        assert_eq!(status, 403, "{adapter:?}");
    }
}

#[tokio::test]
async fn a_missing_or_wrong_subprotocol_is_refused_with_400() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut request = server.request();
        request.headers_mut().remove("sec-websocket-protocol");
        assert_eq!(
            refused(server.connect_request(request).await),
            400,
            "{adapter:?}"
        );
        let mut request = server.request();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-ws".parse().unwrap());
        assert_eq!(
            refused(server.connect_request(request).await),
            400,
            "{adapter:?}"
        );
        // The server picks `mizan.v1` among several offered.
        let mut request = server.request();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-ws, mizan.v1".parse().unwrap(),
        );
        let (_, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "mizan.v1",
            "{adapter:?}"
        );
    }
}

#[tokio::test]
async fn a_message_over_one_mib_closes_with_1009() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut ws = server.ready().await;
        let big = "x".repeat((1 << 20) + 1);
        send(
            &mut ws,
            json!({"type": "call", "id": 1, "fn": "echo", "args": {"message": big}}),
        )
        .await;
        assert_eq!(
            close_code(&mut ws).await,
            u16::from(CloseCode::Size),
            "{adapter:?}"
        );
    }
}

/// Sends `text` as one message in frames of `part` bytes (a text frame and continuations).
async fn send_fragmented(ws: &mut Ws, text: &str, part: usize) {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(part).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = OpCode::Data(if i == 0 { Data::Text } else { Data::Continue });
        let frame = Frame::message(chunk.to_vec(), opcode, i + 1 == chunks.len());
        ws.send(Message::Frame(frame)).await.unwrap();
    }
}

#[tokio::test]
async fn a_message_in_several_frames_is_one_message_and_counts_whole_against_the_limit() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut ws = server.ready().await;
        let call = json!({"type": "call", "id": 1, "fn": "echo", "args": {"message": "joined"}});
        send_fragmented(&mut ws, &call.to_string(), 7).await;
        assert_eq!(
            recv(&mut ws).await,
            json!({"type": "result", "id": 1, "result": "joined", "invalidate": []}),
            "{adapter:?}"
        );
        // Frames of 512 KiB, none over the limit, a message of 1.5 MiB: 1009.
        let big = json!({"type": "call", "id": 2, "fn": "echo",
                         "args": {"message": "x".repeat(3 << 19)}});
        send_fragmented(&mut ws, &big.to_string(), 1 << 19).await;
        assert_eq!(close_code(&mut ws).await, 1009, "{adapter:?}");
    }
}

#[tokio::test]
async fn the_connection_cap_refuses_upgrades_with_503_until_a_socket_closes() {
    for adapter in Adapter::ALL {
        let server = serve_app(adapter, demo().with_max_sockets(2)).await;
        let mut first = server.ready().await;
        let _second = server.ready().await;
        assert_eq!(server.app.open_sockets(), 2, "{adapter:?}");
        assert_eq!(
            refused(server.connect_request(server.request()).await),
            503,
            "{adapter:?}"
        );
        first.close(None).await.unwrap();
        eventually("the closed socket leaving", || {
            server.app.open_sockets() == 1
        })
        .await;
        let mut third = server.ready().await;
        send(
            &mut third,
            json!({"type": "call", "id": 1, "fn": "echo", "args": {"message": "in"}}),
        )
        .await;
        assert_eq!(recv(&mut third).await["result"], "in", "{adapter:?}");
    }
}

#[tokio::test]
async fn dropped_connections_release_their_place_and_their_bus_receiver() {
    for adapter in Adapter::ALL {
        let bus = MemoryBus::new();
        let server = serve_app(adapter, demo().with_bus(bus.clone())).await;
        let before = bus.receiver_count();
        let mut sockets = Vec::new();
        for i in 0..4 {
            let mut ws = server.ready().await;
            subscribe(
                adapter,
                &mut ws,
                json!({"type": "sub", "id": i, "context": "user", "params": {"user_id": i}}),
            )
            .await;
            sockets.push(ws);
        }
        assert_eq!(server.app.open_sockets(), 4, "{adapter:?}");
        assert_eq!(bus.receiver_count(), before + 4, "{adapter:?}");
        // No close frame: half of them reset (RST), the others just vanish (FIN).
        for (i, ws) in sockets.into_iter().enumerate() {
            if i % 2 == 0 {
                if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
                    tcp.set_zero_linger().unwrap();
                }
            }
            drop(ws);
        }
        eventually("every dropped socket leaving", || {
            server.app.open_sockets() == 0
        })
        .await;
        eventually("every bus receiver released", || {
            bus.receiver_count() == before
        })
        .await;
        // The server is as good as new.
        let mut ws = server.ready().await;
        send(&mut ws, json!({"type": "ping"})).await;
        assert_eq!(recv(&mut ws).await, json!({"type": "pong"}), "{adapter:?}");
    }
}

#[tokio::test]
async fn closing_the_app_s_sockets_sends_1001_and_refuses_new_upgrades() {
    for adapter in Adapter::ALL {
        let server = start(adapter).await;
        let mut idle = server.ready().await;
        let mut watching = server.ready().await;
        subscribe(
            adapter,
            &mut watching,
            json!({"type": "sub", "id": 1, "context": "catalog"}),
        )
        .await;
        let mut fresh = server.connect().await;

        tokio::time::timeout(WAIT, server.app.close_sockets())
            .await
            .expect("every socket closes");
        for ws in [&mut idle, &mut watching, &mut fresh] {
            assert_eq!(close_code(ws).await, 1001, "{adapter:?}");
        }
        assert_eq!(server.app.open_sockets(), 0, "{adapter:?}");
        assert_eq!(
            refused(server.connect_request(server.request()).await),
            503,
            "{adapter:?}"
        );
        // Plain HTTP still works until the server stops.
        let reply = server
            .http_call("echo", json!({"message": "still here"}))
            .await;
        assert_eq!(reply["result"], "still here", "{adapter:?}");
    }
}

#[tokio::test]
async fn the_demo_s_graceful_shutdown_closes_sockets_with_1001_then_stops() {
    for adapter in Adapter::ALL {
        let app = demo().build().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(adapter.serve_until(listener, app.clone(), async {
            let _ = stopped.await;
        }));
        let server = Server {
            addr,
            app,
            task: tokio::spawn(std::future::pending()),
        };
        let mut a = server.ready().await;
        let mut b = server.ready().await;

        stop.send(()).unwrap();
        assert_eq!(close_code(&mut a).await, 1001, "{adapter:?}");
        assert_eq!(close_code(&mut b).await, 1001, "{adapter:?}");
        let result = tokio::time::timeout(WAIT, served)
            .await
            .expect("the server stops once its sockets are closed")
            .expect("the serving task");
        assert!(result.is_ok(), "{adapter:?}: {result:?}");
        assert_eq!(server.app.open_sockets(), 0, "{adapter:?}");
    }
}

#[tokio::test]
async fn a_socket_closes_with_4401_when_its_token_expires() {
    on_every_adapter(|adapter| async move {
        // Access tokens live 3 s (the demo's identity still checks their session).
        let short = mizan::auth::Jwt::hs256(app::Secrets::development().jwt.as_str())
            .with_access_ttl(Duration::from_secs(3));
        let server = serve_app(adapter, demo().with_jwt(short)).await;
        let token = server.login("bob").await;
        let mut ws = server.ready_as(Some(&token)).await;
        send(
            &mut ws,
            json!({"type": "call", "id": 1, "fn": "echo", "args": {"message": "hi"}}),
        )
        .await;
        assert_eq!(recv(&mut ws).await["result"], "hi", "{adapter:?}");
        // Nothing else is sent: the socket closes by itself when `exp` passes.
        let opened = Instant::now();
        assert_eq!(close_code(&mut ws).await, 4401, "{adapter:?}");
        assert!(opened.elapsed() < WAIT, "{adapter:?}");
    })
    .await;
}

#[tokio::test]
async fn logging_out_over_http_closes_the_socket_with_4401_and_a_new_login_works() {
    let limits = SocketLimits {
        recheck_interval: Duration::from_millis(200),
        ..SocketLimits::default()
    };
    on_every_adapter(|adapter| async move {
        let server = serve_app(adapter, demo().with_socket_limits(limits)).await;
        let token = server.login("alice").await;
        let mut ws = server.ready_as(Some(&token)).await;
        subscribe(
            adapter,
            &mut ws,
            json!({"type": "sub", "id": "me", "context": "user", "params": {"user_id": 1}}),
        )
        .await;

        let reply = server.http_call_as(Some(&token), "logout", json!({})).await;
        assert_eq!(reply["result"]["ok"], true, "{adapter:?}: {reply}");
        assert_eq!(close_code(&mut ws).await, 4401, "{adapter:?}");

        // The revoked token opens nothing; a fresh login does.
        let mut stale = server.connect().await;
        send(&mut stale, json!({"type": "init", "token": token})).await;
        assert_eq!(close_code(&mut stale).await, 4401, "{adapter:?}");
        let token = server.login("alice").await;
        let mut ws = server.ready_as(Some(&token)).await;
        send(
            &mut ws,
            json!({"type": "call", "id": 1, "fn": "echo", "args": {"message": "back"}}),
        )
        .await;
        assert_eq!(recv(&mut ws).await["result"], "back", "{adapter:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mutation_on_one_instance_reaches_a_subscriber_of_another_through_redis() {
    let redis = redis_server::RedisServer::start();
    for adapter in Adapter::ALL {
        let instance = || async {
            let cache = mizan_cache_redis::RedisCache::connect(redis.url())
                .await
                .expect("the cache");
            let bus = mizan_cache_redis::RedisBus::connect(redis.url())
                .await
                .expect("the bus");
            let builder = app::builder(&app::Secrets::development())
                .with_cache(cache)
                .with_bus(bus);
            serve_app(adapter, builder).await
        };
        let (a, b) = (instance().await, instance().await);
        let mut watcher = b.ready().await;
        subscribe(
            adapter,
            &mut watcher,
            json!({"type": "sub", "id": "w", "context": "user", "params": {"user_id": 2}}),
        )
        .await;

        // Another user's instance changes first: nothing for this subscriber.
        a.http_call("update_profile", json!({"user_id": 1, "name": "Al"}))
            .await;
        let reply = a
            .http_call("update_profile", json!({"user_id": 2, "name": "Bobby"}))
            .await;
        assert_eq!(reply["result"]["name"], "Bobby", "{adapter:?}");
        assert_eq!(
            recv(&mut watcher).await,
            json!({"type": "invalidate", "id": "w",
                   "targets": [{"context": "user", "params": {"user_id": 2}}]}),
            "{adapter:?}"
        );

        // Every further mutation on A reaches B's subscriber too; how long after A answered is
        // printed (figures for the docs, not asserted: timing is for benchmarks).
        let (mut after_answer, mut after_request) = (Vec::new(), Vec::new());
        for round in 0..20 {
            let sent = Instant::now();
            let name = format!("B{round}");
            a.http_call("update_profile", json!({"user_id": 2, "name": name}))
                .await;
            let answered = Instant::now();
            let push = recv(&mut watcher).await;
            assert_eq!(push["type"], "invalidate", "{adapter:?}");
            after_answer.push(answered.elapsed());
            after_request.push(sent.elapsed());
        }
        after_answer.sort();
        after_request.sort();
        eprintln!(
            "{adapter:?}: push on instance B after instance A's HTTP answer: median {:?}, max {:?}; \
             after the request was sent: median {:?}, max {:?}",
            after_answer[10], after_answer[19], after_request[10], after_request[19]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stopped_and_restarted_under_subscribers_sends_resync_then_pushes_resume() {
    on_every_adapter(|adapter| async move {
        let mut redis = redis_server::RedisServer::start();
        let bus = mizan_cache_redis::RedisBus::connect(redis.url())
            .await
            .expect("the bus");
        let server = serve_app(adapter, demo().with_bus(bus)).await;
        let mut ws = server.ready().await;
        subscribe(
            adapter,
            &mut ws,
            json!({"type": "sub", "id": "n", "context": "notes", "params": {"folder": "x"}}),
        )
        .await;
        let note = || server.http_call("add_note", json!({"folder": "x", "text": "t"}));
        let pushed = json!({"type": "invalidate", "id": "n",
                            "targets": [{"context": "notes", "params": {"folder": "x"}}]});
        note().await;
        assert_eq!(recv(&mut ws).await, pushed, "{adapter:?}");

        tokio::task::block_in_place(|| redis.stop());
        // The mutation succeeds over HTTP; its push is lost with the bus.
        assert_eq!(note().await["result"][1], "t", "{adapter:?}");
        tokio::task::block_in_place(|| redis.restart());
        assert_eq!(
            recv(&mut ws).await,
            json!({"type": "resync"}),
            "{adapter:?}"
        );

        // Pushes resume once the bus publishes again (its connection reconnects by itself).
        let deadline = Instant::now() + WAIT;
        loop {
            note().await;
            let message = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
            if let Ok(Some(Ok(Message::Text(text)))) = message {
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(message, pushed, "{adapter:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{adapter:?}: no push after the restart"
            );
        }
    })
    .await;
}

/// A client that reads only when told: a tungstenite socket over a TCP stream with a small
/// receive buffer, whose messages nobody takes while it "stops reading".
async fn slow_client(server: &Server) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let (mut ws, _) =
        tokio_tungstenite::client_async(server.request(), MaybeTlsStream::Plain(stream))
            .await
            .expect("the upgrade");
    send(&mut ws, json!({"type": "init"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "ack"}));
    ws
}

/// What a slow client received once it read again, up to `until` (included).
#[derive(Debug, Default)]
struct Drained {
    results: usize,
    invalidates: usize,
    resyncs: usize,
}

async fn drain_until(
    ws: &mut Ws,
    until: impl Fn(&Drained, &Message) -> bool,
) -> (Drained, Message) {
    let mut drained = Drained::default();
    loop {
        let message = next(ws).await;
        if let Message::Text(text) = &message {
            let value: Value = serde_json::from_str(text.as_str()).unwrap();
            match value["type"].as_str() {
                Some("result" | "error") => drained.results += 1,
                Some("invalidate") => drained.invalidates += 1,
                Some("resync") => drained.resyncs += 1,
                _ => {}
            }
        }
        if until(&drained, &message) {
            return (drained, message);
        }
    }
}

/// Sends `count` echo calls of 64 KiB each, more than the connection's buffers (the server's
/// socket, the library's) hold, without reading the replies.
async fn flood(ws: &mut Ws, first_id: usize, count: usize) {
    let message = "x".repeat(64 * 1024);
    for id in first_id..first_id + count {
        let call =
            format!(r#"{{"type":"call","id":{id},"fn":"echo","args":{{"message":"{message}"}}}}"#);
        ws.send(Message::text(call)).await.unwrap();
    }
}

/// A server with a healthy subscriber and a slow client, both subscribed to a folder of notes.
async fn slow_reader_setup(adapter: Adapter, limits: SocketLimits) -> (Server, Ws, Ws) {
    let server = serve_app(adapter, demo().with_socket_limits(limits)).await;
    let mut healthy = server.ready().await;
    subscribe(
        adapter,
        &mut healthy,
        json!({"type": "sub", "id": "ok", "context": "notes", "params": {"folder": "ok"}}),
    )
    .await;
    let mut slow = slow_client(&server).await;
    subscribe(
        adapter,
        &mut slow,
        json!({"type": "sub", "id": "slow", "context": "notes", "params": {"folder": "slow"}}),
    )
    .await;
    (server, healthy, slow)
}

/// The healthy client still gets its pushes and its replies.
async fn still_served(server: &Server, healthy: &mut Ws, id: u32) {
    server
        .http_call("add_note", json!({"folder": "ok", "text": "t"}))
        .await;
    assert_eq!(recv(healthy).await["id"], "ok");
    send(
        healthy,
        json!({"type": "call", "id": id, "fn": "echo", "args": {"message": "fine"}}),
    )
    .await;
    assert_eq!(recv(healthy).await["result"], "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_gets_a_resync_in_place_of_its_pushes() {
    // Stalled after 300 ms; the resync may wait a minute to be read.
    let limits = SocketLimits {
        stall_timeout: Duration::from_millis(300),
        resync_timeout: Duration::from_secs(60),
        ..SocketLimits::default()
    };
    on_every_adapter(move |adapter| async move {
        let (server, mut healthy, mut slow) = slow_reader_setup(adapter, limits).await;
        // It stops reading and asks for more than the connection's buffers hold: once nothing
        // leaves for a while, the server queues a resync (and drops what pushes wait).
        flood(&mut slow, 0, 200).await;
        eventually("the slow client lagging", || {
            server.app.lagging_sockets() == 1
        })
        .await;
        let mutations = 100;
        for _ in 0..mutations {
            server
                .http_call("add_note", json!({"folder": "slow", "text": "t"}))
                .await;
        }
        // Meanwhile the other client is served as usual.
        still_served(&server, &mut healthy, 1).await;
        // It reads again: one resync in place of the pushes made while it did not read.
        let (before, _) = drain_until(&mut slow, |drained, _| drained.resyncs == 1).await;
        assert!(
            before.invalidates < mutations / 10,
            "{adapter:?}: the pushes were not dropped: {before:?}"
        );
        // Pushes resume after the resync, and every call got its one answer.
        server
            .http_call("add_note", json!({"folder": "slow", "text": "t"}))
            .await;
        let (after, _) = drain_until(&mut slow, |drained, _| {
            drained.invalidates > 0 && before.results + drained.results == 200
        })
        .await;
        assert_eq!(after.resyncs, 0, "{adapter:?}: {after:?}");
        assert_eq!(server.app.lagging_sockets(), 0, "{adapter:?}");
        assert_eq!(server.app.open_sockets(), 2, "{adapter:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_for_good_is_closed_with_1013_while_others_go_on() {
    // Stalled after 300 ms, closed when its resync is still unread 1 s later; the close frame
    // may wait a minute for the client to read it.
    let limits = SocketLimits {
        stall_timeout: Duration::from_millis(300),
        resync_timeout: Duration::from_secs(1),
        close_timeout: Duration::from_secs(60),
        ..SocketLimits::default()
    };
    on_every_adapter(move |adapter| async move {
        let (server, mut healthy, mut slow) = slow_reader_setup(adapter, limits).await;
        flood(&mut slow, 0, 200).await;
        still_served(&server, &mut healthy, 1).await;
        eventually("the slow client closed", || {
            server.app.slow_sockets_closed() == 1
        })
        .await;
        still_served(&server, &mut healthy, 2).await;
        // It reads at last: what the connection held, then the close frame; never the resync
        // it did not read in time.
        let (drained, close) =
            drain_until(&mut slow, |_, message| matches!(message, Message::Close(_))).await;
        match close {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1013, "{adapter:?}"),
            other => panic!("{adapter:?}: expected 1013, got {other:?}"),
        }
        assert_eq!(drained.resyncs, 0, "{adapter:?}: {drained:?}");
        assert!(drained.results < 200, "{adapter:?}: {drained:?}");
        match slow.next().await {
            None | Some(Ok(Message::Close(_))) | Some(Err(_)) => {}
            other => panic!("{adapter:?}: more after the close: {other:?}"),
        }
        eventually("the slow socket leaving", || server.app.open_sockets() == 1).await;
        still_served(&server, &mut healthy, 3).await;
        assert_eq!(server.app.slow_sockets_closed(), 1, "{adapter:?}");
    })
    .await;
}
