//! Serve any Mizan [`Dispatcher`] as a [`tower::Service`].
//!
//! [`MizanService`] asks the dispatcher how to read each request's body
//! ([`Dispatcher::body_plan`]): most bodies are read whole (stopping at the limit with 413) and
//! handed over as an `http::Request<Bytes>`; a streamed one (a multipart upload) is handed to
//! [`Dispatcher::dispatch_stream`] as it arrives, so the dispatcher can answer before the
//! files are read. It works with any
//! `http_body::Body`, so it runs on plain hyper (through `hyper-util`'s `TowerToHyperService`),
//! inside axum, or under any tower middleware.
//!
//! ```no_run
//! use mizan_core::Mizan;
//! use mizan_tower::MizanService;
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let app = Mizan::builder().build()?;
//! let service = MizanService::new(app);
//! // e.g. hyper_util::service::TowerToHyperService::new(service), served per connection.
//! # let _ = service;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `tower-sessions` | no | `sessions`: the caller from a [tower-sessions](https://docs.rs/tower-sessions) `Session` (`TowerSessionIdentity`) |
//! | `websocket` | no | the socket endpoint (`{mount}ws/`) on hyper: serve connections with `.with_upgrades()` |

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use mizan_core::{ApiError, BodyStream, BoxError, Dispatcher};

pub use mizan_core;

#[cfg(feature = "websocket")]
mod socket;

#[cfg(feature = "tower-sessions")]
pub mod sessions;

/// The response body of [`MizanService`].
pub type MizanBody = Full<Bytes>;

/// A `tower::Service` that serves a [`Dispatcher`]. Cloning is cheap (one `Arc`).
#[derive(Debug)]
pub struct MizanService<D> {
    dispatcher: Arc<D>,
    /// The socket endpoint's path, served with feature `websocket`.
    socket: Option<Arc<str>>,
}

impl<D> Clone for MizanService<D> {
    fn clone(&self) -> Self {
        Self {
            dispatcher: Arc::clone(&self.dispatcher),
            socket: self.socket.clone(),
        }
    }
}

impl<D: Dispatcher> MizanService<D> {
    /// Serves `dispatcher` (usually a `mizan_core::Mizan` app).
    pub fn new(dispatcher: D) -> Self {
        let socket = dispatcher.routes().socket.map(Arc::from);
        Self {
            dispatcher: Arc::new(dispatcher),
            socket,
        }
    }

    /// The dispatcher it serves.
    pub fn dispatcher(&self) -> &D {
        &self.dispatcher
    }
}

impl<D, B> tower::Service<http::Request<B>> for MizanService<D>
where
    D: Dispatcher,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<MizanBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let dispatcher = Arc::clone(&self.dispatcher);
        #[cfg(feature = "websocket")]
        if self.socket.as_deref() == Some(request.uri().path()) {
            let (parts, _body) = request.into_parts();
            return Box::pin(
                async move { Ok(socket::upgrade(dispatcher, parts).await.map(Full::new)) },
            );
        }
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            // Through `&D`: `Arc<D>`'s own `Dispatcher` impl would box the future once more.
            let response = match D::body_plan(&dispatcher, &parts).buffer_limit() {
                None => D::dispatch_stream(&dispatcher, parts, body_stream(body)).await,
                Some(limit) => match read_body(body, limit).await {
                    Ok(bytes) => {
                        D::dispatch(&dispatcher, http::Request::from_parts(parts, bytes)).await
                    }
                    Err(err) => err.into_response(),
                },
            };
            Ok(response.map(Full::new))
        })
    }
}

/// A body's data frames as a [`BodyStream`] (trailers are skipped).
pub fn body_stream<B>(body: B) -> BodyStream
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Box::pin(
        body.into_data_stream()
            .map_ok(|mut data| data.copy_to_bytes(data.remaining()))
            .map(|chunk| chunk.map_err(Into::into)),
    )
}

/// Reads a body, refusing (413) as soon as it grows past `limit` bytes.
pub async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(ApiError::payload_too_large(limit));
    }
    let refusal = |err: BoxError| {
        if err.is::<LengthLimitError>() {
            ApiError::payload_too_large(limit)
        } else {
            ApiError::bad_request("could not read the request body").with_source(err)
        }
    };
    let mut body = std::pin::pin!(Limited::new(body, limit));
    // The usual body arrives as one data frame and is kept as it is (no buffer list, no copy);
    // more frames are joined.
    let mut joined: Option<BytesMut> = None;
    while !body.is_end_stream() {
        let Some(frame) = body.frame().await else {
            break;
        };
        let Ok(mut data) = frame.map_err(refusal)?.into_data() else {
            continue; // trailers
        };
        let data = data.copy_to_bytes(data.remaining());
        if body.is_end_stream() && joined.is_none() {
            return Ok(data);
        }
        match &mut joined {
            None => joined = Some(BytesMut::from(data)),
            Some(joined) => joined.extend_from_slice(&data),
        }
    }
    Ok(joined.map(BytesMut::freeze).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mizan_core::testing::block_on;
    use mizan_core::{Function, Limits, Mizan};
    use tower::Service;

    fn service(limit: usize) -> MizanService<Mizan> {
        let app = Mizan::builder()
            .with_function(
                Function::new("echo")
                    .with_param::<String>("message")
                    .handler(|_, mut args| async move { args.take::<String>("message") }),
            )
            .with_limits(Limits {
                max_body_bytes: limit,
                ..Limits::default()
            })
            .build()
            .unwrap();
        MizanService::new(app)
    }

    fn call(service: &mut MizanService<Mizan>, body: &str) -> http::Response<MizanBody> {
        let request = http::Request::post("/api/mizan/call/")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        block_on(service.call(request)).unwrap()
    }

    fn body(response: http::Response<MizanBody>) -> Bytes {
        block_on(response.into_body().collect()).unwrap().to_bytes()
    }

    #[test]
    fn serves_calls_over_any_body() {
        let response = call(
            &mut service(1024),
            r#"{"fn":"echo","args":{"message":"hi"}}"#,
        );
        assert_eq!(response.status(), 200);
        assert_eq!(body(response), r#"{"result":"hi","invalidate":[]}"#);
    }

    #[test]
    fn refuses_bodies_over_the_limit_with_413() {
        let response = call(
            &mut service(16),
            r#"{"fn":"echo","args":{"message":"a long message"}}"#,
        );
        assert_eq!(response.status(), 413);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert!(body(response).starts_with(br#"{"error":{"code":"payload_too_large""#));
    }
}
