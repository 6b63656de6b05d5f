//! The socket endpoint on actix-web, with [actix-ws](https://docs.rs/actix-ws): the core's
//! verdict on the head, the 101 answer, then the socket driven by the core.
//!
//! actix's request payload cannot leave its thread while the core's socket must be `Send`: a
//! local task reads the messages and hands them over through a one-message channel (so the
//! backpressure stays), answering pings and the client's close itself. The outgoing half is
//! actix-ws's `Session`, a sink over a bounded channel that the connection drains as the
//! client reads; a close frame counts as sent once the connection's response has ended.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use actix_web::web::{BytesMut, Payload};
use actix_web::{HttpRequest, HttpResponse};
use actix_ws::{
    CloseCode, CloseReason, Closed, Item, Message, MessageStream, ProtocolError, Session,
};
use futures_util::future::{self, Either};
use futures_util::{Sink, StreamExt};
use mizan_core::socket::{Frame, Outgoing, SocketIo};
use mizan_core::{ApiError, Dispatcher, SocketLimits, SUBPROTOCOL};
use tokio::sync::{mpsc, oneshot};

use crate::{from_http_response, to_http_head};

/// Answers a request to the socket endpoint: 101 and a local task that serves the socket, or
/// the core's refusal.
pub(crate) async fn upgrade<D: Dispatcher + ?Sized + 'static>(
    dispatcher: Arc<D>,
    req: HttpRequest,
    payload: Payload,
) -> HttpResponse {
    let head = match to_http_head(&req) {
        Ok(head) => head,
        Err(err) => return from_http_response(err.into_response()),
    };
    if let Err(err) = dispatcher.check_upgrade(&head).await {
        return from_http_response(err.into_response());
    }
    let (response, session, stream) =
        match actix_ws::handle_with_protocols(&req, payload, &[SUBPROTOCOL]) {
            Ok(parts) => parts,
            Err(err) => {
                let err = ApiError::bad_request("invalid WebSocket handshake")
                    .with_source(err.to_string());
                return from_http_response(err.into_response());
            }
        };
    let limit = SocketLimits::default().max_message_bytes;
    let (frames, mut received) = mpsc::channel(1);
    let (closing, on_closing) = oneshot::channel();
    let (ended, on_ended) = oneshot::channel();
    let reader = Reader {
        stream: stream.max_frame_size(limit),
        session: session.clone(),
        frames,
        closing: on_closing,
        _ended: ended,
        limit,
    };
    actix_web::rt::spawn(reader.run());
    let incoming = futures_util::stream::poll_fn(move |cx| received.poll_recv(cx));
    let outgoing = SessionSink {
        session,
        closing: Some(closing),
        ended: Some(on_ended),
        closed: false,
    };
    let io = SocketIo::new(incoming, outgoing, actix_web::rt::time::sleep);
    actix_web::rt::spawn(async move { dispatcher.serve_socket(head, io).await });
    response
}

/// The outgoing half: messages go into actix-ws's session. After a close frame, flushing waits
/// until the connection's response has ended, so the frame has reached the connection.
struct SessionSink {
    session: Session,
    /// Tells the reader that the server is closing.
    closing: Option<oneshot::Sender<()>>,
    /// Completes (or fails) when the reader has seen the connection end.
    ended: Option<oneshot::Receiver<()>>,
    closed: bool,
}

impl Sink<Outgoing> for SessionSink {
    type Error = Closed;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        Pin::new(&mut self.session).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, message: Outgoing) -> Result<(), Closed> {
        let message = match message {
            Outgoing::Text(text) => Message::Text(text.into()),
            Outgoing::Close(code, reason) => {
                self.closed = true;
                if let Some(closing) = self.closing.take() {
                    let _ = closing.send(());
                }
                Message::Close(Some(CloseReason {
                    code: CloseCode::from(code),
                    description: Some(reason),
                }))
            }
        };
        Pin::new(&mut self.session).start_send(message)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        ready!(Pin::new(&mut self.session).poll_flush(cx))?;
        if self.closed {
            if let Some(ended) = &mut self.ended {
                // Sent or dropped: either way the reader is done.
                let _ = ready!(Pin::new(ended).poll(cx));
                self.ended = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.session).poll_close(cx)
    }
}

/// The local task that reads the client's messages.
struct Reader {
    stream: MessageStream,
    /// For pongs and the echo of the client's close.
    session: Session,
    frames: mpsc::Sender<Frame>,
    closing: oneshot::Receiver<()>,
    /// Dropped when the reader returns: the connection has ended (or nobody listens any more).
    _ended: oneshot::Sender<()>,
    limit: usize,
}

/// Why the reader stops forwarding.
enum Stop {
    /// The driver is gone.
    Gone,
    /// The server sent its close frame.
    Closing,
}

impl Reader {
    /// Forwards complete messages (continuations joined, at most `limit` bytes) until the
    /// socket ends, the driver stops listening, or the server closes; pings are answered and
    /// the client's close echoed here. After the server's close, it reads on (dropping what
    /// comes) until the connection ends or the driver stops waiting for that.
    async fn run(mut self) {
        if let Stop::Closing = self.forward().await {
            loop {
                let next = std::pin::pin!(self.stream.next());
                let gone = std::pin::pin!(self.frames.closed());
                match future::select(next, gone).await {
                    Either::Left((Some(_), _)) => {}
                    // The connection ended, or the driver stopped waiting for it.
                    _ => return,
                }
            }
        }
    }

