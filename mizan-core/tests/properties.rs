//! Property-based tests of every hand-written decoder and encoder of the core:
//!
//! - the protocol as a whole (call envelopes, query strings, paths, methods, bodies): whatever
//!   arrives, the answer is a 2xx or a 4xx carrying the JSON error envelope, never a 5xx;
//! - the `X-Mizan-Invalidate` header: encoding then decoding gives back every context, name and
//!   value, for any Unicode;
//! - cache keys: equal to what CPython computes with `hmac` and `json.dumps` (a Python peer,
//!   `tests/peers/cache_keys.py`, computes one batch per run);
//! - the KDL writer: its output parses with the `kdl` crate and gives back every string.
//!
//! Each property runs [`DEFAULT_CASES`] cases; set `MIZAN_PROPTEST_CASES` for a longer run.
//! Failures are not persisted: proptest prints the shrunk input, which belongs in an example
//! test once the bug is fixed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::Method;
use mizan_core::invalidation::{header_value, parse_header, HeaderEntry};
use mizan_core::ir::{
    to_kdl, Affects, Arg, Field, FunctionKind, Ir, IrFunction, TypeDef, TypeExpr,
};
use mizan_core::testing::{block_on, TestClient, TestResponse};
use mizan_core::{
    client, derive_cache_key, param_string, ApiError, Identity, IpcTransport, MemoryCache, Mizan,
    Request, Target,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

/// Cases per property in the normal test run.
const DEFAULT_CASES: u32 = 2048;

/// Cases per property: `MIZAN_PROPTEST_CASES` when set (e.g. `100000` for a long run), else
/// [`DEFAULT_CASES`].
fn cases() -> u32 {
    std::env::var("MIZAN_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Inputs: strings that hit every escaping rule
// ---------------------------------------------------------------------------

/// Characters that escaping rules single out: quotes, backslashes, separators of the header,
/// KDL syntax, controls, Unicode newlines and direction marks, astral and non-characters.
const AWKWARD: &str = "\"\\'/#={}[]();,%+&?:<>* \t\n\r\0\u{1}\u{8}\u{b}\u{c}\u{1f}\u{7f}\
    \u{85}\u{a0}éß☃\u{200b}\u{200e}\u{200f}\u{2028}\u{2029}\u{202a}\u{202b}\u{202c}\
    \u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}\u{feff}\u{fffd}\u{ffff}\u{e000}\
    \u{1f600}\u{10ffff}";

/// Any Unicode string, biased towards the characters escaping rules single out.
fn text(max: usize) -> impl Strategy<Value = String> {
    let c = prop_oneof![
        3 => select(AWKWARD.chars().collect::<Vec<_>>()),
        3 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('0', '9'),
        3 => any::<char>(),
    ];
    vec(c, 0..=max).prop_map(|chars| chars.into_iter().collect())
}

/// A non-empty [`text`].
fn nonempty_text(max: usize) -> impl Strategy<Value = String> {
    text(max).prop_filter("non-empty", |s| !s.is_empty())
}

/// Strings that some parameter types read as numbers, lists, `null` or booleans.
const NUMBERISH: &[&str] = &[
    "5",
    "-1",
    "1e3",
    "[1,2]",
    "null",
    "true",
    "9223372036854775808",
];

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text(12).prop_map(Value::from),
        select(NUMBERISH).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            btree_map(text(6), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------
// The app under test: typed params, contexts with params, guards, a view route
// ---------------------------------------------------------------------------

type Out<T> = Result<T, ApiError>;

#[client]
async fn add(a: i64, b: i64) -> Out<i64> {
    Ok(a.wrapping_add(b))
}

#[client]
async fn greet(name: String, title: Option<String>) -> Out<String> {
    Ok(format!("{} {name}", title.unwrap_or_default()))
}

#[client]
async fn total(values: Vec<i64>, scale: Option<i64>) -> Out<i64> {
    let sum = values.iter().fold(0i64, |acc, v| acc.wrapping_add(*v));
    Ok(sum.wrapping_mul(scale.unwrap_or(1)))
}

#[client]
async fn echo(value: Value) -> Out<Value> {
    Ok(value)
}

#[client(context = "user")]
async fn user_profile(user_id: i64, detail: Option<String>) -> Out<Value> {
    Ok(json!({"id": user_id, "detail": detail}))
}

#[client(context = "user")]
async fn user_tags(user_id: i64, tags: Option<Vec<String>>) -> Out<Vec<String>> {
    let mut tags = tags.unwrap_or_default();
    tags.push(user_id.to_string());
    Ok(tags)
}

#[client(context = "notes")]
async fn notes(folder: String, page: Option<i64>) -> Out<Value> {
    Ok(json!({"folder": folder, "page": page}))
}

#[client(context = "admin", auth = "staff")]
async fn admin_stats(since: Option<i64>) -> Out<i64> {
    Ok(since.unwrap_or(0))
}

#[client(auth)]
async fn whoami(req: &Request) -> Out<Option<String>> {
    Ok(req.identity().user_id.clone())
}

#[client(affects = "user")]
async fn rename(user_id: i64, name: String) -> Out<bool> {
    Ok(user_id > 0 && !name.is_empty())
}

#[client(affects = ["notes", "user_tags"])]
async fn move_note(folder: String, user_id: Option<i64>) -> Out<bool> {
    Ok(!folder.is_empty() || user_id.is_some())
}

#[client(context = "user", route = "/profile/{user_id}/")]
async fn profile_page(user_id: i64) -> Result<http::Response<String>, ApiError> {
    Ok(http::Response::new(format!("<h1>{user_id}</h1>")))
}

/// The JSON type of a parameter.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    OptInt,
    Str,
    OptStr,
    IntList,
    OptStrList,
    Any,
}

use Kind::*;

/// Every function of the app with its parameters.
const SIGNATURES: &[(&str, &[(&str, Kind)])] = &[
    ("add", &[("a", Int), ("b", Int)]),
    ("greet", &[("name", Str), ("title", OptStr)]),
    ("total", &[("values", IntList), ("scale", OptInt)]),
    ("echo", &[("value", Any)]),
    ("user_profile", &[("user_id", Int), ("detail", OptStr)]),
    ("user_tags", &[("user_id", Int), ("tags", OptStrList)]),
    ("notes", &[("folder", Str), ("page", OptInt)]),
    ("admin_stats", &[("since", OptInt)]),
    ("whoami", &[]),
    ("rename", &[("user_id", Int), ("name", Str)]),
    ("move_note", &[("folder", Str), ("user_id", OptInt)]),
    ("profile_page", &[("user_id", Int)]),
];

/// Every context with the params of its bundle.
const CONTEXTS: &[(&str, &[(&str, Kind)])] = &[
    (
        "user",
        &[("user_id", Int), ("detail", OptStr), ("tags", OptStrList)],
    ),
    ("notes", &[("folder", Str), ("page", OptInt)]),
    ("admin", &[("since", OptInt)]),
];

fn function_name() -> impl Strategy<Value = &'static str> {
    select(SIGNATURES.iter().map(|(name, _)| *name).collect::<Vec<_>>())
}

fn param_name() -> impl Strategy<Value = String> {
    let names: BTreeSet<&str> = SIGNATURES
        .iter()
        .flat_map(|(_, params)| params.iter().map(|(name, _)| *name))
        .collect();
    prop_oneof![
        3 => select(names.into_iter().collect::<Vec<_>>()).prop_map(str::to_owned),
        1 => text(6),
    ]
}

/// A value of the parameter's type (`null` for an optional one left out).
fn value_of(kind: Kind) -> BoxedStrategy<Value> {
    let int = prop_oneof![-3i64..10, any::<i64>()].prop_map(Value::from);
    let null = Just(Value::Null);
    match kind {
        Int => int.boxed(),
        OptInt => prop_oneof![null, int].boxed(),
        Str => text(10).prop_map(Value::from).boxed(),
        OptStr => prop_oneof![null, text(10).prop_map(Value::from)].boxed(),
        IntList => vec(any::<i64>(), 0..4).prop_map(Value::from).boxed(),
        OptStrList => prop_oneof![null, vec(text(4), 0..3).prop_map(Value::from)].boxed(),
        Any => json_value().boxed(),
    }
}

/// Values for `params`, each of its type; optional ones are sometimes `null` (sent as such in
/// a call, left out of a query).
fn typed_values(
    params: &'static [(&'static str, Kind)],
) -> impl Strategy<Value = Vec<(String, Value)>> {
    let values: Vec<_> = params.iter().map(|&(_, kind)| value_of(kind)).collect();
    values.prop_map(move |values| {
        params
            .iter()
            .zip(values)
            .map(|(&(name, _), value)| (name.to_owned(), value))
            .collect()
    })
}

