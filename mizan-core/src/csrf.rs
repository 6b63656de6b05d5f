//! CSRF protection for requests authenticated by a cookie.
//!
//! A browser sends cookies with every request to the site, including requests another site
//! makes it send. A request authenticated by a cookie therefore proves nothing about who wrote
//! it; a CSRF token does: only pages of the app can read it. With [`Csrf`] configured
//! ([`MizanBuilder::with_csrf`](crate::MizanBuilder::with_csrf)):
//!
//! - `GET session/` by a caller authenticated by a cookie returns `{"csrfToken": "<token>"}` and
//!   sets it in a cookie (`csrftoken`, readable by the page's JavaScript);
//! - every unsafe request (any method but `GET`, `HEAD`, `OPTIONS`: `call/`, form validation,
//!   view routes, uploads) authenticated by a cookie must carry the token in the `X-CSRFToken`
//!   header, or, for an `application/x-www-form-urlencoded` view-route form, in the
//!   `csrfmiddlewaretoken` field; otherwise it is refused with 403 `forbidden` before its
//!   function runs;
//! - requests authenticated by `Authorization: Bearer` (or not at all) are exempt: another site
//!   cannot make a browser send a bearer token.
//!
//! Which requests count as cookie-authenticated is the identity source's call:
//! [`Identity::with_cookie_session`](crate::Identity::with_cookie_session).
//!
//! # Tokens
//!
//! A token is bound to the session: its secret is `HMAC-SHA256(key, session id)`, so a token of
//! another session, or of a session that ended, never verifies, and nothing is stored. Each
//! response carries it **masked** with fresh random bytes (`pad ‖ pad ⊕ secret`, hex), so its
//! bytes differ on every response (no compression oracle, BREACH) while any of them verifies.
//! The unmasked secret is never accepted. Comparison is constant-time.

use std::fmt;

use hmac::{Hmac, Mac};
use http::header::HeaderValue;
use sha2::Sha256;

use crate::secret::Secret;

/// The header an unsafe request carries the token in.
pub const CSRF_HEADER: &str = "x-csrftoken";

/// The form field of an urlencoded view-route form that carries the token.
pub const CSRF_FORM_FIELD: &str = "csrfmiddlewaretoken";

/// The default name of the cookie `GET session/` sets.
pub const CSRF_COOKIE: &str = "csrftoken";

const SECRET_LEN: usize = 32;

/// CSRF protection: the key that binds tokens to sessions, and the cookie's settings.
#[derive(Clone)]
pub struct Csrf {
    key: Secret,
    cookie_name: String,
    secure: bool,
}

impl Csrf {
    /// Protection keyed by `secret` (at least 32 bytes, distinct from the app's other secrets;
    /// checked when the app is built). The cookie is `Secure` by default.
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self {
            key: secret.into(),
            cookie_name: CSRF_COOKIE.to_owned(),
            secure: true,
        }
    }

    /// Names the token cookie (default `csrftoken`).
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Whether the token cookie is `Secure` (sent over HTTPS only). Turn it off only for local
    /// development over plain HTTP.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    pub(crate) fn key(&self) -> &Secret {
        &self.key
    }

    fn mac(&self, session: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.key.expose()).expect("HMAC takes any key length");
        mac.update(b"mizan-csrf\0");
        mac.update(session.as_bytes());
        mac
    }

    /// A fresh masked token for `session` (different bytes on every call).
    pub fn token(&self, session: &str) -> String {
        let secret = self.mac(session).finalize().into_bytes();
        let mut pad = [0u8; SECRET_LEN];
        // Without randomness the pad is zero: the token still verifies, it is only unmasked.
        let _ = getrandom::fill(&mut pad);
        let mut out = Vec::with_capacity(2 * SECRET_LEN);
        out.extend_from_slice(&pad);
        out.extend(pad.iter().zip(secret.iter()).map(|(p, s)| p ^ s));
        hex::encode(out)
    }

    /// Whether `token` (masked, as [`token`](Self::token) makes them) belongs to `session`.
    pub fn verify(&self, session: &str, token: &str) -> bool {
        let Ok(bytes) = hex::decode(token.trim()) else {
            return false;
        };
        if bytes.len() != 2 * SECRET_LEN {
            return false;
        }
        let (pad, masked) = bytes.split_at(SECRET_LEN);
        let unmasked: Vec<u8> = pad.iter().zip(masked).map(|(p, m)| p ^ m).collect();
        self.mac(session).verify_slice(&unmasked).is_ok()
    }

    /// The `Set-Cookie` value that hands `token` to the page: readable by its scripts (they
    /// send it back in a header), `SameSite=Lax`, `Path=/`.
    pub(crate) fn cookie(&self, token: &str) -> Option<HeaderValue> {
        let mut cookie = cookie::Cookie::new(self.cookie_name.as_str(), token);
        cookie.set_path("/");
        cookie.set_same_site(cookie::SameSite::Lax);
        cookie.set_secure(self.secure);
        HeaderValue::from_str(&cookie.to_string()).ok()
    }
}

impl fmt::Debug for Csrf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Csrf")
            .field("key", &self.key)
            .field("cookie_name", &self.cookie_name)
            .field("secure", &self.secure)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csrf() -> Csrf {
        Csrf::new("a-csrf-secret-of-at-least-32-bytes!!")
    }

    #[test]
    fn tokens_are_masked_per_call_and_bound_to_their_session() {
        let csrf = csrf();
        let (a, b) = (csrf.token("s1"), csrf.token("s1"));
        assert_ne!(a, b, "a fresh mask every time");
        assert!(csrf.verify("s1", &a) && csrf.verify("s1", &b));
        assert!(!csrf.verify("s2", &a), "another session's token");
        let other_key = Csrf::new("another-csrf-secret-of-32-bytes-or-more");
        assert!(!other_key.verify("s1", &a));
    }

    #[test]
    fn unmasked_tampered_and_malformed_tokens_are_refused() {
        let csrf = csrf();
        let secret = hex::encode(csrf.mac("s1").finalize().into_bytes());
        assert!(
            !csrf.verify("s1", &secret),
            "the unmasked secret is not a token"
        );
        let mut token = csrf.token("s1").into_bytes();
        token[100] = if token[100] == b'0' { b'1' } else { b'0' };
        assert!(!csrf.verify("s1", &String::from_utf8(token).unwrap()));
        for bad in ["", "zz", "00", &"0".repeat(127), &"g".repeat(128)] {
            assert!(!csrf.verify("s1", bad), "{bad:?}");
        }
    }

    #[test]
    fn the_cookie_is_readable_lax_and_secure_by_default() {
        let protection = csrf();
        let cookie = protection.cookie("abc").unwrap();
        let cookie = cookie.to_str().unwrap();
        assert!(cookie.starts_with("csrftoken=abc"), "{cookie}");
        assert!(
            cookie.contains("SameSite=Lax") && cookie.contains("Secure"),
            "{cookie}"
        );
        assert!(!cookie.contains("HttpOnly"), "{cookie}");
        assert_eq!(
            format!("{:?}", protection.key),
            "Secret(<redacted, 36 bytes>)"
        );
        let plain = protection.with_secure(false).cookie("abc").unwrap();
        assert!(!plain.to_str().unwrap().contains("Secure"));
    }
}
