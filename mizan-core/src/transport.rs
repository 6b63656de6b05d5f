//! Transports: how a call envelope arrives and how its outcome leaves.
//!
//! Every transport runs the same call (guard, arguments, function, invalidation and cache
//! purge); they differ in how the outcome is encoded:
//!
//! - [`HttpTransport`]: a JSON body, plus the `X-Mizan-Invalidate` header channel;
//! - [`IpcTransport`]: one JSON envelope (Tauri-style IPC): invalidation rides in the body only,
//!   there is no header channel.

use bytes::Bytes;
use http::header::HeaderValue;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::app::Mizan;
use crate::dispatch::{json_response, parse_envelope};
use crate::error::ApiError;
use crate::identity::Identity;
use crate::invalidation::{header_value, Target, INVALIDATE_HEADER};

/// The outcome of a successful call: the function's result and the invalidation targets.
#[derive(Debug)]
pub struct CallOutcome {
    pub(crate) result: Box<RawValue>,
    pub(crate) targets: Vec<Target>,
    /// `Set-Cookie` values the function asked for (sent by transports with headers).
    pub(crate) cookies: Vec<HeaderValue>,
}

impl CallOutcome {
    /// The function's result, as JSON.
    pub fn result(&self) -> &RawValue {
        &self.result
    }

    /// What the call invalidated (empty unless the function is a mutation).
    pub fn invalidate(&self) -> &[Target] {
        &self.targets
    }

    /// The body every transport sends: `{"result": ..., "invalidate": [...]}`.
    pub fn to_body(&self) -> Bytes {
        #[derive(Serialize)]
        struct Body<'a> {
            result: &'a RawValue,
            invalidate: &'a [Target],
        }
        let body = Body {
            result: &self.result,
            invalidate: &self.targets,
        };
        Bytes::from(serde_json::to_vec(&body).expect("a raw value and targets always serialize"))
    }
}

/// Encodes the outcome of a call for one transport.
pub trait Transport {
    /// What the transport sends back.
    type Output;

    /// Encodes a call's outcome, or its error.
    fn encode(&self, outcome: Result<CallOutcome, ApiError>) -> Self::Output;
}

/// HTTP: the JSON body, with the targets also in `X-Mizan-Invalidate`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpTransport;

impl HttpTransport {
    /// Adds `X-Mizan-Invalidate` for `targets` to a response (nothing when there are none).
    pub fn add_header(response: &mut http::Response<Bytes>, targets: &[Target]) {
        if let Some(value) = header_value(targets).and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(INVALIDATE_HEADER, value);
        }
    }
}

impl Transport for HttpTransport {
    type Output = http::Response<Bytes>;

    fn encode(&self, outcome: Result<CallOutcome, ApiError>) -> http::Response<Bytes> {
        match outcome {
            Ok(outcome) => {
                let mut response = json_response(outcome.to_body());
                Self::add_header(&mut response, &outcome.targets);
                for cookie in outcome.cookies {
                    response
                        .headers_mut()
                        .append(http::header::SET_COOKIE, cookie);
                }
                response
            }
            Err(err) => err.into_response(),
        }
    }
}

/// IPC (one envelope in, one out): `{"result", "invalidate"}` or `{"error": {...}}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct IpcTransport;

impl Transport for IpcTransport {
    type Output = Bytes;

    fn encode(&self, outcome: Result<CallOutcome, ApiError>) -> Bytes {
        match outcome {
            Ok(outcome) => outcome.to_body(),
            Err(err) => {
                err.log();
                Bytes::from(err.to_json().to_string())
            }
        }
    }
}

impl Mizan {
    /// Handles one call envelope (`{"fn": ..., "args": {...}}`) that arrived on `transport`
    /// from `identity`, with the same guards, limits and invalidation as `POST call/`.
    ///
    /// ```
    /// use mizan_core::{ApiError, Function, Identity, IpcTransport, Mizan};
    ///
    /// let app = Mizan::builder()
    ///     .with_function(Function::new("echo").with_param::<String>("message")
    ///         .handler(|_, mut args| async move { args.take::<String>("message") }))
    ///     .build()
    ///     .unwrap();
    /// let reply = futures_executor::block_on(app.call_envelope(
    ///     &IpcTransport,
    ///     br#"{"fn": "echo", "args": {"message": "hi"}}"#,
    ///     Identity::anonymous(),
    /// ));
    /// assert_eq!(&reply[..], br#"{"result":"hi","invalidate":[]}"#);
    /// ```
    pub async fn call_envelope<T: Transport>(
        &self,
        transport: &T,
        envelope: &[u8],
        identity: Identity,
    ) -> T::Output {
        let limits = self.inner.limits;
        if envelope.len() > limits.max_body_bytes {
            return transport.encode(Err(ApiError::payload_too_large(limits.max_body_bytes)));
        }
        let outcome = match parse_envelope(envelope, limits.max_json_depth) {
            Ok(parsed) => {
                let uri = format!("{}call/", self.inner.mount);
                let (mut parts, ()) = http::Request::new(()).into_parts();
                parts.method = http::Method::POST;
                parts.uri = uri.parse().unwrap_or_default();
                let body = Bytes::copy_from_slice(envelope);
                self.run_call(parsed, parts, body, identity).await
            }
            Err(err) => Err(err),
        };
        transport.encode(outcome)
    }
}
