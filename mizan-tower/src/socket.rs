//! The socket endpoint on hyper (feature `websocket`): the core's verdict on the head, the 101
//! answer, then the upgraded connection as a `tokio-tungstenite` socket driven by the core.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{future, SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use mizan_core::socket::{Frame, Outgoing, SocketIo};
use mizan_core::{ApiError, Dispatcher, SocketLimits, SUBPROTOCOL};
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::WebSocketStream;

/// Answers a request to the socket endpoint: 101 and a task that serves the socket, or the
/// core's refusal. Needs hyper's upgrades (`serve_connection(..).with_upgrades()`).
pub(crate) async fn upgrade<D: Dispatcher>(
    dispatcher: Arc<D>,
    mut head: http::request::Parts,
) -> http::Response<Bytes> {
    if let Err(err) = dispatcher.check_upgrade(&head).await {
        return err.into_response();
    }
    let key = head.headers.get(http::header::SEC_WEBSOCKET_KEY).cloned();
    let (Some(key), Some(on_upgrade)) = (key, head.extensions.remove::<OnUpgrade>()) else {
        return ApiError::bad_request("this connection cannot be upgraded").into_response();
    };
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let limit = SocketLimits::default().max_message_bytes;
        let config = WebSocketConfig::default()
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit));
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        dispatcher.serve_socket(head, socket_io(socket)).await;
    });
    let mut response = http::Response::new(Bytes::new());
    *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("upgrade"),
    );
    headers.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static(SUBPROTOCOL),
    );
    if let Ok(accept) = http::HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The socket in the core's shape.
fn socket_io<S>(socket: WebSocketStream<S>) -> SocketIo
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = socket.split();
    let incoming = stream.filter_map(|message| {
        future::ready(match message {
            Ok(Message::Text(text)) => Some(Frame::Text(text.as_str().to_owned())),
            Ok(Message::Binary(_)) => Some(Frame::Binary),
            Ok(Message::Close(_)) => Some(Frame::Closed),
            Ok(_) => None,
            Err(Error::Capacity(CapacityError::MessageTooLong { .. })) => Some(Frame::TooLarge),
            Err(_) => Some(Frame::Closed),
        })
    });
    let outgoing = sink.with(|message: Outgoing| {
        future::ready(Ok::<_, Error>(match message {
            Outgoing::Text(text) => Message::Text(text.into()),
            Outgoing::Close(code, reason) => Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            })),
        }))
    });
    SocketIo::new(incoming, outgoing, tokio::time::sleep)
}
