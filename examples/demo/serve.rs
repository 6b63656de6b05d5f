//! Serving a dispatcher on a listener, with each adapter (shared by the demo and the tests).

use std::io;

use mizan::Dispatcher;
use tokio::net::TcpListener;

/// The adapters the demo can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adapter {
    /// `mizan-axum` on `axum::serve`.
    Axum,
    /// `mizan-tower` on plain hyper (http1), one task per connection.
    Tower,
}

impl Adapter {
    /// Every adapter, for tests that run against each.
    pub(crate) const ALL: [Adapter; 2] = [Adapter::Axum, Adapter::Tower];

    /// The adapter's name, as `MIZAN_ADAPTER` spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Tower => "tower",
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
            Self::Axum => axum::serve(listener, mizan::axum::router::<_, ()>(dispatcher)).await,
            Self::Tower => {
                let service = mizan::tower::MizanService::new(dispatcher);
                loop {
                    let (stream, _) = listener.accept().await?;
                    let service = hyper_util::service::TowerToHyperService::new(service.clone());
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        if let Err(err) = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await
                        {
                            tracing::debug!(error = %err, "connection ended with an error");
                        }
                    });
                }
            }
        }
    }
}