/// A change to a set of arguments: one more (of any name and type), one replaced by any JSON,
/// or one left out.
#[derive(Debug, Clone)]
enum Tweak {
    None,
    Extra(String, Value),
    Replace(prop::sample::Index, Value),
    Remove(prop::sample::Index),
}

fn tweak() -> impl Strategy<Value = Tweak> {
    prop_oneof![
        5 => Just(Tweak::None),
        1 => (param_name(), json_value()).prop_map(|(n, v)| Tweak::Extra(n, v)),
        1 => (any::<prop::sample::Index>(), json_value()).prop_map(|(i, v)| Tweak::Replace(i, v)),
        1 => any::<prop::sample::Index>().prop_map(Tweak::Remove),
    ]
}

impl Tweak {
    fn apply(self, mut args: Vec<(String, Value)>) -> Vec<(String, Value)> {
        match self {
            Self::None => {}
            Self::Extra(name, value) => args.push((name, value)),
            Self::Replace(i, value) if !args.is_empty() => {
                let i = i.index(args.len());
                args[i].1 = value;
            }
            Self::Remove(i) if !args.is_empty() => {
                args.remove(i.index(args.len()));
            }
            Self::Replace(..) | Self::Remove(_) => {}
        }
        args
    }
}

/// The app, built once: its origin cache fills and is purged across cases, as in a server.
fn app() -> Mizan {
    static APP: OnceLock<Mizan> = OnceLock::new();
    APP.get_or_init(build_app).clone()
}

