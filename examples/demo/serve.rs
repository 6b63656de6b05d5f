//! Serving a dispatcher on a listener, with each adapter (shared by the demo and the tests).
//!
//! Each adapter runs behind ordinary middleware of its framework: request tracing, a response
//! header (`x-served-by`), and a request extension ([`ServedBy`]) that the `served_by` function
//! reads, which shows that what middleware inserts reaches a function's `Request`.

use std::future::Future;
use std::io;
use std::sync::Arc;

use mizan::http::{HeaderName, HeaderValue};
use mizan::{Dispatcher, Mizan};
use tokio::net::TcpListener;
use tower_http::add_extension::AddExtensionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::app::ServedBy;

const SERVED_BY: &str = "x-served-by";

/// The adapters the demo can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adapter {
    /// `mizan-axum` on `axum::serve`.
    Axum,
    /// `mizan-tower` on plain hyper (http1), one task per connection.
    Tower,
    /// `mizan-actix` on actix-web's `HttpServer`, on its own runtime (a dedicated thread).
    Actix,
}

impl Adapter {
    /// Every adapter, for tests that run against each.
    pub(crate) const ALL: [Adapter; 3] = [Adapter::Axum, Adapter::Tower, Adapter::Actix];

    /// The adapter's name, as `MIZAN_ADAPTER` spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Tower => "tower",
            Self::Actix => "actix",
        }
    }

    /// Parses `MIZAN_ADAPTER`.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|adapter| adapter.name() == name)
    }

    /// Serves `dispatcher` on `listener` until the task is dropped.
    pub(crate) async fn serve<D: Dispatcher>(
        self,
        listener: TcpListener,
        dispatcher: D,
    ) -> io::Result<()> {
        match self {
            Self::Axum => {
                let router = mizan::axum::router::<_, ()>(dispatcher)
                    .layer(AddExtensionLayer::new(ServedBy("axum")))
                    .layer(served_by_header("axum"))
                    .layer(TraceLayer::new_for_http());
                // Small messages (socket pushes, short answers) go out at once, not after the
                // peer's delayed ACK.
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, router).await
            }
            Self::Tower => {
                let service = tower::ServiceBuilder::new()
                    .layer(TraceLayer::new_for_http())
                    .layer(served_by_header("tower"))
                    .layer(AddExtensionLayer::new(ServedBy("tower")))
                    .service(mizan::tower::MizanService::new(dispatcher));
                loop {
                    let (stream, _) = listener.accept().await?;
                    let _ = stream.set_nodelay(true);
                    let service = hyper_util::service::TowerToHyperService::new(service.clone());
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        if let Err(err) = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .with_upgrades()
                            .await
                        {
                            tracing::debug!(error = %err, "connection ended with an error");
                        }
                    });
                }
            }
            Self::Actix => serve_actix(listener, dispatcher).await,
        }
    }
}

impl Adapter {
    /// Serves `app` on `listener` until `shutdown` completes, then shuts down gracefully: every
    /// open socket is closed with 1001 (new upgrades get 503) while the server still runs, and
    /// it stops once they are gone.
    pub(crate) async fn serve_until(
        self,
        listener: TcpListener,
        app: Mizan,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let serve = self.serve(listener, app.clone());
        tokio::pin!(serve);
        tokio::select! {
            result = &mut serve => return result,
            () = shutdown => {}
        }
        tokio::select! {
            result = &mut serve => result,
            () = app.close_sockets() => Ok(()),
        }
    }
}

fn served_by_header(adapter: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        HeaderName::from_static(SERVED_BY),
        HeaderValue::from_static(adapter),
    )
}

/// actix middleware: records [`ServedBy`] where the adapter looks for extensions.
async fn tag_actix_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let mut extensions = mizan::http::Extensions::new();
    extensions.insert(ServedBy("actix"));
    req.extensions_mut().insert(extensions);
    next.call(req).await
}

/// actix-web runs its own runtime: the server lives on a thread of its own and is stopped when
/// the returned future is dropped.
async fn serve_actix<D: Dispatcher>(listener: TcpListener, dispatcher: D) -> io::Result<()> {
    struct StopOnDrop(actix_web::dev::ServerHandle);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            // Sends the stop command now; waiting for it is not needed.
            drop(self.0.stop(false));
        }
    }

    let listener = listener.into_std()?;
    let dispatcher = Arc::new(dispatcher);
    let (handle_tx, handle_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .wrap(actix_web::middleware::from_fn(tag_actix_request))
                    .wrap(actix_web::middleware::DefaultHeaders::new().add((SERVED_BY, "actix")))
                    .wrap(actix_web::middleware::Logger::default())
                    .configure(mizan_actix::configure(Arc::clone(&dispatcher)))
            })
            .workers(2)
            // Shutdown is the caller's: it closes the sockets (1001) before stopping the server.
            .disable_signals()
            .listen(listener)?
            .run();
            let _ = handle_tx.send(server.handle());
            server.await
        });
        let _ = done_tx.send(result);
    });
    let _stop = match handle_rx.await {
        Ok(handle) => StopOnDrop(handle),
        Err(_) => return done_rx.await.unwrap_or(Ok(())),
    };
    done_rx.await.unwrap_or(Ok(()))
}
