//! The sans-IO core of Mizan: expose plain async Rust functions to a frontend.
//!
//! Mark a function once with [`#[client]`](client) and it becomes an RPC endpoint
//! (`POST /api/mizan/call/`) or a member of a *context* fetched as one bundle
//! (`GET /api/mizan/ctx/<name>/`). Mutations declare what they `affect`; their responses tell the
//! client which contexts went stale, scoped by matching parameter names, and the origin cache
//! drops what they made stale. Guards, an edge manifest and an in-process test client come with
//! it.
//!
//! This crate does no I/O and depends on no async runtime: a [`Mizan`] app turns an
//! `http::Request<Bytes>` into an `http::Response<Bytes>` ([`Dispatcher`]). Serve it with an
//! adapter (`mizan-axum`, `mizan-tower`), or use it through the `mizan` facade crate.
//!
//! # Quick start
//!
//! ```
//! use mizan_core::testing::{block_on, TestClient};
//! use mizan_core::{client, ApiError, Mizan, Request};
//! use schemars::JsonSchema;
//! use serde::Serialize;
//!
//! // Results and arguments are serde types that describe themselves for the IR.
//! #[derive(Serialize, JsonSchema)]
//! struct Profile { id: i64, name: String }
//!
//! #[client(context = "user")]
//! async fn user_profile(_req: &Request, user_id: i64) -> Result<Profile, ApiError> {
//!     Ok(Profile { id: user_id, name: "Ann".into() })
//! }
//!
//! #[client(affects = "user")]
//! async fn update_profile(_req: &Request, user_id: i64, name: String) -> Result<bool, ApiError> {
//!     Ok(user_id > 0 && !name.is_empty())
//! }
//!
//! let app = Mizan::builder()
//!     .register::<user_profile>()
//!     .register::<update_profile>()
//!     .build()
//!     .expect("a valid app");
//!
//! let client = TestClient::new(&app);
//! let bundle = block_on(client.fetch("user", &[("user_id", "5")]));
//! assert_eq!(bundle.json(), serde_json::json!({"user_profile": {"id": 5, "name": "Ann"}}));
//!
//! let call = block_on(client.call("update_profile", serde_json::json!({"user_id": 5, "name": "Bo"})));
//! assert_eq!(call.invalidate_header(), Some("user;user_id=5"));
//! ```
//!
//! # Modules
//!
//! | module | concern |
//! |---|---|
//! | [`registry`] | function definitions, the builder API without the macro |
//! | [`dispatch`] | the [`Dispatcher`] trait and the wire protocol |
//! | [`invalidation`] | invalidation targets, merging, the `X-Mizan-Invalidate` header |
//! | [`cache`] | cache keys, [`CacheBackend`], [`MemoryCache`], the never-stale mechanism |
//! | [`identity`], [`auth`] | who calls, and the guards |
//! | [`csrf`] | CSRF tokens for requests authenticated by a cookie |
//! | [`transport`] | HTTP and IPC encodings of a call |
//! | [`upload`] | [`Upload`] arguments, multipart decoding and its limits |
//! | [`socket`] | the WebSocket protocol state machine, subscriptions and live invalidation |
//! | [`bus`] | the [`InvalidationBus`] that carries targets to every instance's sockets, [`MemoryBus`] |
//! | [`manifest`] | the edge manifest |
//! | [`form`] | forms and formsets: schema, validation issues, [`Formset`](form::Formset) |
//! | [`error`] | the error enums and the wire error |
//! | [`testing`] | [`TestClient`](testing::TestClient), `block_on`, a manual clock |

// Lets `#[client]` expansions name `::mizan_core` inside this crate's own tests.
#[allow(unused_extern_crates)]
extern crate self as mizan_core;

mod app;
pub mod auth;
pub mod bus;
pub mod cache;
mod clock;
pub mod csrf;
pub mod dispatch;
pub mod error;
mod escape;
pub mod form;
pub mod identity;
pub mod invalidation;
pub mod ir;
pub mod manifest;
pub mod registry;
mod request;
mod secret;
pub mod socket;
mod socket_driver;
pub mod testing;
pub mod transport;
pub mod upload;

pub use app::{Limits, Mizan, MizanBuilder, DEFAULT_MOUNT};
pub use auth::{Auth, Predicate};
pub use bus::{BusError, BusEvent, BusReceiver, InvalidationBus, MemoryBus};
pub use cache::{derive_cache_key, param_string, CacheBackend, MemoryCache};
pub use clock::{Clock, SystemClock};
pub use csrf::Csrf;
pub use dispatch::{Dispatcher, Routes};
pub use error::{ApiError, AuthError, BoxError, BuildError, CacheError, Error, ErrorCode};
pub use identity::{AnonymousIdentity, Identity, IdentitySource};
pub use invalidation::{InvalidateHeaderError, Target, INVALIDATE_HEADER};
pub use manifest::USER_PARAMS;
pub use registry::{
    Args, CacheHint, ClientFunction, Function, FunctionBuilder, IntoData, IntoView, Param,
};
pub use request::Request;
pub use secret::Secret;
pub use socket::SocketLimits;
pub use socket_driver::SUBPROTOCOL;
pub use transport::{CallOutcome, HttpTransport, IpcTransport, Transport};
pub use upload::{BodyStream, Upload, UploadLimits};

/// Marks an async function as a Mizan function: its options and the function shapes it takes
/// are listed in the `mizan-macros` crate docs, and the crate docs above show it at work.
pub use mizan_macros::client;

pub use async_trait::async_trait;
pub use bytes;
pub use cookie;
pub use garde;
pub use http;
pub use schemars;

/// Items the `#[client]` macro expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::{Inputs, IntoData, IntoView, FORM_ARG};
}
