//! Mizan on plain hyper, through `mizan-tower`'s `tower::Service`.
//!
//! ```text
//! cargo run --example hyper
//! curl -s -X POST localhost:8003/api/mizan/call/ -H 'content-type: application/json' \
//!      -d '{"fn":"add","args":{"a":2,"b":3}}'
//! ```

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use mizan::tower::MizanService;
use mizan::{client, ApiError, Mizan};

/// Adds two numbers.
#[client]
async fn add(a: i64, b: i64) -> Result<i64, ApiError> {
    a.checked_add(b)
        .ok_or_else(|| ApiError::bad_request("overflow"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = MizanService::new(Mizan::builder().register::<add>().build()?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8003").await?;
    println!("hyper + Mizan on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = connection.await {
                eprintln!("connection error: {err}");
            }
        });
    }
}