    async fn forward(&mut self) -> Stop {
        // A message sent in several frames, while it arrives: its bytes and whether it is text.
        let mut partial: Option<(BytesMut, bool)> = None;
        loop {
            let next = match until_stop(&self.frames, &mut self.closing, self.stream.next()).await {
                Ok(next) => next,
                Err(stop) => return stop,
            };
            let frame = match next {
                Some(Ok(Message::Text(text))) => Frame::Text(String::from(text)),
                Some(Ok(Message::Binary(_))) => Frame::Binary,
                Some(Ok(Message::Continuation(item))) => {
                    match join(&mut partial, item, self.limit) {
                        Some(frame) => frame,
                        None => continue,
                    }
                }
                Some(Ok(Message::Ping(bytes))) => {
                    let mut session = self.session.clone();
                    if let Err(stop) =
                        until_stop(&self.frames, &mut self.closing, session.pong(&bytes)).await
                    {
                        return stop;
                    }
                    continue;
                }
                Some(Ok(Message::Pong(_) | Message::Nop)) => continue,
                Some(Ok(Message::Close(reason))) => {
                    let _ = self.session.clone().close(reason).await;
                    Frame::Closed
                }
                Some(Err(ProtocolError::Overflow)) => Frame::TooLarge,
                Some(Err(_)) | None => Frame::Closed,
            };
            let last = matches!(frame, Frame::Closed | Frame::TooLarge);
            let frames = self.frames.clone();
            match until_stop(&self.frames, &mut self.closing, frames.send(frame)).await {
                Ok(Ok(())) if !last => {}
                Ok(_) => return Stop::Gone,
                Err(stop) => return stop,
            }
        }
    }
}

/// Runs `work` unless the driver goes away (`frames` closed) or the server closes first.
async fn until_stop<T>(
    frames: &mpsc::Sender<Frame>,
    closing: &mut oneshot::Receiver<()>,
    work: impl Future<Output = T>,
) -> Result<T, Stop> {
    let work = std::pin::pin!(work);
    let gone = std::pin::pin!(frames.closed());
    let stop = future::select(gone, closing);
    match future::select(work, stop).await {
        Either::Left((done, _)) => Ok(done),
        Either::Right((Either::Left(_), _)) => Err(Stop::Gone),
        Either::Right((Either::Right((Ok(()), _)), _)) => Err(Stop::Closing),
        Either::Right((Either::Right((Err(_), _)), _)) => Err(Stop::Gone),
    }
}

/// Adds a continuation frame to the message it belongs to; the message once complete, or
/// [`Frame::TooLarge`] as soon as it grows past `limit` bytes.
fn join(partial: &mut Option<(BytesMut, bool)>, item: Item, limit: usize) -> Option<Frame> {
    let (bytes, last) = match item {
        Item::FirstText(bytes) => {
            *partial = Some((BytesMut::new(), true));
            (bytes, false)
        }
        Item::FirstBinary(bytes) => {
            *partial = Some((BytesMut::new(), false));
            (bytes, false)
        }
        Item::Continue(bytes) => (bytes, false),
        Item::Last(bytes) => (bytes, true),
    };
    // actix's codec refuses a continuation that does not follow a first frame.
    let (buffer, _) = partial.as_mut()?;
    if buffer.len() + bytes.len() > limit {
        *partial = None;
        return Some(Frame::TooLarge);
    }
    buffer.extend_from_slice(&bytes);
    if !last {
        return None;
    }
    let (buffer, text) = partial.take()?;
    Some(match (text, String::from_utf8(buffer.to_vec())) {
        (true, Ok(text)) => Frame::Text(text),
        // Text that is not UTF-8 breaks the protocol, as it would in one frame.
        (true, Err(_)) => Frame::Closed,
        (false, _) => Frame::Binary,
    })
}

#[cfg(test)]
mod tests {
    use actix_web::web::Bytes;

    use super::*;

    #[test]
    fn continuations_join_into_one_message_up_to_the_limit() {
        let mut partial = None;
        let part = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert_eq!(
            join(&mut partial, Item::FirstText(part("{\"type\"")), 64),
            None
        );
        assert_eq!(
            join(&mut partial, Item::Continue(part(":\"ping")), 64),
            None
        );
        assert_eq!(
            join(&mut partial, Item::Last(part("\"}")), 64),
            Some(Frame::Text(r#"{"type":"ping"}"#.into()))
        );
        assert_eq!(join(&mut partial, Item::FirstBinary(part("ab")), 64), None);
        assert_eq!(
            join(&mut partial, Item::Last(part("cd")), 64),
            Some(Frame::Binary)
        );
        assert_eq!(join(&mut partial, Item::FirstText(part("0123")), 6), None);
        assert_eq!(
            join(&mut partial, Item::Continue(part("456")), 6),
            Some(Frame::TooLarge)
        );
        assert_eq!(join(&mut partial, Item::Last(part("x")), 6), None);
    }
}
