//! Errors: one enum per concern, and [`ApiError`], the wire error every failure becomes.
//!
//! Every error that reaches a client goes through [`ApiError::into_response`], the one place
//! where statuses, codes and the JSON envelope of the wire protocol are decided:
//!
//! ```json
//! {"error": {"code": "bad_request", "message": "...", "details": {...}}}
//! ```
//!
//! A function's own error type joins in through `From<MyError> for ApiError`; it can choose any
//! status and code with [`ApiError::new`].

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

/// A boxed error that keeps its cause, for the `source` of the error enums.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The codes of the wire protocol, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: malformed JSON, a missing `fn`, bad or missing arguments, nesting too deep.
    BadRequest,
    /// 401: the function needs an authenticated caller, or the credentials are invalid.
    Unauthenticated,
    /// 403: the caller is authenticated but a guard denies it.
    Forbidden,
    /// 404: unknown or private function, unknown context, unknown path.
    NotFound,
    /// 405: the path exists but not for this method (the response carries `Allow`).
    MethodNotAllowed,
    /// 413: the request body is larger than the configured limit.
    PayloadTooLarge,
    /// 414: the query string is longer than the configured limit.
    UriTooLong,
    /// 415: `call/` was sent without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 500: something failed on the server; the cause is logged, never sent.
    Internal,
}

impl ErrorCode {
    /// The code as it appears in the error envelope, e.g. `"bad_request"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UriTooLong => "uri_too_long",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status that goes with the code.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as the client sees it: a status, a code, a message and optional details.
///
/// Server errors (5xx) keep their cause as the [`source`](StdError::source), which is logged
/// through `tracing` when the response is written and never sent to the client.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    details: Option<Value>,
    headers: HeaderMap,
    source: Option<BoxError>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.code, self.0.message)
    }
}

impl StdError for ApiError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

impl ApiError {
    /// An error with any status and code, for a function's own error type.
    ///
    /// ```
    /// use mizan_core::ApiError;
    /// use http::StatusCode;
    ///
    /// let err = ApiError::new(StatusCode::CONFLICT, "name_taken", "that name is taken");
    /// assert_eq!(err.status(), StatusCode::CONFLICT);
    /// assert_eq!(err.code(), "name_taken");
    /// ```
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self(Box::new(Inner {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            headers: HeaderMap::new(),
            source: None,
        }))
    }

    /// An error with one of the protocol's codes and its status.
    pub fn from_code(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code.status(), code.as_str(), message)
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::from_code(ErrorCode::BadRequest, message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> Self {
        Self::from_code(ErrorCode::Unauthenticated, "authentication required")
    }

    /// 403 `forbidden`.
    pub fn forbidden() -> Self {
        Self::from_code(ErrorCode::Forbidden, "permission denied")
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::from_code(ErrorCode::NotFound, message)
    }

    /// 405 `method_not_allowed`, with an `Allow` header listing `allowed`.
    pub fn method_not_allowed(allowed: &[Method]) -> Self {
        Self::from_code(ErrorCode::MethodNotAllowed, "method not allowed")
            .with_header(ALLOW, allow_value(allowed))
    }

    /// 413 `payload_too_large`, naming the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::from_code(
            ErrorCode::PayloadTooLarge,
            format!("request body larger than {limit} bytes"),
        )
    }

    /// 500 `internal`. The cause is logged when the response is written, never sent.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self::from_code(ErrorCode::Internal, "internal server error").with_source(source)
    }

    /// Attaches machine-readable details (for `bad_request`, the offending fields).
    pub fn with_details(mut self, details: Value) -> Self {
        self.0.details = Some(details);
        self
    }

    /// Attaches the cause of this error (kept as [`source`](StdError::source)).
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// Adds a header to the error response.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.insert(name, value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The code of the error envelope.
    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The details, if any.
    pub fn details(&self) -> Option<&Value> {
        self.0.details.as_ref()
    }

    /// The body of the error envelope as a JSON value (what every transport sends).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "error": {
                "code": self.0.code,
                "message": self.0.message,
                "details": self.0.details,
            }
        })
    }

    /// Logs a server error with its cause (client errors are not logged).
    pub(crate) fn log(&self) {
        if self.0.status.is_server_error() {
            match &self.0.source {
                Some(source) => {
                    tracing::error!(code = %self.0.code, error = %source, cause = ?source, "mizan: request failed")
                }
                None => {
                    tracing::error!(code = %self.0.code, message = %self.0.message, "mizan: request failed")
                }
            }
        }
    }

    /// Renders the error as an HTTP response: the one place errors meet the wire.
    ///
    /// Server errors are logged here with their cause; clients only see the code and message.
    pub fn into_response(self) -> http::Response<Bytes> {
        self.log();
        let body = serde_json::to_vec(&self.to_json()).unwrap_or_default();
        let mut response = http::Response::new(Bytes::from(body));
        *response.status_mut() = self.0.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, no_store());
        headers.extend(self.0.headers);
        response
    }
}

