//! Runtime-free integration tests of the dispatcher: calls, context bundles, invalidation,
//! guards, the origin cache, the manifest, the small endpoints and build-time errors.
//!
//! Everything runs under `block_on`; every assertion is about what a client can observe.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use mizan_core::testing::{block_on, ManualClock, TestClient, TestResponse};
use mizan_core::{
    async_trait, client, ApiError, AuthError, BuildError, CacheBackend, CacheError, Function,
    FunctionBuilder, Identity, IdentitySource, Limits, MemoryCache, Mizan, MizanBuilder, Request,
};
use serde_json::{json, Value};

const SECRET: &str = "dispatch-test-cache-secret-0123456789";
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");

// ---------------------------------------------------------------------------
// App state: a tiny "database" and per-function execution counters
// ---------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Db {
    runs: Arc<Mutex<HashMap<&'static str, usize>>>,
    names: Arc<Mutex<HashMap<i64, String>>>,
    /// While set, `user_profile` waits after reading its data (to interleave a mutation).
    hold: Arc<AtomicBool>,
}

impl Db {
    fn seeded() -> Self {
        let db = Self::default();
        db.set_name(5, "Ann");
        db.set_name(6, "Bob");
        db
    }
    fn runs(&self, function: &str) -> usize {
        let runs = self.runs.lock().unwrap();
        runs.get(function).copied().unwrap_or(0)
    }
    fn name(&self, id: i64) -> String {
        let names = self.names.lock().unwrap();
        names.get(&id).cloned().unwrap_or_default()
    }
    fn set_name(&self, id: i64, name: &str) {
        self.names.lock().unwrap().insert(id, name.to_owned());
    }
}

/// The app's `Db`, counting one execution of `function`.
fn state(req: &Request, function: &'static str) -> Result<Db, ApiError> {
    let db = req.state::<Db>()?.clone();
    *db.runs.lock().unwrap().entry(function).or_default() += 1;
    Ok(db)
}

fn viewer(req: &Request) -> String {
    let id = req.identity().user_id.as_deref();
    id.unwrap_or("anonymous").to_owned()
}

/// Pending (and immediately re-woken) while the flag is set.
struct Hold(Arc<AtomicBool>);

impl Future for Hold {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.load(Ordering::SeqCst) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(())
    }
}

// ---------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------

type Out<T> = Result<T, ApiError>;

#[client]
async fn ping(a: i64, b: i64) -> Out<i64> {
    Ok(a + b)
}

#[client]
async fn greet(name: String, title: Option<String>) -> Out<String> {
    let title = title.map(|t| t + " ").unwrap_or_default();
    Ok(format!("Hello, {title}{name}"))
}

#[client]
async fn echo(value: Value) -> Out<Value> {
    Ok(value)
}

#[client(private)]
async fn secret_helper() -> Out<bool> {
    Ok(true)
}

#[client]
async fn boom() -> Out<i64> {
    panic!("kaboom: the database password is hunter2")
}

#[client(context = "user")]
async fn user_profile(req: &Request, user_id: i64) -> Out<Value> {
    let db = state(req, "user_profile")?;
    let name = db.name(user_id);
    Hold(db.hold.clone()).await;
    Ok(json!({"id": user_id, "name": name, "viewer": viewer(req)}))
}

#[client(context = "user", private)]
async fn user_hidden(user_id: i64) -> Out<i64> {
    Ok(user_id)
}

#[client(context = "user", route = "/profile/{user_id}/")]
async fn profile_page(req: &Request, user_id: i64) -> Result<http::Response<String>, ApiError> {
    let name = state(req, "profile_page")?.name(user_id);
    Ok(http::Response::new(format!("<h1>{name}</h1>")))
}

#[client(affects = "user")]
async fn rename(req: &Request, user_id: i64, name: String) -> Out<bool> {
    state(req, "rename")?.set_name(user_id, &name);
    Ok(true)
}

#[client(affects = "user")]
async fn reset_names(req: &Request) -> Out<bool> {
    let db = state(req, "reset_names")?;
    let mut names = db.names.lock().unwrap();
    names.values_mut().for_each(|n| *n = "?".into());
    Ok(true)
}

#[client(affects = "user")]
async fn touch_user(user_id: Option<i64>) -> Out<Option<i64>> {
    Ok(user_id)
}

#[client(affects = "user_profile")]
async fn shout(req: &Request, user_id: i64) -> Out<bool> {
    let db = state(req, "shout")?;
    db.set_name(user_id, &db.name(user_id).to_uppercase());
    Ok(true)
}

#[client(affects = ["user", "catalog"])]
async fn user_then_catalog(user_id: i64) -> Out<i64> {
    Ok(user_id)
}

#[client(affects = ["catalog", "user"])]
async fn catalog_then_user(user_id: i64) -> Out<i64> {
    Ok(user_id)
}

#[client(affects = ["user_profile", "user"])]
async fn wipe() -> Out<bool> {
    Ok(true)
}

/// A handler's own error type, mapped onto the wire error.
#[derive(Debug)]
struct NameTaken;

impl From<NameTaken> for ApiError {
    fn from(_: NameTaken) -> Self {
        ApiError::new(StatusCode::CONFLICT, "name_taken", "that name is taken")
    }
}

#[client(affects = "user")]
async fn claim_name(user_id: i64, name: String) -> Result<bool, NameTaken> {
    let _ = (user_id, name);
    Err(NameTaken)
}

#[client(affects = "user", route = "/profile/{user_id}/rename/", methods = ["POST"])]
async fn rename_form(req: &Request, user_id: i64) -> Result<http::Response<String>, ApiError> {
    let form: HashMap<String, String> = req.form()?;
    state(req, "rename_form")?.set_name(user_id, &form["name"]);
    let response = http::Response::builder().status(StatusCode::SEE_OTHER);
    let response = response.header("location", format!("/profile/{user_id}/"));
    Ok(response.body(String::new()).expect("a valid response"))
}

#[client(affects = "catalog", private, route = "/webhooks/stripe/", methods = ["POST"])]
async fn stripe_webhook(req: &Request) -> http::Response<String> {
    http::Response::new(format!("received {} bytes", req.body().len()))
}

#[client(context = "catalog")]
async fn catalog_items(req: &Request, page: i64) -> Out<Value> {
    state(req, "catalog_items")?;
    Ok(json!({"page": page, "items": [page * 10, page * 10 + 1]}))
}

