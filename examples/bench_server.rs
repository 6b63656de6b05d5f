//! The server side of the HTTP benchmarks (`scripts/bench-http.sh` under wrk,
//! `scripts/bench-instructions.sh` under callgrind; figures in `docs/BENCHMARKS.md`).
//!
//! ```text
//! cargo run --release --example bench_server -- <config> <addr>
//! cargo run --release --example bench_server -- mizan-axum 127.0.0.1:9000
//! ```
//!
//! Configs:
//!
//! - `mizan-tower`, `mizan-axum`, `mizan-actix`: a Mizan app with one function, `echo`, served
//!   by each adapter as its crate docs show, with no middleware and no cache;
//! - `baseline-tower`, `baseline-axum`, `baseline-actix`: the same `echo` behind a hand-written
//!   handler on the same framework that does the same work (read the body, check the content
//!   type, parse `{"fn", "args"}` with serde, answer `{"result": ..., "invalidate": []}` with
//!   `Cache-Control: no-store`, or a JSON error);
//! - `ctx-memory`, `ctx-redis`, `ctx-miss`: Mizan on axum with a context `profile` of three
//!   functions, on `MemoryCache`, on `RedisCache` (`MIZAN_REDIS_URL`), or with no cache, for
//!   `GET /api/mizan/ctx/profile/?user_id=5`.
//!
//! The tower and axum configs run on a multi-thread Tokio runtime with its default number of
//! workers, the actix ones on actix-web's default workers. Nothing is printed per request.
//!
//! The same `echo` on other Rust RPC stacks (jsonrpsee; async-graphql on axum) is served by
//! `benches/peers`, a crate outside the workspace so that the workspace never compiles them.

use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use mizan::{client, ApiError, CacheBackend, MemoryCache, Mizan};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

type BoxError = Box<dyn Error + Send + Sync>;

/// Where the Mizan configs and the baselines answer calls.
const CALL_PATH: &str = "/api/mizan/call/";
/// The body limit of the hand-written tower baseline (Mizan's default limit).
const BODY_LIMIT: usize = 1 << 20;
/// The origin cache's HMAC secret in the `ctx-*` configs (a benchmark, not a deployment).
const CACHE_SECRET: &str = "bench-server-cache-secret-0123456789abcdef";

/// Returns its argument: the function every echo config serves.
#[client]
async fn echo(message: String) -> Result<String, ApiError> {
    Ok(message)
}

/// A user's display name.
#[client(context = "profile")]
async fn profile_name(user_id: i64) -> Result<String, ApiError> {
    Ok(format!("user {user_id}"))
}

/// A user's score.
#[client(context = "profile")]
async fn profile_score(user_id: i64) -> Result<i64, ApiError> {
    Ok(user_id * 10)
}

/// A user's tags.
#[client(context = "profile")]
async fn profile_tags(user_id: i64) -> Result<Vec<String>, ApiError> {
    Ok(vec!["bench".to_owned(), format!("u{user_id}")])
}

/// What to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    MizanTower,
    MizanAxum,
    MizanActix,
    BaselineTower,
    BaselineAxum,
    BaselineActix,
    CtxMemory,
    CtxRedis,
    CtxMiss,
}

impl Config {
    const ALL: [(&'static str, Config); 9] = [
        ("mizan-tower", Config::MizanTower),
        ("mizan-axum", Config::MizanAxum),
        ("mizan-actix", Config::MizanActix),
        ("baseline-tower", Config::BaselineTower),
        ("baseline-axum", Config::BaselineAxum),
        ("baseline-actix", Config::BaselineActix),
        ("ctx-memory", Config::CtxMemory),
        ("ctx-redis", Config::CtxRedis),
        ("ctx-miss", Config::CtxMiss),
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, config)| config)
    }
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = Config::ALL.iter().map(|(name, _)| *name).collect();
    let usage = || format!("usage: bench_server <config> <addr>; configs: {names:?}");
    let [name, addr] = args.as_slice() else {
        return Err(usage().into());
    };
    let config = Config::parse(name).ok_or_else(usage)?;
    let addr: SocketAddr = addr.parse()?;
    eprintln!("bench_server: {name} on http://{addr}");
    match config {
        Config::MizanActix | Config::BaselineActix => {
            actix_web::rt::System::new().block_on(serve_actix(config, addr))?;
        }
        _ => {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve_tokio(config, addr))?;
        }
    }
    Ok(())
}

