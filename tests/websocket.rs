//! The WebSocket transport of the reference app, over real loopback sockets, on every adapter
//! that serves it: calls, subscriptions fed by HTTP mutations, and the refusals before and
//! after the upgrade.

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "../examples/demo/serve.rs"]
#[allow(dead_code)]
mod serve;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use serve::Adapter;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The adapters whose socket endpoint is wired.
const ADAPTERS: [Adapter; 2] = [Adapter::Axum, Adapter::Tower];

/// A running demo; stopped when dropped.
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(adapter: Adapter) -> Server {
    serve_app(
        adapter,
        app::builder(&app::Secrets::development()).with_cache(mizan::MemoryCache::new()),
    )
    .await
}

async fn serve_app(adapter: Adapter, builder: mizan::MizanBuilder) -> Server {
    let app = builder.build().expect("the demo builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(adapter.serve(listener, app));
    Server { addr, task }
}

impl Server {
    async fn connect_with(&self, origin: &str) -> Result<Ws, WsError> {
        let mut request = format!("ws://{}/api/mizan/ws/", self.addr)
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        headers.insert("sec-websocket-protocol", "mizan.v1".parse().unwrap());
        headers.insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(ws, _)| ws)
    }

    async fn connect(&self) -> Ws {
        let origin = format!("http://{}", self.addr);
        self.connect_with(&origin).await.expect("the upgrade")
    }

    /// A socket past `init` (anonymous).
    async fn ready(&self) -> Ws {
        let mut ws = self.connect().await;
        send(&mut ws, json!({"type": "init"})).await;
        assert_eq!(recv(&mut ws).await, json!({"type": "ack"}));
        ws
    }

    async fn http_call(&self, function: &str, args: Value) -> Value {
        reqwest::Client::new()
            .post(format!("http://{}/api/mizan/call/", self.addr))
            .json(&json!({"fn": function, "args": args}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
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
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server answers")
            .expect("the socket is open")
            .expect("a message");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

/// The close code the server ends the socket with.
async fn close_code(ws: &mut Ws) -> u16 {
    match next(ws).await {
        Message::Close(Some(frame)) => u16::from(frame.code),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn socket_calls_return_the_result() {
    for adapter in ADAPTERS {
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
async fn an_http_mutation_reaches_exactly_the_matching_subscribers() {
    for adapter in ADAPTERS {
        let server = start(adapter).await;
        let mut bob = server.ready().await;
        let mut alice = server.ready().await;
        send(
            &mut bob,
            json!({"type": "sub", "id": "u2", "context": "user", "params": {"user_id": 2}}),
        )
        .await;
        assert_eq!(recv(&mut bob).await, json!({"type": "sub_ok", "id": "u2"}));
        send(
            &mut alice,
            json!({"type": "sub", "id": "u1", "context": "user", "params": {"user_id": 1}}),
        )
        .await;
        assert_eq!(
            recv(&mut alice).await,
            json!({"type": "sub_ok", "id": "u1"})
        );

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
async fn a_call_before_init_closes_with_4401() {
    for adapter in ADAPTERS {
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
async fn a_foreign_origin_is_refused_before_the_upgrade() {
    for adapter in ADAPTERS {
        let server = start(adapter).await;
        match server.connect_with("https://evil.example").await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 403, "{adapter:?}"),
            other => panic!("{adapter:?}: expected 403, got {:?}", other.map(|_| ())),
        }
    }
}

#[tokio::test]
async fn a_message_over_one_mib_closes_with_1009() {
    for adapter in ADAPTERS {
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

#[tokio::test]
async fn a_mutation_on_one_instance_reaches_a_subscriber_of_another_through_redis() {
    let redis = redis_server::RedisServer::start();
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
        serve_app(Adapter::Axum, builder).await
    };
    let (a, b) = (instance().await, instance().await);
    let mut watcher = b.ready().await;
    send(
        &mut watcher,
        json!({"type": "sub", "id": "w", "context": "user", "params": {"user_id": 2}}),
    )
    .await;
    assert_eq!(
        recv(&mut watcher).await,
        json!({"type": "sub_ok", "id": "w"})
    );

    // Another user's instance changes first: nothing for this subscriber.
    a.http_call("update_profile", json!({"user_id": 1, "name": "Al"}))
        .await;
    let reply = a
        .http_call("update_profile", json!({"user_id": 2, "name": "Bobby"}))
        .await;
    assert_eq!(reply["result"]["name"], "Bobby");
    let pushed = tokio::time::timeout(Duration::from_secs(5), recv(&mut watcher))
        .await
        .expect("the push arrives");
    assert_eq!(
        pushed,
        json!({"type": "invalidate", "id": "w",
               "targets": [{"context": "user", "params": {"user_id": 2}}]})
    );
}
