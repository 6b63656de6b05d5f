#![doc = include_str!("../README.md")]
//!
//! # Crates
//!
//! This facade re-exports [`mizan_core`] at its root and, behind features, the adapters:
//!
//! | feature | default | what |
//! |---|---|---|
//! | `tower` | yes | [`tower`](mod@crate::tower): serve a `Dispatcher` as a `tower::Service` (plain hyper, any tower stack) |
//! | `axum` | yes | [`axum`](mod@crate::axum): mount Mizan into an axum `Router` (enables `tower`) |
//! | `redis` | no | `redis`: the Redis cache backend ([`mizan-cache-redis`](https://docs.rs/mizan-cache-redis)) |
//! | `actix` | no | `actix`: mount Mizan into an actix-web `App` ([`mizan-actix`](https://docs.rs/mizan-actix)) |
//! | `tower-sessions` | no | `tower::sessions`: the caller from a [tower-sessions](https://docs.rs/tower-sessions) session (enables `tower`) |
//! | `actix-session` | no | `actix::sessions`: the caller from an [actix-session](https://docs.rs/actix-session) session (enables `actix`) |

pub use mizan_core::*;

/// The tower adapter ([`mizan_tower`]).
#[cfg(feature = "tower")]
pub mod tower {
    pub use mizan_tower::*;
}

/// The axum adapter ([`mizan_axum`]).
#[cfg(feature = "axum")]
pub mod axum {
    pub use mizan_axum::*;
}

/// The actix-web adapter (`mizan-actix`).
#[cfg(feature = "actix")]
pub mod actix {
    pub use mizan_actix::*;
}

/// The Redis cache backend (`mizan-cache-redis`).
#[cfg(feature = "redis")]
pub mod redis {
    pub use mizan_cache_redis::*;
}