// ---- The Mizan apps ----

fn echo_app() -> Result<Mizan, BoxError> {
    Ok(Mizan::builder().register::<echo>().build()?)
}

fn ctx_app(cache: Option<impl CacheBackend>) -> Result<Mizan, BoxError> {
    let builder = Mizan::builder()
        .register::<profile_name>()
        .register::<profile_score>()
        .register::<profile_tags>();
    let builder = match cache {
        Some(cache) => builder.with_cache(cache).with_cache_secret(CACHE_SECRET),
        None => builder,
    };
    Ok(builder.build()?)
}

// ---- Serving ----

async fn serve_tokio(config: Config, addr: SocketAddr) -> Result<(), BoxError> {
    let listener = TcpListener::bind(addr).await?;
    match config {
        Config::MizanTower => {
            serve_hyper(listener, mizan::tower::MizanService::new(echo_app()?)).await
        }
        Config::BaselineTower => serve_hyper(listener, tower::service_fn(baseline_tower)).await,
        Config::MizanAxum => serve_axum(listener, mizan::axum::router(echo_app()?)).await,
        Config::BaselineAxum => {
            let router = axum::Router::new().route(CALL_PATH, axum::routing::post(baseline_axum));
            serve_axum(listener, router).await
        }
        Config::CtxMemory => {
            serve_axum(
                listener,
                mizan::axum::router(ctx_app(Some(MemoryCache::new()))?),
            )
            .await
        }
        Config::CtxRedis => {
            let url = std::env::var("MIZAN_REDIS_URL")
                .map_err(|_| "ctx-redis needs MIZAN_REDIS_URL (redis://127.0.0.1:<port>/)")?;
            let cache = mizan_cache_redis::RedisCache::connect(url).await?;
            serve_axum(listener, mizan::axum::router(ctx_app(Some(cache))?)).await
        }
        Config::CtxMiss => {
            serve_axum(listener, mizan::axum::router(ctx_app(None::<MemoryCache>)?)).await
        }
        Config::MizanActix | Config::BaselineActix => unreachable!("served by serve_actix"),
    }
}

async fn serve_axum(listener: TcpListener, router: axum::Router) -> Result<(), BoxError> {
    axum::serve(listener, router).await?;
    Ok(())
}

/// Plain hyper http1, one task per connection, through `TowerToHyperService`.
async fn serve_hyper<S, B>(listener: TcpListener, service: S) -> Result<(), BoxError>
where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    loop {
        let (stream, _) = listener.accept().await?;
        let service = hyper_util::service::TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            // A client that drops its connection mid-request is not the server's problem.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

async fn serve_actix(config: Config, addr: SocketAddr) -> Result<(), BoxError> {
    let server = match config {
        Config::MizanActix => {
            let app = echo_app()?;
            actix_web::HttpServer::new(move || {
                actix_web::App::new().configure(mizan_actix::configure(app.clone()))
            })
            .bind(addr)?
            .run()
        }
        Config::BaselineActix => actix_web::HttpServer::new(|| {
            actix_web::App::new().route(CALL_PATH, actix_web::web::post().to(baseline_actix))
        })
        .bind(addr)?
        .run(),
        _ => unreachable!("served by serve_tokio"),
    };
    server.await?;
    Ok(())
}

// ---- The hand-written baseline: one RPC handler, wrapped for each framework ----

/// The call envelope.
#[derive(Deserialize)]
struct Call {
    #[serde(rename = "fn")]
    function: String,
    #[serde(default)]
    args: serde_json::Value,
}

/// `echo`'s arguments.
#[derive(Deserialize)]
struct EchoArgs {
    message: String,
}

/// A successful call's body.
#[derive(Serialize)]
struct Reply<T> {
    result: T,
    invalidate: [(); 0],
}

/// An error body, shaped like Mizan's.
#[derive(Serialize)]
struct ErrorReply<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
    details: Option<()>,
}