#[client(context = "catalog")]
async fn catalog_title() -> Out<&'static str> {
    Ok("Shop")
}

#[client(context = "tags")]
async fn tagged(tag: String) -> Out<String> {
    Ok(tag)
}

#[client(affects = "tags")]
async fn retag(tag: String) -> Out<bool> {
    Ok(!tag.is_empty())
}

fn company_email(identity: &Identity, _: &http::request::Parts) -> bool {
    let email = identity.claim_str("email").unwrap_or_default();
    email.ends_with("@company.com")
}

#[client(auth)]
async fn whoami(req: &Request, verbose: Option<bool>) -> Out<String> {
    let prefix = if verbose == Some(true) { "user " } else { "" };
    Ok(format!("{prefix}{}", viewer(req)))
}

#[client(auth = "staff")]
async fn staff_report() -> Out<&'static str> {
    Ok("report")
}

#[client(auth = "superuser")]
async fn purge_all() -> Out<&'static str> {
    Ok("purged")
}

#[client(auth = company_email)]
async fn company_news() -> Out<&'static str> {
    Ok("news")
}

#[client(context = "admin")]
async fn admin_motd(req: &Request) -> Out<&'static str> {
    state(req, "admin_motd")?;
    Ok("be nice")
}

#[client(context = "admin", auth = "staff")]
async fn admin_users(req: &Request) -> Out<Vec<String>> {
    state(req, "admin_users")?;
    Ok(vec![viewer(req)])
}

#[client(context = global)]
async fn site_banner(req: &Request) -> Out<String> {
    state(req, "site_banner")?;
    Ok(format!("welcome back, {}", viewer(req)))
}

#[client(context = "prefs", user_scoped)]
async fn theme(req: &Request) -> Out<String> {
    state(req, "theme")?;
    Ok(format!("theme of {}", viewer(req)))
}

#[client(context = "live", cache = false)]
async fn live_count(req: &Request) -> Out<usize> {
    Ok(state(req, "live_count")?.runs("live_count"))
}

#[client(context = "ticker", cache = 60)]
async fn quote(req: &Request) -> Out<usize> {
    Ok(state(req, "quote")?.runs("quote"))
}

#[client(context = "versioned", rev = 3)]
async fn versioned_doc(req: &Request) -> Out<&'static str> {
    state(req, "versioned_doc")?;
    Ok("v3")
}

// ---------------------------------------------------------------------------
// Apps and helpers
// ---------------------------------------------------------------------------

macro_rules! register {
    ($builder:expr; $($function:ident),* $(,)?) => { $builder$(.register::<$function>())* };
}

fn builder(db: &Db) -> MizanBuilder {
    register!(Mizan::builder().with_state(db.clone());
        ping, greet, echo, secret_helper, boom, user_profile, user_hidden, profile_page, rename,
        reset_names, touch_user, shout, user_then_catalog, catalog_then_user, wipe, claim_name,
        rename_form, stripe_webhook, catalog_items, catalog_title, tagged, retag, whoami,
        staff_report, purge_all, company_news, admin_motd, admin_users, site_banner, theme,
        live_count, quote, versioned_doc)
}

fn app(db: &Db) -> Mizan {
    builder(db).build().expect("a valid app")
}

fn cached(db: &Db, backend: impl CacheBackend) -> Mizan {
    let app = builder(db).with_cache(backend).with_cache_secret(SECRET);
    let app = app.build().expect("a valid app");
    assert!(app.cache_enabled());
    app
}

/// A client of an app acting as one identity (or through the app's identity source).
struct Client(TestClient);

impl Client {
    fn call(&self, function: &str, args: Value) -> TestResponse {
        block_on(self.0.call(function, args))
    }
    fn fetch(&self, context: &str, params: &[(&str, &str)]) -> TestResponse {
        block_on(self.0.fetch(context, params))
    }
    /// The `name` in the `user` bundle of user `id`.
    fn name(&self, id: &str) -> Value {
        ok(&self.fetch("user", &[("user_id", id)]))["user_profile"]["name"].clone()
    }
}

fn anon(app: &Mizan) -> Client {
    Client(TestClient::new(app))
}

fn as_user(app: &Mizan, identity: Identity) -> Client {
    Client(TestClient::new(app).with_identity(identity))
}

fn staff(id: &str) -> Identity {
    Identity::user(id).with_staff(true)
}

fn send(app: &Mizan, method: Method, uri: &str, ctype: Option<&str>, body: &str) -> TestResponse {
    let mut request = http::Request::builder().method(method).uri(uri);
    if let Some(ctype) = ctype {
        request = request.header("content-type", ctype);
    }
    let body = Bytes::copy_from_slice(body.as_bytes());
    block_on(TestClient::new(app).send(request.body(body).expect("a valid request")))
}

fn get(app: &Mizan, uri: &str) -> TestResponse {
    send(app, Method::GET, uri, None, "")
}

fn post_call(app: &Mizan, body: &str) -> TestResponse {
    send(app, Method::POST, "/api/mizan/call/", JSON, body)
}

/// Asserts the status and `Cache-Control: no-store` (every response has it); the JSON body.
fn expect(response: &TestResponse, status: u16) -> Value {
    let text = String::from_utf8_lossy(response.body());
    assert_eq!(response.status().as_u16(), status, "body: {text}");
    assert_eq!(response.header("cache-control"), Some("no-store"));
    response.json()
}

fn ok(response: &TestResponse) -> Value {
    expect(response, 200)
}

/// Asserts an error envelope with this status and code; its `error` object.
fn error(response: &TestResponse, status: u16, code: &str) -> Value {
    let body = expect(response, status);
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(response.invalidate_header(), None);
    body["error"].clone()
}

fn fields(error: &Value) -> Value {
    error["details"]["fields"].clone()
}

fn bad(response: &TestResponse) -> Value {
    error(response, 400, "bad_request")
}

fn not_found(response: &TestResponse) -> Value {
    error(response, 404, "not_found")
}

fn result(response: &TestResponse) -> Value {
    ok(response)["result"].clone()
}

// ---------------------------------------------------------------------------
// 1. Calls
// ---------------------------------------------------------------------------

