//! The MWT (Mizan Web Token): the edge identity token on `X-Mizan-Token`.
//!
//! A compact JWS, HS256, signed with its own secret (never the JWT or cache secret), default
//! lifetime 300 s, claims `sub`, `staff`, `super`, `iat`, `exp` and `typ: "mwt"`. The origin
//! mints one for an authenticated caller of `GET session/`; an edge worker verifies it to derive
//! user-scoped cache keys without knowing the cache secret. An MWT is never accepted as a JWT
//! access token, nor the reverse.
//!
//! ```
//! use mizan_core::auth::Mwt;
//! use mizan_core::Identity;
//!
//! let mwt = Mwt::new("an-mwt-secret-of-at-least-32-bytes!");
//! let token = mwt.mint(&Identity::user("7").with_staff(true), 1_700_000_000).unwrap().unwrap();
//! let claims = mwt.verify(&token, 1_700_000_100).unwrap();
//! assert_eq!((claims.sub.as_str(), claims.staff, claims.typ.as_str()), ("7", true, "mwt"));
//! assert!(mwt.mint(&Identity::anonymous(), 1_700_000_000).unwrap().is_none());
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::jwt::{check_times, decode};
use crate::clock::{Clock, SystemClock};
use crate::error::AuthError;
use crate::identity::{Identity, IdentitySource};
use crate::secret::Secret;

/// The header that carries an MWT, in requests and in `GET session/` responses.
pub const MWT_HEADER: &str = "x-mizan-token";

/// The claims of an MWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MwtClaims {
    /// The user id.
    pub sub: String,
    /// Staff flag.
    pub staff: bool,
    /// Superuser flag.
    #[serde(rename = "super")]
    pub superuser: bool,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Always `"mwt"`.
    pub typ: String,
}

/// Mints and verifies MWTs. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct Mwt {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    secret: Secret,
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: u64,
    leeway: u64,
}

impl Mwt {
    /// An MWT signer/verifier with its own `secret` (`MIZAN_MWT_SECRET`).
    pub fn new(secret: impl Into<Secret>) -> Self {
        let secret = secret.into();
        Self {
            inner: Arc::new(Inner {
                encoding: EncodingKey::from_secret(secret.expose()),
                decoding: DecodingKey::from_secret(secret.expose()),
                secret,
                ttl: 300,
                leeway: 5,
            }),
        }
    }

    /// Token lifetime (default 300 s).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        Arc::make_mut(&mut self.inner).ttl = ttl.as_secs();
        self
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.inner.secret
    }

    /// An MWT for `identity` at Unix time `now`; `None` for an anonymous caller.
    pub fn mint(&self, identity: &Identity, now: u64) -> Result<Option<String>, AuthError> {
        let Some(sub) = identity.user_id.clone() else {
            return Ok(None);
        };
        let claims = MwtClaims {
            sub,
            staff: identity.is_staff,
            superuser: identity.is_superuser,
            iat: now,
            exp: now.saturating_add(self.inner.ttl),
            typ: "mwt".to_owned(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.inner.encoding,
        )
        .map(Some)
        .map_err(|e| AuthError::Backend(e.into()))
    }

    /// Verifies an MWT at Unix time `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<MwtClaims, AuthError> {
        let claims: MwtClaims = decode(token, Algorithm::HS256, &self.inner.decoding)?;
        check_times(claims.iat, None, claims.exp, now, self.inner.leeway)?;
        if claims.typ != "mwt" {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }
}

impl fmt::Debug for Mwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mwt")
            .field("secret", &self.inner.secret)
            .field("ttl", &self.inner.ttl)
            .finish()
    }
}

/// For deployments behind a trusted edge: the identity is the `X-Mizan-Token` MWT (none is
/// anonymous, an invalid one is refused).
pub struct MwtIdentity {
    mwt: Mwt,
    clock: Arc<dyn Clock>,
}

impl MwtIdentity {
    /// Verifies MWTs with `mwt` against the system clock.
    pub fn new(mwt: Mwt) -> Self {
        Self {
            mwt,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl fmt::Debug for MwtIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MwtIdentity")
            .field("mwt", &self.mwt)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl IdentitySource for MwtIdentity {
    async fn identify(&self, parts: &http::request::Parts) -> Result<Identity, AuthError> {
        let Some(value) = parts.headers.get(MWT_HEADER) else {
            return Ok(Identity::anonymous());
        };
        let token = value.to_str().map_err(|_| AuthError::InvalidToken)?;
        let claims = self.mwt.verify(token, self.clock.unix_seconds())?;
        Ok(Identity::user(claims.sub)
            .with_staff(claims.staff)
            .with_superuser(claims.superuser))
    }
}
