//! The caller from a [tower-sessions](https://docs.rs/tower-sessions) session (feature
//! `tower-sessions`).
//!
//! An app that keeps sessions with tower-sessions' `SessionManagerLayer` (on axum or any tower
//! stack) plugs them into Mizan in two steps:
//!
//! 1. its login function stores the user in the session with [`login`] (under the
//!    key [`USER_KEY`], after giving the session a new id, so a session id planted before login
//!    is worthless), and its logout function ends the session with [`logout`];
//! 2. the app identifies callers with [`TowerSessionIdentity`], which reads the `Session` that
//!    the layer put into the request's extensions.
//!
//! A request whose session holds a user is that user, **authenticated by a cookie**: with CSRF
//! protection on (`MizanBuilder::with_csrf`), its unsafe requests need the token that
//! `GET session/` hands out, bound to the session's id (a new id after login, none after logout,
//! so older tokens stop working). A request without a session, or whose session holds no user,
//! is anonymous. A store that fails is a server error (500), never an anonymous caller.
//!
//! A function reaches the session with [`session`]:
//!
//! ```
//! use mizan_core::{client, ApiError, Mizan, Request};
//! use mizan_tower::sessions::{self, session, SessionUser, TowerSessionIdentity};
//!
//! #[client]
//! async fn login(req: &Request, username: String, password: String) -> Result<bool, ApiError> {
//!     if password != "let me in" {
//!         return Err(ApiError::bad_request("wrong password"));
//!     }
//!     sessions::login(session(req)?, &SessionUser::new(username)).await?;
//!     Ok(true)
//! }
//!
//! #[client(auth)]
//! async fn logout(req: &Request) -> Result<bool, ApiError> {
//!     sessions::logout(session(req)?).await?;
//!     Ok(true)
//! }
//!
//! let app = Mizan::builder()
//!     .with_identity(TowerSessionIdentity::new())
//!     .register::<login>()
//!     .register::<logout>()
//!     .build()
//!     .unwrap();
//! // Serve it under `SessionManagerLayer::new(MemoryStore::default())`, e.g. as an axum
//! // `Router::layer`.
//! # let _ = app;
//! ```

pub use mizan_core::auth::SessionUser;
use mizan_core::{async_trait, AuthError, BoxError, Identity, IdentitySource, Request};
use tower_sessions::Session;

/// The tower-sessions crate this module works with, for its `SessionManagerLayer`, `Session`
/// and `MemoryStore` (an in-process store, for tests and single-process apps).
pub use tower_sessions;

/// The session key the logged-in [`SessionUser`] is stored under.
pub const USER_KEY: &str = "mizan.user";

/// Logs `user` in: gives the session a new id (the response sets its cookie) and stores the
/// user in it. Later requests with the cookie are this user.
pub async fn login(session: &Session, user: &SessionUser) -> Result<(), AuthError> {
    // A request without a session cookie gets a fresh id anyway when the session is saved.
    if session.id().is_some() {
        session.cycle_id().await.map_err(backend)?;
    }
    session.insert(USER_KEY, user).await.map_err(backend)
}

/// Logs the session's user out: deletes the session from its store (the response removes its
/// cookie). Later requests with the old cookie are anonymous.
pub async fn logout(session: &Session) -> Result<(), AuthError> {
    session.flush().await.map_err(backend)
}

/// The user the session holds, if any.
pub async fn current_user(session: &Session) -> Result<Option<SessionUser>, AuthError> {
    session.get(USER_KEY).await.map_err(backend)
}

/// The tower-sessions `Session` of the request a function handles; an error (500) when the app
/// is not served under a `SessionManagerLayer`.
pub fn session(req: &Request) -> Result<&Session, AuthError> {
    req.extensions().get::<Session>().ok_or_else(|| {
        AuthError::Backend(
            "no tower-sessions `Session` in the request: serve the app under a \
             `SessionManagerLayer`"
                .into(),
        )
    })
}

/// An [`IdentitySource`] that reads the logged-in [`SessionUser`] from the request's
/// tower-sessions `Session`, and marks the request as authenticated by that session's cookie.
///
/// Without a session, or with a session that holds no user, the caller is anonymous; a store
/// error is [`AuthError::Backend`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TowerSessionIdentity;

