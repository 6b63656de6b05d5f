//! JWT access and refresh tokens, and [`JwtIdentity`], the identity source that reads them.
//!
//! Claims: `sub` (user id), `sid` (session), `staff`, `super`, `type` (`access` | `refresh`),
//! `iat`, `exp`. HS256 by default, RS256 on request. Verification rejects by default: the
//! configured algorithm only (so `alg: none` and HS/RS confusion fail), a valid signature, the
//! expected token type, `iat`/`nbf` not in the future and `exp` not past (both within the
//! leeway), and, with a [`SessionStore`], an active session. Every rejection is the same
//! uninformative [`AuthError`]; the time is passed in, never read here.
//!
//! ```
//! use mizan_core::auth::{Jwt, TokenKind, TokenUser};
//!
//! let jwt = Jwt::hs256("a-jwt-secret-of-at-least-32-bytes!!");
//! let user = TokenUser { user_id: "7".into(), sid: "s1".into(), staff: false, superuser: false };
//! let now = 1_700_000_000;
//! let pair = jwt.mint(&user, now).unwrap();
//! let claims = jwt.verify(&pair.access, TokenKind::Access, now + 10).unwrap();
//! assert_eq!((claims.sub.as_str(), claims.exp - claims.iat), ("7", 300));
//! assert!(jwt.verify(&pair.refresh, TokenKind::Access, now).is_err(), "refresh is not access");
//! assert!(jwt.verify(&pair.access, TokenKind::Access, now + 301 + 5).is_err(), "expired");
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::cookies::JwtCookies;
use super::session::SessionStore;
use crate::clock::{Clock, SystemClock};
use crate::error::{AuthError, BuildError};
use crate::identity::{Identity, IdentitySource};
use crate::secret::Secret;

/// Which token: access tokens authenticate requests, refresh tokens mint access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// `"type": "access"`.
    Access,
    /// `"type": "refresh"`.
    Refresh,
}

/// The claims of a Mizan JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtClaims {
    /// The user id.
    pub sub: String,
    /// The session the token belongs to.
    pub sid: String,
    /// Staff flag.
    pub staff: bool,
    /// Superuser flag.
    #[serde(rename = "super")]
    pub superuser: bool,
    /// Access or refresh.
    #[serde(rename = "type")]
    pub kind: TokenKind,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Not before (Unix seconds), when a peer sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Who a token pair is minted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    /// The user id (`sub`).
    pub user_id: String,
    /// The session (`sid`).
    pub sid: String,
    /// Staff flag.
    pub staff: bool,
    /// Superuser flag.
    pub superuser: bool,
}

/// An access and a refresh token.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenPair {
    /// The access token (default lifetime 300 s).
    pub access: String,
    /// The refresh token (default lifetime 604 800 s).
    pub refresh: String,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenPair(<redacted>)")
    }
}

/// Mints and verifies JWTs. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct Jwt {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The HMAC secret, or the RSA private key: compared with the other secrets at build.
    material: Secret,
    access_ttl: u64,
    refresh_ttl: u64,
    leeway: u64,
    sessions: Option<Arc<dyn SessionStore>>,
}

impl Jwt {
    /// HS256 with `secret` (the app refuses to build when it is under 32 bytes or equals
    /// another secret).
    pub fn hs256(secret: impl Into<Secret>) -> Self {
        let secret = secret.into();
        Self::with_keys(
            Algorithm::HS256,
            EncodingKey::from_secret(secret.expose()),
            DecodingKey::from_secret(secret.expose()),
            secret,
        )
    }

    /// RS256 with a PEM private key (to sign) and its PEM public key (to verify).
    pub fn rs256(private_pem: &[u8], public_pem: &[u8]) -> Result<Self, BuildError> {
        let invalid = |source: jsonwebtoken::errors::Error| BuildError::InvalidKey {
            which: "jwt",
            source: source.into(),
        };
        let encoding = EncodingKey::from_rsa_pem(private_pem).map_err(invalid)?;
        let decoding = DecodingKey::from_rsa_pem(public_pem).map_err(invalid)?;
        Ok(Self::with_keys(
            Algorithm::RS256,
            encoding,
            decoding,
            Secret::new(private_pem),
        ))
    }

