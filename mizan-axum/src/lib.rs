//! Mount Mizan into an [axum](https://docs.rs/axum) `Router`.
//!
//! [`router`] returns a `Router` that serves the protocol endpoints under the app's mount point
//! and each view-path function at its route; merge it into your own router. Requests go through
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

use axum::Router;
use mizan_core::Dispatcher;
use mizan_tower::MizanService;

pub use mizan_core;
pub use mizan_tower;

/// A `Router` serving `dispatcher`: `{mount}{*rest}` and every view route.
///
/// It is generic over the router state so it merges into a `Router<S>` of any state.
pub fn router<D, S>(dispatcher: D) -> Router<S>
where
    D: Dispatcher,
    S: Clone + Send + Sync + 'static,
{
    let routes = dispatcher.routes();
    let service = MizanService::new(dispatcher);
    let mut router =
        Router::new().route_service(&format!("{}{{*rest}}", routes.mount), service.clone());
    for view in &routes.views {
        router = router.route_service(view, service.clone());
    }
    router
}
