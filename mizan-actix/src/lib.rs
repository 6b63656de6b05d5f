//! Mount Mizan into an [actix-web](https://docs.rs/actix-web) `App`.
//!
//! [`configure`] registers the protocol endpoints under the app's mount point, each view-path
//! function at its route, and the WebSocket endpoint (`{mount}ws/`, subprotocol `mizan.v1`,
//! messages up to 1 MiB, served with [actix-ws](https://docs.rs/actix-ws)); use it with
//! `App::configure`. Requests run on actix's own runtime: the adapter reads the payload
//! (stopping at the dispatcher's body limit with 413), converts actix's request into an
//! `http::Request<Bytes>`, and the core's response back.
//!
//! A socket's outgoing messages wait in actix-ws's channel (32 messages) and the connection's
//! write buffer while the client reads slowly; the core stops handing it more, so a client
//! that stops reading is closed with 1013 instead of growing the server's memory.
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use mizan_core::Mizan;
//!
//! # async fn serve() -> std::io::Result<()> {
//! let app = Mizan::builder().build().expect("valid app");
//! HttpServer::new(move || App::new().configure(mizan_actix::configure(app.clone())))
//!     .bind("127.0.0.1:8000")?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! # Passing values from actix middleware to functions
//!
//! actix keeps its own request extensions, which cannot be enumerated. A middleware that wants a
//! function to see a value inserts it into an `http::Extensions` stored in the actix request's
//! extensions; the adapter copies that map into the `http::Request` the core receives, where
//! `Request::extensions()` finds it:
//!
//! ```
//! use actix_web::HttpMessage;
//!
//! #[derive(Clone)]
//! struct TraceId(u64);
//!
//! fn tag(req: &actix_web::dev::ServiceRequest) {
//!     let mut extensions = req.extensions_mut();
//!     let map = extensions.get_mut::<http::Extensions>();
//!     match map {
//!         Some(map) => { map.insert(TraceId(7)); }
//!         None => {
//!             let mut map = http::Extensions::new();
//!             map.insert(TraceId(7));
//!             extensions.insert(map);
//!         }
//!     }
//! }
//! # let _ = tag;
//! ```
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `actix-session` | no | `sessions`: the caller from an [actix-session](https://docs.rs/actix-session) `Session` (`ActixSessionIdentity`, the `bridge` middleware) |

use std::sync::Arc;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{guard, HttpMessage, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::future::Either;
use futures_util::StreamExt;
use mizan_core::{ApiError, BodyStream, BoxError, Dispatcher};

pub use mizan_core;

#[cfg(feature = "actix-session")]
pub mod sessions;
mod socket;

/// Registers `dispatcher` on an actix `App` or scope: every path under the mount point, every
/// view route, and the WebSocket endpoint ([`Routes::socket`](mizan_core::Routes::socket),
/// subprotocol `mizan.v1`, messages up to 1 MiB).
///
/// The mount is a scope (a plain prefix match, guarded so that only `{mount}…` with its trailing
/// slash matches) rather than a `{rest:.*}` pattern, which actix would match with a regex on
/// every request.
pub fn configure<D: Dispatcher>(dispatcher: D) -> impl FnOnce(&mut ServiceConfig) {
    let dispatcher = Arc::new(dispatcher);
    move |config: &mut ServiceConfig| {
        let routes = dispatcher.routes();
        let to_dispatcher = || {
            let dispatcher = Arc::clone(&dispatcher);
            web::to(move |req: HttpRequest, payload: Payload| {
                let dispatcher = Arc::clone(&dispatcher);
                async move { handle(dispatcher.as_ref(), req, payload).await }
            })
        };
        if let Some(path) = &routes.socket {
            // Before the mount's scope, which would take the path otherwise.
            let dispatcher = Arc::clone(&dispatcher);
            config.route(
                path,
                web::route().to(move |req: HttpRequest, payload: Payload| {
                    socket::upgrade(Arc::clone(&dispatcher), req, payload)
                }),
            );
        }
        let mount = routes.mount.clone();
        config.service(
            web::scope(routes.mount.trim_end_matches('/'))
                .guard(guard::fn_guard(move |ctx| {
                    ctx.head().uri.path().starts_with(mount.as_str())
                }))
                .default_service(to_dispatcher()),
        );
        for view in &routes.views {
            config.route(&actix_pattern(view), to_dispatcher());
        }
    }
}

/// Handles one actix request with `dispatcher`.
pub async fn handle<D: Dispatcher + ?Sized>(
    dispatcher: &D,
    req: HttpRequest,
    payload: Payload,
) -> HttpResponse {
    let head = match to_http_head(&req) {
        Ok(head) => head,
        Err(err) => return from_http_response(err.into_response()),
    };
    // actix hands the bytes after the head of an `Upgrade` request to the upgrade, not to the
    // payload, which would then never end: outside the socket endpoint such a request is
    // answered as a plain request without a body.
    if req.head().upgrade() {
        let response = dispatcher
            .dispatch(http::Request::from_parts(head, Bytes::new()))
            .await;
        return from_http_response(response);
    }
    let response = match dispatcher.body_plan(&head).buffer_limit() {
        None => {
            dispatcher
                .dispatch_stream(head, payload_stream(payload))
                .await
        }
        Some(limit) => match read_payload(payload, limit).await {
            Ok(body) => {
                dispatcher
                    .dispatch(http::Request::from_parts(head, body))
                    .await
            }
            Err(err) => err.into_response(),
        },
    };
    from_http_response(response)
}

/// The payload as a [`BodyStream`]. actix's payload cannot leave its thread, so a local task
/// forwards it through a one-chunk channel (the backpressure stays), and stops as soon as the
/// dispatcher drops the stream (e.g. after refusing the call from its head).
fn payload_stream(mut payload: Payload) -> BodyStream {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Bytes, BoxError>>(1);
    actix_web::rt::spawn(async move {
        loop {
            let next = {
                let chunk = std::pin::pin!(payload.next());
                let closed = std::pin::pin!(sender.closed());
                match futures_util::future::select(chunk, closed).await {
                    Either::Left((chunk, _)) => chunk,
                    Either::Right(_) => return,
                }
            };
            let Some(chunk) = next else { return };
            let failed = chunk.is_err();
            let item = chunk.map_err(|e| Box::new(e) as BoxError);
            if sender.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    Box::pin(futures_util::stream::poll_fn(move |cx| {
        receiver.poll_recv(cx)
    }))
}

/// Reads the payload, refusing (413) as soon as it grows past `limit` bytes. A body that
/// arrives in one chunk (the usual small call) is kept as that chunk, without a copy.
async fn read_payload(mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    let unreadable = |e: actix_web::error::PayloadError| {
        ApiError::bad_request("could not read the request body").with_source(e)
    };
    let Some(first) = payload.next().await else {
        return Ok(Bytes::new());
    };
    let first = first.map_err(unreadable)?;
    if first.len() > limit {
        return Err(ApiError::payload_too_large(limit));
    }
    let Some(second) = payload.next().await else {
        return Ok(first);
    };
    let mut body = BytesMut::from(&first[..]);
    let mut next = Some(second);
    while let Some(chunk) = next {
        let chunk = chunk.map_err(unreadable)?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
        next = payload.next().await;
    }
    Ok(body.freeze())
}

/// actix speaks `http` 0.2, the core `http` 1: the head is carried over by names and bytes.
/// The header values are copied into one buffer that they all share (one allocation, not one
/// per header), and the usual methods and header names are mapped without parsing.
fn to_http_head(req: &HttpRequest) -> Result<http::request::Parts, ApiError> {
    fn malformed(err: impl Into<mizan_core::BoxError>) -> ApiError {
        ApiError::bad_request("malformed request head").with_source(err)
    }
    let uri = req.uri();
    let mut request = http::Request::new(());
    *request.method_mut() = match *req.method() {
        actix_web::http::Method::GET => http::Method::GET,
        actix_web::http::Method::POST => http::Method::POST,
        actix_web::http::Method::HEAD => http::Method::HEAD,
        ref other => http::Method::from_bytes(other.as_str().as_bytes()).map_err(malformed)?,
    };
    // The usual origin form (`/path?query`) is copied as is; other forms are written out.
    *request.uri_mut() = match uri.path_and_query() {
        Some(origin) if uri.scheme().is_none() => http::Uri::try_from(origin.as_str()),
        _ => http::Uri::try_from(uri.to_string()),
    }
    .map_err(malformed)?;
    let from = req.headers();
    let mut count = 0;
    let mut values = BytesMut::with_capacity(256);
    for (_, value) in from {
        count += 1;
        values.extend_from_slice(value.as_bytes());
    }
    let values = values.freeze();
    let headers = request.headers_mut();
    headers.reserve(count);
    let mut start = 0;
    for (name, value) in from {
        let end = start + value.len();
        headers.append(
            header_name_in(name).map_err(malformed)?,
            http::HeaderValue::from_maybe_shared(values.slice(start..end)).map_err(malformed)?,
        );
        start = end;
    }
    if let Some(extensions) = req.extensions().get::<http::Extensions>() {
        request.extensions_mut().extend(extensions.clone());
    }
    Ok(request.into_parts().0)
}

/// The `http` 1 name of a request header: the ones every call carries are mapped directly.
fn header_name_in(
    name: &actix_web::http::header::HeaderName,
) -> Result<http::HeaderName, http::header::InvalidHeaderName> {
    use actix_web::http::header as from;
    use http::header as to;
    Ok(match *name {
        from::HOST => to::HOST,
        from::CONTENT_TYPE => to::CONTENT_TYPE,
        from::CONTENT_LENGTH => to::CONTENT_LENGTH,
        from::ACCEPT => to::ACCEPT,
        from::ACCEPT_ENCODING => to::ACCEPT_ENCODING,
        from::USER_AGENT => to::USER_AGENT,
        from::AUTHORIZATION => to::AUTHORIZATION,
        from::COOKIE => to::COOKIE,
        from::ORIGIN => to::ORIGIN,
        from::CONNECTION => to::CONNECTION,
        ref other => http::HeaderName::from_bytes(other.as_str().as_bytes())?,
    })
}

fn from_http_response(response: http::Response<Bytes>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::with_body(status, body);
    let headers = out.headers_mut();
    for (name, value) in &parts.headers {
        // Names and values valid in `http` 1 are valid in `http` 0.2.
        if let (Ok(name), Ok(value)) = (header_name_out(name), header_value_out(value)) {
            headers.append(name, value);
        }
    }
    out.map_into_boxed_body()
}

/// The `http` 0.2 name of a response header: the ones the core writes are mapped directly.
fn header_name_out(
    name: &http::HeaderName,
) -> Result<HeaderName, actix_web::http::header::InvalidHeaderName> {
    use actix_web::http::header as to;
    use http::header as from;
    Ok(match *name {
        from::CONTENT_TYPE => to::CONTENT_TYPE,
        from::CACHE_CONTROL => to::CACHE_CONTROL,
        from::SET_COOKIE => to::SET_COOKIE,
        from::LOCATION => to::LOCATION,
        from::ALLOW => to::ALLOW,
        ref other => HeaderName::from_bytes(other.as_str().as_bytes())?,
    })
}

/// The `http` 0.2 value of a response header: the values the core writes on every response
/// are static, the others are copied.
fn header_value_out(
    value: &http::HeaderValue,
) -> Result<HeaderValue, actix_web::http::header::InvalidHeaderValue> {
    const STATIC: [&str; 3] = ["application/json", "no-store", "text/plain; charset=utf-8"];
    match STATIC
        .iter()
        .find(|known| known.as_bytes() == value.as_bytes())
    {
        Some(known) => Ok(HeaderValue::from_static(known)),
        None => HeaderValue::from_bytes(value.as_bytes()),
    }
}

/// matchit's catch-all `{*name}` is actix's `{name:.*}`; `{name}` is the same in both.
fn actix_pattern(route: &str) -> String {
    let mut out = String::with_capacity(route.len() + 4);
    let mut rest = route;
    while let Some(start) = rest.find("{*") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        out.push('{');
        out.push_str(&after[..end]);
        out.push_str(":.*}");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::actix_pattern;

    #[test]
    fn route_patterns_translate_to_actix() {
        assert_eq!(actix_pattern("/profile/{user_id}/"), "/profile/{user_id}/");
        assert_eq!(actix_pattern("/files/{*path}"), "/files/{path:.*}");
        assert_eq!(actix_pattern("/a/{x}/b/{*rest}"), "/a/{x}/b/{rest:.*}");
        assert_eq!(actix_pattern("/odd/{*open"), "/odd/{*open");
    }
}