fn error(status: StatusCode, code: &str, message: String) -> (StatusCode, Bytes) {
    let body = ErrorReply {
        error: ErrorBody {
            code,
            message,
            details: None,
        },
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    (status, Bytes::from(body))
}

/// The whole call, framework-neutral: content type, envelope, function, arguments, result.
async fn baseline_call(content_type: Option<&[u8]>, body: &[u8]) -> (StatusCode, Bytes) {
    let is_json = content_type.is_some_and(|value| {
        let essence = value.split(|&b| b == b';').next().unwrap_or_default();
        essence
            .trim_ascii()
            .eq_ignore_ascii_case(b"application/json")
    });
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "call/ takes Content-Type: application/json".to_owned(),
        );
    }
    let call: Call = match serde_json::from_slice(body) {
        Ok(call) => call,
        Err(err) => {
            let message = format!("malformed JSON: {err}");
            return error(StatusCode::BAD_REQUEST, "bad_request", message);
        }
    };
    if call.function != "echo" {
        let message = format!("no function named {:?}", call.function);
        return error(StatusCode::NOT_FOUND, "not_found", message);
    }
    let args: EchoArgs = match serde_json::from_value(call.args) {
        Ok(args) => args,
        Err(err) => {
            let message = format!("invalid arguments for \"echo\": {err}");
            return error(StatusCode::BAD_REQUEST, "bad_request", message);
        }
    };
    match echo(args.message).await {
        Ok(result) => {
            let reply = Reply {
                result,
                invalidate: [],
            };
            let body = serde_json::to_vec(&reply).unwrap_or_default();
            (StatusCode::OK, Bytes::from(body))
        }
        Err(err) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        ),
    }
}

fn json() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

fn no_store() -> HeaderValue {
    HeaderValue::from_static("no-store")
}

/// tower/hyper: a `service_fn` that routes by hand and reads the body with a limit.
async fn baseline_tower(
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let (status, body) = if request.uri().path() != CALL_PATH {
        let message = format!("no route for {}", request.uri().path());
        error(StatusCode::NOT_FOUND, "not_found", message)
    } else if request.method() != Method::POST {
        let message = "method not allowed".to_owned();
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
    } else {
        let (parts, body) = request.into_parts();
        match Limited::new(body, BODY_LIMIT).collect().await {
            Ok(body) => {
                let content_type = parts.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes);
                baseline_call(content_type, &body.to_bytes()).await
            }
            Err(_) => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "could not read the body".to_owned(),
            ),
        }
    };
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, json());
    response.headers_mut().insert(CACHE_CONTROL, no_store());
    Ok(response)
}

/// axum: a `post` handler taking the headers and the body.
async fn baseline_axum(headers: http::HeaderMap, body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let content_type = headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes);
    let (status, body) = baseline_call(content_type, &body).await;
    (
        status,
        [(CONTENT_TYPE, json()), (CACHE_CONTROL, no_store())],
        body,
    )
        .into_response()
}

/// actix-web: a `post` handler taking the request and the body.
async fn baseline_actix(
    request: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
) -> actix_web::HttpResponse {
    let content_type = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .map(|value| value.as_bytes());
    let (status, body) = baseline_call(content_type, &body).await;
    let status = actix_web::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    actix_web::HttpResponse::build(status)
        .insert_header((actix_web::http::header::CONTENT_TYPE, "application/json"))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(body)
}
