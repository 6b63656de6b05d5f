//! Mizan on actix-web with the app's own actix-session sessions (cookie store), and CSRF
//! protection on.
//!
//! ```text
//! cargo run --example actix_session --features actix-session
//! # log in: the response sets the session cookie `id`
//! curl -si -X POST localhost:8005/api/mizan/call/ -H 'content-type: application/json' \
//!      -d '{"fn":"login","args":{"username":"alice","password":"alice"}}'
//! # with the cookie: fetch a CSRF token, then call with it
//! curl -s localhost:8005/api/mizan/session/ -H 'cookie: id=...'
//! curl -s -X POST localhost:8005/api/mizan/call/ -H 'content-type: application/json' \
//!      -H 'cookie: id=...' -H 'x-csrftoken: ...' -d '{"fn":"whoami","args":{}}'
//! ```
//!
//! Users: `alice` (staff) and `bob`, each with their name as password. `MIZAN_CSRF_SECRET` sets
//! the CSRF key (a development default otherwise). The session cookie is encrypted with a key
//! drawn at start, so sessions end when the server stops.

use std::net::TcpListener;

use actix_web::cookie::Key;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};
use mizan::actix::sessions::actix_session::storage::CookieSessionStore;
use mizan::actix::sessions::actix_session::SessionMiddleware;
use mizan::actix::sessions::{bridge, session, ActixSessionIdentity, SessionUser};
use mizan::{client, ApiError, BuildError, Csrf, ErrorCode, Mizan, Request};
use schemars::JsonSchema;
use serde::Serialize;

/// The caller as the functions report it.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Me {
    id: String,
    staff: bool,
}

/// The demo's users: (username, staff). The password is the username.
const USERS: [(&str, bool); 2] = [("alice", true), ("bob", false)];

/// Checks the password and logs the user in (the session cookie comes with the response).
#[client]
pub(crate) async fn login(
    req: &Request,
    username: String,
    password: String,
) -> Result<Me, ApiError> {
    let (name, staff) = USERS
        .into_iter()
        .find(|(name, _)| *name == username && password == *name)
        .ok_or_else(|| {
            ApiError::from_code(ErrorCode::Unauthenticated, "invalid username or password")
        })?;
    session(req)?.login(&SessionUser::new(name).with_staff(staff));
    Ok(Me {
        id: name.to_owned(),
        staff,
    })
}

/// The caller, as the session says (logged-in callers only).
#[client(auth)]
pub(crate) async fn whoami(req: &Request) -> Result<Me, ApiError> {
    let identity = req.identity();
    Ok(Me {
        id: identity.user_id.clone().unwrap_or_default(),
        staff: identity.is_staff,
    })
}

/// Ends the caller's session.
#[client(auth)]
pub(crate) async fn logout(req: &Request) -> Result<bool, ApiError> {
    session(req)?.logout();
    Ok(true)
}

/// Mizan identifying callers by their session, with CSRF on.
pub(crate) fn mizan(csrf_secret: &str) -> Result<Mizan, BuildError> {
    Mizan::builder()
        .with_identity(ActixSessionIdentity::new())
        // Served over plain HTTP on loopback: no `Secure` cookies.
        .with_csrf(Csrf::new(csrf_secret).with_secure(false))
        .register::<login>()
        .register::<whoami>()
        .register::<logout>()
        .build()
}

/// The server on `listener`: Mizan inside the bridge, inside actix-session's middleware (actix
/// runs the last `wrap` first).
pub(crate) fn server(
    listener: TcpListener,
    app: Mizan,
    key: Key,
) -> std::io::Result<actix_web::dev::Server> {
    Ok(HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_secure(false)
            .build();
        App::new()
            .configure(mizan::actix::configure(app.clone()))
            .wrap(from_fn(bridge))
            .wrap(sessions)
    })
    .workers(2)
    .listen(listener)?
    .run())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("MIZAN_CSRF_SECRET").unwrap_or_else(|_| {
        println!("MIZAN_CSRF_SECRET is not set: using a development default (never in production)");
        "dev-only-csrf-secret-change-me-0123456789".to_owned()
    });
    let listener = TcpListener::bind("127.0.0.1:8005")?;
    println!(
        "actix-web + actix-session + Mizan on http://{}",
        listener.local_addr()?
    );
    server(listener, mizan(&secret)?, Key::generate())?.await?;
    Ok(())
}
