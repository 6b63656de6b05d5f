//! The conformance suite: the reference app served by every adapter over real loopback HTTP.
//!
//! `CASES` is one table of request → expected response, written once; the scenario tests below
//! it check behaviour across several requests (staleness, per-user bundles, revocation). Every
//! test runs against each adapter in `Adapter::ALL` on the memory cache, and once more on a real
//! Redis (started by the test), each time on a fresh app.

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "../examples/demo/serve.rs"]
#[allow(dead_code)]
mod serve;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use mizan::Clock as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use serve::Adapter;

/// The cache a served demo uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cache {
    Memory,
    Redis,
}

/// Every adapter on the memory cache, and the default adapter on a real Redis: the demo works
/// unchanged on either backend.
const SETUPS: [(Adapter, Cache); 4] = [
    (Adapter::Axum, Cache::Memory),
    (Adapter::Tower, Cache::Memory),
    (Adapter::Actix, Cache::Memory),
    (Adapter::Axum, Cache::Redis),
];

/// A running demo on one adapter.
struct Server {
    adapter: Adapter,
    addr: SocketAddr,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _redis: Option<redis_server::RedisServer>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(adapter: Adapter) -> Server {
    start_with(adapter, Cache::Memory).await
}

async fn start_with(adapter: Adapter, cache: Cache) -> Server {
    let builder = app::builder(&app::Secrets::development());
    let (builder, redis) = match cache {
        Cache::Memory => (builder.with_cache(mizan::MemoryCache::new()), None),
        Cache::Redis => {
            let server = redis_server::RedisServer::start();
            let backend = mizan_cache_redis::RedisCache::connect(server.url())
                .await
                .expect("redis");
            (builder.with_cache(backend), Some(server))
        }
    };
    let app = builder.build().expect("the demo builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(adapter.serve(listener, app));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Server {
        adapter,
        addr,
        client,
        task,
        _redis: redis,
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Server {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{:?}: request to {path} failed: {e}", self.adapter));
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    async fn call(&self, token: Option<&str>, function: &str, args: Value) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        let body = json!({ "fn": function, "args": args })
            .to_string()
            .into_bytes();
        self.send(Method::POST, "/api/mizan/call/", &headers, body)
            .await
    }

    async fn fetch(&self, token: Option<&str>, path: &str) -> Value {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let reply = self.send(Method::GET, path, &headers, Vec::new()).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{:?} GET {path}: {reply:?}",
            self.adapter
        );
        reply.json()
    }

    async fn login(&self, username: &str) -> (String, String) {
        let reply = self
            .call(
                None,
                "login",
                json!({"username": username, "password": username}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "login {username}: {reply:?}");
        let result = &reply.json()["result"];
        (
            result["access"].as_str().unwrap().to_owned(),
            result["refresh"].as_str().unwrap().to_owned(),
        )
    }
}

/// Runs `test` against a fresh server for every setup (each adapter; Redis on one).
async fn each_adapter<F, Fut>(test: F)
where
    F: Fn(Arc<Server>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for (adapter, cache) in SETUPS {
        test(Arc::new(start_with(adapter, cache).await)).await;
    }
}

// ---- The table ----

/// One request and what must come back.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    /// `Some(user)`: sent with that user's access token.
    as_user: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    body: Body,
    status: u16,
    /// The error code, for error responses.
    code: Option<&'static str>,
    /// A JSON value the body must contain (objects compared key by key, recursively).
    json: Option<Value>,
    /// The expected `X-Mizan-Invalidate`, `None` for absent.
    invalidate: Option<&'static str>,
}

enum Body {
    Empty,
    Text(&'static str),
    Call(Value),
    Bytes(Vec<u8>),
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
const FORM: &[(&str, &str)] = &[("content-type", "application/x-www-form-urlencoded")];

fn case(name: &'static str, method: &'static str, path: &'static str, status: u16) -> Case {
    Case {
        name,
        method,
        path,
        as_user: None,
        headers: &[],
        body: Body::Empty,
        status,
        code: None,
        json: None,
        invalidate: None,
    }
}

fn call(name: &'static str, function: &str, args: Value, status: u16) -> Case {
    Case {
        headers: JSON,
        body: Body::Call(json!({"fn": function, "args": args})),
        ..case(name, "POST", "/api/mizan/call/", status)
    }
}

impl Case {
    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }
    fn json(mut self, json: Value) -> Self {
        self.json = Some(json);
        self
    }
    fn invalidate(mut self, header: &'static str) -> Self {
        self.invalidate = Some(header);
        self
    }
    fn by_user(mut self, user: &'static str) -> Self {
        self.as_user = Some(user);
        self
    }
    fn headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Self {
        self.headers = headers;
        self
    }
    fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
}

fn cases() -> Vec<Case> {
    let deep = format!(
        "{{\"fn\":\"echo\",\"args\":{{\"message\":\"x\",\"n\":{}1{}}}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let long_query: &'static str =
        Box::leak(format!("/api/mizan/ctx/notes/?folder={}", "a".repeat(20_000)).into_boxed_str());
    vec![
        // Endpoints.
        case("session", "GET", "/api/mizan/session/", 200).json(json!({"csrfToken": null})),
        case("manifest", "GET", "/api/mizan/manifest/", 200)
            .json(json!({"contexts": {"user": {"user_scoped": true, "render_strategy": "dynamic_cached"}}})),
        call("standalone call", "echo", json!({"message": "hi"}), 200).json(json!({"result": "hi", "invalidate": []})),
        case("context bundle", "GET", "/api/mizan/ctx/user/?user_id=2&ignored=1", 200).json(json!({
            "user_profile": {"id": 2, "name": "bob", "email": "bob@example.com"},
            "user_orders": [{"id": 201, "total": 1200}],
        })),
        case("context without params", "GET", "/api/mizan/ctx/catalog/", 200)
            .json(json!({"catalog_items": [{"id": 1, "name": "Widget"}, {"id": 2, "name": "Gadget"}]})),
        case("global context, anonymous", "GET", "/api/mizan/ctx/global/", 200).json(json!({"current_user": null})),
        case("view-path page", "GET", "/profile/1/", 200),
        // Invalidation forms.
        call("scoped invalidation", "update_profile", json!({"user_id": 2, "name": "Robert"}), 200)
            .json(json!({"result": {"name": "Robert"}, "invalidate": [{"context": "user", "params": {"user_id": 2}}]}))
            .invalidate("user;user_id=2"),
        call("function-level invalidation", "update_name", json!({"user_id": 2, "name": "Rob"}), 200)
            .json(json!({"invalidate": [{"context": "user", "function": "user_profile", "params": {"user_id": 2}}]}))
            .invalidate("user;user_id=2"),
        call("broad invalidation", "add_item", json!({"name": "Doohickey"}), 200)
            .json(json!({"invalidate": ["catalog"]}))
            .invalidate("catalog"),
        call("percent-encoded scope", "add_note", json!({"folder": "a b,c;d=e%é", "text": "t"}), 200)
            .json(json!({"invalidate": [{"context": "notes", "params": {"folder": "a b,c;d=e%é"}}]}))
            .invalidate("notes;folder=a%20b%2Cc%3Bd%3De%25%C3%A9"),
        case("view-path mutation: header only", "POST", "/profile/2/update/", 303)
            .headers(FORM)
            .body(Body::Text("name=Bobby"))
            .invalidate("user;user_id=2"),
        case("private webhook at its route", "POST", "/webhooks/stripe/", 200)
            .headers(JSON)
            .body(Body::Text(r#"{"type": "invoice.paid"}"#))
            .invalidate("subscription"),
        // Guards.
        call("auth: anonymous", "secret", json!({}), 401).code("unauthenticated"),
        call("auth: user", "secret", json!({}), 200).by_user("bob"),
        call("staff: anonymous", "admin_action", json!({}), 401).code("unauthenticated"),
        call("staff: plain user", "admin_action", json!({}), 403).code("forbidden").by_user("bob"),
        call("staff: staff", "admin_action", json!({}), 200).by_user("alice"),
        call("staff: superuser", "admin_action", json!({}), 200).by_user("root"),
        call("superuser: staff", "root_action", json!({}), 403).code("forbidden").by_user("alice"),
        call("superuser: superuser", "root_action", json!({}), 200).by_user("root"),
        call("predicate: anonymous", "internal_tool", json!({}), 401).code("unauthenticated"),
        call("predicate: other domain", "internal_tool", json!({}), 403).code("forbidden").by_user("bob"),
        call("predicate: company", "internal_tool", json!({}), 200).by_user("alice"),
        call("guard before args", "secret", json!({"junk": [1, 2]}), 401).code("unauthenticated"),
        case("invalid bearer token", "GET", "/api/mizan/ctx/catalog/", 401)
            .headers(&[("authorization", "Bearer not-a-token")])
            .code("unauthenticated"),
        // Bad input: every one a 4xx with the envelope.
        call("missing arg", "echo", json!({}), 400).code("bad_request").json(json!({"error": {"details": {"fields": {"message": "missing required argument"}}}})),
        call("mistyped arg", "update_profile", json!({"user_id": "two", "name": "x"}), 400)
            .code("bad_request")
            .json(json!({"error": {"details": {"fields": {"user_id": "invalid type: string \"two\", expected i64"}}}})),
        call("unexpected arg", "echo", json!({"message": "x", "extra": 1}), 400)
            .json(json!({"error": {"details": {"fields": {"extra": "unexpected argument"}}}})),
        call("unknown function", "nope", json!({}), 404).code("not_found"),
        call("private function", "stripe_webhook", json!({}), 404).code("not_found"),
        call("view-path function", "profile_page", json!({"user_id": 1}), 404).code("not_found"),
        case("malformed JSON", "POST", "/api/mizan/call/", 400).headers(JSON).body(Body::Text("{\"fn\": ")).code("bad_request"),
        case("missing fn", "POST", "/api/mizan/call/", 400)
            .headers(JSON)
            .body(Body::Text(r#"{"args": {}}"#))
            .json(json!({"error": {"code": "bad_request", "details": {"fields": {"fn": "missing"}}}})),
        case("wrong content type", "POST", "/api/mizan/call/", 415)
            .headers(&[("content-type", "text/plain")])
            .body(Body::Text(r#"{"fn": "echo", "args": {"message": "x"}}"#))
            .code("unsupported_media_type"),
        case("no content type", "POST", "/api/mizan/call/", 415).body(Body::Text("{}")).code("unsupported_media_type"),
        case("oversized body", "POST", "/api/mizan/call/", 413)
            .headers(JSON)
            .body(Body::Bytes(vec![b' '; 1024 * 1024 + 1]))
            .code("payload_too_large"),
        case("deep nesting", "POST", "/api/mizan/call/", 400).headers(JSON).body(Body::Bytes(deep.into_bytes())).code("bad_request"),
        case("huge query string", "GET", long_query, 414).code("uri_too_long"),
        case("missing context param", "GET", "/api/mizan/ctx/user/", 400)
            .json(json!({"error": {"code": "bad_request", "details": {"fields": {"user_id": "missing required argument"}}}})),
        case("mistyped context param", "GET", "/api/mizan/ctx/user/?user_id=abc", 400).code("bad_request"),
        case("unknown context", "GET", "/api/mizan/ctx/nope/", 404).code("not_found"),
        case("unknown user", "GET", "/api/mizan/ctx/user/?user_id=99", 404).code("not_found"),
        case("GET on call/", "GET", "/api/mizan/call/", 405).code("method_not_allowed"),
        case("POST on ctx/", "POST", "/api/mizan/ctx/user/?user_id=1", 405).code("method_not_allowed"),
        case("GET on a POST route", "GET", "/profile/1/update/", 405).code("method_not_allowed"),
        case("bad form post", "POST", "/profile/1/update/", 400).headers(FORM).body(Body::Text("nope=1")).code("bad_request"),
        case("bad webhook payload", "POST", "/webhooks/stripe/", 400).headers(JSON).body(Body::Text("[]")).code("bad_request"),
        case("unknown path in mount", "GET", "/api/mizan/nope/", 404).code("not_found"),
        case("HEAD on a context", "HEAD", "/api/mizan/ctx/catalog/", 200),
        case("OPTIONS on call/", "OPTIONS", "/api/mizan/call/", 204),
    ]
}

fn assert_contains(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => {
            for (key, value) in expected {
                let found = actual
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}.{key} missing"));
                assert_contains(found, value, &format!("{at}.{key}"));
            }
        }
        _ => assert_eq!(actual, expected, "at {at}"),
    }
}

#[tokio::test]
async fn the_table_holds_on_every_adapter() {
    each_adapter(|server| async move {
        let mut tokens: HashMap<&str, String> = HashMap::new();
        for case in cases() {
            let label = format!("{:?} / {}", server.adapter, case.name);
            let auth;
            let mut headers: Vec<(&str, &str)> = case.headers.to_vec();
            if let Some(user) = case.as_user {
                if !tokens.contains_key(user) {
                    tokens.insert(user, server.login(user).await.0);
                }
                auth = format!("Bearer {}", tokens[user]);
                headers.push(("authorization", &auth));
            }
            let body = match case.body {
                Body::Empty => Vec::new(),
                Body::Text(text) => text.as_bytes().to_vec(),
                Body::Call(value) => value.to_string().into_bytes(),
                Body::Bytes(bytes) => bytes,
            };
            let method = Method::from_bytes(case.method.as_bytes()).unwrap();
            let head = method == Method::HEAD;
            let reply = server.send(method, case.path, &headers, body).await;

            assert_eq!(reply.status.as_u16(), case.status, "{label}: {reply:?}");
            assert_eq!(reply.header("cache-control"), Some("no-store"), "{label}");
            assert_eq!(
                reply.header("x-mizan-invalidate"),
                case.invalidate,
                "{label}"
            );
            if head {
                assert!(reply.body.is_empty(), "{label}: HEAD has no body");
            }
            if reply.status.is_client_error() || reply.status.is_server_error() {
                let envelope = reply.json();
                assert!(
                    envelope["error"]["message"].is_string(),
                    "{label}: no error envelope: {reply:?}"
                );
                assert_eq!(
                    reply.header("content-type"),
                    Some("application/json"),
                    "{label}"
                );
                if let Some(code) = case.code {
                    assert_eq!(envelope["error"]["code"], code, "{label}");
                }
            }
            if reply.status == StatusCode::METHOD_NOT_ALLOWED
                || reply.status == StatusCode::NO_CONTENT
            {
                assert!(reply.header("allow").is_some(), "{label}: Allow header");
            }
            if let Some(expected) = &case.json {
                assert_contains(&reply.json(), expected, &label);
            }
        }
        // After every bad input, the server still serves.
        let reply = server
            .call(None, "echo", json!({"message": "still here"}))
            .await;
        assert_eq!(reply.json()["result"], "still here");
    })
    .await;
}

#[tokio::test]
async fn the_manifest_and_the_ir_are_byte_identical_across_adapters() {
    for path in ["/api/mizan/manifest/", "/api/mizan/schema/"] {
        let mut bodies = Vec::new();
        for adapter in Adapter::ALL {
            let server = start(adapter).await;
            bodies.push(server.send(Method::GET, path, &[], Vec::new()).await.body);
        }
        assert!(!bodies[0].is_empty(), "{path}");
        assert!(
            bodies.windows(2).all(|w| w[0] == w[1]),
            "{path} differs across adapters"
        );
    }
}

// ---- Scenarios ----

#[tokio::test]
async fn no_stale_bundle_after_an_rpc_mutation() {
    each_adapter(|s| async move {
        let path = "/api/mizan/ctx/user/?user_id=1";
        assert_eq!(s.fetch(None, path).await["user_profile"]["name"], "alice");
        assert_eq!(
            s.fetch(None, path).await["user_profile"]["name"],
            "alice",
            "cached"
        );
        let other = s.fetch(None, "/api/mizan/ctx/user/?user_id=2").await;
        s.call(
            None,
            "update_profile",
            json!({"user_id": 1, "name": "Alicia"}),
        )
        .await;
        assert_eq!(s.fetch(None, path).await["user_profile"]["name"], "Alicia");
        assert_eq!(s.fetch(None, "/api/mizan/ctx/user/?user_id=2").await, other);
    })
    .await;
}

#[tokio::test]
async fn no_stale_bundle_after_a_function_level_mutation() {
    each_adapter(|s| async move {
        let path = "/api/mizan/ctx/user/?user_id=2";
        assert_eq!(s.fetch(None, path).await["user_profile"]["name"], "bob");
        s.call(None, "update_name", json!({"user_id": 2, "name": "Bobby"}))
            .await;
        assert_eq!(s.fetch(None, path).await["user_profile"]["name"], "Bobby");
    })
    .await;
}

#[tokio::test]
async fn no_stale_bundle_after_a_view_path_mutation() {
    each_adapter(|s| async move {
        let path = "/api/mizan/ctx/user/?user_id=3";
        assert_eq!(s.fetch(None, path).await["user_profile"]["name"], "root");
        let reply = s
            .send(
                Method::POST,
                "/profile/3/update/",
                FORM,
                b"name=Groot".to_vec(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(reply.header("location"), Some("/profile/3/"));
        assert!(
            reply.body.is_empty(),
            "view-path invalidation is header-only"
        );
        assert_eq!(s.fetch(None, path).await["user_profile"]["name"], "Groot");
        let page = s.send(Method::GET, "/profile/3/", &[], Vec::new()).await;
        assert!(String::from_utf8_lossy(&page.body).contains("<h1>Groot</h1>"));
    })
    .await;
}

#[tokio::test]
async fn no_stale_bundle_after_broad_scoped_and_webhook_mutations() {
    each_adapter(|s| async move {
        let items = |v: Value| v["catalog_items"].as_array().map_or(0, Vec::len);
        assert_eq!(items(s.fetch(None, "/api/mizan/ctx/catalog/").await), 2);
        s.call(None, "add_item", json!({"name": "Doohickey"})).await;
        assert_eq!(items(s.fetch(None, "/api/mizan/ctx/catalog/").await), 3);

        assert_eq!(
            s.fetch(None, "/api/mizan/ctx/notes/?folder=inbox").await["notes_list"],
            json!(["welcome"])
        );
        let work = s.fetch(None, "/api/mizan/ctx/notes/?folder=work").await;
        s.call(
            None,
            "add_note",
            json!({"folder": "inbox", "text": "hello"}),
        )
        .await;
        assert_eq!(
            s.fetch(None, "/api/mizan/ctx/notes/?folder=inbox").await["notes_list"],
            json!(["welcome", "hello"])
        );
        assert_eq!(
            s.fetch(None, "/api/mizan/ctx/notes/?folder=work").await,
            work
        );

        assert_eq!(
            s.fetch(None, "/api/mizan/ctx/subscription/").await["subscription_status"]["events"],
            0
        );
        s.send(
            Method::POST,
            "/webhooks/stripe/",
            JSON,
            br#"{"type":"invoice.paid"}"#.to_vec(),
        )
        .await;
        let status = s.fetch(None, "/api/mizan/ctx/subscription/").await;
        assert_eq!(
            status["subscription_status"],
            json!({"events": 1, "last_event": "invoice.paid"})
        );
    })
    .await;
}

#[tokio::test]
async fn a_user_scoped_bundle_is_never_served_to_another_identity() {
    each_adapter(|s| async move {
        let (alice, _) = s.login("alice").await;
        let (bob, _) = s.login("bob").await;
        for _ in 0..2 {
            // Twice: the second round is served from the cache, still per identity.
            let me = |v: Value| v["current_user"].clone();
            assert_eq!(
                me(s.fetch(Some(&alice), "/api/mizan/ctx/global/").await),
                json!({"id": 1, "name": "alice"})
            );
            assert_eq!(
                me(s.fetch(Some(&bob), "/api/mizan/ctx/global/").await),
                json!({"id": 2, "name": "bob"})
            );
            assert_eq!(
                me(s.fetch(None, "/api/mizan/ctx/global/").await),
                Value::Null
            );
        }
    })
    .await;
}

#[tokio::test]
async fn logout_revokes_every_token_of_the_session() {
    each_adapter(|s| async move {
        let (access, refresh) = s.login("bob").await;
        let (other, _) = s.login("bob").await;
        assert_eq!(
            s.call(Some(&access), "secret", json!({})).await.status,
            StatusCode::OK
        );
        let renewed = s.call(None, "refresh", json!({"refresh": refresh})).await;
        let renewed = renewed.json()["result"]["access"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            s.call(Some(&access), "logout", json!({})).await.status,
            StatusCode::OK
        );
        assert_eq!(
            s.call(Some(&access), "secret", json!({})).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            s.call(Some(&renewed), "secret", json!({})).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            s.call(None, "refresh", json!({"refresh": refresh}))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        // Another session of the same user is untouched; a refresh token is no access token.
        assert_eq!(
            s.call(Some(&other), "secret", json!({})).await.status,
            StatusCode::OK
        );
        let (_, other_refresh) = s.login("alice").await;
        assert_eq!(
            s.call(Some(&other_refresh), "secret", json!({}))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fetches_never_see_data_older_than_a_returned_mutation() {
    each_adapter(|s| async move {
        let path = "/api/mizan/ctx/user/?user_id=2";
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..4 {
            let (s, stop) = (Arc::clone(&s), Arc::clone(&stop));
            readers.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    s.fetch(None, path).await;
                }
            }));
        }
        for i in 0..40 {
            let name = format!("bob{i}");
            let reply = s
                .call(None, "update_profile", json!({"user_id": 2, "name": name}))
                .await;
            assert_eq!(reply.status, StatusCode::OK);
            // Once the mutation has returned, no fetch may show older data.
            assert_eq!(
                s.fetch(None, path).await["user_profile"]["name"],
                name.as_str(),
                "{:?}",
                s.adapter
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for reader in readers {
            reader.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn framework_middleware_composes_and_its_extensions_reach_functions() {
    each_adapter(|s| async move {
        let name = s.adapter.name();
        let reply = s.call(None, "served_by", json!({})).await;
        assert_eq!(
            reply.json()["result"],
            name,
            "the middleware's extension reached the function"
        );
        assert_eq!(
            reply.header("x-served-by"),
            Some(name),
            "the middleware's header is on the response"
        );
        // Middleware wraps errors and view routes just the same.
        let reply = s
            .send(Method::GET, "/api/mizan/ctx/nope/", &[], Vec::new())
            .await;
        assert_eq!(
            (reply.status, reply.header("x-served-by")),
            (StatusCode::NOT_FOUND, Some(name))
        );
        let reply = s.send(Method::GET, "/profile/1/", &[], Vec::new()).await;
        assert_eq!(
            (reply.status, reply.header("x-served-by")),
            (StatusCode::OK, Some(name))
        );
        // Paths outside the mount and the view routes belong to the host app: 404 everywhere.
        let reply = s.send(Method::GET, "/not-mizan/", &[], Vec::new()).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{name}");
    })
    .await;
}

#[tokio::test]
async fn session_returns_an_mwt_to_a_logged_in_caller() {
    each_adapter(|s| async move {
        let (access, _) = s.login("alice").await;
        let bearer = format!("Bearer {access}");
        let reply = s
            .send(
                Method::GET,
                "/api/mizan/session/",
                &[("authorization", &bearer)],
                Vec::new(),
            )
            .await;
        let body = reply.json();
        let mwt = body["mwt"].as_str().expect("an mwt");
        assert_eq!(reply.header("x-mizan-token"), Some(mwt));
        let claims = mizan::auth::Mwt::new(app::Secrets::development().mwt.as_str())
            .verify(mwt, mizan::SystemClock.unix_seconds())
            .expect("the MWT verifies with the MWT secret");
        assert_eq!(
            (claims.sub.as_str(), claims.staff, claims.typ.as_str()),
            ("1", true, "mwt")
        );
        // The MWT is no access token.
        let reply = s
            .send(
                Method::GET,
                "/api/mizan/ctx/global/",
                &[("authorization", &format!("Bearer {mwt}"))],
                Vec::new(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    })
    .await;
}