    fn with_keys(
        algorithm: Algorithm,
        encoding: EncodingKey,
        decoding: DecodingKey,
        material: Secret,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                algorithm,
                encoding,
                decoding,
                material,
                access_ttl: 300,
                refresh_ttl: 604_800,
                leeway: 5,
                sessions: None,
            }),
        }
    }

    fn edit(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        change(Arc::make_mut(&mut self.inner));
        self
    }

    /// Access token lifetime (default 300 s).
    pub fn with_access_ttl(self, ttl: Duration) -> Self {
        self.edit(|inner| inner.access_ttl = ttl.as_secs())
    }

    /// Refresh token lifetime (default 604 800 s).
    pub fn with_refresh_ttl(self, ttl: Duration) -> Self {
        self.edit(|inner| inner.refresh_ttl = ttl.as_secs())
    }

    /// Clock skew tolerated on `exp`, `iat` and `nbf` (default 5 s).
    pub fn with_leeway(self, leeway: Duration) -> Self {
        self.edit(|inner| inner.leeway = leeway.as_secs())
    }

    /// Checks every token's session in `store` (session validation).
    pub fn with_sessions(self, store: impl SessionStore) -> Self {
        let store: Arc<dyn SessionStore> = Arc::new(store);
        self.edit(|inner| inner.sessions = Some(store))
    }

    pub(crate) fn key_material(&self) -> &Secret {
        &self.inner.material
    }

    pub(crate) fn is_symmetric(&self) -> bool {
        self.inner.algorithm == Algorithm::HS256
    }

    /// Mints an access and a refresh token for `user` at Unix time `now`.
    pub fn mint(&self, user: &TokenUser, now: u64) -> Result<TokenPair, AuthError> {
        Ok(TokenPair {
            access: self.mint_one(user, TokenKind::Access, now)?,
            refresh: self.mint_one(user, TokenKind::Refresh, now)?,
        })
    }

    fn mint_one(&self, user: &TokenUser, kind: TokenKind, now: u64) -> Result<String, AuthError> {
        let ttl = match kind {
            TokenKind::Access => self.inner.access_ttl,
            TokenKind::Refresh => self.inner.refresh_ttl,
        };
        let claims = JwtClaims {
            sub: user.user_id.clone(),
            sid: user.sid.clone(),
            staff: user.staff,
            superuser: user.superuser,
            kind,
            iat: now,
            exp: now.saturating_add(ttl),
            nbf: None,
        };
        jsonwebtoken::encode(
            &Header::new(self.inner.algorithm),
            &claims,
            &self.inner.encoding,
        )
        .map_err(|e| AuthError::Backend(e.into()))
    }

    /// Verifies signature, algorithm, type and times of `token` at Unix time `now` (no session
    /// check; see [`authenticate`](Self::authenticate)).
    pub fn verify(&self, token: &str, kind: TokenKind, now: u64) -> Result<JwtClaims, AuthError> {
        let claims: JwtClaims = decode(token, self.inner.algorithm, &self.inner.decoding)?;
        check_times(claims.iat, claims.nbf, claims.exp, now, self.inner.leeway)?;
        if claims.kind != kind {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// [`verify`](Self::verify), then the session check when a store is configured.
    pub async fn authenticate(
        &self,
        token: &str,
        kind: TokenKind,
        now: u64,
    ) -> Result<JwtClaims, AuthError> {
        let claims = self.verify(token, kind, now)?;
        if let Some(sessions) = &self.inner.sessions {
            if !sessions.is_active(&claims.sid).await {
                return Err(AuthError::Revoked);
            }
        }
        Ok(claims)
    }

    /// Exchanges a valid refresh token for a new access token of the same session.
    pub async fn refresh(&self, refresh_token: &str, now: u64) -> Result<String, AuthError> {
        let claims = self
            .authenticate(refresh_token, TokenKind::Refresh, now)
            .await?;
        let user = TokenUser {
            user_id: claims.sub,
            sid: claims.sid,
            staff: claims.staff,
            superuser: claims.superuser,
        };
        self.mint_one(&user, TokenKind::Access, now)
    }
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("algorithm", &self.inner.algorithm)
            .field("key", &self.inner.material)
            .field("access_ttl", &self.inner.access_ttl)
            .field("refresh_ttl", &self.inner.refresh_ttl)
            .field("sessions", &self.inner.sessions.is_some())
            .finish()
    }
}

