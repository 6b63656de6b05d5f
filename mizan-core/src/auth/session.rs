//! Sessions behind tokens: destroying one revokes every token tied to it at once.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::identity::Identity;

/// Answers whether a session still exists. With a store configured, every use of a JWT checks
/// its `sid` here, so logging out (destroying the session) revokes all its tokens immediately.
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
        let sid = random_id();
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

/// 128 bits from the operating system's generator, as hex.
pub(crate) fn random_id() -> String {
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
