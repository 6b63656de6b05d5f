//! [`JwtCookies`]: the JWT pair in HttpOnly cookies, for apps that keep tokens out of JavaScript.

use cookie::{Cookie, SameSite};

use super::jwt::TokenPair;
use crate::request::Request;

/// Where and how the JWT access and refresh tokens travel as cookies.
///
/// Both cookies are `HttpOnly` (scripts cannot read them, so an XSS cannot steal them),
/// `SameSite=Lax`, `Path=/` and `Secure` unless turned off for local development over plain
/// HTTP. They are session cookies: a token's own expiry is what ends it. With
/// [`JwtIdentity::with_cookies`](super::JwtIdentity::with_cookies) a request without an
/// `Authorization` header is identified by the access cookie, and marked as cookie-authenticated
/// so that CSRF protection ([`Csrf`](crate::Csrf)) applies to it.
///
/// ```
/// use mizan_core::auth::{JwtCookies, TokenPair};
/// use mizan_core::Request;
///
/// let cookies = JwtCookies::new().with_secure(false);
/// let req = Request::new(http::Request::new(bytes::Bytes::new()));
/// cookies.set(&req, &TokenPair { access: "a.b.c".into(), refresh: "d.e.f".into() });
/// let set = req.take_set_cookies();
/// assert_eq!(set[0], "mizan_access=a.b.c; HttpOnly; SameSite=Lax; Path=/");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtCookies {
    access: String,
    refresh: String,
    secure: bool,
}

impl Default for JwtCookies {
    fn default() -> Self {
        Self::new()
    }
}

impl JwtCookies {
    /// Cookies `mizan_access` and `mizan_refresh`, `Secure`.
    pub fn new() -> Self {
        Self {
            access: "mizan_access".to_owned(),
            refresh: "mizan_refresh".to_owned(),
            secure: true,
        }
    }

    /// Renames the two cookies.
    pub fn with_names(mut self, access: impl Into<String>, refresh: impl Into<String>) -> Self {
        self.access = access.into();
        self.refresh = refresh.into();
        self
    }

    /// Whether the cookies are `Secure` (HTTPS only). Turn it off only for local HTTP.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The access cookie's name.
    pub fn access_name(&self) -> &str {
        &self.access
    }

    /// The refresh cookie's name.
    pub fn refresh_name(&self) -> &str {
        &self.refresh
    }

    fn cookie(&self, name: &str, value: &str) -> Cookie<'static> {
        let mut cookie = Cookie::new(name.to_owned(), value.to_owned());
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_path("/");
        cookie.set_secure(self.secure);
        cookie
    }

    /// Sets both tokens on the response of the function handling `req` (e.g. `login`).
    pub fn set(&self, req: &Request, pair: &TokenPair) {
        req.set_cookie(self.cookie(&self.access, &pair.access));
        req.set_cookie(self.cookie(&self.refresh, &pair.refresh));
    }

    /// Sets a new access token (e.g. `refresh`).
    pub fn set_access(&self, req: &Request, access: &str) {
        req.set_cookie(self.cookie(&self.access, access));
    }

    /// Clears both cookies (e.g. `logout`).
    pub fn clear(&self, req: &Request) {
        for name in [&self.access, &self.refresh] {
            let mut cookie = self.cookie(name, "");
            cookie.make_removal();
            req.set_cookie(cookie);
        }
    }

    /// The refresh token the request's cookie carries.
    pub fn refresh_token(&self, req: &Request) -> Option<String> {
        req.cookie(&self.refresh)
    }
}
