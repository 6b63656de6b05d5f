//! Who is calling: [`Identity`] and the [`IdentitySource`] that derives it from a request.
//!
//! An app has one identity source. The default, [`AnonymousIdentity`], says everyone is
//! anonymous. A source reads the request head (a bearer token, a session cookie, a header set by
//! a trusted proxy) and returns an [`Identity`], or an [`AuthError`] when credentials were
//! presented but cannot be accepted (a 401; never silently anonymous).
//!
//! # Writing a source
//!
//! ```
//! use mizan_core::{async_trait, AuthError, Identity, IdentitySource};
//!
//! /// Trusts an `X-User` header set by a gateway in front of the app.
//! struct GatewayIdentity;
//!
//! #[async_trait]
//! impl IdentitySource for GatewayIdentity {
//!     async fn identify(&self, parts: &http::request::Parts) -> Result<Identity, AuthError> {
//!         match parts.headers.get("x-user") {
//!             None => Ok(Identity::anonymous()),
//!             Some(value) => {
//!                 let id = value.to_str().map_err(|_| AuthError::InvalidToken)?;
//!                 Ok(Identity::user(id))
//!             }
//!         }
//!     }
//! }
//! ```

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::AuthError;

/// The caller of a function: anonymous, or a user with flags and extra claims.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Identity {
    /// The user's id, `None` for an anonymous caller.
    pub user_id: Option<String>,
    /// Staff may pass `auth = "staff"` guards.
    pub is_staff: bool,
    /// Superusers pass `auth = "staff"` and `auth = "superuser"` guards.
    pub is_superuser: bool,
    /// Any other claims the identity source provides (an email, a session id, ...).
    pub claims: Map<String, Value>,
    /// The session of the cookie that authenticated the request, when a cookie did: such
    /// requests need a CSRF token for unsafe methods when [`Csrf`](crate::Csrf) is on.
    pub cookie_session: Option<String>,
}

impl Identity {
    /// An anonymous caller.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// An authenticated, non-staff user.
    pub fn user(user_id: impl Into<String>) -> Self {
        Self {
            user_id: Some(user_id.into()),
            ..Self::default()
        }
    }

    /// Marks the identity as staff.
    pub fn with_staff(mut self, is_staff: bool) -> Self {
        self.is_staff = is_staff;
        self
    }

    /// Marks the identity as superuser.
    pub fn with_superuser(mut self, is_superuser: bool) -> Self {
        self.is_superuser = is_superuser;
        self
    }

    /// Adds a claim.
    pub fn with_claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Marks the identity as authenticated by a cookie of session `session` (see
    /// [`cookie_session`](Self::cookie_session)).
    pub fn with_cookie_session(mut self, session: impl Into<String>) -> Self {
        self.cookie_session = Some(session.into());
        self
    }

    /// A claim as a string, if present and a string.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Whether the caller is authenticated (has a user id).
    pub fn is_authenticated(&self) -> bool {
        self.user_id.is_some()
    }
}

/// Derives the caller's [`Identity`] from the request head.
///
/// Implementations must be cheap to call: it runs once per request.
#[async_trait]
pub trait IdentitySource: Send + Sync + 'static {
    /// The identity of the request's caller; an error when credentials were presented and are
    /// not acceptable (the request is refused with 401).
    async fn identify(&self, parts: &http::request::Parts) -> Result<Identity, AuthError>;
}

/// The default identity source: every caller is anonymous.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnonymousIdentity;

#[async_trait]
impl IdentitySource for AnonymousIdentity {
    async fn identify(&self, _parts: &http::request::Parts) -> Result<Identity, AuthError> {
        Ok(Identity::anonymous())
    }
}