/// `Cache-Control: no-store`, the default of every protocol response (errors included).
pub(crate) fn no_store() -> HeaderValue {
    HeaderValue::from_static("no-store")
}

/// An `Allow` header value listing `methods`.
pub(crate) fn allow_value(methods: &[Method]) -> HeaderValue {
    let allow = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    // Method names are header-safe tokens.
    HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static(""))
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        let message = match code {
            ErrorCode::Unauthenticated => "authentication required",
            ErrorCode::Forbidden => "permission denied",
            ErrorCode::Internal => "internal server error",
            other => other.as_str(),
        };
        Self::from_code(code, message)
    }
}

impl From<serde_json::Error> for ApiError {
    /// A result that cannot be serialized is a server bug: 500, cause logged.
    fn from(err: serde_json::Error) -> Self {
        Self::internal(err)
    }
}

/// What is wrong with the registered functions or the configuration, found when the app is
/// built (never at the first request).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A function, context or parameter name does not match `^[A-Za-z_][A-Za-z0-9_]*$`.
    #[error("invalid {what} name {name:?}: names match ^[A-Za-z_][A-Za-z0-9_]*$")]
    InvalidName {
        /// What kind of name (function, context, parameter, affects target).
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// Two functions share a name.
    #[error("function {0:?} is registered twice; function names must be unique")]
    DuplicateFunction(String),
    /// A function declares the same parameter twice.
    #[error("function {function:?} declares parameter {param:?} twice")]
    DuplicateParam {
        /// The function.
        function: String,
        /// The parameter.
        param: String,
    },
    /// A function has both `context` and `affects`.
    #[error("function {0:?} has both `context` and `affects`; a function reads a context or mutates, not both")]
    ContextAndAffects(String),
    /// `affects` names neither a context nor a function that belongs to a context.
    #[error("function {function:?} affects {target:?}, which is neither a context nor a function of a context")]
    UnknownAffectsTarget {
        /// The mutation.
        function: String,
        /// The unknown target.
        target: String,
    },
    /// `affects` was given an empty list.
    #[error("function {0:?} has an empty `affects` list")]
    EmptyAffects(String),
    /// A function returning an `http::Response` has no `route`, so nothing could reach it.
    #[error("view-path function {0:?} returns an http::Response but has no `route`")]
    ViewWithoutRoute(String),
    /// A data function has a `route`; only view-path functions are served at a route.
    #[error("function {0:?} has a `route` but returns data; only functions returning http::Response are served at a route")]
    RouteWithoutView(String),
    /// A route pattern is malformed or conflicts with another.
    #[error("route {route:?} of function {function:?} is invalid: {source}")]
    InvalidRoute {
        /// The function.
        function: String,
        /// The route pattern.
        route: String,
        /// Why the router refused it.
        #[source]
        source: matchit::InsertError,
    },
    /// `methods` names something that is not an HTTP method.
    #[error("function {function:?} lists invalid HTTP method {method:?}")]
    InvalidMethod {
        /// The function.
        function: String,
        /// The method as written.
        method: String,
    },
    /// The mount point is not an absolute path ending in `/`.
    #[error("mount point {0:?} must start and end with '/' (e.g. \"/api/mizan/\")")]
    InvalidMount(String),
    /// A form cannot be built from its type (see the source for why).
    #[error("form of function {function:?}: {source}")]
    Form {
        /// The submit function.
        function: String,
        /// Why the form was refused (a `form::FormError`).
        #[source]
        source: BoxError,
    },
    /// Two functions submit forms of the same name.
    #[error("form {0:?} is declared by two functions; form names must be unique")]
    DuplicateForm(String),
    /// A formset names a parameter its function does not declare.
    #[error("function {function:?} declares formset parameter {param:?}, which is not one of its parameters")]
    UnknownFormsetParam {
        /// The function.
        function: String,
        /// The parameter named by the formset.
        param: String,
    },
    /// Two of the JWT, cache and MWT secrets are equal: each must have its own.
    #[error("the {first} and {second} secrets are equal; configure a distinct secret for each")]
    SharedSecret {
        /// One secret's name.
        first: &'static str,
        /// The other's.
        second: &'static str,
    },
    /// A key could not be read (e.g. a malformed PEM).
    #[error("the {which} key is invalid")]
    InvalidKey {
        /// Which key.
        which: &'static str,
        /// Why it was refused.
        #[source]
        source: BoxError,
    },
    /// A secret is shorter than the minimum.
    #[error("the {which} secret is {len} bytes; at least {min} are required")]
    WeakSecret {
        /// Which secret (`cache`, `jwt`, `mwt`).
        which: &'static str,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
}

/// A cache backend failed. The dispatcher never fails a request because of it: reads fall back
/// to executing, writes are dropped, and a failed purge makes later reads skip the cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The backend cannot be reached (connection refused, pool exhausted, ...).
    #[error("cache backend unavailable")]
    Unavailable(#[source] BoxError),
    /// The operation did not finish within the backend's timeout.
    #[error("cache operation timed out")]
    Timeout,
    /// The backend answered with an error.
    #[error("cache backend error")]
    Backend(#[source] BoxError),
}

/// Credentials were presented but could not be accepted.
///
/// Every variant becomes a plain 401 without detail that would help an attacker, except
/// [`AuthError::Backend`], a server-side failure (500, cause logged).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is malformed, forged, expired, of the wrong kind, or unknown.
    #[error("invalid credentials")]
    InvalidToken,
    /// The token's session was destroyed (logout).
    #[error("session revoked")]
    Revoked,
    /// The identity source itself failed (its session store is down, ...).
    #[error("identity source failed")]
    Backend(#[source] BoxError),
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidToken | AuthError::Revoked => {
                Self::from_code(ErrorCode::Unauthenticated, "invalid or expired credentials")
            }
            AuthError::Backend(source) => Self::internal(source),
        }
    }
}

