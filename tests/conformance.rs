//! The conformance suite: the reference app served by every adapter over real loopback HTTP.
//!
//! `CASES` is one table of request → expected response, written once; the scenario tests below
//! it check behaviour across several requests (staleness, per-user bundles, revocation). Every
//! test runs against each adapter in `Adapter::ALL` on the memory cache, once more on a real
//! Redis and on a real Redis Cluster (started by the test), and with the demo's data in a
//! database (PostgreSQL, SQLite) of the test's own, each time on a fresh app.

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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use mizan::Clock as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use serve::Adapter;

/// The cache a served demo uses (and where its data lives: in memory unless said).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cache {
    Memory,
    Redis,
    RedisCluster,
    /// Redis, with the demo's data and sessions in a PostgreSQL database of the test's own.
    RedisPostgres,
    /// The memory cache, with the demo's data and sessions in a SQLite file.
    MemorySqlite,
}

/// Every adapter on the memory cache, the default adapter on a real Redis and on a real Redis
/// Cluster, and the demo's data in PostgreSQL and in SQLite: the demo works unchanged on every
/// backend.
const SETUPS: [(Adapter, Cache); 7] = [
    (Adapter::Axum, Cache::Memory),
    (Adapter::Tower, Cache::Memory),
    (Adapter::Actix, Cache::Memory),
    (Adapter::Axum, Cache::Redis),
    (Adapter::Axum, Cache::RedisCluster),
    (Adapter::Tower, Cache::RedisPostgres),
    (Adapter::Actix, Cache::MemorySqlite),
];

