//! [`CloseReason`]: why the server closes a socket, and the close code each reason sends.

use std::time::Duration;

use super::message::Id;

/// Why the server closes a connection. [`code`](Self::code) is the WebSocket close code the
/// client receives, [`reason`](Self::reason) the close frame's text.
///
/// | code | reasons |
/// |---|---|
/// | 1001 | [`Shutdown`](Self::Shutdown) |
/// | 1009 | [`MessageTooBig`](Self::MessageTooBig) |
/// | 1013 | [`SlowReader`](Self::SlowReader), [`Overloaded`](Self::Overloaded) |
/// | 4400 | [`Malformed`](Self::Malformed), [`Binary`](Self::Binary) |
/// | 4401 | [`NotInitialized`](Self::NotInitialized), [`Unauthenticated`](Self::Unauthenticated), [`TokenExpired`](Self::TokenExpired), [`SessionRevoked`](Self::SessionRevoked) |
/// | 4408 | [`InitTimeout`](Self::InitTimeout) |
/// | 4409 | [`DuplicateId`](Self::DuplicateId) |
/// | 4429 | [`SecondInit`](Self::SecondInit), [`TooManyEarlyMessages`](Self::TooManyEarlyMessages) |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The message is not valid JSON, not an object, has an unknown `type`, lacks a field or
    /// has one of the wrong type, or is nested too deeply.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A binary frame: the protocol speaks JSON text frames only.
    #[error("binary frames are not accepted")]
    Binary,
    /// A message larger than the limit.
    #[error("message larger than {limit} bytes")]
    MessageTooBig {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The first message was not `init`.
    #[error("the first message must be init")]
    NotInitialized,
    /// The driver refused the identity of `init` (a bad or expired token).
    #[error("unauthenticated")]
    Unauthenticated,
    /// The token's expiry passed while the socket was open.
    #[error("token expired")]
    TokenExpired,
    /// A periodic check found the session gone (logout, revocation).
    #[error("session revoked")]
    SessionRevoked,
    /// No `init` arrived within the limit.
    #[error("no init within {0:?}")]
    InitTimeout(Duration),
    /// A call, fetch or subscription reused an id that is still in use.
    #[error("duplicate id {0}")]
    DuplicateId(Id),
    /// A second `init` on the same connection.
    #[error("init sent twice")]
    SecondInit,
    /// Too many messages pipelined before the server answered `init`.
    #[error("too many messages before the init was answered")]
    TooManyEarlyMessages,
    /// The client stopped reading: its queue overflowed again, or the `resync` sent for an
    /// overflow was not read in time.
    #[error("the client does not read its messages")]
    SlowReader,
    /// The server is shutting down.
    #[error("server shutting down")]
    Shutdown,
    /// The app already holds as many sockets as it allows: an upgrade that passed the check
    /// while the last free place was being taken by another (try again later).
    #[error("too many open sockets, try again later")]
    Overloaded,
}

impl CloseReason {
    /// The WebSocket close code.
    pub fn code(&self) -> u16 {
        match self {
            Self::Shutdown => 1001,
            Self::MessageTooBig { .. } => 1009,
            Self::SlowReader | Self::Overloaded => 1013,
            Self::Malformed(_) | Self::Binary => 4400,
            Self::NotInitialized
            | Self::Unauthenticated
            | Self::TokenExpired
            | Self::SessionRevoked => 4401,
            Self::InitTimeout(_) => 4408,
            Self::DuplicateId(_) => 4409,
            Self::SecondInit | Self::TooManyEarlyMessages => 4429,
        }
    }

    /// The close frame's text: the message, cut to the 123 bytes a close frame can carry (at a
    /// character boundary).
    pub fn reason(&self) -> String {
        const MAX: usize = 123;
        let mut text = self.to_string();
        if text.len() > MAX {
            let mut end = MAX;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }
}
