//! Sessions behind tokens: destroying one revokes every token tied to it at once.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

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
