//! The [`Dispatcher`] trait, and how [`Mizan`] turns a request into a response.
//!
//! Endpoints, under the mount point (`/api/mizan/` by default):
//!
//! | method, path | what |
//! |---|---|
//! | `GET session/` | `{"csrfToken": null}`, plus `"mwt"` for an authenticated caller when MWTs are on |
//! | `POST call/` | `{"fn": ..., "args": {...}}` → `{"result": ..., "invalidate": [...]}` |
//! | `GET ctx/<name>/?p=v` | the context bundle `{"<fn>": <result>, ...}` |
//! | `GET manifest/` | the edge manifest |
//! | `GET schema/` | the IR, as KDL (`text/plain; charset=utf-8`) |
//!
//! plus each view-path function at its `route`. Every response carries
//! `Cache-Control: no-store` (a view-path function may set its own). `HEAD` is answered like
//! `GET` without a body and `OPTIONS` with `204` and `Allow`. The order of work on a request is
//! fixed: limits, routing and method, identity, guard, arguments, cache, execution, invalidation.

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::future::{join_all, ready, Either};
use futures_util::{FutureExt, StreamExt};
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use http::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::app::{ContextInfo, Limits, Mizan, DEFAULT_MOUNT};
use crate::auth::MWT_HEADER;
use crate::cache::origin::{FetchPlan, Lookup, OriginCache, ParamStrings, Stamp};
use crate::cache::param_string;
use crate::csrf::{Csrf, CSRF_FORM_FIELD, CSRF_HEADER};
use crate::error::{allow_value, no_store, ApiError, AuthError};
use crate::form::FormSpec;
use crate::identity::Identity;
use crate::invalidation::{merge, Target};
use crate::registry::{
    Args, BoxFuture, CacheHint, FormKind, Function, Handler, Inputs, Param, RawArg, Source,
};
use crate::request::{has_media_type, media_type, Request};
use crate::socket::SocketIo;
use crate::transport::{
    check_depth, invalid_args, json_response, parse_envelope, CallOutcome, Envelope, HttpTransport,
    Transport, RESULT_PREFIX,
};
use crate::upload::{is_multipart, BodyStream, MultipartReader, UploadTable};

/// Turns an HTTP request into an HTTP response. The [`Mizan`] app implements it; adapters
/// accept any implementation, so an app can be wrapped.
///
/// An adapter first asks [`body_plan`](Self::body_plan) with the request head alone: most
/// requests are read whole (up to a limit, 413 past it) and handed to
/// [`dispatch`](Self::dispatch); a streamed one (a multipart upload) goes to
/// [`dispatch_stream`](Self::dispatch_stream) as it arrives, so the dispatcher can refuse it
/// before reading the files and count its limits on the bytes themselves.
#[async_trait]
pub trait Dispatcher: Send + Sync + 'static {
    /// Handles one request. Never panics and never fails: errors are responses.
    async fn dispatch(&self, request: http::Request<Bytes>) -> http::Response<Bytes>;

    /// The largest body the dispatcher accepts; adapters stop reading past it and answer 413.
    fn body_limit(&self) -> usize {
        Limits::default().max_body_bytes
    }

    /// How to read the body of the request with this head. The default buffers every body up
    /// to [`body_limit`](Self::body_limit).
    fn body_plan(&self, head: &http::request::Parts) -> BodyPlan {
        let _ = head;
        BodyPlan::Buffer {
            limit: self.body_limit(),
        }
    }

    /// Handles a request whose body is read as it arrives ([`BodyPlan::Stream`]). The
    /// default collects the body up to [`body_limit`](Self::body_limit) and calls
    /// [`dispatch`](Self::dispatch).
    async fn dispatch_stream(
        &self,
        head: http::request::Parts,
        body: BodyStream,
    ) -> http::Response<Bytes> {
        match collect(body, self.body_limit()).await {
            Ok(bytes) => self.dispatch(http::Request::from_parts(head, bytes)).await,
            Err(err) => err.into_response(),
        }
    }

    /// The paths the dispatcher serves, for adapters that register routes one by one.
    fn routes(&self) -> Routes {
        Routes {
            mount: DEFAULT_MOUNT.to_owned(),
            views: Vec::new(),
            socket: None,
        }
    }

    /// Decides, from its head, whether a WebSocket upgrade request to [`Routes::socket`] may
    /// be answered with 101; an error is the response to send instead. The default serves no
    /// socket (404).
    async fn check_upgrade(&self, head: &http::request::Parts) -> Result<(), ApiError> {
        let _ = head;
        Err(ApiError::not_found("no WebSocket endpoint"))
    }

    /// Runs an upgraded WebSocket whose upgrade [`check_upgrade`](Self::check_upgrade)
    /// accepted, until it closes. The default closes it at once.
    async fn serve_socket(&self, head: http::request::Parts, io: SocketIo) {
        let _ = (head, io);
    }
}

/// How an adapter reads a request body, decided from the head by
/// [`Dispatcher::body_plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyPlan {
    /// Read the whole body, answering 413 as soon as it grows past `limit` bytes, then call
    /// [`Dispatcher::dispatch`].
    Buffer {
        /// The largest body accepted, in bytes.
        limit: usize,
    },
    /// Hand the body over as it arrives to [`Dispatcher::dispatch_stream`], which enforces
    /// its own limits while reading.
    Stream,
}

impl BodyPlan {
    /// The limit to read the whole body under, or `None` to stream it.
    pub fn buffer_limit(self) -> Option<usize> {
        match self {
            Self::Buffer { limit } => Some(limit),
            Self::Stream => None,
        }
    }
}

