//! The [`Mizan`] app and its [`MizanBuilder`]: registry, configuration, cache and identity.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Extensions, Method};

mod describe;
mod manifest;

use crate::auth::{Jwt, JwtIdentity, Mwt};
use crate::bus::{InvalidationBus, MemoryBus};
use crate::cache::origin::OriginCache;
use crate::cache::CacheBackend;
use crate::clock::{AppClock, Clock, SystemClock};
use crate::csrf::Csrf;
use crate::error::BuildError;
use crate::form::FormSpec;
use crate::identity::IdentitySource;
use crate::invalidation::PlannedTarget;
use crate::ir::{typescript, Ir};
use crate::manifest::USER_PARAMS;
use crate::registry::{is_valid_name, CacheHint, ClientFunction, FormKind, Function};
use crate::secret::Secret;
use crate::socket::OpenSockets;
use crate::socket::SocketLimits;
use crate::upload::UploadLimits;

/// The default mount point.
pub const DEFAULT_MOUNT: &str = "/api/mizan/";

/// The limits enforced before any work is done on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes (413 above). Default 1 MiB.
    pub max_body_bytes: usize,
    /// Longest query string, in bytes (414 above). Default 8 KiB.
    pub max_query_bytes: usize,
    /// Deepest JSON nesting of a call body (400 above). Default 32.
    pub max_json_depth: usize,
    /// The limits of multipart calls (file uploads); a function may set its own.
    pub uploads: UploadLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_query_bytes: 8 * 1024,
            max_json_depth: 32,
            uploads: UploadLimits::default(),
        }
    }
}

/// A Mizan app: registered functions, configuration, cache and identity source.
///
/// It implements [`Dispatcher`](crate::Dispatcher): hand it to an adapter (`mizan-axum`,
/// `mizan-tower`, ...) or drive it in process with [`TestClient`](crate::testing::TestClient).
/// Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct Mizan {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) registry: Registry,
    pub(crate) mount: String,
    pub(crate) state: Arc<Extensions>,
    /// Who the caller is; `None` when every caller is anonymous (nothing to ask per request).
    pub(crate) identity: Option<Arc<dyn IdentitySource>>,
    pub(crate) cache: Option<OriginCache>,
    pub(crate) limits: Limits,
    pub(crate) manifest: Bytes,
    pub(crate) ir: Ir,
    pub(crate) schema: Bytes,
    pub(crate) mwt: Option<Mwt>,
    pub(crate) csrf: Option<Csrf>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) bus: Arc<dyn InvalidationBus>,
    pub(crate) socket: SocketConfig,
    /// The sockets open now (counted by their drivers) and the shutdown signal.
    pub(crate) sockets: OpenSockets,
}

/// How the WebSocket endpoint accepts connections.
#[derive(Debug, Clone)]
pub(crate) struct SocketConfig {
    /// Allowed `Origin`s (`scheme://host[:port]`); empty: the request's own host only.
    pub(crate) origins: Vec<String>,
    pub(crate) limits: SocketLimits,
    /// Most sockets open at once; the next upgrade gets 503.
    pub(crate) max_sockets: usize,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            origins: Vec::new(),
            limits: SocketLimits::default(),
            max_sockets: 10_000,
        }
    }
}

impl Mizan {
    /// Starts building an app.
    pub fn builder() -> MizanBuilder {
        MizanBuilder::default()
    }

    /// The mount point, e.g. `/api/mizan/`.
    pub fn mount(&self) -> &str {
        &self.inner.mount
    }

    /// The registered functions, in registration order.
    pub fn functions(&self) -> &[Function] {
        &self.inner.registry.functions
    }

    /// The limits it enforces.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Whether the origin cache is on (a secret and a backend are configured).
    pub fn cache_enabled(&self) -> bool {
        self.inner.cache.is_some()
    }

    /// Re-applies, now, every purge this instance lost because the cache backend failed while a
    /// mutation wrote it; the number of contexts whose purge is still lost (0: none).
    ///
    /// Until such a purge is re-applied, *another* instance sharing the backend may serve a
    /// bundle computed before that mutation (this instance skips the cache for the context
    /// meanwhile). Every cache operation of this instance retries first, but an idle instance
    /// makes none: call this on a timer (every 50 ms, say; it costs one lock when nothing is
    /// lost) so the retry lands as soon as the backend answers again. The core owns no timer;
    /// the demo app shows one on Tokio.
    pub async fn retry_lost_purges(&self) -> usize {
        match &self.inner.cache {
            Some(cache) => cache.flush_dirty().await,
            None => 0,
        }
    }

