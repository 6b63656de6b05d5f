//! Auth: guards (who may call a function), JWT access/refresh tokens, the MWT edge token, and
//! sessions.
//!
//! # Guards
//!
//! A guard is checked on every transport, for a call and for every function of a context bundle
//! (a bundle with one guarded function is denied as a whole), before arguments are deserialized
//! and before the cache is read. An anonymous caller is refused with 401, an authenticated one
//! that the guard denies with 403.

mod cookies;
mod jwt;
mod mwt;
mod session;

use std::fmt;

pub use cookies::JwtCookies;
pub use jwt::{bearer_token, Jwt, JwtClaims, JwtIdentity, TokenKind, TokenPair, TokenUser};
pub use mwt::{Mwt, MwtClaims, MwtIdentity, MWT_HEADER};
pub use session::{new_session_id, MemorySessionStore, SessionStore, SessionUser};

use crate::error::ApiError;
use crate::identity::Identity;

/// A custom guard: `true` lets the caller in.
pub type Predicate = fn(&Identity, &http::request::Parts) -> bool;

/// The guard of a function (`auth`, `auth = "staff"`, `auth = "superuser"`, `auth = predicate`).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Auth {
    /// Any authenticated caller.
    Required,
    /// Staff (or superusers, who hold every permission).
    Staff,
    /// Superusers only.
    Superuser,
    /// An authenticated caller for whom the predicate returns `true`.
    Predicate(Predicate),
}

impl Auth {
    /// The guard's name in the manifest and IR: `required`, `staff`, `superuser`, `predicate`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Staff => "staff",
            Self::Superuser => "superuser",
            Self::Predicate(_) => "predicate",
        }
    }

    /// Checks the caller: `Ok` lets it in, otherwise 401 (anonymous) or 403 (denied).
    pub fn check(&self, identity: &Identity, parts: &http::request::Parts) -> Result<(), ApiError> {
        if !identity.is_authenticated() {
            return Err(ApiError::unauthenticated());
        }
        let allowed = match self {
            Self::Required => true,
            Self::Staff => identity.is_staff || identity.is_superuser,
            Self::Superuser => identity.is_superuser,
            Self::Predicate(predicate) => predicate(identity, parts),
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn parts() -> http::request::Parts {
        http::Request::new(()).into_parts().0
    }

    fn status(auth: Auth, identity: &Identity) -> Option<StatusCode> {
        auth.check(identity, &parts()).err().map(|e| e.status())
    }

    fn company_email(identity: &Identity, _: &http::request::Parts) -> bool {
        identity
            .claim_str("email")
            .is_some_and(|e| e.ends_with("@company.com"))
    }

    #[test]
    fn every_guard_refuses_anonymous_with_401() {
        let anon = Identity::anonymous();
        for auth in [
            Auth::Required,
            Auth::Staff,
            Auth::Superuser,
            Auth::Predicate(company_email),
        ] {
            assert_eq!(
                status(auth, &anon),
                Some(StatusCode::UNAUTHORIZED),
                "{auth:?}"
            );
        }
    }

    #[test]
    fn staff_superuser_and_predicate_refuse_with_403() {
        let plain = Identity::user("2").with_claim("email", "bob@example.com");
        let staff = Identity::user("1")
            .with_staff(true)
            .with_claim("email", "alice@company.com");
        let root = Identity::user("3").with_superuser(true);
        assert_eq!(status(Auth::Required, &plain), None);
        assert_eq!(status(Auth::Staff, &plain), Some(StatusCode::FORBIDDEN));
        assert_eq!(status(Auth::Staff, &staff), None);
        assert_eq!(status(Auth::Staff, &root), None);
        assert_eq!(status(Auth::Superuser, &staff), Some(StatusCode::FORBIDDEN));
        assert_eq!(status(Auth::Superuser, &root), None);
        assert_eq!(
            status(Auth::Predicate(company_email), &plain),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(status(Auth::Predicate(company_email), &staff), None);
    }
}
