//! The caller from an [actix-session](https://docs.rs/actix-session) session (feature
//! `actix-session`).
//!
//! actix-session's `Session` lives in actix's own request extensions and cannot leave the
//! worker thread, so Mizan reaches it through a small middleware, [`bridge`]:
//!
//! - before the request, it reads the logged-in [`SessionUser`] (key [`USER_KEY`]) from the
//!   actix session and hands an [`ActixSession`] to the core request, where
//!   [`ActixSessionIdentity`] turns it into the caller's identity and functions find it with
//!   [`session`];
//! - a function logs a user in or out through that handle ([`ActixSession::login`],
//!   [`ActixSession::logout`]); after the function has answered, the middleware applies the
//!   change to the actix session (login: a new session key, then the user; logout: the session
//!   is purged), and actix-session's own middleware writes the cookie.
//!
//! A request whose session holds a user is that user, **authenticated by a cookie**: with CSRF
//! protection on (`MizanBuilder::with_csrf`), its unsafe requests need the token that
//! `GET session/` hands out. actix-session does not expose its session key, so the token is bound
//! to a random value stored in the session itself ([`CSRF_SESSION_KEY`], 128 bits), drawn anew
//! at every login: a token of another session, or of an earlier login, never verifies. A session
//! that holds a user but no such value (the app stored the user itself) gets one on its next
//! request. A session whose values cannot be read is a server error (500), never an anonymous
//! caller.
//!
//! With actix-session's `CookieSessionStore` the whole session lives in the (encrypted) cookie:
//! logging out removes it from the browser, but a copy of the old cookie stays valid, as any
//! stateless session does. Use a server-side store (e.g. actix-session's Redis store) when
//! logout must revoke copies too.
//!
//! ```
//! use actix_web::cookie::Key;
//! use actix_web::middleware::from_fn;
//! use actix_web::App;
//! use mizan_actix::sessions::actix_session::{storage::CookieSessionStore, SessionMiddleware};
//! use mizan_actix::sessions::{bridge, session, ActixSessionIdentity, SessionUser};
//! use mizan_core::{client, ApiError, Mizan, Request};
//!
//! #[client]
//! async fn login(req: &Request, username: String, password: String) -> Result<bool, ApiError> {
//!     if password != "let me in" {
//!         return Err(ApiError::bad_request("wrong password"));
//!     }
//!     session(req)?.login(&SessionUser::new(username));
//!     Ok(true)
//! }
//!
//! #[client(auth)]
//! async fn logout(req: &Request) -> Result<bool, ApiError> {
//!     session(req)?.logout();
//!     Ok(true)
//! }
//!
//! let app = Mizan::builder()
//!     .with_identity(ActixSessionIdentity::new())
//!     .register::<login>()
//!     .register::<logout>()
//!     .build()
//!     .unwrap();
//! let key = Key::generate(); // in production: the same 64 bytes on every start and instance
//! // The last `wrap` runs first: the session middleware, then the bridge, then Mizan.
//! let actix_app = App::new()
//!     .configure(mizan_actix::configure(app))
//!     .wrap(from_fn(bridge))
//!     .wrap(SessionMiddleware::new(CookieSessionStore::default(), key));
//! # let _ = actix_app;
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use actix_session::{Session, SessionExt as _, SessionGetError};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::HttpMessage as _;
pub use mizan_core::auth::SessionUser;
use mizan_core::{async_trait, AuthError, Identity, IdentitySource, Request};

/// The actix-session crate this module works with, for its `SessionMiddleware`, `Session` and
/// `storage::CookieSessionStore`.
pub use actix_session;

/// The session key the logged-in [`SessionUser`] is stored under.
pub const USER_KEY: &str = "mizan.user";

/// The session key of the random value that CSRF tokens of the session are bound to.
pub const CSRF_SESSION_KEY: &str = "mizan.csrf_session";

/// What a function asked of the session.
#[derive(Debug, Clone)]
enum Change {
    Login(SessionUser),
    Logout,
}

/// The request's actix session as Mizan sees it: what it held when the request arrived, and the
/// login or logout a function asks for. [`bridge`] puts it into the core request's extensions;
/// functions reach it with [`session`]. Cloning is cheap and shares the handle.
#[derive(Debug, Clone)]
pub struct ActixSession {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The user and the CSRF binding value, or why the session could not be read.
    loaded: Result<Option<(SessionUser, String)>, Unreadable>,
    change: Mutex<Option<Change>>,
}