fn build_app() -> Mizan {
    Mizan::builder()
        .register::<add>()
        .register::<greet>()
        .register::<total>()
        .register::<echo>()
        .register::<user_profile>()
        .register::<user_tags>()
        .register::<notes>()
        .register::<admin_stats>()
        .register::<whoami>()
        .register::<rename>()
        .register::<move_note>()
        .register::<profile_page>()
        .with_cache(MemoryCache::new())
        .with_cache_secret("properties-cache-secret-0123456789")
        .build()
        .expect("a valid app")
}

/// Anonymous, an ordinary user, or staff.
fn client_as(app: &Mizan, who: u8) -> TestClient {
    match who % 3 {
        0 => TestClient::new(app),
        1 => TestClient::new(app).with_identity(Identity::user("7")),
        _ => TestClient::new(app).with_identity(Identity::user("1").with_staff(true)),
    }
}

/// The answer to any request: a 2xx, or a 4xx with a JSON content type and the error envelope
/// `{"error": {"code", "message", "details"}}` (bodies of `HEAD` answers are empty).
fn check_answer(response: &TestResponse, head: bool) -> Result<(), TestCaseError> {
    let status = response.status();
    let body = String::from_utf8_lossy(response.body());
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "status {status}, body {body}"
    );
    let json_type = response
        .header(CONTENT_TYPE.as_str())
        .is_some_and(|t| t.starts_with("application/json"));
    if status.is_client_error() {
        prop_assert!(json_type, "status {status} without a JSON content type");
        if !head {
            let error = &response.json()["error"];
            let fields: Option<BTreeSet<String>> =
                error.as_object().map(|e| e.keys().cloned().collect());
            prop_assert_eq!(
                fields,
                Some(BTreeSet::from([
                    "code".into(),
                    "details".into(),
                    "message".into()
                ])),
                "status {}, body {}",
                status,
                body
            );
            prop_assert!(error["code"].is_string() && error["message"].is_string());
        }
    } else if json_type && !head {
        prop_assert!(
            serde_json::from_slice::<Value>(response.body()).is_ok(),
            "a 2xx JSON answer that is not JSON: {body}"
        );
    }
    Ok(())
}

/// The header entry of a target: its context and its params in their string form (`null`s
/// left out).
fn header_entry(context: &str, params: Option<&Map<String, Value>>) -> HeaderEntry {
    HeaderEntry {
        context: context.to_owned(),
        params: params
            .into_iter()
            .flatten()
            .filter_map(|(name, value)| Some((name.clone(), param_string(value)?)))
            .collect(),
    }
}

