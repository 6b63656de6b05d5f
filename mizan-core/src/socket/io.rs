//! [`SocketIo`]: what an adapter hands the core to run one upgraded WebSocket.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Sink, Stream};

use crate::error::BoxError;

/// A message read from the socket, as the adapter's WebSocket library delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A complete text message.
    Text(String),
    /// A complete binary message (the protocol has none: the socket closes with 4400).
    Binary,
    /// A message the library refused because it is over the size limit (closes with 1009).
    TooLarge,
    /// The client closed the socket, or the connection failed.
    Closed,
}

/// A message for the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A text message.
    Text(String),
    /// A close frame with its code and reason; nothing is sent after it.
    Close(u16, String),
}

type Sleep = Box<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// One upgraded WebSocket, in the shape the core drives it: a stream of incoming
/// [`Frame`]s (its end counts as [`Frame::Closed`]), a sink of [`Outgoing`] messages, and the
/// runtime's sleep, the only timer the core uses. Ping/pong frames are the library's business.
///
/// ```
/// use std::time::Duration;
/// use futures_util::{sink, stream, FutureExt};
/// use mizan_core::socket::{Frame, Outgoing, SocketIo};
///
/// let io = SocketIo::new(
///     stream::iter([Frame::Text(r#"{"type":"init"}"#.to_owned())]),
///     sink::drain(),
///     // A runtime's sleep, e.g. `|d| Box::pin(tokio::time::sleep(d))`.
///     |_duration: Duration| futures_util::future::pending::<()>().boxed(),
/// );
/// # let _ = io;
/// ```
pub struct SocketIo {
    pub(crate) incoming: Pin<Box<dyn Stream<Item = Frame> + Send>>,
    pub(crate) outgoing: Pin<Box<dyn Sink<Outgoing, Error = BoxError> + Send>>,
    pub(crate) sleep: Sleep,
}

impl SocketIo {
    /// Bundles the socket's two halves and a sleep.
    pub fn new<I, O, S, F>(incoming: I, outgoing: O, sleep: S) -> Self
    where
        I: Stream<Item = Frame> + Send + 'static,
        O: Sink<Outgoing> + Send + 'static,
        O::Error: Into<BoxError>,
        S: Fn(Duration) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        use futures_util::SinkExt;
        Self {
            incoming: Box::pin(incoming),
            outgoing: Box::pin(outgoing.sink_map_err(Into::into)),
            sleep: Box::new(move |duration| Box::pin(sleep(duration))),
        }
    }
}

impl fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIo").finish_non_exhaustive()
    }
}