impl ActixSession {
    /// Logs `user` in once the function has answered: the session gets a new key, this user
    /// and a new CSRF binding value. Later requests with the cookie are this user.
    pub fn login(&self, user: &SessionUser) {
        self.set_change(Change::Login(user.clone()));
    }

    /// Logs the session's user out once the function has answered: the session is purged (the
    /// response removes its cookie).
    pub fn logout(&self) {
        self.set_change(Change::Logout);
    }

    /// The user the session held when the request arrived, if any.
    pub fn user(&self) -> Result<Option<SessionUser>, AuthError> {
        Ok(self.loaded()?.map(|(user, _)| user.clone()))
    }

    /// Reads the user from `session`, giving a logged-in session without a CSRF binding value
    /// one.
    fn read(session: &Session) -> Result<Self, actix_web::Error> {
        let loaded = match (
            session.get::<SessionUser>(USER_KEY),
            session.get::<String>(CSRF_SESSION_KEY),
        ) {
            (Err(err), _) | (_, Err(err)) => Err(Unreadable(Arc::new(err))),
            (Ok(None), _) => Ok(None),
            (Ok(Some(user)), Ok(Some(binding))) => Ok(Some((user, binding))),
            (Ok(Some(user)), Ok(None)) => {
                let binding = random_value()?;
                session.insert(CSRF_SESSION_KEY, &binding)?;
                Ok(Some((user, binding)))
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                loaded,
                change: Mutex::new(None),
            }),
        })
    }

    fn loaded(&self) -> Result<Option<&(SessionUser, String)>, AuthError> {
        match &self.inner.loaded {
            Ok(loaded) => Ok(loaded.as_ref()),
            Err(err) => Err(AuthError::Backend(Box::new(err.clone()))),
        }
    }

    fn identity(&self) -> Result<Identity, AuthError> {
        Ok(match self.loaded()? {
            Some((user, binding)) => user.identity(binding.as_str()),
            None => Identity::anonymous(),
        })
    }

    fn set_change(&self, change: Change) {
        *self
            .inner
            .change
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(change);
    }

    /// Applies the function's login or logout to the actix session.
    fn apply(&self, session: &Session) -> Result<(), actix_web::Error> {
        let change = self
            .inner
            .change
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        match change {
            None => {}
            Some(Change::Logout) => session.purge(),
            Some(Change::Login(user)) => {
                session.renew();
                session.insert(USER_KEY, &user)?;
                session.insert(CSRF_SESSION_KEY, random_value()?)?;
            }
        }
        Ok(())
    }
}

/// The [`ActixSession`] of the request a function handles; an error (500) when the app is not
/// wrapped in [`bridge`].
pub fn session(req: &Request) -> Result<&ActixSession, AuthError> {
    req.extensions().get::<ActixSession>().ok_or_else(|| {
        AuthError::Backend(
            "no actix session in the request: wrap the app in \
             `from_fn(mizan_actix::sessions::bridge)` inside actix-session's `SessionMiddleware`"
                .into(),
        )
    })
}

/// actix middleware (`actix_web::middleware::from_fn(bridge)`) that connects the actix session
/// to Mizan: an [`ActixSession`] for the core request before, the function's login or logout
/// applied to the actix session after. Register it inside actix-session's `SessionMiddleware`
/// (wrap it first: actix runs the last `wrap` first).
pub async fn bridge(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let session = req.get_session();
    let handle = ActixSession::read(&session)?;
    {
        let mut extensions = req.extensions_mut();
        match extensions.get_mut::<http::Extensions>() {
            Some(map) => {
                map.insert(handle.clone());
            }
            None => {
                let mut map = http::Extensions::new();
                map.insert(handle.clone());
                extensions.insert(map);
            }
        }
    }
    let response = next.call(req).await?;
    handle.apply(&session)?;
    Ok(response)
}

/// An [`IdentitySource`] that reads the logged-in [`SessionUser`] from the [`ActixSession`]
/// that [`bridge`] put into the request, and marks the request as authenticated by the
/// session's cookie.
///
/// Without a session (or without the bridge), or with a session that holds no user, the caller
/// is anonymous; a session that cannot be read is [`AuthError::Backend`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ActixSessionIdentity;