/// A successful call: `{"result", "invalidate"}`, and the header carries the same targets as
/// the body (function-level ones as their context, equal entries once).
fn check_call_success(response: &TestResponse) -> Result<(), TestCaseError> {
    let body = response.json();
    prop_assert!(body.get("result").is_some(), "{}", body);
    let Some(targets) = body["invalidate"].as_array() else {
        return Err(TestCaseError::fail(format!("no invalidate list: {body}")));
    };
    let mut expected: Vec<HeaderEntry> = Vec::new();
    for target in targets {
        let entry = match target {
            Value::String(context) => header_entry(context, None),
            object => header_entry(
                object["context"].as_str().unwrap_or_default(),
                object["params"].as_object(),
            ),
        };
        if !expected.contains(&entry) {
            expected.push(entry);
        }
    }
    let decoded = match response.invalidate_header() {
        None => Vec::new(),
        Some(header) => {
            parse_header(header).map_err(|err| TestCaseError::fail(format!("{header:?}: {err}")))?
        }
    };
    prop_assert_eq!(decoded, expected, "{}", body);
    Ok(())
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// A call envelope near the valid ones: known or random function names, known or random
/// argument names, values of any JSON type; then maybe damaged (truncated, a byte changed or
/// inserted) or nested past the depth limit.
fn envelope() -> impl Strategy<Value = Vec<u8>> {
    let typed = select(SIGNATURES)
        .prop_flat_map(|(name, params)| (Just(name), typed_values(params), tweak()))
        .prop_map(|(name, values, tweak)| {
            let args = tweak.apply(values).into_iter().collect();
            (Value::from(name), Some(Value::Object(args)))
        });
    let function = prop_oneof![
        4 => function_name().prop_map(Value::from),
        1 => text(10).prop_map(Value::from),
        1 => json_value(),
    ];
    let args = prop_oneof![
        1 => Just(None),
        6 => btree_map(param_name(), json_value(), 0..5)
            .prop_map(|m| Some(Value::Object(m.into_iter().collect()))),
        1 => json_value().prop_map(Some),
    ];
    let call = prop_oneof![3 => typed, 1 => (function, args)];
    let damage = prop_oneof![
        8 => Just(Damage::None),
        1 => any::<prop::sample::Index>().prop_map(Damage::Truncate),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Replace(i, b)),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        1 => (30usize..40).prop_map(Damage::Nest),
    ];
    (call, damage).prop_map(|((function, args), damage)| {
        let mut envelope = Map::new();
        envelope.insert("fn".into(), function);
        if let Some(args) = args {
            envelope.insert("args".into(), args);
        }
        damage.apply(Value::Object(envelope).to_string().into_bytes())
    })
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(prop::sample::Index),
    Replace(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    /// Adds a member nested in this many arrays.
    Nest(usize),
}

impl Damage {
    fn apply(self, mut bytes: Vec<u8>) -> Vec<u8> {
        match self {
            Self::None => {}
            Self::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Self::Replace(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            Self::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), b),
            Self::Nest(depth) => {
                let nested = format!("\"z\":{}1{},", "[".repeat(depth), "]".repeat(depth));
                bytes.splice(1..1, nested.into_bytes());
            }
        }
        bytes
    }
}

/// Characters left as they are in a generated URI: unreserved, sub-delimiters, `:@/?`, and a
/// bare `%` (which may or may not start a valid escape).
fn uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(c)
}

