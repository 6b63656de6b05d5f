//! Mount Mizan into an [axum](https://docs.rs/axum) `Router`.
//!
//! [`router`] returns a `Router` that serves the protocol endpoints under the app's mount point,
//! each view-path function at its route, and the WebSocket endpoint (`{mount}ws/`, subprotocol
//! `mizan.v1`, messages up to 1 MiB); merge it into your own router. Requests go through
//! [`mizan_tower::MizanService`], so axum middleware (`Router::layer`) wraps Mizan like any
//! other route, and whatever a middleware inserts into the request's extensions reaches the
//! function's `Request::extensions()`.
//!
//! ```no_run
//! use mizan_core::Mizan;
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let app = Mizan::builder().build()?;
//! let router = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .merge(mizan_axum::router(app));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! axum::serve(listener, router).await?;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::{future, SinkExt, StreamExt};
use mizan_core::socket::{Frame, Outgoing, SocketIo};
use mizan_core::{Dispatcher, SocketLimits, SUBPROTOCOL};
use mizan_tower::MizanService;

pub use mizan_core;
pub use mizan_tower;

/// A `Router` serving `dispatcher`: `{mount}{*rest}` (and `{mount}call/`), every view route and
/// the socket.
///
/// It is generic over the router state so it merges into a `Router<S>` of any state.
pub fn router<D, S>(dispatcher: D) -> Router<S>
where
    D: Dispatcher,
    S: Clone + Send + Sync + 'static,
{
    let routes = dispatcher.routes();
    let dispatcher = Arc::new(dispatcher);
    let service = MizanService::new(Arc::clone(&dispatcher));
    let mut router =
        Router::new().route_service(&format!("{}{{*rest}}", routes.mount), service.clone());
    // The call endpoint also by its exact path: axum then matches it without capturing and
    // decoding a path parameter on every call (what the catch-all costs).
    let call = format!("{}call/", routes.mount);
    if !routes.views.contains(&call) && routes.socket.as_ref() != Some(&call) {
        router = router.route_service(&call, service.clone());
    }
    for view in &routes.views {
        router = router.route_service(view, service.clone());
    }
    if let Some(path) = &routes.socket {
        router = router.route(
            path,
            axum::routing::any(move |request: Request| upgrade(dispatcher, request)),
        );
    }
    router
}

/// Answers the socket endpoint: the core's verdict on the head, then the upgrade.
async fn upgrade<D: Dispatcher>(dispatcher: Arc<D>, request: Request) -> Response {
    let (mut head, _body) = request.into_parts();
    if let Err(err) = dispatcher.check_upgrade(&head).await {
        return err.into_response().map(axum::body::Body::from);
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut head, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let limit = SocketLimits::default().max_message_bytes;
    upgrade
        .protocols([SUBPROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            dispatcher.serve_socket(head, socket_io(socket)).await;
        })
}

/// Whether axum refused a message for being over `max_message_size` (or a frame over
/// `max_frame_size`): its error wraps tungstenite's capacity error.
fn is_too_large(err: &axum::Error) -> bool {
    let source = std::error::Error::source(err);
    matches!(
        source.and_then(|source| source.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(
            tungstenite::error::CapacityError::MessageTooLong { .. }
        ))
    )
}

/// The socket in the core's shape.
fn socket_io(socket: WebSocket) -> SocketIo {
    let (sink, stream) = socket.split();
    let incoming = stream.filter_map(|message| {
        future::ready(match message {
            Ok(Message::Text(text)) => Some(Frame::Text(text.as_str().to_owned())),
            Ok(Message::Binary(_)) => Some(Frame::Binary),
            Ok(Message::Close(_)) => Some(Frame::Closed),
            Ok(_) => None,
            Err(err) if is_too_large(&err) => Some(Frame::TooLarge),
            Err(_) => Some(Frame::Closed),
        })
    });
    let outgoing = sink.with(|message: Outgoing| {
        future::ready(Ok::<_, axum::Error>(match message {
            Outgoing::Text(text) => Message::Text(text.into()),
            Outgoing::Close(code, reason) => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        }))
    });
    SocketIo::new(incoming, outgoing, tokio::time::sleep)
}
