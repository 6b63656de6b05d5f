//! Mizan inside an axum app, next to ordinary routes and under a tower-http layer.
//!
//! ```text
//! cargo run --example axum
//! curl -s -X POST localhost:8001/api/mizan/call/ -H 'content-type: application/json' \
//!      -d '{"fn":"add","args":{"a":2,"b":3}}'
//! ```

use mizan::{client, ApiError, Mizan};

/// Adds two numbers.
#[client]
async fn add(a: i64, b: i64) -> Result<i64, ApiError> {
    a.checked_add(b)
        .ok_or_else(|| ApiError::bad_request("overflow"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mizan = Mizan::builder().register::<add>().build()?;
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .merge(mizan::axum::router(mizan))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8001").await?;
    println!("axum + Mizan on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