/// Reads a streamed body whole, refusing (413) as soon as it grows past `limit` bytes.
async fn collect(mut body: BodyStream, limit: usize) -> Result<Bytes, ApiError> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request("could not read the request body").with_source(e))?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// The paths a [`Dispatcher`] serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    /// The mount point of the protocol endpoints, e.g. `/api/mizan/`.
    pub mount: String,
    /// The route patterns of view-path functions (`/profile/{user_id}/`), in matchit syntax.
    pub views: Vec<String>,
    /// The path of the WebSocket endpoint (`/api/mizan/ws/`), if the dispatcher serves one.
    /// Every other route answers an upgrade request as a plain request.
    pub socket: Option<String>,
}

/// The boxed future of a response, as `#[async_trait]` spells the return type of
/// [`Dispatcher::dispatch`] (written out where an implementation hands back a future as it is).
type ResponseFuture<'a> = Pin<Box<dyn Future<Output = http::Response<Bytes>> + Send + 'a>>;

/// Forwards to the shared dispatcher. `dispatch` and `dispatch_stream` hand back the inner
/// dispatcher's boxed future as it is, instead of boxing one more future around it.
#[async_trait]
impl<D: Dispatcher + ?Sized> Dispatcher for Arc<D> {
    fn dispatch<'life0, 'async_trait>(
        &'life0 self,
        request: http::Request<Bytes>,
    ) -> ResponseFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        (**self).dispatch(request)
    }
    fn body_limit(&self) -> usize {
        (**self).body_limit()
    }
    fn body_plan(&self, head: &http::request::Parts) -> BodyPlan {
        (**self).body_plan(head)
    }
    fn dispatch_stream<'life0, 'async_trait>(
        &'life0 self,
        head: http::request::Parts,
        body: BodyStream,
    ) -> ResponseFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        (**self).dispatch_stream(head, body)
    }
    fn routes(&self) -> Routes {
        (**self).routes()
    }
    async fn check_upgrade(&self, head: &http::request::Parts) -> Result<(), ApiError> {
        (**self).check_upgrade(head).await
    }
    async fn serve_socket(&self, head: http::request::Parts, io: SocketIo) {
        (**self).serve_socket(head, io).await
    }
}

#[async_trait]
impl Dispatcher for Mizan {
    // Written out instead of `async fn`: the boxed future is the handler's own, not one that
    // holds the request and then the handler's future besides.
    fn dispatch<'life0, 'async_trait>(
        &'life0 self,
        request: http::Request<Bytes>,
    ) -> ResponseFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let (parts, body) = request.into_parts();
        Box::pin(self.handle_body(parts, Body::Full(body), None))
    }

    fn body_limit(&self) -> usize {
        self.inner.limits.max_body_bytes
    }

    /// Multipart calls (uploads) are streamed; everything else is buffered up to the body
    /// limit.
    fn body_plan(&self, head: &http::request::Parts) -> BodyPlan {
        if self.streams(head) {
            BodyPlan::Stream
        } else {
            BodyPlan::Buffer {
                limit: self.inner.limits.max_body_bytes,
            }
        }
    }

    async fn dispatch_stream(
        &self,
        head: http::request::Parts,
        body: BodyStream,
    ) -> http::Response<Bytes> {
        self.handle_body(head, Body::Stream(body), None).await
    }

    fn routes(&self) -> Routes {
        Routes {
            mount: self.inner.mount.clone(),
            views: self.inner.registry.route_patterns.clone(),
            socket: Some(self.socket_path()),
        }
    }

    async fn check_upgrade(&self, head: &http::request::Parts) -> Result<(), ApiError> {
        Mizan::check_upgrade(self, head).await
    }

    async fn serve_socket(&self, head: http::request::Parts, io: SocketIo) {
        Mizan::serve_socket(self, head, io).await
    }
}

/// A protocol endpoint under the mount point.
enum Endpoint {
    Session,
    Call,
    Context(String),
    Form(String),
    FormValidate(String),
    Manifest,
    Schema,
}

/// A request body: whole, or as it arrives.
enum Body {
    Full(Bytes),
    Stream(BodyStream),
}

impl Body {
    async fn into_bytes(self, limit: usize) -> Result<Bytes, ApiError> {
        match self {
            Self::Full(bytes) => Ok(bytes),
            Self::Stream(stream) => collect(stream, limit).await,
        }
    }

    fn into_stream(self) -> BodyStream {
        match self {
            Self::Stream(stream) => stream,
            Self::Full(bytes) => Box::pin(futures_util::stream::iter([Ok(bytes)])),
        }
    }
}

/// A request routed before it runs: where it goes, or its answer already.
enum Routed {
    Run(Route),
    Answered(http::Response<Bytes>),
}

/// Where a request goes.
enum Route {
    Endpoint(Endpoint),
    View {
        members: Vec<usize>,
        params: Vec<(String, String)>,
    },
}

impl Mizan {
    /// Handles a request, with the identity given instead of asking the identity source (the
    /// test client's "act as").
    pub(crate) async fn handle(
        &self,
        request: http::Request<Bytes>,
        identity: Option<Identity>,
    ) -> http::Response<Bytes> {
        let (parts, body) = request.into_parts();
        self.handle_body(parts, Body::Full(body), identity).await
    }