    /// How many contexts have a purge this instance lost and has not re-applied yet (see
    /// [`retry_lost_purges`](Self::retry_lost_purges)); reading it retries nothing.
    pub fn lost_purges(&self) -> usize {
        self.inner
            .cache
            .as_ref()
            .map_or(0, |cache| cache.dirty_count())
    }

    /// The invalidation bus: every successful mutation publishes its targets here, and every
    /// socket subscribes to it.
    pub fn bus(&self) -> &Arc<dyn InvalidationBus> {
        &self.inner.bus
    }

    /// The edge manifest (see [`manifest`](crate::manifest)) as JSON bytes, as `GET manifest/`
    /// serves it.
    pub fn manifest(&self) -> Bytes {
        self.inner.manifest.clone()
    }

    /// The IR: every public function and the named types they use.
    pub fn ir(&self) -> &Ir {
        &self.inner.ir
    }

    /// The IR as its canonical KDL document, as `GET schema/` serves it.
    pub fn schema(&self) -> Bytes {
        self.inner.schema.clone()
    }

    /// The typed TypeScript client of this app: the files of a directory whose entry is
    /// `index.ts` (see [`ir::typescript`](crate::ir::typescript)). Writing them is the caller's.
    pub fn typescript_client(&self) -> Vec<typescript::GeneratedFile> {
        typescript::generate(&self.inner.ir)
    }
}

impl fmt::Debug for Mizan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mizan")
            .field("mount", &self.inner.mount)
            .field("functions", &self.inner.registry.functions.len())
            .field("cache", &self.cache_enabled())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Mizan`] app; [`build`](Self::build) validates everything.
///
/// ```
/// use mizan_core::{ApiError, Function, MemoryCache, Mizan};
///
/// #[derive(Clone)]
/// struct Config { greeting: &'static str }
///
/// let app = Mizan::builder()
///     .with_state(Config { greeting: "hello" })
///     .with_function(Function::new("greet").handler(|req, _args| async move {
///         Ok::<_, ApiError>(req.state::<Config>()?.greeting)
///     }))
///     .with_cache(MemoryCache::new())
///     .with_cache_secret("a-long-random-cache-secret-0123456789")
///     .build()
///     .expect("valid app");
/// assert!(app.cache_enabled());
/// ```
#[must_use]
pub struct MizanBuilder {
    functions: Vec<Function>,
    mount: String,
    state: Extensions,
    identity: Option<Arc<dyn IdentitySource>>,
    jwt: Option<Jwt>,
    mwt: Option<Mwt>,
    csrf: Option<Csrf>,
    clock: Arc<dyn Clock>,
    cache: Option<Arc<dyn CacheBackend>>,
    cache_secret: Option<Secret>,
    cache_max_ttl: Duration,
    cache_outage_grace: Duration,
    limits: Limits,
    bus: Option<Arc<dyn InvalidationBus>>,
    socket: SocketConfig,
}

impl Default for MizanBuilder {
    fn default() -> Self {
        Self {
            functions: Vec::new(),
            mount: DEFAULT_MOUNT.to_owned(),
            state: Extensions::new(),
            identity: None,
            jwt: None,
            mwt: None,
            csrf: None,
            clock: Arc::new(SystemClock),
            cache: None,
            cache_secret: None,
            cache_max_ttl: Duration::from_secs(24 * 3600),
            cache_outage_grace: OriginCache::DEFAULT_OUTAGE_GRACE,
            limits: Limits::default(),
            bus: None,
            socket: SocketConfig::default(),
        }
    }
}

impl fmt::Debug for MizanBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MizanBuilder")
            .field("functions", &self.functions.len())
            .field("mount", &self.mount)
            .field("cache_secret", &self.cache_secret)
            .finish_non_exhaustive()
    }
}

impl MizanBuilder {
    /// Registers a function marked with `#[client]`: `.register::<user_profile>()`.
    pub fn register<F: ClientFunction>(self) -> Self {
        self.with_function(F::function())
    }

    /// Registers a function definition (see [`Function::new`]).
    pub fn with_function(mut self, function: Function) -> Self {
        self.functions.push(function);
        self
    }