impl ActixSessionIdentity {
    /// The identity source.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl IdentitySource for ActixSessionIdentity {
    async fn identify(&self, parts: &http::request::Parts) -> Result<Identity, AuthError> {
        match parts.extensions.get::<ActixSession>() {
            None => Ok(Identity::anonymous()),
            Some(session) => session.identity(),
        }
    }
}

/// 128 random bits, as hex.
fn random_value() -> Result<String, actix_web::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(actix_web::error::ErrorInternalServerError)?;
    Ok(hex::encode(bytes))
}

/// The session's values could not be read (shared by the clones of a handle).
#[derive(Debug, Clone)]
struct Unreadable(Arc<SessionGetError>);

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the actix session could not be read")
    }
}

impl std::error::Error for Unreadable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use actix_session::SessionStatus;
    use actix_web::test::TestRequest;
    use mizan_core::testing::block_on;

    use super::*;

    fn identify(handle: Option<&ActixSession>) -> Result<Identity, AuthError> {
        let mut request = http::Request::new(());
        if let Some(handle) = handle {
            request.extensions_mut().insert(handle.clone());
        }
        block_on(ActixSessionIdentity::new().identify(&request.into_parts().0))
    }

    #[test]
    fn no_bridge_or_no_user_is_anonymous() {
        assert_eq!(identify(None).unwrap(), Identity::anonymous());
        let session = TestRequest::default().to_srv_request().get_session();
        let handle = ActixSession::read(&session).unwrap();
        assert_eq!(identify(Some(&handle)).unwrap(), Identity::anonymous());
        handle.apply(&session).unwrap();
        assert_eq!(session.status(), SessionStatus::Unchanged);
    }

    #[test]
    fn login_renews_the_session_and_binds_csrf_to_a_fresh_value() {
        let session = TestRequest::default().to_srv_request().get_session();
        let handle = ActixSession::read(&session).unwrap();
        handle.login(&SessionUser::new("3").with_superuser(true));
        handle.apply(&session).unwrap();
        assert_eq!(session.status(), SessionStatus::Renewed);
        let first = session.get::<String>(CSRF_SESSION_KEY).unwrap().unwrap();
        assert_eq!(first.len(), 32);

        let identity = identify(Some(&ActixSession::read(&session).unwrap())).unwrap();
        assert_eq!(identity.user_id.as_deref(), Some("3"));
        assert!(identity.is_superuser && !identity.is_staff);
        assert_eq!(identity.cookie_session.as_deref(), Some(first.as_str()));

        let again = ActixSession::read(&session).unwrap();
        again.login(&SessionUser::new("3"));
        again.apply(&session).unwrap();
        let second = session.get::<String>(CSRF_SESSION_KEY).unwrap().unwrap();
        assert_ne!(first, second, "each login binds tokens anew");

        let out = ActixSession::read(&session).unwrap();
        out.logout();
        out.apply(&session).unwrap();
        assert_eq!(session.status(), SessionStatus::Purged);
        assert!(session.entries().is_empty());
    }

    #[test]
    fn a_user_stored_by_the_app_gets_a_csrf_binding() {
        let session = TestRequest::default().to_srv_request().get_session();
        session.insert(USER_KEY, SessionUser::new("2")).unwrap();
        let identity = identify(Some(&ActixSession::read(&session).unwrap())).unwrap();
        let binding = session.get::<String>(CSRF_SESSION_KEY).unwrap().unwrap();
        assert_eq!(identity.cookie_session, Some(binding));
    }

    #[test]
    fn an_unreadable_session_is_a_server_error() {
        let session = TestRequest::default().to_srv_request().get_session();
        session.insert(USER_KEY, "not a user").unwrap();
        let handle = ActixSession::read(&session).unwrap();
        let err = identify(Some(&handle)).unwrap_err();
        assert!(matches!(err, AuthError::Backend(_)), "{err:?}");
        assert_eq!(mizan_core::ApiError::from(err).status(), 500);
        assert!(handle.user().is_err());
    }

    #[test]
    fn functions_without_the_bridge_get_a_server_error() {
        let req = Request::new(http::Request::new(bytes::Bytes::new()));
        assert!(matches!(session(&req), Err(AuthError::Backend(_))));
    }
}