    /// Handles a request: [`route_and_run`](Self::route_and_run), then what every response
    /// gets. (A plain function over `route_and_run`'s future, so that the request head is not
    /// held twice in the state of the future.)
    fn handle_body(
        &self,
        parts: http::request::Parts,
        body: Body,
        identity: Option<Identity>,
    ) -> impl Future<Output = http::Response<Bytes>> + Send + '_ {
        let head = parts.method == Method::HEAD;
        self.route_and_run(parts, body, identity)
            .map(move |outcome| {
                let mut response = match outcome {
                    Ok(response) => response,
                    Err(err) => err.into_response(),
                };
                // Each response is built with its `Cache-Control` (`no-store` unless a view
                // sets its own), so that the usual call inserts it once.
                debug_assert!(response.headers().contains_key(CACHE_CONTROL));
                if head {
                    *response.body_mut() = Bytes::new();
                }
                response
            })
    }

    /// Whether the request is a multipart call, whose body is read as it arrives.
    fn streams(&self, head: &http::request::Parts) -> bool {
        head.method == Method::POST
            && may_be_multipart(&head.headers)
            && is_multipart(&head.headers)
            && head
                .uri
                .path()
                .strip_prefix(self.inner.mount.as_str())
                .is_some_and(|rest| rest.trim_end_matches('/') == "call")
    }

    /// Routes a request and runs it. What needs no I/O (the limits, the route and its method,
    /// the manifest and the schema) is settled before the future is made, which then holds the
    /// request once: an `async fn` would keep its arguments and its locals apart, and this
    /// future is allocated for every request.
    fn route_and_run(
        &self,
        parts: http::request::Parts,
        body: Body,
        identity: Option<Identity>,
    ) -> impl Future<Output = Result<http::Response<Bytes>, ApiError>> + Send + '_ {
        let route = match self.route_request(&parts, &body) {
            Ok(Routed::Run(route)) => route,
            Ok(Routed::Answered(response)) => return Either::Left(ready(Ok(response))),
            Err(err) => return Either::Left(ready(Err(err))),
        };
        Either::Right(async move {
            // Read where used rather than copied: each copy held across an await is held in
            // the future.
            let limits = &self.inner.limits;
            let identity = match identity {
                Some(identity) => identity,
                None => self.identify(&parts).await?,
            };
            // CSRF comes right after identity, before any guard or function; a view-route form may
            // carry its token in the body, checked once the body is read.
            let csrf = self.csrf_required(&parts.method, &identity);
            if let (Some((csrf, session)), false) = (csrf, matches!(route, Route::View { .. })) {
                check_csrf(csrf, session, &parts.headers, None)?;
            }
            // The content type, read once: calls and form validation take JSON, calls also
            // multipart.
            let media = match route {
                Route::Endpoint(Endpoint::Call | Endpoint::FormValidate(_)) => {
                    Media::of(&parts.headers)
                }
                _ => Media::Other,
            };
            match route {
                Route::Endpoint(Endpoint::Session) => self.session(&identity),
                Route::Endpoint(Endpoint::Manifest | Endpoint::Schema) => {
                    unreachable!("answered above")
                }
                // Paths other than calls and context fetches run boxed, so that the future of
                // every request is not as large as theirs.
                Route::Endpoint(Endpoint::Call) if media == Media::Multipart => {
                    let outcome =
                        Box::pin(self.run_multipart(parts, body.into_stream(), identity)).await;
                    Ok(HttpTransport.encode(outcome))
                }
                Route::Endpoint(Endpoint::Call) => {
                    if media != Media::Json {
                        return Err(not_json());
                    }
                    let body = body.into_bytes(limits.max_body_bytes).await?;
                    // The envelope borrows the body the request holds: one handle on it kept
                    // across the call instead of a second.
                    let request = self.request(parts, body, identity);
                    let envelope = parse_envelope(request.body(), limits.max_json_depth)?;
                    let outcome = self.call(&envelope, request.clone()).await;
                    Ok(HttpTransport.encode(outcome))
                }
                Route::Endpoint(Endpoint::Context(name)) => {
                    Box::pin(self.fetch(&name, parts, identity)).await
                }
                Route::Endpoint(Endpoint::Form(name)) => {
                    let (_, spec) = self.form(&name, &identity, &parts)?;
                    Ok(json_response(Bytes::from(spec.schema().to_string())))
                }
                Route::Endpoint(Endpoint::FormValidate(name)) => {
                    let spec = Arc::clone(self.form(&name, &identity, &parts)?.1);
                    if media != Media::Json {
                        return Err(not_json());
                    }
                    let body = body.into_bytes(limits.max_body_bytes).await?;
                    check_depth(&body, limits.max_json_depth)?;
                    let request = Request::from_parts(
                        parts,
                        body.clone(),
                        identity,
                        self.inner.state.clone(),
                        Vec::new(),
                    );
                    let issues = Box::pin(spec.validate(&body, &request)).await?;
                    let reply = serde_json::json!({ "valid": issues.is_empty(), "issues": issues });
                    Ok(json_response(Bytes::from(reply.to_string())))
                }
                Route::View { members, params } => {
                    let body = body.into_bytes(limits.max_body_bytes).await?;
                    if let Some((csrf, session)) = csrf {
                        check_csrf(csrf, session, &parts.headers, Some(&body))?;
                    }
                    let mut response =
                        Box::pin(self.run_view(&members, params, parts, body, identity)).await?;
                    response
                        .headers_mut()
                        .entry(CACHE_CONTROL)
                        .or_insert_with(no_store);
                    Ok(response)
                }
            }
        })
    }

    /// Where a request goes, or its answer when it needs no I/O (the manifest, the schema,
    /// `OPTIONS`); an error for a request over a limit or with a method its route refuses.
    fn route_request(&self, parts: &http::request::Parts, body: &Body) -> Result<Routed, ApiError> {
        let limits = self.inner.limits;
        if let Body::Full(bytes) = body {
            if bytes.len() > limits.max_body_bytes && !self.streams(parts) {
                return Err(ApiError::payload_too_large(limits.max_body_bytes));
            }
        }
        if parts.uri.query().map_or(0, str::len) > limits.max_query_bytes {
            return Err(ApiError::from_code(
                crate::ErrorCode::UriTooLong,
                format!("query string longer than {} bytes", limits.max_query_bytes),
            ));
        }

        let route = self.route(parts.uri.path())?;
        // The protocol endpoints' methods are fixed; only view routes compute theirs.
        const CALL: &[Method] = &[Method::POST];
        const READ: &[Method] = &[Method::GET, Method::HEAD];
        let allowed: Cow<'static, [Method]> = match &route {
            Route::Endpoint(Endpoint::Call | Endpoint::FormValidate(_)) => Cow::Borrowed(CALL),
            Route::Endpoint(_) => Cow::Borrowed(READ),
            Route::View { members, .. } => Cow::Owned(self.view_methods(members)),
        };
        if parts.method == Method::OPTIONS {
            let mut allow = allowed.into_owned();
            allow.push(Method::OPTIONS);
            let mut response = http::Response::new(Bytes::new());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response.headers_mut().insert(ALLOW, allow_value(&allow));
            response.headers_mut().insert(CACHE_CONTROL, no_store());
            return Ok(Routed::Answered(response));
        }
        if !allowed.contains(&parts.method) {
            return Err(ApiError::method_not_allowed(&allowed));
        }

        match route {
            Route::Endpoint(Endpoint::Manifest) => {
                Ok(Routed::Answered(json_response(self.inner.manifest.clone())))
            }
            Route::Endpoint(Endpoint::Schema) => {
                let mut response = http::Response::new(self.inner.schema.clone());
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                response.headers_mut().insert(CACHE_CONTROL, no_store());
                Ok(Routed::Answered(response))
            }
            route => Ok(Routed::Run(route)),
        }
    }

    /// The caller's identity, from the app's identity source; anonymous without one, with no
    /// future made for it.
    pub(crate) async fn identify(
        &self,
        parts: &http::request::Parts,
    ) -> Result<Identity, AuthError> {
        match &self.inner.identity {
            Some(source) => source.identify(parts).await,
            None => Ok(Identity::anonymous()),
        }
    }

    /// The CSRF key and session when the request must carry a token: CSRF is on, the method is
    /// unsafe and a cookie authenticated the caller.
    fn csrf_required<'a>(
        &'a self,
        method: &Method,
        identity: &'a Identity,
    ) -> Option<(&'a Csrf, &'a str)> {
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let csrf = self.inner.csrf.as_ref().filter(|_| !safe)?;
        Some((csrf, identity.cookie_session.as_deref()?))
    }

    /// `GET session/`: `{"csrfToken": null}`, plus an MWT for an authenticated caller when the
    /// app mints them (also in `X-Mizan-Token`).
    fn session(&self, identity: &Identity) -> Result<http::Response<Bytes>, ApiError> {
        let mwt = match &self.inner.mwt {
            Some(mwt) => mwt.mint(identity, self.inner.clock.unix_seconds())?,
            None => None,
        };
        // A CSRF token exists for a cookie session only: other requests need none.
        let csrf = self
            .inner
            .csrf
            .as_ref()
            .zip(identity.cookie_session.as_deref())
            .map(|(csrf, session)| (csrf, csrf.token(session)));
        let mut body = serde_json::json!({ "csrfToken": csrf.as_ref().map(|(_, token)| token) });
        if let Some(token) = &mwt {
            body["mwt"] = Value::from(token.as_str());
        }
        let mut response = json_response(Bytes::from(body.to_string()));
        if let Some(value) = mwt.and_then(|token| HeaderValue::from_str(&token).ok()) {
            response.headers_mut().insert(MWT_HEADER, value);
        }
        if let Some(cookie) = csrf.and_then(|(csrf, token)| csrf.cookie(&token)) {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        Ok(response)
    }

    fn route(&self, path: &str) -> Result<Route, ApiError> {
        if let Some(rest) = path.strip_prefix(self.inner.mount.as_str()) {
            if rest == "call/" {
                return Ok(Route::Endpoint(Endpoint::Call));
            }
            // At most three non-empty segments name an endpoint; a fourth means none does.
            let mut segments = ["", "", "", ""];
            let mut count = 0;
            for segment in rest.split('/').filter(|s| !s.is_empty()) {
                if count == segments.len() {
                    break;
                }
                segments[count] = segment;
                count += 1;
            }
            let endpoint = match &segments[..count] {
                ["session"] => Some(Endpoint::Session),
                ["call"] => Some(Endpoint::Call),
                ["manifest"] => Some(Endpoint::Manifest),
                ["schema"] => Some(Endpoint::Schema),
                ["ctx", name] => Some(Endpoint::Context(decode(name)?)),
                ["form", name] => Some(Endpoint::Form(decode(name)?)),
                ["form", name, "validate"] => Some(Endpoint::FormValidate(decode(name)?)),
                _ => None,
            };
            if let Some(endpoint) = endpoint {
                return Ok(Route::Endpoint(endpoint));
            }
        }
        let matched = self
            .inner
            .registry
            .routes
            .at(path)
            .map_err(|_| ApiError::not_found(format!("no route for {path}")))?;
        let params = matched
            .params
            .iter()
            .map(|(name, value)| Ok((name.to_owned(), decode(value)?)))
            .collect::<Result<_, ApiError>>()?;
        Ok(Route::View {
            members: matched.value.clone(),
            params,
        })
    }

    fn view_methods(&self, members: &[usize]) -> Vec<Method> {
        let mut allowed = Vec::new();
        for &index in members {
            for method in &self.inner.registry.methods[index] {
                if !allowed.contains(method) {
                    allowed.push(method.clone());
                }
                if method == Method::GET && !allowed.contains(&Method::HEAD) {
                    allowed.push(Method::HEAD);
                }
            }
        }
        allowed
    }

    /// Runs an RPC call: shared by every transport.
    pub(crate) async fn run_call(
        &self,
        envelope: Envelope<'_>,
        parts: http::request::Parts,
        body: Bytes,
        identity: Identity,
    ) -> Result<CallOutcome, ApiError> {
        let request = self.request(parts, body, identity);
        self.call(&envelope, request).await
    }

    /// Runs an RPC call whose [`Request`] is built. (The request carries the head, so the
    /// futures of the call hold one pointer instead of a copy of it.) The function and its
    /// guard are settled before the future is made, which is then the execution's own.
    fn call<'a>(
        &'a self,
        envelope: &'a Envelope<'_>,
        request: Request,
    ) -> impl Future<Output = Result<CallOutcome, ApiError>> + Send + 'a {
        match self.callable(&envelope.function, request.identity(), request.parts()) {
            Ok(index) => Either::Right(self.execute(index, envelope, request, None)),
            Err(err) => Either::Left(ready(Err(err))),
        }
    }

    /// The request a function receives.
    fn request(&self, parts: http::request::Parts, body: Bytes, identity: Identity) -> Request {
        Request::from_parts(parts, body, identity, self.inner.state.clone(), Vec::new())
    }

    /// Runs a multipart call: the `__mizan` envelope names the function, whose existence and
    /// guard are settled before the file parts are read under its limits.
    async fn run_multipart(
        &self,
        parts: http::request::Parts,
        body: BodyStream,
        identity: Identity,
    ) -> Result<CallOutcome, ApiError> {
        let limits = self.inner.limits;
        let mut reader = MultipartReader::new(&parts.headers, body, limits.uploads)?;
        // A body refused for its form is drained (bounded, nothing kept) so that the client,
        // still sending, reads the answer instead of a reset connection. A caller refused by
        // the guard is answered at once: only a small declared body is drained first.
        let envelope_bytes = match reader.envelope().await {
            Ok(bytes) => bytes,
            Err(err) => {
                reader.drain().await;
                return Err(err);
            }
        };
        let envelope = match parse_envelope(&envelope_bytes, limits.max_json_depth) {
            Ok(envelope) => envelope,
            Err(err) => {
                reader.drain().await;
                return Err(err);
            }
        };
        let index = match self.callable(&envelope.function, &identity, &parts) {
            Ok(index) => index,
            Err(err) => {
                if declared_length(&parts.headers).is_some_and(|length| length <= SMALL_BODY) {
                    reader.drain().await;
                }
                return Err(err);
            }
        };
        let function = &self.inner.registry.functions[index];
        let uploads = match reader
            .files(
                function.upload_limits().unwrap_or(limits.uploads),
                function.takes_uploads(),
            )
            .await
        {
            Ok(uploads) => uploads,
            Err(err) => {
                reader.drain().await;
                return Err(err);
            }
        };
        let uploads = Arc::new(uploads);
        let request = self.request(parts, envelope_bytes.clone(), identity);
        self.execute(index, &envelope, request, Some(uploads)).await
    }

    /// The index of the function `name` if it can be called over RPC by `identity`: 404 for
    /// unknown, private and view functions, then its guard.
    fn callable(
        &self,
        name: &str,
        identity: &Identity,
        parts: &http::request::Parts,
    ) -> Result<usize, ApiError> {
        let registry = &self.inner.registry;
        let not_found = || ApiError::not_found(format!("no function named {name:?}"));
        let index = *registry.by_name.get(name).ok_or_else(not_found)?;
        let function = &registry.functions[index];
        if function.is_view() || function.is_private() {
            return Err(not_found());
        }
        if let Some(auth) = function.auth() {
            auth.check(identity, parts)?;
        }
        Ok(index)
    }

    /// The form `name` (its submit function and spec) if `identity` passes the submit
    /// function's guard: forms share their function's guard.
    fn form(
        &self,
        name: &str,
        identity: &Identity,
        parts: &http::request::Parts,
    ) -> Result<(usize, &Arc<FormSpec>), ApiError> {
        let registry = &self.inner.registry;
        let not_found = || ApiError::not_found(format!("no form named {name:?}"));
        let index = *registry.forms.get(name).ok_or_else(not_found)?;
        let spec = registry.form_specs[index].as_ref().ok_or_else(not_found)?;
        let function = &registry.functions[index];
        if function.is_private() {
            return Err(not_found());
        }
        if let Some(auth) = function.auth() {
            auth.check(identity, parts)?;
        }
        Ok((index, spec))
    }

    /// Converts the arguments of a callable function, runs it and invalidates.
    ///
    /// Each argument is converted once, straight into the type the function declares; the
    /// canonical JSON values that scope invalidation targets are derived only for mutations.
    /// The result is written right after `{"result":` in the buffer that becomes the body.
    async fn execute(
        &self,
        index: usize,
        envelope: &Envelope<'_>,
        request: Request,
        uploads: Option<Arc<UploadTable>>,
    ) -> Result<CallOutcome, ApiError> {
        let registry = &self.inner.registry;
        let function = &registry.functions[index];
        let Handler::Data(handler) = &function.handler else {
            unreachable!("callable functions are data functions");
        };
        let form = registry.form_specs[index]
            .as_deref()
            .zip(function.spec.form.as_ref().map(|form| &form.kind));
        // A form is checked as a whole first: every issue at once, and the function does not
        // run unless the data is valid.
        let mut form_data = None;
        match form {
            Some((spec, FormKind::Whole { .. })) => {
                let data = serde_json::to_string(&envelope.args)?;
                Box::pin(spec.check(data.as_bytes(), &request)).await?;
                form_data = Some(data);
            }
            Some((spec, FormKind::Formset { param })) => {
                if let Some(raw) = envelope.args.get(param.as_str()) {
                    Box::pin(spec.check(raw.get().as_bytes(), &request)).await?;
                }
            }
            None => {}
        }
        let mut problems = Map::new();
        let source = match &form_data {
            Some(data) => Source::Form(data),
            None => {
                for name in envelope.args.names() {
                    if !function.declares(name) {
                        problems.insert(name.to_string(), Value::from("unexpected argument"));
                    }
                }
                Source::Json(&envelope.args)
            }
        };
        let plans = &registry.plans[index];
        let cookies = request.clone();
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(RESULT_PREFIX);
        // Conversion runs with the upload table in scope, so `Upload` arguments resolve to
        // their parts (and the parts nobody referred to are known).
        let prepare = || {
            let mut inputs =
                Inputs::new(function.params(), source, &mut problems, uploads.as_ref());
            let future = handler(request, &mut inputs, out);
            let scoped = |name: &str| {
                plans
                    .iter()
                    .any(|plan| plan.scope.iter().any(|s| s == name))
            };
            let canonical = (!plans.is_empty()).then(|| inputs.canonical(scoped));
            (future, canonical)
        };
        let (future, canonical) = match &uploads {
            None => prepare(),
            Some(table) => {
                let (prepared, seen) = table.scope(prepare);
                // (A whole form's data is checked by the form: its parts are not counted.)
                if problems.is_empty() && form_data.is_none() {
                    if let Some(part) = table.unreferenced(&seen).next() {
                        return Err(ApiError::bad_request(format!(
                            "no argument refers to part {part:?}"
                        ))
                        .with_details(serde_json::json!({ "part": part })));
                    }
                }
                prepared
            }
        };
        let future = match future {
            Some(future) if problems.is_empty() => future,
            _ => {
                return Err(invalid_args(
                    format!("invalid arguments for {:?}", function.name()),
                    problems,
                ))
            }
        };
        let body = guarded(function.name(), future).await?;
        let targets = match canonical {
            Some(args) => Box::pin(self.invalidate(index, &args)).await,
            None => Vec::new(),
        };
        Ok(CallOutcome::new(
            body,
            RESULT_PREFIX.len(),
            targets,
            cookies.take_set_cookies(),
        ))
    }

    /// Whether `identity` may read context `name`: it exists (else 404) and the caller passes
    /// the guard of every function of its bundle.
    pub(crate) fn context_access(
        &self,
        name: &str,
        identity: &Identity,
        parts: &http::request::Parts,
    ) -> Result<(), ApiError> {
        let registry = &self.inner.registry;
        let info = registry
            .contexts
            .get(name)
            .ok_or_else(|| ApiError::not_found(format!("no context named {name:?}")))?;
        for &index in &info.bundle {
            if let Some(auth) = registry.functions[index].auth() {
                auth.check(identity, parts)?;
            }
        }
        Ok(())
    }

    /// Serves a context bundle, from the cache when a current entry exists.
    ///
    /// With the cache on, each query parameter is first converted to its canonical value (once
    /// for all the functions that declare it with the same type), which validates it and keys
    /// the entry; a hit is served without converting anything else. Functions that run convert
    /// their arguments straight into their types and write their results into the body.
    pub(crate) fn fetch<'a>(
        &'a self,
        name: &'a str,
        parts: http::request::Parts,
        identity: Identity,
    ) -> impl Future<Output = Result<http::Response<Bytes>, ApiError>> + Send + 'a {
        // The checks and the cache's plan run before the future is made, which then holds the
        // request once (an `async fn` would keep its arguments and its locals apart): a smaller
        // future for every fetch.
        let planned = self.plan_fetch(name, &parts, &identity);
        async move {
            let (info, query, plan) = planned?;
            let mut stamp = None;
            if let Some((cache, plan)) = &plan {
                match cache.lookup(plan).await {
                    Lookup::Hit(bytes) => return Ok(json_response(bytes)),
                    Lookup::Miss(found) => stamp = found,
                }
            }
            // Boxed: a hit's future (the common case) is not as large as running the bundle.
            let source = Source::Text(&query);
            let plan = plan.as_ref();
            Box::pin(self.run_bundle(name, info, parts, identity, source, plan, stamp)).await
        }
    }

    /// What a fetch of the context `name` needs before it reads the cache: its access checked,
    /// its query parsed and, with the cache on, its parameters converted and its keys derived.
    fn plan_fetch<'a>(
        &'a self,
        name: &'a str,
        parts: &http::request::Parts,
        identity: &Identity,
    ) -> Result<PlannedFetch<'a>, ApiError> {
        let registry = &self.inner.registry;
        self.context_access(name, identity, parts)?;
        let info = &registry.contexts[name];
        let bundle = || info.bundle.iter().map(|&i| &registry.functions[i]);
        let query = parse_query(parts.uri.query());
        let source = Source::Text(&query);
        let invalid =
            |problems| invalid_args(format!("invalid parameters for context {name:?}"), problems);

        let cache = self
            .inner
            .cache
            .as_ref()
            .filter(|_| info.cache != CacheHint::Never);
        let plan = match cache {
            Some(cache) => {
                let mut params = ParamStrings::new();
                let mut problems = Map::new();
                let mut converted: Vec<(&Param, Result<Value, String>)> = Vec::new();
                for param in bundle().flat_map(Function::params) {
                    let value = match converted.iter().find(|(p, _)| p.same_conversion(param)) {
                        Some((_, value)) => value.clone(),
                        None => {
                            let value = param.normalize(source.raw(param.name()));
                            converted.push((param, value.clone()));
                            value
                        }
                    };
                    match value {
                        Ok(value) => {
                            if let Some(string) = param_string(&value) {
                                params.entry(param.name().to_owned()).or_insert(string);
                            }
                        }
                        Err(problem) => {
                            problems.insert(param.name().to_owned(), Value::from(problem));
                        }
                    }
                }
                if !problems.is_empty() {
                    return Err(invalid(problems));
                }
                let user = identity.user_id.as_deref().filter(|_| info.user_scoped);
                Some((
                    cache,
                    cache.plan(name, &params, user, info.rev, &info.scopes),
                ))
            }
            None => None,
        };
        Ok((info, query, plan))
    }

    /// Runs the bundle of the context `info` (no cache, or a miss) and stores it when there is
    /// a `stamp` to store it with.
    #[allow(clippy::too_many_arguments)]
    async fn run_bundle(
        &self,
        name: &str,
        info: &ContextInfo,
        parts: http::request::Parts,
        identity: Identity,
        source: Source<'_>,
        plan: Option<&(&OriginCache, FetchPlan<'_>)>,
        stamp: Option<Stamp>,
    ) -> Result<http::Response<Bytes>, ApiError> {
        let registry = &self.inner.registry;
        let request = Request::from_parts(
            parts,
            Bytes::new(),
            identity,
            self.inner.state.clone(),
            Vec::new(),
        );
        let mut problems = Map::new();
        let mut runs = Vec::with_capacity(info.bundle.len());
        for (i, &index) in info.bundle.iter().enumerate() {
            let function = &registry.functions[index];
            let Handler::Data(handler) = &function.handler else {
                unreachable!("bundles hold data functions only");
            };
            // Each function writes `{"name":` (`,"name":` after the first) and its result.
            let mut out = Vec::with_capacity(64);
            out.push(if i == 0 { b'{' } else { b',' });
            serde_json::to_writer(&mut out, function.name())?;
            out.push(b':');
            let mut inputs = Inputs::new(function.params(), source, &mut problems, None);
            if let Some(future) = handler(request.clone(), &mut inputs, out) {
                runs.push(guarded(function.name(), future));
            }
        }
        if !problems.is_empty() {
            let message = format!("invalid parameters for context {name:?}");
            return Err(invalid_args(message, problems));
        }
        let mut body: Option<Vec<u8>> = None;
        for result in join_all(runs).await {
            let part = result?;
            match &mut body {
                None => body = Some(part),
                Some(body) => body.extend_from_slice(&part),
            }
        }
        let mut body = body.unwrap_or_else(|| vec![b'{']);
        body.push(b'}');
        let bundle = Bytes::from(body);

        if let (Some((cache, plan)), Some(stamp)) = (plan, stamp) {
            let ttl = match info.cache {
                CacheHint::Ttl(seconds) => std::time::Duration::from_secs(seconds),
                _ => cache.max_ttl(),
            };
            cache.store(plan, stamp, &bundle, ttl).await;
        }
        Ok(json_response(bundle))
    }

    /// Serves a view-path function at its route; a mutation's targets go in the header only.
    async fn run_view(
        &self,
        members: &[usize],
        path_params: Vec<(String, String)>,
        parts: http::request::Parts,
        body: Bytes,
        identity: Identity,
    ) -> Result<http::Response<Bytes>, ApiError> {
        let registry = &self.inner.registry;
        let wanted = if parts.method == Method::HEAD {
            Method::GET
        } else {
            parts.method.clone()
        };
        let index = members
            .iter()
            .copied()
            .find(|&i| registry.methods[i].contains(&wanted))
            .ok_or_else(|| ApiError::method_not_allowed(&self.view_methods(members)))?;
        let function = &registry.functions[index];
        if let Some(auth) = function.auth() {
            auth.check(&identity, &parts)?;
        }
        let mut inputs = path_params.clone();
        inputs.extend(parse_query(parts.uri.query()));
        let args = convert_text_args(function, &inputs).map_err(|fields| {
            invalid_args(
                format!("invalid parameters for {:?}", function.name()),
                fields,
            )
        })?;
        let Handler::View(handler) = &function.handler else {
            unreachable!("routes hold view functions only");
        };
        let request =
            Request::from_parts(parts, body, identity, self.inner.state.clone(), path_params);
        let cookies = request.clone();
        let mut response =
            guarded(function.name(), handler(request, Args::new(args.clone()))).await?;
        for cookie in cookies.take_set_cookies() {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        if response.status().as_u16() < 400 {
            let targets = self.invalidate(index, &args).await;
            HttpTransport::add_header(&mut response, &targets);
        }
        Ok(response)
    }

    /// Resolves a successful mutation's targets and purges the cache for them.
    async fn invalidate(&self, index: usize, args: &Map<String, Value>) -> Vec<Target> {
        let registry = &self.inner.registry;
        let plans = &registry.plans[index];
        if plans.is_empty() {
            return Vec::new();
        }
        let targets = merge(plans.iter().map(|plan| plan.resolve(args)).collect());
        if let Some(cache) = &self.inner.cache {
            let mut purges: Vec<(&str, Option<ParamStrings>)> = Vec::new();
            for target in &targets {
                let info = &registry.contexts[target.context()];
                let scope: Option<ParamStrings> = target.params().map(|params| {
                    params
                        .iter()
                        .filter_map(|(k, v)| param_string(v).map(|s| (k.clone(), s)))
                        .collect()
                });
                // A scope that fetches do not key epochs by (an optional arg left null) is
                // purged broadly: correctness first.
                let scope = scope.filter(|s| {
                    info.scopes.iter().any(|known| {
                        known.len() == s.len() && known.iter().all(|n| s.contains_key(n))
                    })
                });
                let purge = (target.context(), scope);
                if !purges.contains(&purge) && !purges.contains(&(target.context(), None)) {
                    purges.push(purge);
                }
            }
            for (context, scope) in purges {
                let rev = registry.contexts[context].rev;
                cache.invalidate(context, scope.as_ref(), rev).await;
            }
        }
        // Sockets learn of the mutation after the cache forgot the stale bundles, so that a
        // refetch they trigger reads fresh data. A bus failure never fails the mutation.
        if let Err(err) = self.inner.bus.publish(&targets).await {
            tracing::warn!(error = %err, "mizan: could not publish invalidation targets");
        }
        targets
    }
}

/// Checks the CSRF token of a request that needs one: the `X-CSRFToken` header, or for an
/// urlencoded form `body`, its `csrfmiddlewaretoken` field. 403 `forbidden` otherwise.
fn check_csrf(
    csrf: &Csrf,
    session: &str,
    headers: &http::HeaderMap,
    body: Option<&Bytes>,
) -> Result<(), ApiError> {
    let from_header = headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let urlencoded = has_media_type(headers, "application/x-www-form-urlencoded");
    let token = from_header.or_else(|| {
        let body = body.filter(|_| urlencoded)?;
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()?
            .into_iter()
            .find(|(name, _)| name == CSRF_FORM_FIELD)
            .map(|(_, value)| value)
    });
    match token {
        Some(token) if csrf.verify(session, &token) => Ok(()),
        Some(_) => {
            Err(ApiError::forbidden().with_details(serde_json::json!({ "csrf": "invalid token" })))
        }
        None => {
            Err(ApiError::forbidden().with_details(serde_json::json!({ "csrf": "missing token" })))
        }
    }
}

/// A multipart body refused by a guard is drained before answering only up to this declared
/// size: enough for a form with a small file, never a wait for a large upload.
const SMALL_BODY: u64 = 64 * 1024;

/// The body length the head declares.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Runs a handler's future, turning a panic into a 500 (the server keeps serving).
async fn guarded<T>(name: &str, future: BoxFuture<Result<T, ApiError>>) -> Result<T, ApiError> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(ApiError::internal(format!(
            "function {name:?} panicked: {}",
            panic_message(panic.as_ref())
        ))),
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

fn decode(segment: &str) -> Result<String, ApiError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad_request("path segment is not valid UTF-8"))
}