/// A running demo on one adapter.
struct Server {
    adapter: Adapter,
    addr: SocketAddr,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _redis: Option<redis_server::RedisServer>,
    _cluster: Option<redis_cluster::RedisCluster>,
    _database: Option<database::TestDatabase>,
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
    let database = match cache {
        Cache::RedisPostgres => Some(database::TestDatabase::postgres().await),
        Cache::MemorySqlite => Some(database::TestDatabase::sqlite()),
        Cache::Memory | Cache::Redis | Cache::RedisCluster => None,
    };
    let store = match &database {
        Some(database) => app::Store::connect(database.url())
            .await
            .expect("the demo's database"),
        None => app::Store::seeded(),
    };
    let builder = app::builder_on(&app::Secrets::development(), store);
    let mut cluster = None;
    let (builder, redis) = match cache {
        Cache::Memory | Cache::MemorySqlite => {
            (builder.with_cache(mizan::MemoryCache::new()), None)
        }
        Cache::RedisCluster => {
            let nodes = redis_cluster::RedisCluster::start();
            let backend = mizan_cache_redis::RedisCache::connect_cluster(nodes.urls())
                .await
                .expect("redis cluster");
            cluster = Some(nodes);
            (builder.with_cache(backend), None)
        }
        Cache::Redis | Cache::RedisPostgres => {
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
        _cluster: cluster,
        _database: database,
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

/// Runs `test` against a fresh server for every setup (each adapter; Redis, databases).
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
const MULTIPART: &[(&str, &str)] = &[(
    "content-type",
    "multipart/form-data; boundary=MIZANBOUNDARY",
)];

/// One part of a multipart body: its name, a file name for file parts, and the bytes.
struct Part<'a> {
    name: &'a str,
    file_name: Option<&'a str>,
    data: Vec<u8>,
}

/// The `__mizan` envelope part.
fn envelope(function: &str, args: Value) -> Part<'static> {
    Part {
        name: "__mizan",
        file_name: None,
        data: json!({"fn": function, "args": args})
            .to_string()
            .into_bytes(),
    }
}

/// A file part named `name` holding `size` bytes of a repeating pattern.
fn file(name: &str, size: usize) -> Part<'_> {
    Part {
        name,
        file_name: Some("file.bin"),
        data: pattern(size),
    }
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// A multipart body with the boundary of `MULTIPART`, closed or not.
fn multipart_body(parts: &[Part<'_>], closed: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(b"--MIZANBOUNDARY\r\nContent-Disposition: form-data; name=\"");
        out.extend_from_slice(part.name.as_bytes());
        out.push(b'"');
        if let Some(file_name) = part.file_name {
            out.extend_from_slice(b"; filename=\"");
            out.extend_from_slice(file_name.as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&part.data);
        out.extend_from_slice(b"\r\n");
    }
    if closed {
        out.extend_from_slice(b"--MIZANBOUNDARY--\r\n");
    }
    out
}

fn multipart(parts: &[Part<'_>]) -> Body {
    Body::Bytes(multipart_body(parts, true))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The upload rows: the same on every adapter.
fn upload_cases() -> Vec<Case> {
    const MIB: usize = 1024 * 1024;
    let upload = |name: &'static str, status: u16| {
        case(name, "POST", "/api/mizan/call/", status).headers(MULTIPART)
    };
    let files = |n: usize| json!({"files": (0..n).map(|i| json!({"$upload": format!("f{i}")})).collect::<Vec<_>>()});
    let names: Vec<String> = (0..101).map(|i| format!("f{i}")).collect();
    let many_files: Vec<Part<'_>> = std::iter::once(envelope("attach_files", files(101)))
        .chain(names.iter().map(|n| file(n, 1)))
        .collect();
    let texts: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
    let tiny_parts: Vec<Part<'_>> = std::iter::once(envelope("attach_files", files(0)))
        .chain(texts.iter().map(|name| Part {
            name,
            file_name: None,
            data: b"x".to_vec(),
        }))
        .collect();
    let named = |file_name: &'static str| {
        multipart(&[
            envelope("attach_files", files(1)),
            Part {
                name: "f0",
                file_name: Some(file_name),
                data: b"abc".to_vec(),
            },
        ])
    };
    let abc_named = |file_name: &str| json!({"result": [{"file_name": file_name, "size": 3, "sha256": sha256_hex(b"abc")}]});
    let long_name: &'static str = Box::leak("n".repeat(300).into_boxed_str());
    let avatar = |size: usize| {
        multipart(&[
            envelope(
                "upload_avatar",
                json!({"user_id": 2, "avatar": {"$upload": "a"}}),
            ),
            file("a", size),
        ])
    };
    vec![
        upload("two files round-trip", 200)
            .body(multipart(&[envelope("attach_files", files(2)), file("f0", 3000), file("f1", 0)]))
            .json(json!({"result": [
                {"file_name": "file.bin", "size": 3000, "sha256": sha256_hex(&pattern(3000))},
                {"file_name": "file.bin", "size": 0, "sha256": sha256_hex(b"")},
            ], "invalidate": []})),
        upload("avatar by its user", 200).by_user("bob").body(avatar(10))
            .json(json!({"result": {"user_id": 2, "size": 10}}))
            .invalidate("user;user_id=2"),
        upload("avatar by staff", 200).by_user("alice").body(avatar(10)).invalidate("user;user_id=2"),
        upload("avatar of another user", 403).code("forbidden").body(multipart(&[
            envelope("upload_avatar", json!({"user_id": 1, "avatar": {"$upload": "a"}})), file("a", 10),
        ])).by_user("bob"),
        upload("avatar anonymous", 401).code("unauthenticated").body(avatar(10)),
        upload("avatar exactly at its 1 MiB file limit", 200).by_user("bob").body(avatar(MIB))
            .json(json!({"result": {"size": MIB, "sha256": sha256_hex(&pattern(MIB))}}))
            .invalidate("user;user_id=2"),
        upload("avatar one byte over", 413).by_user("bob").body(avatar(MIB + 1))
            .json(json!({"error": {"code": "payload_too_large", "details": {"limit": "file"}}})),
        upload("body over 10 MiB with Content-Length", 413)
            .body(multipart(&[envelope("attach_files", files(1)), file("f0", 11 * MIB)]))
            .json(json!({"error": {"details": {"limit": "body"}}})),
        upload("101 files", 413).body(multipart(&many_files))
            .json(json!({"error": {"details": {"limit": "files"}}})),
        upload("1001 tiny parts", 413).body(multipart(&tiny_parts))
            .json(json!({"error": {"details": {"limit": "parts"}}})),
        upload("text part over 1 MiB", 413)
            .body(multipart(&[envelope("attach_files", files(1)), Part { name: "f0", file_name: None, data: vec![b'x'; MIB + 1] }]))
            .json(json!({"error": {"details": {"limit": "text"}}})),
        upload("__mizan over 1 MiB", 413)
            .body(multipart(&[envelope("echo", json!({"message": "x".repeat(MIB)}))]))
            .json(json!({"error": {"details": {"limit": "text"}}})),
        case("no boundary", "POST", "/api/mizan/call/", 400).headers(&[("content-type", "multipart/form-data")])
            .body(multipart(&[envelope("echo", json!({"message": "x"}))])).code("bad_request"),
        case("garbage boundary", "POST", "/api/mizan/call/", 400)
            .headers(&[("content-type", "multipart/form-data; boundary=NOTTHEONE")])
            .body(multipart(&[envelope("echo", json!({"message": "x"}))])).code("bad_request"),
        upload("truncated final boundary", 400).code("bad_request")
            .body(Body::Bytes(multipart_body(&[envelope("attach_files", files(1)), file("f0", 10)], false))),
        upload("__mizan missing", 400).body(multipart(&[file("f0", 1)]))
            .json(json!({"error": {"code": "bad_request", "details": {"part": "__mizan"}}})),
        upload("__mizan not first", 400).body(multipart(&[file("f0", 1), envelope("attach_files", files(1))]))
            .json(json!({"error": {"code": "bad_request", "details": {"part": "__mizan"}}})),
        upload("$upload naming an absent part", 400).body(multipart(&[envelope("attach_files", files(2)), file("f0", 1)]))
            .json(json!({"error": {"code": "bad_request", "details": {"fields": {"files": "\"$upload\" names part \"f1\", which the request does not carry"}}}})),
        upload("unreferenced file part", 400).body(multipart(&[envelope("attach_files", files(1)), file("f0", 1), file("stray", 1)]))
            .json(json!({"error": {"code": "bad_request", "details": {"part": "stray"}}})),
        upload("duplicate part names", 400).body(multipart(&[envelope("attach_files", files(1)), file("f0", 1), file("f0", 1)]))
            .json(json!({"error": {"code": "bad_request", "details": {"part": "f0"}}})),
        upload("a file sent to a function without uploads", 400)
            .body(multipart(&[envelope("echo", json!({"message": "x"})), file("f0", 1)]))
            .json(json!({"error": {"code": "bad_request", "details": {"part": "f0"}}})),
        upload("multipart call without files", 200).body(multipart(&[envelope("echo", json!({"message": "x"}))]))
            .json(json!({"result": "x"})),
        upload("multipart call to an unknown function", 404).code("not_found")
            .body(multipart(&[envelope("nope", json!({})), file("f0", 1)])),
        call("JSON call missing a required Upload", "upload_avatar", json!({"user_id": 2}), 400).by_user("bob")
            .json(json!({"error": {"details": {"fields": {"avatar": "missing required argument"}}}})),
        call("JSON call with an $upload reference", "attach_files", files(1), 400).code("bad_request"),
        upload("file name with ../", 200).body(named("../../etc/passwd")).json(abc_named("passwd")),
        upload("file name with backslashes", 200).body(named("C:\\temp\\a.txt")).json(abc_named("a.txt")),
        // Raw control characters cannot stand in a part header: the part is malformed.
        upload("file name with control characters", 400).body(named("a\u{1}b\u{7f}c.txt")).code("bad_request"),
        upload("file name with NUL", 400).body(named("a\u{0}b.txt")).code("bad_request"),
        // Browsers percent-encode CR, LF and quotes in file names: harmless text.
        upload("file name with encoded CR/LF", 200).body(named("a%0D%0Ab.txt")).json(abc_named("a%0D%0Ab.txt")),
        upload("file name with a tab", 200).body(named("a\tb.txt")).json(abc_named("ab.txt")),
        upload("empty file name", 200).body(named("")).json(abc_named("upload")),
        upload("file name of 300 bytes", 400).body(named(long_name))
            .json(json!({"error": {"code": "bad_request", "details": {"part": "f0"}}})),
    ]
}

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
        for case in cases().into_iter().chain(upload_cases()) {
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
        // With SSR or without, the page carries its props for hydration.
        assert!(String::from_utf8_lossy(&page.body).contains(r#""name":"Groot""#));
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

// ---- Uploads over raw connections: what a well-behaved HTTP client never sends ----

/// Writes `head` and then `body` on a fresh connection (in a task, so a server that answers
/// early and stops reading cannot block the test), and reads the first response: its status
/// and JSON body.
async fn raw_request(addr: SocketAddr, head: String, body: Vec<u8>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sending = tokio::spawn(async move {
        // The server may answer and close before reading everything: write errors are fine.
        if writer.write_all(head.as_bytes()).await.is_ok() {
            for chunk in body.chunks(64 * 1024) {
                if writer.write_all(chunk).await.is_err() {
                    break;
                }
            }
        }
        writer
    });
    let mut received = Vec::new();
    let response = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut buffer = [0u8; 8192];
        loop {
            if let Some(end) = find(&received, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if received.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    let body = &received[end + 4..end + 4 + length];
                    return (status, serde_json::from_slice(body).unwrap_or(Value::Null));
                }
            }
            let n = reader.read(&mut buffer).await.unwrap_or(0);
            assert!(n > 0, "the connection closed without a full response");
            received.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .expect("a response within the deadline");
    sending.abort();
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn multipart_head(length: &str) -> String {
    format!(
        "POST /api/mizan/call/ HTTP/1.1\r\nhost: localhost\r\n\
         content-type: multipart/form-data; boundary=MIZANBOUNDARY\r\n{length}\r\n"
    )
}

/// Chunked transfer encoding of `body`, in chunks of 256 KiB.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(256 * 1024) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_hold_their_limits_against_raw_clients() {
    each_adapter(|s| async move {
        let label = format!("{:?}", s.adapter);
        let big = multipart_body(
            &[
                envelope("attach_files", json!({"files": [{"$upload": "f0"}]})),
                file("f0", 11 * 1024 * 1024),
            ],
            true,
        );

        // Over 10 MiB without Content-Length: counted as it arrives.
        let (status, body) = raw_request(
            s.addr,
            multipart_head("transfer-encoding: chunked\r\n"),
            chunked(&big),
        )
        .await;
        assert_eq!(
            (status, &body["error"]["details"]["limit"]),
            (413, &json!("body")),
            "{label}"
        );

        // A Content-Length smaller than the body: the body ends where the header says, so the
        // multipart is truncated; the rest is never taken as file bytes.
        let (status, body) = raw_request(
            s.addr,
            multipart_head("content-length: 300\r\n"),
            big.clone(),
        )
        .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("bad_request")),
            "{label}"
        );

        // A guarded upload by an anonymous caller: the head, the envelope and the start of a
        // file are sent, then the client waits. The 401 comes without the rest of the body.
        let start = multipart_body(
            &[
                envelope(
                    "upload_avatar",
                    json!({"user_id": 2, "avatar": {"$upload": "a"}}),
                ),
                file("a", 1000),
            ],
            false,
        );
        let (status, body) = raw_request(
            s.addr,
            multipart_head(&format!("content-length: {}\r\n", 5 * 1024 * 1024)),
            start,
        )
        .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (401, &json!("unauthenticated")),
            "{label}"
        );

        // A client that stalls mid-body holds its own request only.
        let stalled = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        {
            use tokio::io::AsyncWriteExt;
            let mut stalled = stalled;
            let head = multipart_head(&format!("content-length: {}\r\n", big.len()));
            stalled.write_all(head.as_bytes()).await.unwrap();
            stalled.write_all(&big[..64 * 1024]).await.unwrap();
            for i in 0..3 {
                let message = format!("meanwhile {i}");
                let reply = s.call(None, "echo", json!({ "message": message })).await;
                assert_eq!(reply.json()["result"], message.as_str(), "{label}");
            }
            drop(stalled);
        }
        let reply = s.call(None, "echo", json!({"message": "still here"})).await;
        assert_eq!(reply.json()["result"], "still here", "{label}");
    })
    .await;
}

// ---- Forms and formsets ----

/// `(dotted path, code)` of each issue, in order.
fn issue_codes(issues: &Value) -> Vec<(String, String)> {
    issues
        .as_array()
        .expect("an issues array")
        .iter()
        .map(|issue| {
            let path: Vec<String> = issue["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|segment| match segment {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            (path.join("."), issue["code"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(path, code)| (path.to_string(), code.to_string()))
        .collect()
}

impl Server {
    async fn validate(&self, token: Option<&str>, form: &str, data: &Value) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        let path = format!("/api/mizan/form/{form}/validate/");
        self.send(Method::POST, &path, &headers, data.to_string().into_bytes())
            .await
    }

    async fn inbox_size(&self, staff: &str) -> usize {
        let messages = self.fetch(Some(staff), "/api/mizan/ctx/inbox/").await;
        messages["inbox_messages"].as_array().unwrap().len()
    }
}

#[tokio::test]
async fn the_contact_form_gives_schema_validation_and_submit() {
    each_adapter(|s| async move {
        let label = format!("{:?}", s.adapter);
        let schema = s.fetch(None, "/api/mizan/form/contact/").await;
        let names: Vec<&str> = schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["name", "email", "topic", "message"], "{label}: declaration order");
        assert_eq!(schema["fields"][0]["constraints"], json!({"min_length": 1, "max_length": 100}));
        assert_eq!(schema["fields"][2]["choices"][2], json!({"value": "other", "label": "Something else"}));
        assert_eq!(schema["fields"][3]["widget"], "textarea");

        let valid = json!({"name": "Ann", "email": "ann@example.com", "topic": "sales", "message": "hello"});
        let with = |key: &str, value: Value| {
            let mut data = valid.clone();
            data[key] = value;
            data
        };
        let check = |data: Value, expected: Vec<(String, String)>| {
            let s = Arc::clone(&s);
            let label = label.clone();
            async move {
                let reply = s.validate(None, "contact", &data).await;
                assert_eq!(reply.status, StatusCode::OK, "{label}: {reply:?}");
                assert_eq!(reply.header("x-mizan-invalidate"), None, "{label}: no side effect");
                let body = reply.json();
                assert_eq!(issue_codes(&body["issues"]), expected, "{label}: {data}");
                assert_eq!(body["valid"], expected.is_empty(), "{label}");
                body
            }
        };
        check(valid.clone(), vec![]).await;
        let several = json!({"name": 5, "email": true, "topic": "sales", "message": []});
        check(several, pairs(&[("name", "invalid_type"), ("email", "invalid_type"), ("message", "invalid_type")])).await;
        check(json!({}), pairs(&[("name", "required"), ("email", "required"), ("topic", "required"), ("message", "required")])).await;
        check(with("name", Value::Null), pairs(&[("name", "required")])).await;
        check(with("extra", json!(1)), pairs(&[("extra", "unknown_field")])).await;
        check(with("topic", json!("jobs")), pairs(&[("topic", "invalid_choice")])).await;
        check(with("email", json!("ann@")), pairs(&[("email", "email")])).await;
        // Limits count characters: 100 two-byte characters fit, 101 do not.
        check(with("name", json!("é".repeat(100))), vec![]).await;
        let over = check(with("name", json!("é".repeat(101))), pairs(&[("name", "max_length")])).await;
        assert_eq!(over["issues"][0]["params"], json!({"max": 100}));
        check(with("message", json!("buy SPAM now")), pairs(&[("", "spam")])).await;
        // A value is never echoed: a script comes back as nothing at all.
        let script = "<script>alert(1)</script>".repeat(5);
        let reply = s.validate(None, "contact", &with("name", json!(script))).await;
        assert_eq!(reply.header("content-type"), Some("application/json"), "{label}");
        assert!(!String::from_utf8_lossy(&reply.body).contains("<script>"), "{label}");

        // Submit: invalid data never reaches the function; valid data runs and invalidates.
        let (staff, _) = s.login("alice").await;
        let before = s.inbox_size(&staff).await;
        let reply = s.call(None, "contact", with("topic", json!("jobs"))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{label}");
        assert_eq!(issue_codes(&reply.json()["error"]["details"]["issues"]), pairs(&[("topic", "invalid_choice")]));
        assert_eq!(reply.header("x-mizan-invalidate"), None);
        assert_eq!(s.inbox_size(&staff).await, before, "{label}: nothing written");
        let reply = s.call(None, "contact", valid.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{label}: {reply:?}");
        assert_eq!(reply.header("x-mizan-invalidate"), Some("inbox"));
        assert_eq!(s.inbox_size(&staff).await, before + 1, "{label}");
        // The inbox is staff-only.
        let reply = s.send(Method::GET, "/api/mizan/ctx/inbox/", &[], Vec::new()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        let reply = s.send(Method::GET, "/api/mizan/form/nope/", &[], Vec::new()).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        let reply = s.send(Method::GET, "/api/mizan/form/contact/validate/", &[], Vec::new()).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    })
    .await;
}

#[tokio::test]
async fn the_place_order_formset_counts_deletes_and_guards() {
    each_adapter(|s| async move {
        let label = format!("{:?}", s.adapter);
        // Guards apply to the schema, validation and submit alike.
        let reply = s
            .send(Method::GET, "/api/mizan/form/place_order/", &[], Vec::new())
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{label}");
        let reply = s.validate(None, "place_order", &json!({"forms": []})).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{label}");
        let (bob, _) = s.login("bob").await;
        let schema = s.fetch(Some(&bob), "/api/mizan/form/place_order/").await;
        assert_eq!(schema["formset"]["min_num"], 1);
        assert_eq!(schema["formset"]["max_num"], 20);
        assert_eq!(schema["formset"]["can_delete"], true);

        let line = |sku: &str, qty: i64| json!({"sku": sku, "qty": qty});
        let deleted = |sku: &str| json!({"sku": sku, "qty": 0, "_delete": true});
        let forms = |forms: Vec<Value>| json!({ "forms": forms });
        let check = |data: Value, expected: Vec<(String, String)>| {
            let (s, bob, label) = (Arc::clone(&s), bob.clone(), label.clone());
            async move {
                let reply = s.validate(Some(&bob), "place_order", &data).await;
                assert_eq!(reply.status, StatusCode::OK, "{label}: {reply:?}");
                assert_eq!(issue_codes(&reply.json()["issues"]), expected, "{label}");
            }
        };
        check(forms(vec![line("ABC-123", 2)]), vec![]).await;
        check(forms(vec![]), pairs(&[("forms", "too_few_forms")])).await;
        check(
            forms(vec![deleted("ABC-123")]),
            pairs(&[("forms", "too_few_forms")]),
        )
        .await;
        check(
            forms(vec![line("ABC-12", 0), line("abc-123", 100)]),
            pairs(&[
                ("forms.0.sku", "pattern"),
                ("forms.0.qty", "min_value"),
                ("forms.1.sku", "pattern"),
                ("forms.1.qty", "max_value"),
            ]),
        )
        .await;
        // An invalid form marked deleted is skipped.
        check(forms(vec![line("ABC-123", 1), deleted("nope")]), vec![]).await;
        // 20 live forms and deleted ones are fine; 21 live ones are not.
        let mut twenty: Vec<Value> = (0..20).map(|_| line("ABC-123", 1)).collect();
        twenty.extend((0..5).map(|_| deleted("ABC-123")));
        check(forms(twenty.clone()), vec![]).await;
        twenty.push(line("ABC-123", 1));
        check(forms(twenty), pairs(&[("forms", "too_many_forms")])).await;
        // Past absolute_max the forms are not even read.
        let flood: Vec<Value> = (0..1100).map(|_| line("ABC-123", 1)).collect();
        check(forms(flood), pairs(&[("forms", "too_many_forms")])).await;

        // Submit: issues on the call; valid lines run, skip deleted ones and invalidate orders.
        let reply = s
            .call(
                Some(&bob),
                "place_order",
                json!({"user_id": 2, "lines": forms(vec![line("ABC-12", 1)])}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{label}");
        assert_eq!(
            issue_codes(&reply.json()["error"]["details"]["issues"]),
            pairs(&[("forms.0.sku", "pattern")])
        );
        let before = s.fetch(None, "/api/mizan/ctx/user/?user_id=2").await["user_orders"]
            .as_array()
            .unwrap()
            .len();
        let lines = forms(vec![
            line("ABC-123", 2),
            deleted("junk"),
            line("XYZ-999", 3),
        ]);
        let reply = s
            .call(
                Some(&bob),
                "place_order",
                json!({"user_id": 2, "lines": lines}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{label}: {reply:?}");
        assert_eq!(reply.json()["result"], json!({"lines": 2, "total_qty": 5}));
        assert_eq!(reply.header("x-mizan-invalidate"), Some("user;user_id=2"));
        let orders = s.fetch(None, "/api/mizan/ctx/user/?user_id=2").await["user_orders"].clone();
        assert_eq!(
            orders.as_array().unwrap().len(),
            before + 1,
            "{label}: no stale bundle"
        );
        let reply = s
            .call(
                None,
                "place_order",
                json!({"user_id": 2, "lines": forms(vec![])}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    })
    .await;
}

// ---- Cookie sessions and CSRF ----

/// A browser-like session: the cookies a login set, sent back as a `Cookie` header.
struct CookieSession {
    cookie: String,
    sid: String,
}

impl Server {
    async fn cookie_login(&self, username: &str) -> CookieSession {
        let reply = self
            .call(
                None,
                "login",
                json!({"username": username, "password": username}),
            )
            .await;
        let set: Vec<&str> = reply
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            set.len(),
            2,
            "{:?}: access and refresh cookies",
            self.adapter
        );
        for cookie in &set {
            for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
                assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
            }
        }
        let cookie = set
            .iter()
            .map(|c| c.split(';').next().unwrap())
            .collect::<Vec<_>>()
            .join("; ");
        let access = reply.json()["result"]["access"]
            .as_str()
            .unwrap()
            .to_owned();
        let payload = access.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        CookieSession {
            cookie,
            sid: claims["sid"].as_str().unwrap().to_owned(),
        }
    }

    async fn csrf_token(&self, session: &CookieSession) -> String {
        let reply = self
            .send(
                Method::GET,
                "/api/mizan/session/",
                &[("cookie", &session.cookie)],
                Vec::new(),
            )
            .await;
        let set = reply
            .header("set-cookie")
            .expect("a csrftoken cookie")
            .to_owned();
        assert!(
            set.starts_with("csrftoken=") && set.contains("SameSite=Lax"),
            "{set}"
        );
        assert!(
            !set.contains("HttpOnly"),
            "the page's scripts read it: {set}"
        );
        reply.json()["csrfToken"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    async fn cookie_call(
        &self,
        session: &CookieSession,
        token: Option<(&str, &str)>,
        function: &str,
        args: Value,
    ) -> Reply {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("cookie", session.cookie.as_str()),
        ];
        headers.extend(token);
        let body = json!({ "fn": function, "args": args })
            .to_string()
            .into_bytes();
        self.send(Method::POST, "/api/mizan/call/", &headers, body)
            .await
    }
}

#[tokio::test]
async fn csrf_protects_cookie_sessions() {
    each_adapter(|s| async move {
        let label = format!("{:?}", s.adapter);
        let forbidden = |reply: &Reply| {
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{label}: {reply:?}");
            assert_eq!(reply.json()["error"]["code"], "forbidden");
        };
        let bob = s.cookie_login("bob").await;
        // The cookie alone authenticates a read...
        let me = s.fetch(None, "/api/mizan/ctx/global/").await;
        assert_eq!(me["current_user"], Value::Null);
        let reply = s
            .send(
                Method::GET,
                "/api/mizan/ctx/global/",
                &[("cookie", &bob.cookie)],
                Vec::new(),
            )
            .await;
        assert_eq!(reply.json()["current_user"]["id"], 2, "{label}");
        // ...but an unsafe request also needs the token.
        forbidden(&s.cookie_call(&bob, None, "secret", json!({})).await);
        let token = s.csrf_token(&bob).await;
        let reply = s
            .cookie_call(&bob, Some(("x-csrftoken", &token)), "secret", json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{label}: {reply:?}");
        // Each response masks the token anew; any of them verifies.
        let again = s.csrf_token(&bob).await;
        assert_ne!(token, again);
        assert_eq!(
            s.cookie_call(&bob, Some(("x-csrftoken", &again)), "secret", json!({}))
                .await
                .status,
            StatusCode::OK
        );
        // The wrong header, another session's token, the unmasked secret: refused.
        forbidden(
            &s.cookie_call(&bob, Some(("x-csrf-token", &token)), "secret", json!({}))
                .await,
        );
        let alice = s.cookie_login("alice").await;
        let alices = s.csrf_token(&alice).await;
        forbidden(
            &s.cookie_call(&bob, Some(("x-csrftoken", &alices)), "secret", json!({}))
                .await,
        );
        let unmasked = {
            use hmac::Mac as _;
            let secret = app::Secrets::development().csrf;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(b"mizan-csrf\0");
            mac.update(bob.sid.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        };
        forbidden(
            &s.cookie_call(&bob, Some(("x-csrftoken", &unmasked)), "secret", json!({}))
                .await,
        );
        // Uploads and form validation are unsafe requests too; refused before any body work.
        let upload = multipart_body(&[envelope("attach_files", json!({"files": []}))], true);
        let headers = [MULTIPART[0], ("cookie", bob.cookie.as_str())];
        forbidden(
            &s.send(Method::POST, "/api/mizan/call/", &headers, upload)
                .await,
        );
        // The view form: the token travels in its field, or it is refused.
        let form = [FORM[0], ("cookie", bob.cookie.as_str())];
        forbidden(
            &s.send(
                Method::POST,
                "/profile/2/update/",
                &form,
                b"name=Bobby".to_vec(),
            )
            .await,
        );
        let body = format!("name=Bobby&csrfmiddlewaretoken={token}").into_bytes();
        let reply = s
            .send(Method::POST, "/profile/2/update/", &form, body)
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{label}: {reply:?}");
        // The page hands the token to its own form.
        let page = s
            .send(
                Method::GET,
                "/profile/2/",
                &[("cookie", &bob.cookie)],
                Vec::new(),
            )
            .await;
        assert!(String::from_utf8_lossy(&page.body).contains(r#""csrf":""#));
        // Bearer and anonymous requests are exempt: no browser sends them on its own.
        let (access, _) = s.login("bob").await;
        assert_eq!(
            s.call(Some(&access), "secret", json!({})).await.status,
            StatusCode::OK
        );
        assert_eq!(
            s.call(None, "echo", json!({"message": "x"})).await.status,
            StatusCode::OK
        );
        // Refresh by cookie: the new access token comes back as a cookie.
        let reply = s
            .cookie_call(&bob, Some(("x-csrftoken", &token)), "refresh", json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{label}: {reply:?}");
        assert!(reply
            .header("set-cookie")
            .unwrap()
            .starts_with("mizan_access="));
        // Logout clears the cookies; a token of the ended session fails the next session.
        let reply = s
            .cookie_call(&bob, Some(("x-csrftoken", &token)), "logout", json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{label}: {reply:?}");
        let cleared: Vec<&str> = reply
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            cleared.iter().all(|c| c.contains("Max-Age=0")),
            "{cleared:?}"
        );
        assert_eq!(
            s.cookie_call(&bob, Some(("x-csrftoken", &token)), "secret", json!({}))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        let bob_again = s.cookie_login("bob").await;
        forbidden(
            &s.cookie_call(
                &bob_again,
                Some(("x-csrftoken", &token)),
                "secret",
                json!({}),
            )
            .await,
        );
    })
    .await;
}

#[tokio::test]
async fn upgrade_headers_on_a_plain_route_get_a_plain_answer() {
    each_adapter(|s| async move {
        let label = format!("{:?}", s.adapter);
        for path in [
            "/api/mizan/session/",
            "/profile/1/",
            "/api/mizan/ctx/catalog/",
        ] {
            let head = format!(
                "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\n\
                 upgrade: websocket\r\ncontent-length: 0\r\n\r\n"
            );
            let (status, _) = raw_request(s.addr, head, Vec::new()).await;
            assert_eq!(status, 200, "{label} {path}");
        }
    })
    .await;
}
