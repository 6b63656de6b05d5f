//! The [`Request`] a function receives.

use std::any::type_name;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use cookie::Cookie;
use http::header::{HeaderValue, COOKIE};
use http::{Extensions, HeaderMap, Method, Uri};
use serde::de::DeserializeOwned;

use crate::clock::{AppClock, Clock, SystemClock};
use crate::csrf::Csrf;
use crate::error::ApiError;
use crate::identity::Identity;

/// What a function sees of the request that called it: the caller's [`Identity`], the method,
/// URI, headers and body, the `http::Extensions` that outer middleware inserted, and the app's
/// typed state.
///
/// Cloning is cheap (one `Arc`).
///
/// In a unit test, build one by hand and call the function directly:
///
/// ```
/// use mizan_core::{Identity, Request};
///
/// #[derive(Clone)]
/// struct Db(&'static str);
///
/// let req = Request::new(http::Request::new(bytes::Bytes::new()))
///     .with_identity(Identity::user("7"))
///     .with_state(Db("test"));
/// assert_eq!(req.state::<Db>().unwrap().0, "test");
/// assert_eq!(req.identity().user_id.as_deref(), Some("7"));
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    parts: http::request::Parts,
    body: Bytes,
    identity: Identity,
    state: Arc<Extensions>,
    path_params: Vec<(String, String)>,
    /// `Set-Cookie` values the function asked for, added to its response.
    /// Held in place (no allocation until a cookie is set); every clone of the [`Request`]
    /// shares it through the `Arc` around `Inner`.
    set_cookies: Mutex<Vec<HeaderValue>>,
}

/// A copy for [`Arc::make_mut`] (`with_identity`, `with_state` on a request another handle
/// shares): it starts with the cookies set so far.
impl Clone for Inner {
    fn clone(&self) -> Self {
        Self {
            parts: self.parts.clone(),
            body: self.body.clone(),
            identity: self.identity.clone(),
            state: Arc::clone(&self.state),
            path_params: self.path_params.clone(),
            set_cookies: Mutex::new(
                self.set_cookies
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
        }
    }
}

impl Request {
    /// A request for calling a function directly (tests): anonymous, with no app state.
    pub fn new(request: http::Request<Bytes>) -> Self {
        let (parts, body) = request.into_parts();
        Self::from_parts(
            parts,
            body,
            Identity::anonymous(),
            Arc::default(),
            Vec::new(),
        )
    }

    pub(crate) fn from_parts(
        parts: http::request::Parts,
        body: Bytes,
        identity: Identity,
        state: Arc<Extensions>,
        path_params: Vec<(String, String)>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                parts,
                body,
                identity,
                state,
                path_params,
                set_cookies: Mutex::default(),
            }),
        }
    }

    /// Replaces the caller's identity.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        Arc::make_mut(&mut self.inner).identity = identity;
        self
    }

    /// Adds a value of app state (as [`MizanBuilder::with_state`](crate::MizanBuilder::with_state) does).
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        Arc::make_mut(&mut inner.state).insert(value);
        self
    }

    /// The caller.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.inner.parts.method
    }

    /// The request URI.
    pub fn uri(&self) -> &Uri {
        &self.inner.parts.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.parts.headers
    }

    /// What outer middleware inserted into the request's extensions.
    pub fn extensions(&self) -> &Extensions {
        &self.inner.parts.extensions
    }

    /// The whole request head.
    pub fn parts(&self) -> &http::request::Parts {
        &self.inner.parts
    }

    /// The raw body (view-path functions read forms and webhooks from it).
    pub fn body(&self) -> &Bytes {
        &self.inner.body
    }

    /// The body as an `application/x-www-form-urlencoded` form; 400 when it does not parse.
    pub fn form<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_urlencoded::from_bytes(&self.inner.body)
            .map_err(|e| ApiError::bad_request(format!("invalid form body: {e}")))
    }

    /// The current Unix time in seconds, from the app's clock
    /// ([`MizanBuilder::with_clock`](crate::MizanBuilder::with_clock)), for minting tokens.
    pub fn unix_time(&self) -> u64 {
        match self.inner.state.get::<AppClock>() {
            Some(clock) => clock.0.unix_seconds(),
            None => SystemClock.unix_seconds(),
        }
    }

    /// The value of the request's cookie `name`, if it sent one.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.inner
            .parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value().to_owned())
    }

    /// Sets a cookie on the response: on an RPC call's response as on a view's, so a `login`
    /// function can set its session cookies without becoming a view-path function. (Transports
    /// without headers, such as IPC, have no cookies.)
    ///
    /// ```
    /// use mizan_core::cookie::{Cookie, SameSite};
    /// use mizan_core::Request;
    ///
    /// let req = Request::new(http::Request::new(bytes::Bytes::new()));
    /// let mut session = Cookie::new("session", "abc");
    /// session.set_http_only(true);
    /// session.set_same_site(SameSite::Lax);
    /// req.set_cookie(session);
    /// req.remove_cookie("old", "/");
    /// # assert_eq!(req.take_set_cookies().len(), 2);
    /// ```
    pub fn set_cookie(&self, cookie: Cookie<'_>) {
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            self.set_cookies().push(value);
        }
    }

    /// Clears the cookie `name` set for `path` (an expired, empty cookie of that name).
    pub fn remove_cookie(&self, name: &str, path: &str) {
        let mut cookie = Cookie::new(name.to_owned(), "");
        cookie.set_path(path.to_owned());
        cookie.make_removal();
        self.set_cookie(cookie);
    }

    /// The `Set-Cookie` values asked for so far, taken out (the dispatcher adds them to the
    /// response).
    #[doc(hidden)]
    pub fn take_set_cookies(&self) -> Vec<HeaderValue> {
        std::mem::take(&mut *self.set_cookies())
    }

    fn set_cookies(&self) -> std::sync::MutexGuard<'_, Vec<HeaderValue>> {
        self.inner
            .set_cookies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh CSRF token for the caller's cookie session, for the hidden
    /// `csrfmiddlewaretoken` field of an HTML form; `None` when CSRF protection is off or
    /// the caller is not authenticated by a cookie (such requests need no token).
    pub fn csrf_token(&self) -> Option<String> {
        let csrf = self.inner.state.get::<Csrf>()?;
        let session = self.inner.identity.cookie_session.as_deref()?;
        Some(csrf.token(session))
    }

    /// A segment of the route, e.g. `user_id` of `/profile/{user_id}/`.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.inner
            .path_params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// App state of type `T`, registered with
    /// [`MizanBuilder::with_state`](crate::MizanBuilder::with_state).
    ///
    /// A missing state is a server bug, hence a 500 (with the type name logged), so `?` works.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T, ApiError> {
        self.inner.state.get::<T>().ok_or_else(|| {
            ApiError::internal(format!("app state {} is not registered", type_name::<T>()))
        })
    }
}

/// Whether the head's `Content-Type` is `essence` (compared without its parameters, such as
/// `boundary` or `charset`, and without regard to case).
pub(crate) fn has_media_type(headers: &HeaderMap, essence: &str) -> bool {
    media_type(headers).is_some_and(|found| found.eq_ignore_ascii_case(essence))
}

/// The essence of the head's `Content-Type` (without its parameters), as sent.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
}
