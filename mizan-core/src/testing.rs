//! Testing without a server: an in-process client, a simple executor and a manual clock.
//!
//! ```
//! use mizan_core::testing::{block_on, TestClient};
//! use mizan_core::{client, ApiError, Identity, Mizan, Request};
//!
//! #[client(context = "user")]
//! async fn user_name(req: &Request, user_id: i64) -> Result<String, ApiError> {
//!     Ok(format!("user {user_id}, asked by {:?}", req.identity().user_id))
//! }
//!
//! #[client(affects = "user")]
//! async fn rename(user_id: i64, name: String) -> Result<bool, ApiError> {
//!     Ok(!name.is_empty() && user_id > 0)
//! }
//!
//! let app = Mizan::builder().register::<user_name>().register::<rename>().build().unwrap();
//! let client = TestClient::new(&app).with_identity(Identity::user("7"));
//!
//! let bundle = block_on(client.fetch("user", &[("user_id", "5")]));
//! assert_eq!(bundle.json()["user_name"], "user 5, asked by Some(\"7\")");
//!
//! let call = block_on(client.call("rename", serde_json::json!({"user_id": 5, "name": "Ann"})));
//! assert_eq!(call.result(), true);
//! assert_eq!(call.invalidate(), vec![serde_json::json!({"context": "user", "params": {"user_id": 5}})]);
//! assert_eq!(call.invalidate_header(), Some("user;user_id=5"));
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use crate::app::Mizan;
use crate::clock::Clock;
use crate::identity::Identity;
use crate::invalidation::INVALIDATE_HEADER;

/// Runs a future to completion on the current thread, with no async runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}

/// Drives a [`Mizan`] app in process: calls, context fetches and raw requests, as a given
/// identity or through the app's identity source.
#[derive(Debug, Clone)]
pub struct TestClient {
    app: Mizan,
    identity: Option<Identity>,
    headers: HeaderMap,
}

impl TestClient {
    /// A client of `app`; identities come from the app's identity source.
    pub fn new(app: &Mizan) -> Self {
        Self {
            app: app.clone(),
            identity: None,
            headers: HeaderMap::new(),
        }
    }

    /// Acts as `identity`, bypassing the identity source.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Sends `name: value` with every request (e.g. `Authorization`).
    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(HeaderName::from_static(name), value);
        }
        self
    }

    /// `POST call/` with `{"fn": function, "args": args}`.
    pub async fn call(&self, function: &str, args: Value) -> TestResponse {
        let body = serde_json::json!({ "fn": function, "args": args }).to_string();
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(format!("{}call/", self.app.mount()))
            .header(CONTENT_TYPE, "application/json")
            .body(Bytes::from(body))
            .expect("a valid request");
        self.send(request).await
    }

    /// `GET ctx/<context>/?params`.
    pub async fn fetch(&self, context: &str, params: &[(&str, &str)]) -> TestResponse {
        let query = serde_urlencoded::to_string(params).unwrap_or_default();
        let uri = format!("{}ctx/{context}/?{query}", self.app.mount());
        self.get(&uri).await
    }

    /// `GET uri`.
    pub async fn get(&self, uri: &str) -> TestResponse {
        let request = http::Request::builder()
            .uri(uri)
            .body(Bytes::new())
            .expect("a valid request");
        self.send(request).await
    }

    /// Sends any request (the client's headers are added when absent).
    pub async fn send(&self, mut request: http::Request<Bytes>) -> TestResponse {
        for (name, value) in &self.headers {
            if !request.headers().contains_key(name) {
                request.headers_mut().insert(name.clone(), value.clone());
            }
        }
        TestResponse {
            response: self.app.handle(request, self.identity.clone()).await,
        }
    }
}

/// A response, with accessors for what tests look at.
#[derive(Debug)]
pub struct TestResponse {
    response: http::Response<Bytes>,
}

impl TestResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
    }

    /// The raw body.
    pub fn body(&self) -> &Bytes {
        self.response.body()
    }

    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(self.response.body()).unwrap_or(Value::Null)
    }

    /// The `result` of a call.
    pub fn result(&self) -> Value {
        self.json()["result"].clone()
    }

    /// The `invalidate` list of a call.
    pub fn invalidate(&self) -> Vec<Value> {
        self.json()["invalidate"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The `X-Mizan-Invalidate` header.
    pub fn invalidate_header(&self) -> Option<&str> {
        self.header(INVALIDATE_HEADER)
    }

    /// The `error.code` of an error response.
    pub fn error_code(&self) -> Option<String> {
        self.json()["error"]["code"].as_str().map(str::to_owned)
    }

    /// The whole response.
    pub fn into_inner(self) -> http::Response<Bytes> {
        self.response
    }
}

/// A [`Clock`] that only moves when told to, for deterministic TTL and token tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    start: Instant,
    start_unix: u64,
    offset_nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at an arbitrary instant, at Unix time 1 700 000 000.
    pub fn new() -> Self {
        Self::at_unix(1_700_000_000)
    }

    /// A clock whose Unix time starts at `seconds`.
    pub fn at_unix(seconds: u64) -> Self {
        Self {
            start: Instant::now(),
            start_unix: seconds,
            offset_nanos: Arc::default(),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst))
    }

    fn unix_seconds(&self) -> u64 {
        self.start_unix + self.offset_nanos.load(Ordering::SeqCst) / 1_000_000_000
    }
}