#[test]
fn call_returns_result_and_empty_invalidate() {
    let c = anon(&app(&Db::seeded()));
    let response = c.call("ping", json!({"a": 2, "b": 3}));
    assert_eq!(ok(&response), json!({"result": 5, "invalidate": []}));
    let ctype = response.header("content-type");
    assert_eq!(ctype, Some("application/json"));
    assert_eq!(response.invalidate_header(), None);
}

#[test]
fn private_and_view_functions_are_404_like_unknown_ones() {
    let c = anon(&app(&Db::seeded()));
    let shape = |name: &str| {
        let error = not_found(&c.call(name, json!({"user_id": 5})));
        error.to_string().replace(name, "NAME")
    };
    let unknown = shape("no_such_fn");
    assert_eq!(shape("secret_helper"), unknown);
    for view in ["profile_page", "rename_form", "stripe_webhook"] {
        assert_eq!(shape(view), unknown, "{view}");
    }
}

#[test]
fn bad_arguments_are_400_naming_each_field() {
    let c = anon(&app(&Db::seeded()));
    let missing = bad(&c.call("ping", json!({"a": 1})));
    let expected = json!({"b": "missing required argument"});
    assert_eq!(fields(&missing), expected);
    let mistyped = bad(&c.call("ping", json!({"a": "1", "b": 2})));
    let message = fields(&mistyped)["a"].to_string();
    assert!(message.contains("i64"), "{message}");
    let extra = bad(&c.call("ping", json!({"a": 1, "b": 2, "c": 3})));
    assert_eq!(fields(&extra), json!({"c": "unexpected argument"}));
    let all = bad(&c.call("ping", json!({"a": null, "z": 0})));
    let all = fields(&all);
    let names: Vec<&String> = all.as_object().unwrap().keys().collect();
    assert_eq!(names, ["a", "b", "z"]);
}

#[test]
fn optional_argument_may_be_omitted() {
    let c = anon(&app(&Db::seeded()));
    let plain = c.call("greet", json!({"name": "Ann"}));
    assert_eq!(result(&plain), "Hello, Ann");
    let titled = c.call("greet", json!({"name": "Ann", "title": "Dr"}));
    assert_eq!(result(&titled), "Hello, Dr Ann");
}

#[test]
fn call_takes_only_post_with_a_json_content_type() {
    let app = app(&Db::seeded());
    let body = r#"{"fn": "ping", "args": {"a": 1, "b": 1}}"#;
    let post = |ctype| send(&app, Method::POST, "/api/mizan/call/", ctype, body);
    for ctype in [None, Some("text/plain"), FORM] {
        error(&post(ctype), 415, "unsupported_media_type");
    }
    let charset = post(Some("application/json; charset=utf-8"));
    assert_eq!(result(&charset), 2);
    let response = get(&app, "/api/mizan/call/");
    error(&response, 405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("POST"));
}