/// Whether the `Content-Type` could be `multipart/form-data`: its first character is an `m`.
/// (A quick refusal for the usual JSON call, before the full comparison.)
fn may_be_multipart(headers: &http::HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|value| {
        value
            .as_bytes()
            .iter()
            .find(|byte| !byte.is_ascii_whitespace())
            .is_some_and(|byte| byte.eq_ignore_ascii_case(&b'm'))
    })
}

/// What a request body is, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Json,
    Multipart,
    Other,
}

impl Media {
    fn of(headers: &http::HeaderMap) -> Self {
        // The exact value clients send, compared before the general reading.
        if headers
            .get(CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes() == b"application/json")
        {
            return Self::Json;
        }
        match media_type(headers) {
            Some(m) if m.eq_ignore_ascii_case("application/json") => Self::Json,
            Some(m) if m.eq_ignore_ascii_case("multipart/form-data") => Self::Multipart,
            _ => Self::Other,
        }
    }
}

/// 415: `call/` (and form validation) take JSON.
fn not_json() -> ApiError {
    ApiError::from_code(
        crate::ErrorCode::UnsupportedMediaType,
        "call/ takes Content-Type: application/json",
    )
}

/// What a context fetch reads the cache with: the context, its query's pairs and, with the
/// cache on, the cache and the fetch's keys.
type PlannedFetch<'a> = (
    &'a ContextInfo,
    Vec<(String, String)>,
    Option<(&'a OriginCache, FetchPlan<'a>)>,
);