    /// Where the protocol endpoints live; default `/api/mizan/`.
    pub fn with_mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }

    /// Adds typed app state (a database pool, a config), read with
    /// [`Request::state`](crate::Request::state).
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Sets the identity source. Default: [`JwtIdentity`] when [`with_jwt`](Self::with_jwt)
    /// is given, otherwise everyone is anonymous.
    pub fn with_identity(mut self, source: impl IdentitySource) -> Self {
        self.identity = Some(Arc::new(source));
        self
    }

    /// Uses JWTs: functions reach the [`Jwt`] as `req.state::<Jwt>()` (to mint on login), and,
    /// unless another identity source is set, `Authorization: Bearer` access tokens identify
    /// callers. Its secret must differ from the cache and MWT secrets.
    pub fn with_jwt(mut self, jwt: Jwt) -> Self {
        self.state.insert(jwt.clone());
        self.jwt = Some(jwt);
        self
    }

    /// Mints an MWT for authenticated callers of `GET session/` (body `mwt` and the
    /// `X-Mizan-Token` header). Its secret must differ from the JWT and cache secrets.
    pub fn with_mwt(mut self, mwt: Mwt) -> Self {
        self.state.insert(mwt.clone());
        self.mwt = Some(mwt);
        self
    }

    /// Turns CSRF protection on: unsafe requests authenticated by a cookie must carry a token
    /// that `GET session/` hands out (see [`csrf`](crate::csrf)). Functions reach it as app
    /// state (`req.csrf_token()` for an HTML form's hidden field).
    pub fn with_csrf(mut self, csrf: Csrf) -> Self {
        self.state.insert(csrf.clone());
        self.csrf = Some(csrf);
        self
    }

    /// Reads time from `clock` (token lifetimes; default the system clock).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Sets the cache backend (the cache is on when a secret is set too).
    pub fn with_cache(mut self, backend: impl CacheBackend) -> Self {
        self.cache = Some(Arc::new(backend));
        self
    }

    /// Sets the HMAC secret of cache keys (at least [`Secret::MIN_LEN`] bytes).
    pub fn with_cache_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.cache_secret = Some(secret.into());
        self
    }

    /// The longest time a bundle stays cached, whatever the hints (default 24 h).
    pub fn with_cache_max_ttl(mut self, ttl: Duration) -> Self {
        self.cache_max_ttl = ttl;
        self
    }

    /// How long after its own last cache-backend failure this instance keeps executing context
    /// fetches instead of serving or storing them (default 2 s). Another instance may have lost
    /// a purge in the same outage; this leaves it the time to re-apply it (its retry timer
    /// period + its backend client's reconnect delay) before cached bundles are trusted again.
    /// Measured with the app's clock ([`with_clock`](Self::with_clock)). `Duration::ZERO`
    /// turns it off.
    pub fn with_cache_outage_grace(mut self, grace: Duration) -> Self {
        self.cache_outage_grace = grace;
        self
    }

    /// Replaces the request limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the invalidation bus that carries mutation targets to the sockets of every app
    /// instance. Default: an in-process [`MemoryBus`] (one instance).
    pub fn with_bus(mut self, bus: impl InvalidationBus) -> Self {
        self.bus = Some(Arc::new(bus));
        self
    }

    /// The `Origin`s allowed to open a WebSocket, each `scheme://host[:port]` (e.g.
    /// `https://app.example.com`). Default: only pages served from the host the upgrade
    /// request is addressed to. A request without `Origin` (not from a browser) is allowed.
    pub fn with_socket_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.socket.origins = origins
            .into_iter()
            .map(|origin| origin.into().trim_end_matches('/').to_ascii_lowercase())
            .collect();
        self
    }

    /// Replaces the limits of each WebSocket connection.
    pub fn with_socket_limits(mut self, limits: SocketLimits) -> Self {
        self.socket.limits = limits;
        self
    }

    /// The most WebSockets the app keeps open at once (default 10 000): over it, an upgrade is
    /// refused with 503 before the 101. [`Mizan::open_sockets`] tells how many are open.
    pub fn with_max_sockets(mut self, max: usize) -> Self {
        self.socket.max_sockets = max;
        self
    }

    /// Validates the functions and configuration and builds the app.
    ///
    /// Every mistake is found here, with an error that says what to fix: invalid names,
    /// duplicates, `context` with `affects`, unknown `affects` targets, routes, a short secret.
    pub fn build(self) -> Result<Mizan, BuildError> {
        if !(self.mount.starts_with('/') && self.mount.ends_with('/'))
            || self.mount.contains("//")
            || self.mount.contains(['{', '}', '?', '#'])
        {
            return Err(BuildError::InvalidMount(self.mount));
        }
        let registry = Registry::new(self.functions)?;
        check_secrets(
            self.jwt.as_ref(),
            self.cache_secret.as_ref(),
            self.mwt.as_ref(),
            self.csrf.as_ref(),
        )?;
        let cache = match (self.cache, self.cache_secret) {
            (Some(backend), Some(secret)) => {
                let cache = OriginCache::new(backend, secret, self.cache_max_ttl);
                Some(cache.with_outage_grace(self.cache_outage_grace, self.clock.clone()))
            }
            (backend, secret) => {
                let missing = match (backend.is_some(), secret.is_some()) {
                    (false, false) => "no cache backend and no cache secret",
                    (false, true) => "no cache backend",
                    _ => "no cache secret",
                };
                tracing::warn!("mizan: origin cache disabled ({missing} configured)");
                None
            }
        };
        let manifest = manifest::render(&registry, &self.mount);
        let ir = describe::build(&registry);
        let schema = Bytes::from(crate::ir::to_kdl(&ir));
        let identity: Option<Arc<dyn IdentitySource>> = match (self.identity, &self.jwt) {
            (Some(identity), _) => Some(identity),
            (None, Some(jwt)) => Some(Arc::new(
                JwtIdentity::new(jwt.clone()).with_clock(self.clock.clone()),
            )),
            (None, None) => None,
        };
        let mut state = self.state;
        state.insert(AppClock(self.clock.clone()));
        Ok(Mizan {
            inner: Arc::new(Inner {
                registry,
                mount: self.mount,
                state: Arc::new(state),
                identity,
                cache,
                limits: self.limits,
                manifest,
                ir,
                schema,
                mwt: self.mwt,
                csrf: self.csrf,
                clock: self.clock,
                bus: self
                    .bus
                    .unwrap_or_else(|| Arc::new(MemoryBus::new()) as Arc<dyn InvalidationBus>),
                socket: self.socket,
                sockets: OpenSockets::default(),
            }),
        })
    }
}