#[test]
fn malformed_envelopes_are_400() {
    let app = app(&Db::seeded());
    for body in [r#"{"fn": "ping""#, "[1, 2]", "", "null", r#""ping""#] {
        bad(&post_call(&app, body));
    }
    let missing_fn = bad(&post_call(&app, r#"{"args": {}}"#));
    assert_eq!(fields(&missing_fn)["fn"], "missing");
    let bad_args = post_call(&app, r#"{"fn": "ping", "args": [1, 2]}"#);
    assert_eq!(fields(&bad(&bad_args))["args"], "must be an object");
}

#[test]
fn exceeding_a_limit_is_the_matching_4xx() {
    let limits = Limits {
        max_body_bytes: 64,
        max_query_bytes: 16,
        max_json_depth: 4,
        ..Limits::default()
    };
    let app = builder(&Db::seeded()).with_limits(limits).build().unwrap();
    let c = anon(&app);

    let big = c.call("echo", json!({"value": "x".repeat(100)}));
    error(&big, 413, "payload_too_large");
    let small = c.call("echo", json!({"value": "short"}));
    assert_eq!(result(&small), "short");

    let deep = post_call(&app, r#"{"fn":"echo","args":{"value":[[[[1]]]]}}"#);
    assert!(bad(&deep)["message"].to_string().contains("nested"));
    let shallow = post_call(&app, r#"{"fn":"echo","args":{"value":[[1]]}}"#);
    assert_eq!(result(&shallow), json!([[1]]));

    let long = c.fetch("catalog", &[("page", "1"), ("filler", "xxxxxxxxxxxx")]);
    error(&long, 414, "uri_too_long");
    ok(&c.fetch("catalog", &[("page", "1")]));
}

#[test]
fn a_panicking_function_is_an_opaque_500_and_the_app_keeps_serving() {
    let c = anon(&app(&Db::seeded()));
    let response = c.call("boom", json!({}));
    let error = error(&response, 500, "internal");
    assert_eq!(error["message"], "internal server error");
    let text = String::from_utf8_lossy(response.body());
    for leak in ["kaboom", "hunter2", "panic", "boom"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    assert_eq!(result(&c.call("ping", json!({"a": 1, "b": 1}))), 2);
}

// ---------------------------------------------------------------------------
// 2. Context bundles
// ---------------------------------------------------------------------------

#[test]
fn bundle_holds_every_public_function_with_params_converted_from_text() {
    let c = anon(&app(&Db::seeded()));
    let response = c.fetch("catalog", &[("page", "5")]);
    let items = json!({"page": 5, "items": [50, 51]});
    let expected = json!({"catalog_items": items, "catalog_title": "Shop"});
    assert_eq!(ok(&response), expected);
}

#[test]
fn private_and_view_functions_are_left_out_of_the_bundle() {
    let c = anon(&app(&Db::seeded()));
    let response = c.fetch("user", &[("user_id", "5")]);
    let profile = json!({"id": 5, "name": "Ann", "viewer": "anonymous"});
    assert_eq!(ok(&response), json!({ "user_profile": profile }));
}

#[test]
fn missing_or_mistyped_param_is_400_naming_it() {
    let c = anon(&app(&Db::seeded()));
    let missing = bad(&c.fetch("catalog", &[]));
    let expected = json!({"page": "missing required argument"});
    assert_eq!(fields(&missing), expected);
    let mistyped = bad(&c.fetch("catalog", &[("page", "five")]));
    assert!(fields(&mistyped)["page"].is_string(), "{mistyped}");
}

#[test]
fn unknown_query_params_are_ignored_and_unknown_contexts_are_404() {
    let c = anon(&app(&Db::seeded()));
    let plain = c.fetch("catalog", &[("page", "2")]);
    let query = [("utm", "x"), ("page", "2"), ("user_id", "9")];
    assert_eq!(ok(&c.fetch("catalog", &query)), ok(&plain));
    not_found(&c.fetch("nowhere", &[]));
    // A function's name is not a context.
    not_found(&c.fetch("user_profile", &[("user_id", "5")]));
}

// ---------------------------------------------------------------------------
// 3. Invalidation
// ---------------------------------------------------------------------------

fn assert_invalidates(response: &TestResponse, body: Value, header: &str) {
    assert_eq!(ok(response)["invalidate"], body);
    assert_eq!(response.invalidate_header(), Some(header));
}

fn scoped(context: &str, params: Value) -> Value {
    json!({"context": context, "params": params})
}

#[test]
fn without_a_matching_arg_the_target_is_broad() {
    let c = anon(&app(&Db::seeded()));
    let broad = json!(["user"]);
    assert_invalidates(&c.call("reset_names", json!({})), broad.clone(), "user");
    // An optional scoping argument left out (or null) is no scope either.
    assert_invalidates(&c.call("touch_user", json!({})), broad.clone(), "user");
    let null = c.call("touch_user", json!({"user_id": null}));
    assert_invalidates(&null, broad, "user");
}

#[test]
fn matching_arg_names_scope_the_target_keeping_json_types() {
    let c = anon(&app(&Db::seeded()));
    let response = c.call("rename", json!({"user_id": 5, "name": "Zed"}));
    assert_eq!(response.result(), true);
    let target = scoped("user", json!({"user_id": 5}));
    assert_invalidates(&response, json!([target]), "user;user_id=5");
    let response = c.call("retag", json!({"tag": "7"}));
    let target = scoped("tags", json!({"tag": "7"}));
    assert_invalidates(&response, json!([target]), "tags;tag=7");
}

#[test]
fn function_level_target_names_the_function_and_the_header_its_context() {
    let c = anon(&app(&Db::seeded()));
    let response = c.call("shout", json!({"user_id": 5}));
    let params = json!({"user_id": 5});
    let target = json!({"context": "user", "function": "user_profile", "params": params});
    assert_invalidates(&response, json!([target]), "user;user_id=5");
}

#[test]
fn multiple_targets_keep_declaration_order_and_broad_absorbs_the_rest() {
    let c = anon(&app(&Db::seeded()));
    let user = scoped("user", json!({"user_id": 5}));
    let first = c.call("user_then_catalog", json!({"user_id": 5}));
    let header = "user;user_id=5, catalog";
    assert_invalidates(&first, json!([user, "catalog"]), header);
    let second = c.call("catalog_then_user", json!({"user_id": 5}));
    let header = "catalog, user;user_id=5";
    assert_invalidates(&second, json!(["catalog", user]), header);
    // `affects = ["user_profile", "user"]`: a function-level and a broad target of one context.
    assert_invalidates(&c.call("wipe", json!({})), json!(["user"]), "user");
}

#[test]
fn header_percent_encodes_param_values() {
    let tag = "a,b;c=d%e f é~_.-";
    let response = anon(&app(&Db::seeded())).call("retag", json!({ "tag": tag }));
    let header = "tags;tag=a%2Cb%3Bc%3Dd%25e%20f%20%C3%A9~_.-";
    let target = scoped("tags", json!({ "tag": tag }));
    assert_invalidates(&response, json!([target]), header);
}

#[test]
fn view_mutation_returns_its_own_response_with_the_header() {
    let db = Db::seeded();
    let app = app(&db);
    let post = |uri, ctype, body| send(&app, Method::POST, uri, ctype, body);
    let response = post("/profile/5/rename/", FORM, "name=Kim+Lee");
    assert_eq!(expect(&response, 303), Value::Null);
    assert!(response.body().is_empty());
    assert_eq!(response.header("location"), Some("/profile/5/"));
    assert_eq!(response.invalidate_header(), Some("user;user_id=5"));
    assert_eq!(db.name(5), "Kim Lee");

    let page = get(&app, "/profile/5/");
    assert_eq!(page.body().as_ref(), b"<h1>Kim Lee</h1>");
    assert_eq!(page.invalidate_header(), None);
    let webhook = post("/webhooks/stripe/", JSON, "{}");
    assert_eq!(webhook.body().as_ref(), b"received 2 bytes");
    assert_eq!(webhook.invalidate_header(), Some("catalog"));
}

#[test]
fn failing_mutation_invalidates_nothing() {
    let db = Db::seeded();
    let c = anon(&cached(&db, MemoryCache::new()));
    assert_eq!(c.name("5"), "Ann");
    let response = c.call("claim_name", json!({"user_id": 5, "name": "Ann"}));
    let error = error(&response, 409, "name_taken");
    assert_eq!(error["message"], "that name is taken");
    assert!(response.json().get("invalidate").is_none());
    assert_eq!(c.name("5"), "Ann");
    assert_eq!(db.runs("user_profile"), 1, "the cached bundle survives");
}

// ---------------------------------------------------------------------------
// 4. Guards
// ---------------------------------------------------------------------------

/// The status of calling `function` as each identity (`None`: anonymous).
fn statuses(app: &Mizan, function: &str, who: &[Option<Identity>]) -> Vec<u16> {
    let status = |identity: &Option<Identity>| {
        let c = identity.clone().map_or(anon(app), |id| as_user(app, id));
        let response = c.call(function, json!({}));
        match response.status().as_u16() {
            401 => error(&response, 401, "unauthenticated"),
            403 => error(&response, 403, "forbidden"),
            _ => ok(&response),
        };
        response.status().as_u16()
    };
    who.iter().map(status).collect()
}

#[test]
fn auth_requires_any_authenticated_caller() {
    let app = app(&Db::seeded());
    let who = [None, Some(Identity::user("1"))];
    assert_eq!(statuses(&app, "whoami", &who), [401, 200]);
    let c = as_user(&app, Identity::user("7"));
    let verbose = c.call("whoami", json!({"verbose": true}));
    assert_eq!(result(&verbose), "user 7");
}

#[test]
fn staff_and_superuser_guards_and_superuser_passes_staff() {
    let app = app(&Db::seeded());
    let (plain, root) = (Identity::user("2"), Identity::user("3"));
    let root = root.with_superuser(true);
    let who = [None, Some(plain), Some(staff("1")), Some(root)];
    assert_eq!(statuses(&app, "staff_report", &who), [401, 403, 200, 200]);
    assert_eq!(statuses(&app, "purge_all", &who), [401, 403, 403, 200]);
}

#[test]
fn predicate_guard_sees_the_identity() {
    let app = app(&Db::seeded());
    let email = |email: &str| Some(Identity::user("2").with_claim("email", email));
    let (bob, al) = (email("bob@example.com"), email("al@company.com"));
    let who = [None, Some(Identity::user("2")), bob, al];
    assert_eq!(statuses(&app, "company_news", &who), [401, 403, 403, 200]);
}

#[test]
fn guard_runs_before_argument_parsing() {
    let app = app(&Db::seeded());
    let args = json!({"verbose": "loud", "extra": 1});
    let anonymous = anon(&app).call("whoami", args.clone());
    error(&anonymous, 401, "unauthenticated");
    let parsed = as_user(&app, Identity::user("1")).call("whoami", args);
    assert_eq!(fields(&bad(&parsed))["extra"], "unexpected argument");
    let c = as_user(&app, Identity::user("2"));
    error(&c.call("staff_report", json!({"x": 1})), 403, "forbidden");
}

#[test]
fn a_bundle_with_one_guarded_function_is_denied_as_a_whole() {
    let db = Db::seeded();
    let app = cached(&db, MemoryCache::new());
    error(&anon(&app).fetch("admin", &[]), 401, "unauthenticated");
    let plain = as_user(&app, Identity::user("2"));
    error(&plain.fetch("admin", &[]), 403, "forbidden");
    assert_eq!(db.runs("admin_motd"), 0, "nothing of a denied bundle runs");
    let allowed = as_user(&app, staff("1")).fetch("admin", &[]);
    let expected = json!({"admin_motd": "be nice", "admin_users": ["1"]});
    assert_eq!(ok(&allowed), expected);
    // The guard runs before the cache: user 1, no longer staff, gets no cached bundle.
    let demoted = as_user(&app, Identity::user("1")).fetch("admin", &[]);
    error(&demoted, 403, "forbidden");
}

struct Bearer;

#[async_trait]
impl IdentitySource for Bearer {
    async fn identify(&self, parts: &http::request::Parts) -> Result<Identity, AuthError> {
        let token = parts.headers.get("authorization").map(|v| v.to_str());
        match token {
            None => Ok(Identity::anonymous()),
            Some(Ok("Bearer good")) => Ok(Identity::user("1")),
            Some(_) => Err(AuthError::InvalidToken),
        }
    }
}

#[test]
fn identity_source_errors_are_401_without_detail() {
    let app = builder(&Db::seeded()).with_identity(Bearer);
    let app = app.build().unwrap();
    let bearer = |token| Client(TestClient::new(&app).with_header("authorization", token));
    let c = bearer("Bearer bad");
    for response in [c.call("ping", json!({})), c.fetch("catalog", &[])] {
        let error = error(&response, 401, "unauthenticated");
        assert_eq!(error["message"], "invalid or expired credentials");
    }
    let good = bearer("Bearer good").call("whoami", json!({}));
    assert_eq!(result(&good), "1");
    let nobody = anon(&app).call("whoami", json!({}));
    let error = error(&nobody, 401, "unauthenticated");
    assert_eq!(error["message"], "authentication required");
}

// ---------------------------------------------------------------------------
// 5. Origin cache
// ---------------------------------------------------------------------------

#[test]
fn second_fetch_is_a_byte_identical_hit() {
    let db = Db::seeded();
    let c = anon(&cached(&db, MemoryCache::new()));
    let first = c.fetch("catalog", &[("page", "1")]);
    let second = c.fetch("catalog", &[("page", "1")]);
    ok(&second);
    assert_eq!(first.body(), second.body());
    let ctype = second.header("content-type");
    assert_eq!(ctype, Some("application/json"));
    assert_eq!(db.runs("catalog_items"), 1);
}

#[test]
fn different_params_are_separate_entries_and_unknown_params_share_one() {
    let db = Db::seeded();
    let c = anon(&cached(&db, MemoryCache::new()));
    let one = c.fetch("catalog", &[("page", "1")]);
    let two = c.fetch("catalog", &[("page", "2")]);
    assert_ne!(one.body(), two.body());
    assert_eq!(db.runs("catalog_items"), 2);
    let again = c.fetch("catalog", &[("ref", "mail"), ("page", "1")]);
    assert_eq!(again.body(), one.body());
    assert_eq!(db.runs("catalog_items"), 2);
}

#[test]
fn scoped_mutation_refreshes_its_scope_and_keeps_other_entries() {
    let db = Db::seeded();
    let app = cached(&db, MemoryCache::new());
    let (anyone, alice) = (anon(&app), as_user(&app, Identity::user("1")));
    for c in [&anyone, &alice] {
        assert_eq!([c.name("5"), c.name("6")], ["Ann", "Bob"]);
    }
    assert_eq!(db.runs("user_profile"), 4);
    ok(&anyone.call("rename", json!({"user_id": 5, "name": "Zed"})));
    for c in [&anyone, &alice] {
        assert_eq!([c.name("5"), c.name("6")], ["Zed", "Bob"]);
    }
    // User 5 re-ran for both callers, user 6 did not.
    assert_eq!(db.runs("user_profile"), 6);
    assert_eq!(alice.name("5"), "Zed");
    assert_eq!(db.runs("user_profile"), 6, "the fresh bundle is cached");
}

#[test]
fn every_kind_of_mutation_makes_the_next_fetch_fresh() {
    let db = Db::seeded();
    let app = cached(&db, MemoryCache::new());
    let c = anon(&app);
    let post = |uri, ctype, body| send(&app, Method::POST, uri, ctype, body);
    assert_eq!([c.name("5"), c.name("6")], ["Ann", "Bob"]);

    ok(&c.call("shout", json!({"user_id": 5}))); // function-level
    assert_eq!(c.name("5"), "ANN");
    post("/profile/5/rename/", FORM, "name=Kim"); // view path
    assert_eq!(c.name("5"), "Kim");
    ok(&c.call("reset_names", json!({}))); // broad
    assert_eq!([c.name("5"), c.name("6")], ["?", "?"]);
    db.set_name(6, "Out of band");
    assert_eq!(c.name("6"), "?", "no mutation ran: still cached");
    ok(&c.call("touch_user", json!({}))); // broad, optional arg left out
    assert_eq!(c.name("6"), "Out of band");

    c.fetch("catalog", &[("page", "1")]);
    post("/webhooks/stripe/", None, ""); // private view path
    c.fetch("catalog", &[("page", "1")]);
    assert_eq!(db.runs("catalog_items"), 2, "the webhook purged it");
}

#[test]
fn a_fetch_racing_a_mutation_never_leaves_a_stale_bundle_behind() {
    let db = Db::seeded();
    let c = anon(&cached(&db, MemoryCache::new()));
    db.hold.store(true, Ordering::SeqCst);
    // The fetch reads "Ann" and waits; the mutation commits "Zed" and returns; then the fetch
    // finishes and stores its (now stale) bundle.
    let fetching = c.0.fetch("user", &[("user_id", "5")]);
    let renaming = async {
        let args = json!({"user_id": 5, "name": "Zed"});
        let response = c.0.call("rename", args).await;
        db.hold.store(false, Ordering::SeqCst);
        response
    };
    let (raced, renamed) = block_on(futures_util::future::join(fetching, renaming));
    assert_eq!(ok(&raced)["user_profile"]["name"], "Ann");
    ok(&renamed);
    assert_eq!(c.name("5"), "Zed");
}

#[test]
fn cache_false_is_never_cached() {
    let c = anon(&cached(&Db::seeded(), MemoryCache::new()));
    assert_eq!(ok(&c.fetch("live", &[])), json!({"live_count": 1}));
    assert_eq!(ok(&c.fetch("live", &[])), json!({"live_count": 2}));
}

#[test]
fn user_scoped_contexts_are_never_served_to_another_identity() {
    let db = Db::seeded();
    let app = cached(&db, MemoryCache::new());
    let (a, b) = (as_user(&app, staff("1")), as_user(&app, staff("2")));
    let user: &[(&str, &str)] = &[("user_id", "5")];
    let cases = [
        ("user", user, "user_profile"), // a USER_PARAMS param
        ("admin", &[], "admin_users"),  // a guarded function
        ("global", &[], "site_banner"), // the global context
        ("prefs", &[], "theme"),        // a user_scoped function
    ];
    for (context, params, function) in cases {
        let from_a = a.fetch(context, params);
        let from_b = b.fetch(context, params);
        ok(&from_b);
        assert_ne!(from_a.body(), from_b.body(), "{context}: B got A's bundle");
        assert_eq!(a.fetch(context, params).body(), from_a.body());
        assert_eq!(db.runs(function), 2, "{context}: once per identity");
    }
    // A context that does not depend on the caller is shared.
    let shared = a.fetch("catalog", &[("page", "1")]);
    assert_eq!(b.fetch("catalog", &[("page", "1")]).body(), shared.body());
    assert_eq!(db.runs("catalog_items"), 1);
}

fn docs_app(db: &Db, backend: Arc<MemoryCache>, rev: u32) -> Mizan {
    let doc = Function::new("doc").with_context("docs").with_rev(rev);
    let doc = doc.handler(move |req: Request, _| async move {
        state(&req, "doc")?;
        Ok::<_, ApiError>(format!("doc v{rev}"))
    });
    let builder = Mizan::builder().with_state(db.clone()).with_function(doc);
    let builder = builder.with_cache(backend).with_cache_secret(SECRET);
    builder.build().unwrap()
}

#[test]
fn rev_keeps_caching_and_a_new_rev_does_not_see_old_entries() {
    let db = Db::seeded();
    let c = anon(&cached(&db, MemoryCache::new()));
    for _ in 0..3 {
        let expected = json!({"versioned_doc": "v3"});
        assert_eq!(ok(&c.fetch("versioned", &[])), expected);
    }
    assert_eq!(db.runs("versioned_doc"), 1);

    let backend = Arc::new(MemoryCache::new());
    let v1 = anon(&docs_app(&db, backend.clone(), 1));
    let v2 = anon(&docs_app(&db, backend, 2));
    let steps = [(&v1, "doc v1", 1), (&v1, "doc v1", 1), (&v2, "doc v2", 2)];
    for (c, expected, runs) in steps.into_iter().chain([(&v2, "doc v2", 2)]) {
        assert_eq!(ok(&c.fetch("docs", &[])), json!({ "doc": expected }));
        assert_eq!(db.runs("doc"), runs);
    }
}

/// A backend shared by app instances that can go down (every operation times out) and up.
#[derive(Clone, Default)]
struct Flaky {
    inner: Arc<MemoryCache>,
    down: Arc<AtomicBool>,
}

impl Flaky {
    fn check(&self) -> Result<(), CacheError> {
        match self.down.load(Ordering::SeqCst) {
            true => Err(CacheError::Timeout),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl CacheBackend for Flaky {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        self.check()?;
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        self.check()?;
        self.inner.put(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.check()?;
        self.inner.delete(key).await
    }
    async fn delete_by_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        self.check()?;
        self.inner.delete_by_prefix(prefix).await
    }
}

#[test]
fn a_failing_backend_never_fails_a_request() {
    let db = Db::seeded();
    let backend = Flaky::default();
    backend.down.store(true, Ordering::SeqCst);
    let c = anon(&cached(&db, backend));
    assert_eq!([c.name("5"), c.name("5")], ["Ann", "Ann"]);
    let renamed = c.call("rename", json!({"user_id": 5, "name": "Zed"}));
    let target = scoped("user", json!({"user_id": 5}));
    assert_invalidates(&renamed, json!([target]), "user;user_id=5");
    assert_eq!(c.name("5"), "Zed");
    assert_eq!(db.runs("user_profile"), 3);
}

#[test]
fn a_ttl_hint_expires_with_the_clock() {
    let clock = ManualClock::new();
    let backend = MemoryCache::new().with_clock(clock.clone());
    let c = anon(&cached(&Db::seeded(), backend));
    assert_eq!(ok(&c.fetch("ticker", &[])), json!({"quote": 1}));
    clock.advance(Duration::from_secs(59));
    assert_eq!(ok(&c.fetch("ticker", &[])), json!({"quote": 1}));
    clock.advance(Duration::from_secs(2));
    assert_eq!(ok(&c.fetch("ticker", &[])), json!({"quote": 2}));
}

// ---------------------------------------------------------------------------
// 6. Manifest
// ---------------------------------------------------------------------------

fn small_app() -> Mizan {
    let builder = register!(Mizan::builder();
        user_profile, user_hidden, profile_page, catalog_items, catalog_title, admin_motd,
        admin_users, rename, stripe_webhook);
    builder.build().unwrap()
}

#[test]
fn manifest_has_the_spec_shape() {
    let response = get(&small_app(), "/api/mizan/manifest/");
    let rpc = |name: &str| json!({"name": name, "path": "rpc"});
    let expected = json!({
        "contexts": {
            "admin": {"endpoints": ["/api/mizan/ctx/admin/"],
                      "functions": [rpc("admin_motd"), rpc("admin_users")],
                      "page_routes": [], "params": [], "render_strategy": "psr", "user_scoped": true},
            "catalog": {"endpoints": ["/api/mizan/ctx/catalog/"],
                        "functions": [rpc("catalog_items"), rpc("catalog_title")],
                        "page_routes": [], "params": ["page"], "render_strategy": "psr",
                        "user_scoped": false},
            "user": {"endpoints": ["/api/mizan/ctx/user/"],
                     "functions": [rpc("user_profile"),
                                   {"name": "user_hidden", "path": "rpc", "private": true},
                                   {"name": "profile_page", "path": "view",
                                    "route": "/profile/{user_id}/"}],
                     "page_routes": ["/profile/{user_id}/"], "params": ["user_id"],
                     "render_strategy": "dynamic_cached", "user_scoped": true},
        },
        "mutations": {
            "rename": {"affects": ["user"], "auto_scoped_params": ["user_id"]},
            "stripe_webhook": {"affects": ["catalog"], "private": true,
                               "route": "/webhooks/stripe/", "methods": ["POST"]},
        },
    });
    assert_eq!(ok(&response), expected);
    let ctype = response.header("content-type");
    assert_eq!(ctype, Some("application/json"));
    // Compact with sorted keys: exactly what serializing the (sorted) value gives.
    let canonical = serde_json::to_vec(&expected).unwrap();
    assert_eq!(response.body().as_ref(), canonical);
}

#[test]
fn manifest_is_byte_identical_for_the_same_registry() {
    let manifest = || get(&small_app(), "/api/mizan/manifest/").body().clone();
    assert_eq!(manifest(), manifest());
    assert_eq!(manifest(), small_app().manifest());
}

// ---------------------------------------------------------------------------
// 7. Small endpoints and the mount point
// ---------------------------------------------------------------------------

#[test]
fn head_is_an_empty_200_and_options_a_204_with_allow() {
    let app = app(&Db::seeded());
    let send = |method, uri| send(&app, method, uri, None, "");
    let head = send(Method::HEAD, "/api/mizan/ctx/catalog/?page=1");
    ok(&head);
    assert!(head.body().is_empty());
    for (uri, allow) in [
        ("/api/mizan/call/", "POST, OPTIONS"),
        ("/api/mizan/ctx/catalog/", "GET, HEAD, OPTIONS"),
        ("/profile/5/rename/", "POST, OPTIONS"),
    ] {
        let response = send(Method::OPTIONS, uri);
        expect(&response, 204);
        assert!(response.body().is_empty());
        assert_eq!(response.header("allow"), Some(allow), "{uri}");
    }
}

#[test]
fn session_answers_and_unknown_paths_are_404_envelopes() {
    let app = app(&Db::seeded());
    let session = get(&app, "/api/mizan/session/");
    assert_eq!(ok(&session), json!({"csrfToken": null}));
    let unknown = ["/api/mizan/nope/", "/api/mizan/ctx/", "/elsewhere"];
    for uri in unknown.into_iter().chain(["/profile/5/x/"]) {
        not_found(&get(&app, uri));
    }
}

#[test]
fn a_custom_mount_moves_every_endpoint() {
    let app = builder(&Db::seeded()).with_mount("/rpc/").build().unwrap();
    let session = get(&app, "/rpc/session/");
    assert_eq!(ok(&session), json!({"csrfToken": null}));
    let bundle = ok(&get(&app, "/rpc/ctx/catalog/?page=1"));
    assert_eq!(bundle["catalog_title"], "Shop");
    let manifest = ok(&get(&app, "/rpc/manifest/"));
    let endpoints = &manifest["contexts"]["catalog"]["endpoints"];
    assert_eq!(endpoints, &json!(["/rpc/ctx/catalog/"]));
    let body = r#"{"fn": "ping", "args": {"a": 1, "b": 2}}"#;
    let called = send(&app, Method::POST, "/rpc/call/", JSON, body);
    assert_eq!(result(&called), 3);
    for uri in ["session/", "ctx/catalog/?page=1", "manifest/"] {
        not_found(&get(&app, &format!("/api/mizan/{uri}")));
    }
    not_found(&post_call(&app, body));
    // View routes live outside the mount point and do not move.
    let page = get(&app, "/profile/5/");
    assert_eq!(page.body().as_ref(), b"<h1>Ann</h1>");
}

// ---------------------------------------------------------------------------
// 8. Build errors
// ---------------------------------------------------------------------------

fn noop(builder: FunctionBuilder) -> Function {
    builder.handler(|_, _| async { Ok::<_, ApiError>(()) })
}

fn build_error(builder: MizanBuilder) -> BuildError {
    builder.build().expect_err("the app must not build")
}

fn build_one(function: FunctionBuilder) -> BuildError {
    build_error(Mizan::builder().with_function(noop(function)))
}

#[test]
fn invalid_names_are_build_errors() {
    let f = || Function::new("f");
    let cases = [
        (Function::new("bad-name"), "function", "bad-name"),
        (Function::new("9lives"), "function", "9lives"),
        (f().with_context("my ctx"), "context", "my ctx"),
        (f().with_param::<i64>("user.id"), "parameter", "user.id"),
        (f().with_affects(["no-such"]), "affects target", "no-such"),
    ];
    for (function, kind, bad) in cases {
        let err = build_one(function);
        let BuildError::InvalidName { what, name } = &err else {
            panic!("{err:?}")
        };
        assert_eq!((*what, name.as_str()), (kind, bad));
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn duplicates_are_build_errors() {
    let err = build_error(register!(Mizan::builder(); ping, greet, ping));
    let duplicate = matches!(&err, BuildError::DuplicateFunction(f) if f == "ping");
    assert!(duplicate, "{err:?}");
    assert!(err.to_string().contains("\"ping\""), "{err}");
    let f = Function::new("f").with_param::<i64>("a");
    let err = build_one(f.with_param::<String>("a"));
    let BuildError::DuplicateParam { function, param } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((function.as_str(), param.as_str()), ("f", "a"));
}

#[test]
fn unknown_affects_targets_are_build_errors() {
    let unknown = |err: BuildError| match err {
        BuildError::UnknownAffectsTarget { function, target } => (function, target),
        other => panic!("{other:?}"),
    };
    // The context `user` exists only once a function declares it.
    let err = build_error(Mizan::builder().register::<rename>());
    assert_eq!(unknown(err), ("rename".into(), "user".into()));
    // A standalone function is not something a mutation can affect.
    let mutation = noop(Function::new("m").with_affects(["ping"]));
    let builder = Mizan::builder().register::<ping>().with_function(mutation);
    let message = build_error(builder).to_string();
    assert!(message.contains("\"m\" affects \"ping\""), "{message}");
    let err = build_one(Function::new("m").with_affects(Vec::<String>::new()));
    assert!(matches!(err, BuildError::EmptyAffects(_)), "{err:?}");
}

#[test]
fn context_with_affects_is_a_build_error() {
    let both = Function::new("f").with_context("user");
    let both = both.with_affects(["user"]);
    let builder = Mizan::builder().register::<user_profile>();
    let err = build_error(builder.with_function(noop(both)));
    let named = matches!(&err, BuildError::ContextAndAffects(f) if f == "f");
    assert!(named, "{err:?}");
    let message = err.to_string();
    let explained = message.contains("both `context` and `affects`");
    assert!(explained, "{message}");
}

// ---------------------------------------------------------------------------
// Lost epochs and lost purges
// ---------------------------------------------------------------------------

#[test]
fn a_dropped_epoch_key_never_resurrects_a_stale_bundle() {
    let db = Db::seeded();
    let backend = Arc::new(MemoryCache::new());
    let app = cached(&db, backend.clone());
    let alice = as_user(&app, Identity::user("1"));
    assert_eq!(alice.name("5"), "Ann");
    ok(&anon(&app).call("rename", json!({"user_id": 5, "name": "Zed"})));
    // The backend loses its `gen:` keys (and only those), as an evicting cache may.
    let dropped = block_on(backend.delete_by_prefix("gen:")).unwrap();
    assert!(dropped > 0);
    assert_eq!(alice.name("5"), "Zed", "a bundle from before the mutation");
}

/// Two instances on one backend; instance one renames user 5 while the backend is down (so its
/// purge is lost), then the backend comes back. Returns instance one and a reader of instance two.
fn two_instances_after_a_lost_purge() -> (Mizan, Client) {
    let db = Db::seeded();
    let backend = Flaky::default();
    let (one, two) = (cached(&db, backend.clone()), cached(&db, backend.clone()));
    let reader = anon(&two);
    assert_eq!(reader.name("5"), "Ann");
    backend.down.store(true, Ordering::SeqCst);
    let renamed = anon(&one).call("rename", json!({"user_id": 5, "name": "Zed"}));
    assert_eq!(result(&renamed), true);
    backend.down.store(false, Ordering::SeqCst);
    (one, reader)
}

#[test]
#[ignore = "known limit (see cache/origin.rs, 'the window that remains'): instance two saw no \
            backend failure of its own (so no outage grace) and instance one has not retried \
            yet (its next cache operation, or Mizan::retry_lost_purges on a timer); this test \
            reads in exactly that window"]
fn a_purge_lost_by_one_instance_is_not_served_stale_by_another() {
    let (_one, reader) = two_instances_after_a_lost_purge();
    assert_eq!(
        reader.name("5"),
        "Zed",
        "instance two serves the old bundle"
    );
}

#[test]
fn a_lost_purge_is_retried_by_the_next_cache_operation_of_its_instance() {
    let (one, reader) = two_instances_after_a_lost_purge();
    // Any cache operation of instance one (here a fetch of another user) retries the lost
    // purge; from then on instance two sees the new data too.
    assert_eq!(anon(&one).name("6"), "Bob");
    assert_eq!(reader.name("5"), "Zed");
}

#[test]
fn retry_lost_purges_reapplies_a_lost_purge_without_a_request() {
    let (one, reader) = two_instances_after_a_lost_purge();
    assert_eq!(one.lost_purges(), 1);
    // What an app's timer calls: instance one serves nothing, yet its purge lands.
    assert_eq!(block_on(one.retry_lost_purges()), 0);
    assert_eq!(one.lost_purges(), 0);
    assert_eq!(reader.name("5"), "Zed");
}

#[test]
fn successful_mutations_publish_their_targets_on_the_bus() {
    use futures_util::{FutureExt, StreamExt};
    use mizan_core::{BusEvent, Function, MemoryBus};

    let bus = MemoryBus::new();
    let app = Mizan::builder()
        .with_function(
            Function::new("profile")
                .with_context("user")
                .with_param::<i64>("user_id")
                .handler(|_, mut args| async move { args.take::<i64>("user_id") }),
        )
        .with_function(
            Function::new("rename")
                .with_affects(["user"])
                .with_param::<i64>("user_id")
                .handler(|_, mut args| async move {
                    let id: i64 = args.take("user_id")?;
                    if id < 0 {
                        return Err(ApiError::bad_request("negative id"));
                    }
                    Ok(id)
                }),
        )
        .with_bus(bus)
        .build()
        .unwrap();
    let mut receiver = app.bus().subscribe();
    let client = TestClient::new(&app);
    let failed = block_on(client.call("rename", json!({"user_id": -1})));
    assert_eq!(failed.status(), 400);
    assert!(
        receiver.next().now_or_never().is_none(),
        "a failed mutation publishes nothing"
    );
    block_on(client.call("rename", json!({"user_id": 2})));
    match receiver.next().now_or_never() {
        Some(Some(BusEvent::Targets(targets))) => assert_eq!(
            serde_json::to_value(&targets[..]).unwrap(),
            json!([{"context": "user", "params": {"user_id": 2}}])
        ),
        other => panic!("expected the targets, got {other:?}"),
    }
}
