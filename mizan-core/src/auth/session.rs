//! Sessions behind tokens: destroying one revokes every token tied to it at once.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::identity::Identity;

/// Answers whether a session still exists. With a store configured, every use of a JWT checks
/// its `sid` here, so logging out (destroying the session) revokes all its tokens immediately.
///
/// The trait has one method because that is all a token check needs; opening and destroying
/// sessions are the application's own operations (at login and logout), on whatever holds them.
/// When an app runs as several instances, the store must be shared (a database table, Redis):
/// a logout served by one instance then revokes the tokens on every other. A store on a
/// database, as a sketch:
///
/// ```
/// use mizan_core::async_trait;
/// use mizan_core::auth::{new_session_id, SessionStore};
///
/// # struct Db;
/// # impl Db {
/// #     async fn execute(&self, _sql: &str, _args: &[&str]) -> Result<u64, String> { Ok(1) }
/// #     async fn count(&self, _sql: &str, _args: &[&str]) -> Result<i64, String> { Ok(1) }
/// # }
/// struct DbSessions(Db);
///
/// impl DbSessions {
///     /// At login: a new session id, to put in the token's `sid`.
///     async fn create(&self, user_id: &str) -> Result<String, String> {
///         let sid = new_session_id();
///         self.0.execute("INSERT INTO sessions (sid, user_id) VALUES ($1, $2)", &[&sid, user_id]).await?;
///         Ok(sid)
///     }
///
///     /// At logout: every token of the session stops working.
///     async fn destroy(&self, sid: &str) -> Result<bool, String> {
///         Ok(self.0.execute("DELETE FROM sessions WHERE sid = $1", &[sid]).await? > 0)
///     }
/// }
///
/// #[async_trait]
/// impl SessionStore for DbSessions {
///     async fn is_active(&self, sid: &str) -> bool {
///         // Cannot tell (the database is down): refuse.
///         let found = self.0.count("SELECT COUNT(*) FROM sessions WHERE sid = $1", &[sid]).await;
///         found.is_ok_and(|n| n > 0)
///     }
/// }
/// # futures_executor::block_on(async {
/// let store = DbSessions(Db);
/// let sid = store.create("7").await.unwrap();
/// assert!(store.is_active(&sid).await);
/// # });
/// ```
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Whether session `sid` is active. A store that cannot tell must answer `false`.
    async fn is_active(&self, sid: &str) -> bool;
}

/// An in-process [`SessionStore`]: session id → user id.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    sessions: Mutex<HashMap<String, String>>,
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a session for `user_id`; its id (128 random bits, hex).
    pub fn create(&self, user_id: impl Into<String>) -> String {
        let sid = new_session_id();
        self.lock().insert(sid.clone(), user_id.into());
        sid
    }

    /// Destroys a session; whether it existed.
    pub fn destroy(&self, sid: &str) -> bool {
        self.lock().remove(sid).is_some()
    }

    /// The user of an active session.
    pub fn user_of(&self, sid: &str) -> Option<String> {
        self.lock().get(sid).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn is_active(&self, sid: &str) -> bool {
        self.lock().contains_key(sid)
    }
}

#[async_trait]
impl<T: SessionStore + ?Sized> SessionStore for std::sync::Arc<T> {
    async fn is_active(&self, sid: &str) -> bool {
        (**self).is_active(sid).await
    }
}

/// A new session id: 128 bits from the operating system's generator, as 32 hex digits. What
/// [`MemorySessionStore::create`] uses, for stores of your own.
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    // The OS generator failing is not recoverable for a security token.
    getrandom::fill(&mut bytes).expect("the operating system's random generator is available");
    hex::encode(bytes)
}

/// The logged-in user a server-side session holds (what the session identity sources of the
/// adapters, for tower-sessions and actix-session, store and turn into an [`Identity`]).
///
/// ```
/// use mizan_core::auth::SessionUser;
///
/// let identity = SessionUser::new("7").with_staff(true).identity("session-id");
/// assert_eq!(identity.user_id.as_deref(), Some("7"));
/// assert!(identity.is_staff && !identity.is_superuser);
/// assert_eq!(identity.cookie_session.as_deref(), Some("session-id"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionUser {
    /// The user's id.
    pub user_id: String,
    /// Staff may pass `auth = "staff"` guards.
    #[serde(default)]
    pub staff: bool,
    /// Superusers pass every guard.
    #[serde(default)]
    pub superuser: bool,
}

impl SessionUser {
    /// A plain (neither staff nor superuser) user.
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            staff: false,
            superuser: false,
        }
    }

    /// Marks the user as staff.
    pub fn with_staff(mut self, staff: bool) -> Self {
        self.staff = staff;
        self
    }

    /// Marks the user as superuser.
    pub fn with_superuser(mut self, superuser: bool) -> Self {
        self.superuser = superuser;
        self
    }

    /// The identity of this user in a request authenticated by the cookie of session `session`.
    pub fn identity(&self, session: impl Into<String>) -> Identity {
        Identity::user(self.user_id.clone())
            .with_staff(self.staff)
            .with_superuser(self.superuser)
            .with_cookie_session(session)
    }
}