/// A context, as derived from the functions that declare it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContextInfo {
    /// Every function of the context (views and private ones too), in order.
    pub(crate) functions: Vec<usize>,
    /// The functions of its bundle: neither private nor view-path.
    pub(crate) bundle: Vec<usize>,
    /// Every parameter its functions declare, in first-declaration order.
    pub(crate) params: Vec<String>,
    /// The parameters its bundle functions declare (the ones that key the cache).
    pub(crate) bundle_params: Vec<String>,
    /// Whether cached bundles are per user.
    pub(crate) user_scoped: bool,
    /// The sum of its bundle functions' `rev`.
    pub(crate) rev: u64,
    /// The combined hint of its bundle: `Never` if one function says so, else the smallest TTL.
    pub(crate) cache: CacheHint,
    /// The parameter sets mutations can scope it by.
    pub(crate) scopes: Vec<Vec<String>>,
}

/// The hasher of the registry's lookups by name.
type FastHash = foldhash::fast::RandomState;

/// The validated graph of functions, contexts and invalidation plans.
pub(crate) struct Registry {
    pub(crate) functions: Vec<Function>,
    /// Looked up on every call: hashed with foldhash, not SipHash (the keys are the app's own
    /// names; a caller's name is only looked up, never inserted).
    pub(crate) by_name: HashMap<String, usize, FastHash>,
    pub(crate) contexts: BTreeMap<String, ContextInfo>,
    /// For each function, its planned targets (empty unless it is a mutation).
    pub(crate) plans: Vec<Vec<PlannedTarget>>,
    /// For each function, the methods of its route (empty without a route).
    pub(crate) methods: Vec<Vec<Method>>,
    /// Route pattern → the functions served there.
    pub(crate) routes: matchit::Router<Vec<usize>>,
    /// The route patterns, in registration order.
    pub(crate) route_patterns: Vec<String>,
    /// Form name → the function that submits it.
    pub(crate) forms: HashMap<String, usize>,
    /// For each function, its form (built), if it submits one.
    pub(crate) form_specs: Vec<Option<Arc<FormSpec>>>,
}

