//! Mizan on axum with the app's own tower-sessions sessions, and CSRF protection on.
//!
//! ```text
//! cargo run --example tower_sessions --features tower-sessions
//! # log in: the response sets the session cookie `id`
//! curl -si -X POST localhost:8004/api/mizan/call/ -H 'content-type: application/json' \
//!      -d '{"fn":"login","args":{"username":"alice","password":"alice"}}'
//! # with the cookie: fetch a CSRF token, then call with it
//! curl -s localhost:8004/api/mizan/session/ -H 'cookie: id=...'
//! curl -s -X POST localhost:8004/api/mizan/call/ -H 'content-type: application/json' \
//!      -H 'cookie: id=...' -H 'x-csrftoken: ...' -d '{"fn":"whoami","args":{}}'
//! ```
//!
//! Users: `alice` (staff) and `bob`, each with their name as password. `MIZAN_CSRF_SECRET` sets
//! the CSRF key (a development default otherwise).

use mizan::tower::sessions::tower_sessions::cookie::SameSite;
use mizan::tower::sessions::tower_sessions::{MemoryStore, SessionManagerLayer};
use mizan::tower::sessions::{self, session, SessionUser, TowerSessionIdentity};
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

/// Checks the password and stores the user in the caller's session.
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
    sessions::login(session(req)?, &SessionUser::new(name).with_staff(staff)).await?;
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
    sessions::logout(session(req)?).await?;
    Ok(true)
}

/// The app: Mizan identifying callers by their session, with CSRF on, under the session layer.
pub(crate) fn router(csrf_secret: &str) -> Result<axum::Router, BuildError> {
    let mizan = Mizan::builder()
        .with_identity(TowerSessionIdentity::new())
        // Served over plain HTTP on loopback: no `Secure` cookies.
        .with_csrf(Csrf::new(csrf_secret).with_secure(false))
        .register::<login>()
        .register::<whoami>()
        .register::<logout>()
        .build()?;
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_secure(false)
        .with_same_site(SameSite::Lax);
    Ok(axum::Router::new()
        .merge(mizan::axum::router(mizan))
        .layer(sessions))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("MIZAN_CSRF_SECRET").unwrap_or_else(|_| {
        println!("MIZAN_CSRF_SECRET is not set: using a development default (never in production)");
        "dev-only-csrf-secret-change-me-0123456789".to_owned()
    });
    let app = router(&secret)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8004").await?;
    println!(
        "axum + tower-sessions + Mizan on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