impl TowerSessionIdentity {
    /// The identity source.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl IdentitySource for TowerSessionIdentity {
    async fn identify(&self, parts: &http::request::Parts) -> Result<Identity, AuthError> {
        let Some(session) = parts.extensions.get::<Session>() else {
            return Ok(Identity::anonymous());
        };
        // Reading loads the record; a cookie whose session is gone loses its id here.
        let user = current_user(session).await?;
        Ok(match (user, session.id()) {
            (Some(user), Some(id)) => user.identity(id.to_string()),
            _ => Identity::anonymous(),
        })
    }
}

fn backend(err: impl Into<BoxError>) -> AuthError {
    AuthError::Backend(err.into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mizan_core::testing::block_on;
    use tower_sessions::session::{Id, Record};
    use tower_sessions::session_store::{self, SessionStore};
    use tower_sessions::MemoryStore;

    use super::*;

    fn parts(session: Option<Session>) -> http::request::Parts {
        let mut request = http::Request::new(());
        if let Some(session) = session {
            request.extensions_mut().insert(session);
        }
        request.into_parts().0
    }

    fn identify(session: Option<Session>) -> Result<Identity, AuthError> {
        block_on(TowerSessionIdentity::new().identify(&parts(session)))
    }

    /// The session a later request with the cookie of `session` gets.
    fn next_request(session: &Session, store: &Arc<MemoryStore>) -> Session {
        block_on(session.save()).unwrap();
        Session::new(session.id(), Arc::clone(store), None)
    }

    #[test]
    fn no_session_or_no_user_is_anonymous() {
        assert_eq!(identify(None).unwrap(), Identity::anonymous());
        let store = Arc::new(MemoryStore::default());
        let fresh = Session::new(None, store.clone(), None);
        assert_eq!(identify(Some(fresh)).unwrap(), Identity::anonymous());
        let unknown = Session::new(Some(Id::default()), store, None);
        assert_eq!(identify(Some(unknown)).unwrap(), Identity::anonymous());
    }

    #[test]
    fn a_logged_in_session_is_its_user_authenticated_by_the_cookie() {
        let store = Arc::new(MemoryStore::default());
        let before = Session::new(None, store.clone(), None);
        block_on(before.insert("cart", 3)).unwrap();
        let planted = next_request(&before, &store);
        let planted_id = planted.id().unwrap();
        let user = SessionUser::new("7").with_staff(true);
        block_on(login(&planted, &user)).unwrap();
        let after = next_request(&planted, &store);
        let id = after.id().unwrap();
        assert_ne!(id, planted_id, "login gives the session a new id");

        let identity = identify(Some(after.clone())).unwrap();
        assert_eq!(identity.user_id.as_deref(), Some("7"));
        assert!(identity.is_staff && !identity.is_superuser);
        assert_eq!(identity.cookie_session, Some(id.to_string()));
        let old = Session::new(Some(planted_id), store.clone(), None);
        assert_eq!(identify(Some(old)).unwrap(), Identity::anonymous());

        block_on(logout(&after)).unwrap();
        let stale = Session::new(Some(id), store, None);
        assert_eq!(identify(Some(stale)).unwrap(), Identity::anonymous());
    }

    #[derive(Debug)]
    struct DownStore;

    #[async_trait]
    impl SessionStore for DownStore {
        async fn save(&self, _: &Record) -> session_store::Result<()> {
            Err(session_store::Error::Backend("connection refused".into()))
        }
        async fn load(&self, _: &Id) -> session_store::Result<Option<Record>> {
            Err(session_store::Error::Backend("connection refused".into()))
        }
        async fn delete(&self, _: &Id) -> session_store::Result<()> {
            Err(session_store::Error::Backend("connection refused".into()))
        }
    }

    #[test]
    fn a_failing_store_is_a_server_error() {
        let session = Session::new(Some(Id::default()), Arc::new(DownStore), None);
        let err = identify(Some(session.clone())).unwrap_err();
        assert!(matches!(err, AuthError::Backend(_)), "{err:?}");
        assert_eq!(mizan_core::ApiError::from(err).status(), 500);
        let login = block_on(login(&session, &SessionUser::new("1")));
        assert!(matches!(login, Err(AuthError::Backend(_))), "{login:?}");
    }

    #[test]
    fn functions_without_a_session_layer_get_a_server_error() {
        let req = Request::new(http::Request::new(bytes::Bytes::new()));
        assert!(matches!(session(&req), Err(AuthError::Backend(_))));
        let mut with = http::Request::new(bytes::Bytes::new());
        let store = Arc::new(MemoryStore::default());
        with.extensions_mut()
            .insert(Session::new(None, store, None));
        assert!(session(&Request::new(with)).is_ok());
    }
}