impl Registry {
    fn new(functions: Vec<Function>) -> Result<Self, BuildError> {
        let mut by_name = HashMap::default();
        let mut contexts: BTreeMap<String, ContextInfo> = BTreeMap::new();
        let mut forms = HashMap::new();
        let mut form_specs = Vec::with_capacity(functions.len());
        for (index, function) in functions.iter().enumerate() {
            validate_function(function)?;
            if by_name.insert(function.spec.name.clone(), index).is_some() {
                return Err(BuildError::DuplicateFunction(function.spec.name.clone()));
            }
            form_specs.push(build_form(function)?);
            if let Some(form) = &function.spec.form {
                if forms.insert(form.name.clone(), index).is_some() {
                    return Err(BuildError::DuplicateForm(form.name.clone()));
                }
            }
            if let Some(context) = &function.spec.context {
                let info = contexts.entry(context.clone()).or_default();
                info.functions.push(index);
                for param in function.params() {
                    push_unique(&mut info.params, param.name());
                }
                if !function.is_private() && !function.is_view() {
                    info.bundle.push(index);
                    for param in function.params() {
                        push_unique(&mut info.bundle_params, param.name());
                    }
                }
            }
        }
        for (name, info) in &mut contexts {
            let members = || info.functions.iter().map(|&i| &functions[i]);
            info.user_scoped = name == "global"
                || members().any(|f| f.auth().is_some() || f.is_user_scoped())
                || info
                    .params
                    .iter()
                    .any(|p| USER_PARAMS.contains(&p.as_str()));
            let bundle = || info.bundle.iter().map(|&i| &functions[i]);
            info.rev = bundle().map(|f| u64::from(f.rev())).sum();
            info.cache = bundle().fold(CacheHint::Default, |acc, f| match (acc, f.cache_hint()) {
                (CacheHint::Never, _) | (_, CacheHint::Never) => CacheHint::Never,
                (CacheHint::Ttl(a), CacheHint::Ttl(b)) => CacheHint::Ttl(a.min(b)),
                (CacheHint::Ttl(t), _) | (_, CacheHint::Ttl(t)) => CacheHint::Ttl(t),
                _ => CacheHint::Default,
            });
        }

        let mut plans = Vec::with_capacity(functions.len());
        for function in &functions {
            let Some(affects) = &function.spec.affects else {
                plans.push(Vec::new());
                continue;
            };
            let mut planned = Vec::with_capacity(affects.len());
            for target in affects {
                let (context, member) = if contexts.contains_key(target) {
                    (target.clone(), None)
                } else {
                    match by_name
                        .get(target)
                        .and_then(|&i| functions[i].context().map(|c| (c, i)))
                    {
                        Some((context, i)) => (context.to_owned(), Some(i)),
                        None => {
                            return Err(BuildError::UnknownAffectsTarget {
                                function: function.spec.name.clone(),
                                target: target.clone(),
                            })
                        }
                    }
                };
                let declared = match member {
                    Some(i) => functions[i]
                        .params()
                        .iter()
                        .map(|p| p.name().to_owned())
                        .collect(),
                    None => contexts[&context].params.clone(),
                };
                let scope: Vec<String> = declared
                    .into_iter()
                    .filter(|p| function.declares(p))
                    .collect();
                let info = contexts.get_mut(&context).expect("context exists");
                if !scope.is_empty() && !info.scopes.contains(&scope) {
                    info.scopes.push(scope.clone());
                }
                planned.push(PlannedTarget {
                    context,
                    function: member.map(|i| functions[i].spec.name.clone()),
                    scope,
                });
            }
            plans.push(planned);
        }

        let mut routes = matchit::Router::new();
        let mut route_patterns: Vec<String> = Vec::new();
        let mut route_members: Vec<Vec<usize>> = Vec::new();
        let mut methods = Vec::with_capacity(functions.len());
        for (index, function) in functions.iter().enumerate() {
            let Some(route) = &function.spec.route else {
                methods.push(Vec::new());
                continue;
            };
            methods.push(route_methods(function)?);
            match route_patterns.iter().position(|r| r == route) {
                Some(slot) => route_members[slot].push(index),
                None => {
                    route_patterns.push(route.clone());
                    route_members.push(vec![index]);
                }
            }
        }
        for (pattern, members) in route_patterns.iter().zip(route_members) {
            let first = &functions[members[0]];
            routes
                .insert(pattern.clone(), members)
                .map_err(|source| BuildError::InvalidRoute {
                    function: first.spec.name.clone(),
                    route: pattern.clone(),
                    source,
                })?;
        }

        Ok(Self {
            functions,
            by_name,
            contexts,
            plans,
            methods,
            routes,
            route_patterns,
            forms,
            form_specs,
        })
    }
}