/// The query string's pairs in order, decoded as a form is (`+` is a space, percent escapes,
/// invalid UTF-8 replaced): any query string parses.
fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    let query = query.unwrap_or_default().as_bytes();
    form_urlencoded::parse(query)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// Converts text arguments (query, route); the first occurrence of a name wins and names the
/// function does not declare are ignored.
fn convert_text_args(
    function: &Function,
    inputs: &[(String, String)],
) -> Result<Map<String, Value>, Map<String, Value>> {
    let mut problems = Map::new();
    let find = |name: &str| {
        inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| RawArg::Text(v))
    };
    let converted = convert(function, find, &mut problems);
    if problems.is_empty() {
        Ok(converted)
    } else {
        Err(problems)
    }
}

fn convert<'a>(
    function: &Function,
    find: impl Fn(&str) -> Option<RawArg<'a>>,
    problems: &mut Map<String, Value>,
) -> Map<String, Value> {
    let mut converted = Map::new();
    for param in function.params() {
        match param.normalize(find(param.name()).unwrap_or(RawArg::Missing)) {
            Ok(value) => {
                converted.insert(param.name().to_owned(), value);
            }
            Err(problem) => {
                problems.insert(param.name().to_owned(), Value::from(problem));
            }
        }
    }
    converted
}
