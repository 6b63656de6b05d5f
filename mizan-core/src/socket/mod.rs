//! The WebSocket protocol as a state machine: messages in, actions and messages out, time
//! passed in.
//!
//! A [`Connection`] is one socket's protocol. It owns no socket, reads no clock, starts no
//! timer and runs no function: the driver (an adapter) feeds it what arrives, does what it
//! asks ([`Action`]), sends what it queues, and calls [`Connection::handle_timeout`] at
//! [`Connection::next_deadline`]. Every rule below is therefore testable with virtual time.
//!
//! # Messages
//!
//! JSON text frames. The client sends:
//!
//! | message | meaning |
//! |---|---|
//! | `{"type":"init","token"?}` | first message; the access token rides here (a browser cannot set headers on a socket) |
//! | `{"type":"call","id","fn","args"}` | call a function; `args` is an object (absent: `{}`) |
//! | `{"type":"ctx","id","name","params"}` | fetch a context bundle; `params` an object of strings, numbers, booleans |
//! | `{"type":"sub","id","context","params"?}` | watch a context instance for invalidations |
//! | `{"type":"unsub","id"}` | stop watching |
//! | `{"type":"ping"}` | keep-alive |
//!
//! The server answers:
//!
//! | message | when |
//! |---|---|
//! | `{"type":"ack"}` | `init` accepted |
//! | `{"type":"result","id","result","invalidate"}` | a call succeeded (the body of `POST call/` plus `type` and `id`) |
//! | `{"type":"data","id","data"}` | a fetched bundle |
//! | `{"type":"error","id","error":{"code","message","details"}}` | a call, fetch, `sub` or `unsub` failed (the wire error of every transport) |
//! | `{"type":"sub_ok","id"}` | a subscription started |
//! | `{"type":"invalidate","id","targets"}` | targets made the subscription `id` stale |
//! | `{"type":"resync"}` | invalidations were lost: everything subscribed may be stale |
//! | `{"type":"pong"}` | answer to `ping` (several unread pings get one `pong`) |
//!
//! An `id` is a string (at most 128 bytes) or an integer, echoed back as sent. Calls,
//! fetches and subscriptions share one id space: an id is in use while its call or fetch runs
//! and until its reply has been handed to the socket, and while its subscription lasts.
//! Unknown fields are ignored.
//!
//! # Lifecycle
//!
//! 1. **Awaiting `init`.** Anything else first closes with 4401; no `init` within 5 s closes
//!    with 4408.
//! 2. **Authenticating.** `init` becomes [`Action::Authenticate`]. Messages the client
//!    pipelines meanwhile are kept, in order (at most 32, 1 MiB in all, else 4429), and
//!    handled once the driver accepts the identity ([`Connection::on_init_verdict`]): the
//!    client gets `ack`, then their replies. A refused identity closes with 4401.
//! 3. **Ready.** Calls, fetches and subscriptions become actions; their outcomes come back
//!    through `on_*` methods and leave as messages. The socket closes with 4401 when the
//!    token's expiry passes ([`Expiry`]) or when a periodic [`Action::Recheck`] finds the
//!    session gone (every 5 s by default).
//! 4. **Closed** after an [`Action::Close`]; every later input is ignored.
//!
//! A second `init` closes with 4429; a call, fetch or `sub` reusing an id in use with 4409. Over
//! 32 calls in flight or 128 subscriptions, the request gets an `error` for its id
//! (`too_many_requests`, `details.limit` = `"calls"` or `"subscriptions"`); the socket stays
//! open. `unsub` of an id that is no subscription gets a `not_found` error for that id.
//!
//! # Close codes
//!
//! | code | reason |
//! |---|---|
//! | 4400 | malformed message: not JSON, not an object, unknown `type`, a field missing or of the wrong type, nesting deeper than 32, a binary frame |
//! | 4401 | a message before `init`, identity refused, token expired, session revoked |
//! | 4408 | no `init` within 5 s |
//! | 4409 | duplicate id |
//! | 4429 | second `init`, too many messages before `init` was answered |
//! | 1009 | a message over 1 MiB |
//! | 1013 | the client stopped reading (after a `resync`); an upgrade that raced past the app's socket cap |
//! | 1001 | server shutdown |
//!
//! # Subscriptions and pushes
//!
//! `sub` becomes [`Action::Subscribe`]: the driver checks that the context exists and that the
//! caller passes the guards a fetch of it would. Accepted, the client gets `sub_ok` and from
//! then on every target the driver hands to [`Connection::on_invalidation`] that makes the
//! watched instance stale (the rule is on [`Filter`]): subscribe, then fetch after `sub_ok`,
//! and no change is missed. Refused, it gets an `error` for that id.
//!
//! # Outbound queue and slow readers
//!
//! Messages wait in a bounded queue until the driver pulls them
//! ([`Connection::poll_transmit`]), which it does only when the socket can take them, so a
//! slow client slows its own queue and nobody else's. Invalidations waiting for one
//! subscription are coalesced into one message. When the queue is full, or the client has read
//! nothing for 10 s, the pending invalidations are dropped and one `resync` takes their place;
//! a `resync` still unread 10 s later, or a queue that fills up again with replies while it
//! waits, closes the socket with 1013.
//!
//! Every bound is a field of [`SocketLimits`].
//!
//! # A driver
//!
//! A driver waits on the socket, the invalidation bus, finished calls and the next deadline at
//! once; whichever comes first is fed in, then it runs the actions and sends what is queued.
//! Here the inputs are scripted and the clock is virtual:
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use mizan_core::socket::{Action, Connection, Expiry, SocketLimits};
//! use mizan_core::{ApiError, Target};
//! use serde_json::json;
//!
//! /// Runs the connection's actions and sends its messages; the close code, once closed.
//! fn turn(conn: &mut Connection, now: Instant, sent: &mut Vec<String>) -> Option<u16> {
//!     while let Some(action) = conn.poll_action() {
//!         match action {
//!             Action::Authenticate { token } => {
//!                 // Verify the token; tell the connection when it expires.
//!                 let verdict = match token {
//!                     Some(token) if token.expose() == "valid" => {
//!                         Ok(Expiry::At(now + Duration::from_secs(60)))
//!                     }
//!                     _ => Err(ApiError::unauthenticated()),
//!                 };
//!                 conn.on_init_verdict(now, verdict);
//!             }
//!             Action::Subscribe { id, context, .. } => {
//!                 // The guards of a fetch of `context`.
//!                 let verdict = match context.as_str() {
//!                     "user" => Ok(()),
//!                     _ => Err(ApiError::not_found("unknown context")),
//!                 };
//!                 conn.on_subscribe_verdict(now, id, verdict);
//!             }
//!             Action::Call { .. } | Action::Fetch { .. } => {
//!                 // Spawn it; its outcome comes back through `on_call_result`,
//!                 // `on_fetch_result` or `on_response`, and a call's targets go to the bus.
//!             }
//!             Action::Recheck => conn.on_recheck_verdict(now, Ok(())),
//!             Action::Close(reason) => return Some(reason.code()),
//!             _ => {}
//!         }
//!     }
//!     while let Some(text) = conn.poll_transmit(now) {
//!         sent.push(text); // socket.send(text).await
//!     }
//!     None
//! }
//!
//! let start = Instant::now(); // the driver's clock; the connection reads none
//! let mut conn = Connection::new(SocketLimits::default(), start);
//! let mut sent = Vec::new();
//!
//! // `sub` pipelined right behind `init`: handled once the token is accepted.
//! conn.handle_text(start, r#"{"type":"init","token":"valid"}"#);
//! conn.handle_text(start, r#"{"type":"sub","id":1,"context":"user","params":{"user_id":5}}"#);
//! turn(&mut conn, start, &mut sent);
//! assert_eq!(sent, [r#"{"type":"ack"}"#, r#"{"type":"sub_ok","id":1}"#]);
//!
//! // A mutation somewhere published targets on the bus: only the matching one is pushed.
//! let user = |id: i64| Target::Context {
//!     context: "user".into(),
//!     params: json!({"user_id": id}).as_object().cloned(),
//! };
//! conn.on_invalidation(start, &[user(6), user(5)]);
//! turn(&mut conn, start, &mut sent);
//! assert_eq!(
//!     sent[2],
//!     r#"{"type":"invalidate","id":1,"targets":[{"context":"user","params":{"user_id":5}}]}"#
//! );
//!
//! // Time passes: the session is re-checked every 5 s, until the token expires after 60 s.
//! let mut now = start;
//! let code = loop {
//!     now = conn.next_deadline().expect("an expiring token");
//!     conn.handle_timeout(now);
//!     if let Some(code) = turn(&mut conn, now, &mut sent) {
//!         break code;
//!     }
//! };
//! assert_eq!((code, now - start), (4401, Duration::from_secs(60)));
//! assert!(conn.is_closed());
//! ```

mod close;
mod connection;
mod filter;
mod io;
mod limits;
mod message;
mod open;
#[cfg(test)]
mod tests;

pub use close::CloseReason;
pub use connection::{Action, Connection, Expiry};
pub use filter::Filter;
pub use io::{Frame, Outgoing, SocketIo};
pub use limits::SocketLimits;
pub use message::{Id, Token};
pub(crate) use open::OpenSockets;