/// Builds a function's form, checking that a formset names one of its parameters.
fn build_form(function: &Function) -> Result<Option<Arc<FormSpec>>, BuildError> {
    let Some(form) = &function.spec.form else {
        return Ok(None);
    };
    if !is_valid_name(&form.name) {
        return Err(BuildError::InvalidName {
            what: "form",
            name: form.name.clone(),
        });
    }
    if let FormKind::Formset { param } = &form.kind {
        if !function.declares(param) {
            return Err(BuildError::UnknownFormsetParam {
                function: function.name().to_owned(),
                param: param.clone(),
            });
        }
    }
    let spec = (form.make)(form.name.clone()).map_err(|source| BuildError::Form {
        function: function.name().to_owned(),
        source: Box::new(source),
    })?;
    Ok(Some(Arc::new(spec)))
}

/// The three secrets (JWT, cache, MWT) are each long enough and pairwise distinct.
fn check_secrets(
    jwt: Option<&Jwt>,
    cache: Option<&Secret>,
    mwt: Option<&Mwt>,
    csrf: Option<&Csrf>,
) -> Result<(), BuildError> {
    let secrets: Vec<(&'static str, &Secret, bool)> = [
        jwt.map(|j| ("jwt", j.key_material(), j.is_symmetric())),
        cache.map(|s| ("cache", s, true)),
        mwt.map(|m| ("mwt", m.secret(), true)),
        csrf.map(|c| ("csrf", c.key(), true)),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (which, secret, symmetric) in &secrets {
        if *symmetric && secret.len() < Secret::MIN_LEN {
            return Err(BuildError::WeakSecret {
                which,
                len: secret.len(),
                min: Secret::MIN_LEN,
            });
        }
    }
    for (i, (first, a, _)) in secrets.iter().enumerate() {
        for (second, b, _) in &secrets[i + 1..] {
            if a == b {
                return Err(BuildError::SharedSecret { first, second });
            }
        }
    }
    Ok(())
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}

fn validate_function(function: &Function) -> Result<(), BuildError> {
    let spec = &function.spec;
    let name = |what: &'static str, name: &str| {
        if is_valid_name(name) {
            Ok(())
        } else {
            Err(BuildError::InvalidName {
                what,
                name: name.to_owned(),
            })
        }
    };
    name("function", &spec.name)?;
    if let Some(context) = &spec.context {
        name("context", context)?;
    }
    if spec.context.is_some() && spec.affects.is_some() {
        return Err(BuildError::ContextAndAffects(spec.name.clone()));
    }
    if let Some(affects) = &spec.affects {
        if affects.is_empty() {
            return Err(BuildError::EmptyAffects(spec.name.clone()));
        }
        for target in affects {
            name("affects target", target)?;
        }
    }
    for (i, param) in spec.params.iter().enumerate() {
        name("parameter", param.name())?;
        if spec.params[..i].iter().any(|p| p.name() == param.name()) {
            return Err(BuildError::DuplicateParam {
                function: spec.name.clone(),
                param: param.name().to_owned(),
            });
        }
    }
    match (function.is_view(), &spec.route) {
        (true, None) => Err(BuildError::ViewWithoutRoute(spec.name.clone())),
        (false, Some(_)) => Err(BuildError::RouteWithoutView(spec.name.clone())),
        _ => Ok(()),
    }
}

