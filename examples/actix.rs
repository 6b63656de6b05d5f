//! Mizan inside an actix-web app (crate `mizan-actix`, or `mizan` with feature `actix`).
//!
//! ```text
//! cargo run --example actix
//! curl -s -X POST localhost:8002/api/mizan/call/ -H 'content-type: application/json' \
//!      -d '{"fn":"add","args":{"a":2,"b":3}}'
//! ```

use actix_web::{web, App, HttpServer};
use mizan::{client, ApiError, Mizan};

/// Adds two numbers.
#[client]
async fn add(a: i64, b: i64) -> Result<i64, ApiError> {
    a.checked_add(b)
        .ok_or_else(|| ApiError::bad_request("overflow"))
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mizan = Mizan::builder().register::<add>().build()?;
    println!("actix-web + Mizan on http://127.0.0.1:8002");
    HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::Logger::default())
            .route("/health", web::get().to(|| async { "ok" }))
            .configure(mizan_actix::configure(mizan.clone()))
    })
    .bind("127.0.0.1:8002")?
    .run()
    .await?;
    Ok(())
}