/// `s` with every character outside [`uri_char`] percent-encoded (as UTF-8); a path segment
/// also has `/` and `?` encoded.
fn uri_encode(s: &str, segment: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if uri_char(c) && !(segment && (c == '/' || c == '?')) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

/// `pairs` as a query string; `null` values are left out, strings go as they are, other
/// values as JSON.
fn query_string(pairs: &[(String, Value)]) -> String {
    pairs
        .iter()
        .filter_map(|(name, value)| {
            let value = match value {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(format!(
                "{}={}",
                uri_encode(name, false),
                uri_encode(&value, false)
            ))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A query string: `name=value` pairs with known or random names and values of every kind, or
/// raw text; `%XX` escapes may decode to invalid UTF-8.
fn query() -> impl Strategy<Value = String> {
    let escape = any::<u8>().prop_map(|b| format!("%{b:02X}"));
    prop_oneof![
        4 => vec((param_name(), json_value()), 0..5).prop_map(|pairs| query_string(&pairs)),
        1 => vec(prop_oneof![text(4).prop_map(|t| uri_encode(&t, false)), escape], 0..6)
            .prop_map(|parts| parts.concat()),
    ]
}

/// A context fetch's path and query: mostly a known context with params of their types
/// (tweaked now and then), sometimes anything.
fn context_query() -> impl Strategy<Value = (String, String)> {
    let typed = select(CONTEXTS)
        .prop_flat_map(|(name, params)| (Just(name), typed_values(params), tweak()))
        .prop_map(|(name, values, tweak)| (name.to_owned(), query_string(&tweak.apply(values))));
    let context = prop_oneof![
        3 => select(CONTEXTS.iter().map(|(name, _)| *name).collect::<Vec<_>>()).prop_map(str::to_owned),
        1 => text(6),
    ];
    prop_oneof![3 => typed, 1 => (context, query())]
}

/// A path: under the mount point with known and random segments, or at the view route.
fn path() -> impl Strategy<Value = String> {
    let known = [
        "call", "ctx", "session", "manifest", "schema", "user", "notes", "admin", "profile", "..",
        ".", "", "%", "%C3", "%FF", "%2F", "5",
    ];
    let segment = prop_oneof![
        3 => select(known.to_vec()).prop_map(str::to_owned),
        1 => text(6).prop_map(|t| uri_encode(&t, true)),
    ];
    let prefix = select(&["/api/mizan/", "/api/mizan", "/", "/profile/", "/api/"][..]);
    let random =
        (prefix, vec(segment, 0..4), any::<bool>()).prop_map(|(prefix, segments, slash)| {
            let mut path = format!("{prefix}{}", segments.join("/"));
            if slash {
                path.push('/');
            }
            path
        });
    let endpoints = [
        "/api/mizan/call/",
        "/api/mizan/ctx/user/",
        "/api/mizan/ctx/notes/",
        "/api/mizan/ctx/admin/",
        "/api/mizan/session/",
        "/api/mizan/manifest/",
        "/api/mizan/schema/",
        "/profile/5/",
        "/profile/x/",
    ];
    prop_oneof![1 => select(endpoints.to_vec()).prop_map(str::to_owned), 1 => random]
}

fn method() -> impl Strategy<Value = Method> {
    select(
        &[
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW",
        ][..],
    )
    .prop_map(|m| Method::from_bytes(m.as_bytes()).expect("a method"))
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    select(
        &[
            None,
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("APPLICATION/JSON"),
            Some("application/x-www-form-urlencoded"),
            Some("text/plain"),
            Some(";;"),
        ][..],
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..64), envelope()]
}

fn request(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> http::Request<Bytes> {
    let mut request = http::Request::builder().method(method).uri(uri);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    request
        .body(Bytes::from(body))
        .unwrap_or_else(|e| panic!("{uri:?} is a valid request: {e}"))
}

fn send(app: &Mizan, who: u8, request: http::Request<Bytes>) -> TestResponse {
    block_on(client_as(app, who).send(request))
}

// ---------------------------------------------------------------------------
// Protocol properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Any bytes as a call body: never a panic or a 5xx.
    #[test]
    fn any_call_body_gets_a_2xx_or_an_error_envelope(
        body in vec(any::<u8>(), 0..256),
        content_type in content_type(),
        who in any::<u8>(),
    ) {
        let app = app();
        let response = send(&app, who, request(Method::POST, "/api/mizan/call/", content_type, body));
        check_answer(&response, false)?;
    }

    /// Near-valid call envelopes: a 2xx with the result and matching targets in the body and the
    /// header, or a 4xx with the error envelope.
    #[test]
    fn call_envelopes_get_a_result_or_an_error_envelope(
        envelope in envelope(),
        who in any::<u8>(),
    ) {
        let app = app();
        let response = send(
            &app,
            who,
            request(Method::POST, "/api/mizan/call/", Some("application/json"), envelope),
        );
        check_answer(&response, false)?;
        if response.status().is_success() {
            check_call_success(&response)?;
        }
    }

    /// The same envelopes over IPC: one JSON envelope back, a result or a client error.
    #[test]
    fn ipc_envelopes_get_a_result_or_a_client_error(envelope in envelope(), who in any::<u8>()) {
        let app = app();
        let identity = match who % 3 {
            0 => Identity::anonymous(),
            1 => Identity::user("7"),
            _ => Identity::user("1").with_staff(true),
        };
        let reply = block_on(app.call_envelope(&IpcTransport, &envelope, identity));
        let reply: Value = serde_json::from_slice(&reply)
            .map_err(|e| TestCaseError::fail(format!("IPC reply is not JSON: {e}")))?;
        match reply.get("error") {
            Some(error) => {
                let code = error["code"].as_str().unwrap_or_default();
                prop_assert!(code != "internal" && !code.is_empty(), "{}", reply);
                prop_assert!(error["message"].is_string() && error.get("details").is_some());
            }
            None => {
                prop_assert!(reply.get("result").is_some(), "{}", reply);
                prop_assert!(reply["invalidate"].is_array(), "{}", reply);
            }
        }
    }

    /// Context fetches with any query string: a bundle or an error envelope, and a second fetch
    /// (possibly from the cache) gives the same answer.
    #[test]
    fn context_queries_get_a_bundle_or_an_error_envelope(
        (context, query) in context_query(),
        who in any::<u8>(),
    ) {
        let app = app();
        let uri = format!("/api/mizan/ctx/{}/?{query}", uri_encode(&context, true));
        let first = send(&app, who, request(Method::GET, &uri, None, Vec::new()));
        check_answer(&first, false)?;
        if first.status().is_success() {
            prop_assert!(first.json().is_object(), "{:?}", first.body());
        }
        let second = send(&app, who, request(Method::GET, &uri, None, Vec::new()));
        prop_assert_eq!(first.status(), second.status());
        prop_assert_eq!(first.body(), second.body());
    }

    /// Any method, path, content type and body: never a panic or a 5xx.
    #[test]
    fn any_request_gets_a_2xx_or_an_error_envelope(
        method in method(),
        path in path(),
        query in prop::option::of(query()),
        content_type in content_type(),
        body in body(),
        who in any::<u8>(),
    ) {
        let app = app();
        let uri = match query {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        let head = method == Method::HEAD;
        let response = send(&app, who, request(method, &uri, content_type, body));
        check_answer(&response, head)?;
    }
}

// ---------------------------------------------------------------------------
// X-Mizan-Invalidate: encode -> decode
// ---------------------------------------------------------------------------

fn target() -> impl Strategy<Value = Target> {
    let params = prop::option::of(
        btree_map(text(8), json_value(), 0..4).prop_map(|m| m.into_iter().collect::<Map<_, _>>()),
    );
    (nonempty_text(10), prop::option::of(text(8)), params).prop_map(
        |(context, function, params)| match function {
            None => Target::Context { context, params },
            Some(function) => Target::Function {
                context,
                function,
                params,
            },
        },
    )
}

proptest! {
    #![proptest_config(config())]

    /// The header is a valid HTTP header value that decodes to every target's context and
    /// params (string forms, nulls omitted), equal entries once, in order.
    #[test]
    fn invalidate_header_round_trips(targets in vec(target(), 0..5)) {
        let mut expected: Vec<HeaderEntry> = Vec::new();
        for target in &targets {
            let entry = header_entry(target.context(), target.params());
            if !expected.contains(&entry) {
                expected.push(entry);
            }
        }
        match header_value(&targets) {
            None => prop_assert!(targets.is_empty()),
            Some(header) => {
                prop_assert!(HeaderValue::from_str(&header).is_ok(), "{:?}", header);
                let decoded = parse_header(&header);
                prop_assert_eq!(decoded, Ok(expected), "{:?}", header);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Cache keys against CPython
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct KeyCase {
    secret: Vec<u8>,
    context: String,
    params: BTreeMap<String, String>,
    user: Option<String>,
    rev: u64,
}

fn key_case() -> impl Strategy<Value = KeyCase> {
    (
        vec(any::<u8>(), 0..80),
        text(10),
        btree_map(text(8), text(12), 0..5),
        prop::option::of(text(8)),
        prop_oneof![0u64..5, any::<u64>()],
    )
        .prop_map(|(secret, context, params, user, rev)| KeyCase {
            secret,
            context,
            params,
            user,
            rev,
        })
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        any::<i64>().prop_map(|i| i as f64),
        (any::<i32>(), -30i32..30).prop_map(|(m, e)| f64::from(m) * 10f64.powi(e)),
    ]
    .prop_filter("finite", |f| f.is_finite())
}

/// `count` random values of `strategy`.
fn sample<S: Strategy>(strategy: S, count: u32) -> Vec<S::Value> {
    let mut runner = TestRunner::new(config());
    (0..count)
        .map(|_| {
            let tree = strategy.new_tree(&mut runner).expect("a value");
            tree.current()
        })
        .collect()
}

/// Runs the Python peer on one batch.
fn python_peer(input: &Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/cache_keys.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs (it is needed by the cache-key property)");
    // The peer reads all its input before it writes anything.
    let mut stdin = child.stdin.take().expect("a stdin pipe");
    stdin
        .write_all(input.to_string().as_bytes())
        .expect("the batch is written");
    drop(stdin);
    let output = child.wait_with_output().expect("python3 finishes");
    assert!(output.status.success(), "the Python peer failed");
    serde_json::from_slice(&output.stdout).expect("the peer answers JSON")
}

/// `derive_cache_key` and `param_string` (floats) agree with CPython on one batch of random
/// cases: Unicode contexts, params and users (astral characters, controls, quotes, backslashes),
/// any secret, any revision.
#[test]
fn cache_keys_and_float_strings_equal_pythons() {
    let keys = sample(key_case(), cases() * 2);
    let floats = sample(float(), cases() * 2);
    let input = json!({
        "keys": keys.iter().map(|case| json!({
            "secret": hex::encode(&case.secret),
            "context": case.context,
            "params": case.params,
            "user": case.user,
            "rev": case.rev,
        })).collect::<Vec<_>>(),
        "floats": floats,
    });
    let output = python_peer(&input);

    let python_keys = output["keys"].as_array().expect("keys");
    assert_eq!(python_keys.len(), keys.len());
    for (case, python) in keys.iter().zip(python_keys) {
        let key = derive_cache_key(
            &case.secret,
            &case.context,
            &case.params,
            case.user.as_deref(),
            case.rev,
        );
        assert_eq!(
            key, python[0],
            "{case:?}: Python signed the message {}",
            python[1]
        );
    }
    let python_floats = output["floats"].as_array().expect("floats");
    assert_eq!(python_floats.len(), floats.len());
    for (f, python) in floats.iter().zip(python_floats) {
        assert_eq!(
            param_string(&Value::from(*f)).as_deref(),
            python.as_str(),
            "{f:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// KDL writer
// ---------------------------------------------------------------------------

fn type_expr() -> impl Strategy<Value = TypeExpr> {
    let leaf = prop_oneof![
        Just(TypeExpr::Bool),
        (select(&[8u8, 16, 32, 64, 128][..]), any::<bool>())
            .prop_map(|(bits, signed)| TypeExpr::Int { bits, signed }),
        Just(TypeExpr::Float),
        Just(TypeExpr::String),
        Just(TypeExpr::Null),
        Just(TypeExpr::Any),
        text(8).prop_map(TypeExpr::Named),
        text(8).prop_map(TypeExpr::Literal),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| TypeExpr::List(Box::new(t))),
            inner.clone().prop_map(|t| TypeExpr::Map(Box::new(t))),
            inner.clone().prop_map(|t| TypeExpr::Optional(Box::new(t))),
            vec(inner.clone(), 0..3).prop_map(TypeExpr::Tuple),
            vec((text(6), inner, any::<bool>()), 0..2).prop_map(|fields| {
                TypeExpr::Object(
                    fields
                        .into_iter()
                        .map(|(name, ty, optional)| Field { name, ty, optional })
                        .collect(),
                )
            }),
        ]
    })
}

fn field() -> impl Strategy<Value = Field> {
    (text(8), type_expr(), any::<bool>()).prop_map(|(name, ty, optional)| Field {
        name,
        ty,
        optional,
    })
}

fn arg() -> impl Strategy<Value = Arg> {
    (text(8), type_expr(), any::<bool>()).prop_map(|(name, ty, optional)| Arg {
        name,
        ty,
        optional,
    })
}

fn ir_function() -> impl Strategy<Value = IrFunction> {
    let kind = select(
        &[
            FunctionKind::Query,
            FunctionKind::Mutation,
            FunctionKind::Standalone,
        ][..],
    );
    let affects = vec((text(6), prop::option::of(text(6))), 0..3).prop_map(|targets| {
        targets
            .into_iter()
            .map(|(context, function)| Affects { context, function })
            .collect::<Vec<_>>()
    });
    (
        (text(10), kind, prop::option::of(text(6)), vec(arg(), 0..3)),
        (
            type_expr(),
            affects,
            prop::option::of(text(6)),
            vec(text(6), 1..3),
            vec(text(6), 0..2),
        ),
    )
        .prop_map(
            |((name, kind, context, args), (returns, affects, auth, transports, uploads))| {
                IrFunction {
                    name,
                    kind,
                    context,
                    args,
                    returns,
                    affects,
                    auth,
                    transports,
                    uploads,
                    form: None,
                }
            },
        )
}

fn type_def() -> impl Strategy<Value = TypeDef> {
    prop_oneof![
        vec(field(), 0..3).prop_map(TypeDef::Struct),
        vec(text(8), 0..3).prop_map(TypeDef::Enum),
        vec(type_expr(), 0..3).prop_map(TypeDef::Union),
        type_expr().prop_map(TypeDef::Alias),
    ]
}

fn ir() -> impl Strategy<Value = Ir> {
    (
        vec(ir_function(), 0..3),
        btree_map(text(8), type_def(), 0..3),
        btree_map(text(8), vec(arg(), 0..3), 0..3),
    )
        .prop_map(|(functions, types, contexts)| Ir {
            functions,
            types,
            contexts,
        })
}

/// A KDL node reduced to what the IR format uses: name, string arguments, string or boolean
/// properties in order, children.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    name: String,
    args: Vec<String>,
    props: Vec<(String, Prop)>,
    children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Prop {
    Str(String),
    Bool(bool),
}

impl Node {
    fn new(name: &str, args: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            args: args.iter().map(|&a| a.to_owned()).collect(),
            props: Vec::new(),
            children: Vec::new(),
        }
    }

    fn prop(mut self, name: &str, value: &str) -> Self {
        self.props
            .push((name.to_owned(), Prop::Str(value.to_owned())));
        self
    }

    fn children(mut self, children: Vec<Node>) -> Self {
        self.children = children;
        self
    }

    /// A node carrying a type: `type=` (or `literal=`), `optional=#true`, an inline object's
    /// fields as children.
    fn typed(mut self, ty: &TypeExpr, optional: bool) -> Self {
        self = match ty {
            TypeExpr::Literal(value) => self.prop("literal", value),
            TypeExpr::Object(_) => self.prop("type", "object"),
            other => self.prop("type", &other.spelling()),
        };
        if optional {
            self.props.push(("optional".into(), Prop::Bool(true)));
        }
        if let TypeExpr::Object(fields) = ty {
            self.children = fields.iter().map(field_node).collect();
        }
        self
    }
}

fn field_node(field: &Field) -> Node {
    Node::new("field", &[&field.name]).typed(&field.ty, field.optional)
}

fn arg_node(head: &str, arg: &Arg) -> Node {
    Node::new(head, &[&arg.name]).typed(&arg.ty, arg.optional)
}

/// The document the IR format describes for `ir`, as a tree.
fn expected_document(ir: &Ir) -> Vec<Node> {
    let mut nodes = vec![Node::new("mizan-ir", &[]).prop("version", "1")];
    for (name, params) in &ir.contexts {
        let params = params.iter().map(|p| arg_node("param", p)).collect();
        nodes.push(Node::new("context", &[name]).children(params));
    }
    for function in &ir.functions {
        let mut node =
            Node::new("function", &[&function.name]).prop("kind", function.kind.as_str());
        if let Some(context) = &function.context {
            node = node.prop("context", context);
        }
        let mut children: Vec<Node> = function.args.iter().map(|a| arg_node("arg", a)).collect();
        children.push(Node::new("returns", &[]).typed(&function.returns, false));
        for target in &function.affects {
            let mut affects = Node::new("affects", &[&target.context]);
            if let Some(f) = &target.function {
                affects = affects.prop("function", f);
            }
            children.push(affects);
        }
        children.extend(function.auth.iter().map(|a| Node::new("auth", &[a])));
        children.extend(
            function
                .transports
                .iter()
                .map(|t| Node::new("transport", &[t])),
        );
        children.extend(function.uploads.iter().map(|u| Node::new("upload", &[u])));
        nodes.push(node.children(children));
    }
    for (name, def) in &ir.types {
        let node = Node::new("type", &[name]);
        nodes.push(match def {
            TypeDef::Struct(fields) => node
                .prop("kind", "struct")
                .children(fields.iter().map(field_node).collect()),
            TypeDef::Enum(values) => node
                .prop("kind", "enum")
                .children(values.iter().map(|v| Node::new("value", &[v])).collect()),
            TypeDef::Union(variants) => node.prop("kind", "union").children(
                variants
                    .iter()
                    .map(|v| Node::new("variant", &[]).typed(v, false))
                    .collect(),
            ),
            TypeDef::Alias(ty) => node
                .prop("kind", "alias")
                .children(vec![Node::new("is", &[]).typed(ty, false)]),
        });
    }
    nodes
}

/// The parsed document as a tree; `Err` for a value the IR format never writes.
fn parsed_document(document: &kdl::KdlDocument) -> Result<Vec<Node>, String> {
    document
        .nodes()
        .iter()
        .map(|node| {
            let mut out = Node::new(node.name().value(), &[]);
            for entry in node.entries() {
                let value = match entry.value() {
                    kdl::KdlValue::String(s) => Prop::Str(s.clone()),
                    kdl::KdlValue::Bool(b) => Prop::Bool(*b),
                    other => return Err(format!("unexpected value {other:?}")),
                };
                match (entry.name(), value) {
                    (None, Prop::Str(s)) => out.args.push(s),
                    (None, other) => return Err(format!("unexpected argument {other:?}")),
                    (Some(name), value) => out.props.push((name.value().to_owned(), value)),
                }
            }
            if let Some(children) = node.children() {
                out.children = parsed_document(children)?;
            }
            Ok(out)
        })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// The writer's output parses as KDL v2 and reads back as the IR it was written from, for
    /// any names and strings.
    #[test]
    fn kdl_output_parses_and_gives_back_every_string(ir in ir()) {
        let text = to_kdl(&ir);
        let document = kdl::KdlDocument::parse_v2(&text)
            .map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        let parsed = parsed_document(&document).map_err(TestCaseError::fail)?;
        prop_assert_eq!(parsed, expected_document(&ir), "{}", text);
    }
}