fn route_methods(function: &Function) -> Result<Vec<Method>, BuildError> {
    let spec = &function.spec;
    if spec.methods.is_empty() {
        let default = if spec.affects.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        return Ok(vec![default]);
    }
    spec.methods
        .iter()
        .map(|m| {
            Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| {
                BuildError::InvalidMethod {
                    function: spec.name.clone(),
                    method: m.clone(),
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    fn data(name: &str) -> crate::registry::FunctionBuilder {
        Function::new(name)
    }

    fn done(builder: crate::registry::FunctionBuilder) -> Function {
        builder.handler(|_, _| async { Ok::<_, ApiError>(()) })
    }

    fn view(builder: crate::registry::FunctionBuilder) -> Function {
        builder.view(|_, _| async { http::Response::new(Bytes::new()) })
    }

    fn build(functions: Vec<Function>) -> Result<Mizan, BuildError> {
        functions
            .into_iter()
            .fold(Mizan::builder(), MizanBuilder::with_function)
            .build()
    }

    #[test]
    fn every_registration_mistake_is_a_build_error() {
        let err = |functions| build(functions).unwrap_err().to_string();
        assert!(err(vec![done(data("bad-name"))]).contains("invalid function name"));
        assert!(err(vec![done(data("f")), done(data("f"))]).contains("registered twice"));
        assert!(
            err(vec![done(data("f").with_context("c").with_affects(["c"]))])
                .contains("both `context` and `affects`")
        );
        assert!(
            err(vec![done(data("f").with_affects(["nowhere"]))]).contains("affects \"nowhere\"")
        );
        assert!(
            err(vec![done(data("g")), done(data("f").with_affects(["g"]))])
                .contains("neither a context")
        );
        assert!(err(vec![done(
            data("f").with_param::<i64>("a").with_param::<i64>("a")
        )])
        .contains("twice"));
        assert!(
            err(vec![done(data("f").with_param::<i64>("a b"))]).contains("invalid parameter name")
        );
        assert!(err(vec![view(data("v"))]).contains("no `route`"));
        assert!(err(vec![done(data("f").with_route("/x/"))]).contains("returns data"));
        assert!(err(vec![view(
            data("v").with_route("/x/").with_methods(["P OST"])
        )])
        .contains("invalid HTTP method"));
        assert!(err(vec![view(data("v").with_route("/x/{a/"))]).contains("route"));
        let short = Mizan::builder()
            .with_cache(crate::MemoryCache::new())
            .with_cache_secret("short")
            .build();
        assert!(short.unwrap_err().to_string().contains("at least 32"));
        let secret = "one-secret-used-twice-0123456789abcdef";
        let shared = Mizan::builder()
            .with_cache_secret(secret)
            .with_mwt(Mwt::new(secret))
            .build();
        assert_eq!(
            shared.unwrap_err().to_string(),
            "the cache and mwt secrets are equal; configure a distinct secret for each"
        );
        let shared = Mizan::builder()
            .with_jwt(Jwt::hs256(secret))
            .with_mwt(Mwt::new(secret))
            .build();
        assert!(shared.unwrap_err().to_string().contains("jwt and mwt"));
        let weak = Mizan::builder().with_jwt(Jwt::hs256("short")).build();
        assert!(weak
            .unwrap_err()
            .to_string()
            .contains("the jwt secret is 5 bytes"));
        assert!(Mizan::builder().with_mount("api").build().is_err());
    }

    #[test]
    fn contexts_derive_scope_ttl_rev_and_user_scoping() {
        let app = build(vec![
            done(
                data("profile")
                    .with_context("user")
                    .with_param::<i64>("user_id")
                    .with_rev(2),
            ),
            done(
                data("orders")
                    .with_context("user")
                    .with_param::<i64>("user_id")
                    .with_cache_ttl(60)
                    .with_rev(1),
            ),
            done(data("items").with_context("catalog").with_cache_ttl(600)),
            done(data("live").with_context("catalog").with_cache_ttl(30)),
            done(data("clock").with_context("time").no_cache()),
            done(
                data("rename")
                    .with_affects(["user", "items"])
                    .with_param::<i64>("user_id")
                    .with_param::<String>("name"),
            ),
        ])
        .unwrap();
        let reg = &app.inner.registry;
        let user = &reg.contexts["user"];
        assert!(user.user_scoped);
        assert_eq!(user.rev, 3);
        assert_eq!(user.cache, CacheHint::Ttl(60));
        assert_eq!(user.scopes, vec![vec!["user_id".to_owned()]]);
        assert!(!reg.contexts["catalog"].user_scoped);
        assert_eq!(reg.contexts["catalog"].cache, CacheHint::Ttl(30));
        assert_eq!(reg.contexts["time"].cache, CacheHint::Never);
        let plan = &reg.plans[reg.by_name["rename"]];
        assert_eq!(plan[0].scope, vec!["user_id".to_owned()]);
        assert_eq!(plan[1].function.as_deref(), Some("items"));
        assert!(plan[1].scope.is_empty());
    }
}