/// Any error of Mizan, for applications that collect them in one type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Building the app failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A cache backend failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Credentials were refused.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// An error for the client.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// An `X-Mizan-Invalidate` value could not be decoded.
    #[error(transparent)]
    InvalidateHeader(#[from] crate::invalidation::InvalidateHeaderError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(response: &http::Response<Bytes>) -> Value {
        serde_json::from_slice(response.body()).unwrap()
    }

    #[test]
    fn envelope_has_code_message_and_details() {
        let response = ApiError::bad_request("bad args")
            .with_details(serde_json::json!({"fields": {"x": "missing"}}))
            .into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(
            body(&response),
            serde_json::json!({"error": {"code": "bad_request", "message": "bad args",
                "details": {"fields": {"x": "missing"}}}})
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let response = ApiError::internal("database password is hunter2").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = String::from_utf8(response.body().to_vec()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(body(&response)["error"]["code"], "internal");
    }

    #[test]
    fn method_not_allowed_lists_allowed_methods() {
        let response = ApiError::method_not_allowed(&[Method::GET, Method::HEAD]).into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[ALLOW], "GET, HEAD");
    }

    #[test]
    fn auth_errors_are_uninformative_401s() {
        for err in [AuthError::InvalidToken, AuthError::Revoked] {
            let api = ApiError::from(err);
            assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(api.message(), "invalid or expired credentials");
        }
    }
}