/// Decodes a compact JWS signed with `algorithm` only; every failure is `InvalidToken`.
/// Time checks are done by the caller against a given `now`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    token: &str,
    algorithm: Algorithm,
    key: &DecodingKey,
) -> Result<T, AuthError> {
    let mut validation = Validation::new(algorithm);
    validation.algorithms = vec![algorithm];
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<T>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|_| AuthError::InvalidToken)
}

/// `iat` and `nbf` not in the future, `exp` not past, each within `leeway` seconds.
pub(crate) fn check_times(
    iat: u64,
    nbf: Option<u64>,
    exp: u64,
    now: u64,
    leeway: u64,
) -> Result<(), AuthError> {
    let future = |t: u64| t > now.saturating_add(leeway);
    if future(iat) || nbf.is_some_and(future) || exp.saturating_add(leeway) < now || exp < iat {
        return Err(AuthError::InvalidToken);
    }
    Ok(())
}

/// Reads `Authorization: Bearer <access token>`: no header is anonymous; any other scheme, a
/// bad token or a revoked session is refused (401).
pub struct JwtIdentity {
    jwt: Jwt,
    clock: Arc<dyn Clock>,
    cookies: Option<JwtCookies>,
}

impl JwtIdentity {
    /// Verifies access tokens with `jwt` against the system clock.
    pub fn new(jwt: Jwt) -> Self {
        Self {
            jwt,
            clock: Arc::new(SystemClock),
            cookies: None,
        }
    }

    /// Also identifies requests by their access cookie when they carry no `Authorization`
    /// header; such identities are marked cookie-authenticated (their session, for CSRF).
    pub fn with_cookies(mut self, cookies: JwtCookies) -> Self {
        self.cookies = Some(cookies);
        self
    }

    /// Reads time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The identity of a verified access token.
    pub async fn identify_token(&self, token: &str) -> Result<Identity, AuthError> {
        let claims = self
            .jwt
            .authenticate(token, TokenKind::Access, self.clock.unix_seconds())
            .await?;
        Ok(Identity::user(claims.sub)
            .with_staff(claims.staff)
            .with_superuser(claims.superuser)
            .with_claim("sid", claims.sid)
            .with_claim("exp", claims.exp))
    }
}

impl fmt::Debug for JwtIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtIdentity")
            .field("jwt", &self.jwt)
            .field("cookies", &self.cookies)
            .finish_non_exhaustive()
    }
}

/// The token of `Authorization: Bearer <token>`: `Ok(None)` without the header, an error for
/// any other scheme or a malformed value.
pub fn bearer_token(parts: &http::request::Parts) -> Result<Option<&str>, AuthError> {
    let Some(value) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::InvalidToken)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(AuthError::InvalidToken),
    }
}

#[async_trait]
impl IdentitySource for JwtIdentity {
    async fn identify(&self, parts: &http::request::Parts) -> Result<Identity, AuthError> {
        if let Some(token) = bearer_token(parts)? {
            return self.identify_token(token).await;
        }
        let cookie = self.cookies.as_ref().and_then(|cookies| {
            parts
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(cookie::Cookie::split_parse)
                .filter_map(Result::ok)
                .find(|cookie| cookie.name() == cookies.access_name())
                .map(|cookie| cookie.value().to_owned())
        });
        match cookie {
            None => Ok(Identity::anonymous()),
            Some(token) => {
                let identity = self.identify_token(&token).await?;
                let session = identity.claim_str("sid").unwrap_or_default().to_owned();
                Ok(identity.with_cookie_session(session))
            }
        }
    }
}
