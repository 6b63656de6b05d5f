//! The peers of Mizan's HTTP benchmarks (`scripts/bench-http.sh`,
//! `scripts/bench-instructions.sh`): the same trivial `echo` that `examples/bench_server.rs`
//! serves through Mizan, served by two other Rust RPC stacks as their docs show.
//!
//! ```text
//! peer_server <config> <addr>
//! peer_server jsonrpsee 127.0.0.1:9000
//! ```
//!
//! Configs:
//!
//! - `jsonrpsee`: jsonrpsee's own HTTP server (HTTP only, no WebSocket) with one async method,
//!   `echo`, taking named params `{"message": ...}`; called with
//!   `POST /` and `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"message":"hi"}}`.
//! - `async-graphql`: an async-graphql schema whose query root has one async field,
//!   `echo(message: String!): String!`, served by async-graphql-axum's `GraphQL` service on
//!   `axum::serve`; called with `POST /graphql` and `{"query":"{ echo(message: \"hi\") }"}`.
//!
//! Both run on a multi-thread Tokio runtime with its default number of workers, like the tower
//! and axum configs of `bench_server`, and print nothing per request. jsonrpsee's connection
//! limit (100 by default) is raised to 4096 so that it serves the 256-connection runs like the
//! others, which have no limit.

use std::error::Error;
use std::net::SocketAddr;

type BoxError = Box<dyn Error + Send + Sync>;

/// The largest number of connections jsonrpsee accepts at once here.
const JSONRPSEE_MAX_CONNECTIONS: u32 = 4096;
/// Where the GraphQL endpoint is mounted.
const GRAPHQL_PATH: &str = "/graphql";

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || "usage: peer_server <jsonrpsee|async-graphql> <addr>".to_owned();
    let [name, addr] = args.as_slice() else {
        return Err(usage().into());
    };
    let addr: SocketAddr = addr.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    eprintln!("peer_server: {name} on http://{addr}");
    match name.as_str() {
        "jsonrpsee" => runtime.block_on(jsonrpc::serve(addr)),
        "async-graphql" => runtime.block_on(graphql::serve(addr)),
        _ => Err(usage().into()),
    }
}

/// `echo` on jsonrpsee.
mod jsonrpc {
    use std::net::SocketAddr;

    use jsonrpsee::server::{RpcModule, Server, ServerConfig};
    use jsonrpsee::types::ErrorObjectOwned;
    use serde::Deserialize;

    use super::{BoxError, JSONRPSEE_MAX_CONNECTIONS};

    /// `echo`'s named params.
    #[derive(Deserialize)]
    struct EchoParams {
        message: String,
    }

    /// Returns its argument.
    async fn echo(message: String) -> Result<String, ErrorObjectOwned> {
        Ok(message)
    }

    /// Serves the module until the process is stopped.
    pub(crate) async fn serve(addr: SocketAddr) -> Result<(), BoxError> {
        let config = ServerConfig::builder()
            .http_only()
            .max_connections(JSONRPSEE_MAX_CONNECTIONS)
            .build();
        let server = Server::builder().set_config(config).build(addr).await?;
        let mut module = RpcModule::new(());
        module.register_async_method("echo", |params, _context, _extensions| async move {
            let EchoParams { message } = params.parse()?;
            echo(message).await
        })?;
        let handle = server.start(module);
        handle.stopped().await;
        Ok(())
    }
}

/// `echo` on async-graphql and axum.
mod graphql {
    use std::net::SocketAddr;

    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
    use async_graphql_axum::GraphQL;

    use super::{BoxError, GRAPHQL_PATH};

    /// The query root.
    struct Query;

    #[Object]
    impl Query {
        /// Returns its argument.
        async fn echo(&self, message: String) -> String {
            message
        }
    }

    /// Serves the schema until the process is stopped.
    pub(crate) async fn serve(addr: SocketAddr) -> Result<(), BoxError> {
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
        let router = axum::Router::new().route(
            GRAPHQL_PATH,
            axum::routing::post_service(GraphQL::new(schema)),
        );
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(listener, router).await?;
        Ok(())
    }
}
