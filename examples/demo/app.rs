//! The reference app: every usage pattern of the protocol, on an in-process store.
//!
//! Users: 1 `alice` (staff, alice@company.com), 2 `bob` (bob@example.com), 3 `root`
//! (superuser, root@example.com); the password is the username. `login` opens a session and
//! returns a JWT pair (`Authorization: Bearer <access>`); `logout` destroys the session, which
//! revokes every token of it at once. `GET /api/mizan/session/` returns an MWT to a logged-in
//! caller.

use std::time::Duration;

use mizan::auth::{Jwt, JwtCookies, JwtIdentity, Mwt, TokenUser};
use mizan::form::{FieldMeta, Form, FormMeta, Formset, FormsetOptions, Issue};
use mizan::http::{header, StatusCode};
use mizan::{
    async_trait, client, ApiError, AuthError, Csrf, Identity, IdentitySource, Mizan, MizanBuilder,
    Request, Upload, UploadLimits,
};
use mizan_ssr::{PageShell, SsrPool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

// Relative to this file, so that the tests that include it by path find it too.
#[path = "store.rs"]
mod store;

pub(crate) use store::Store;
use store::{NewMessage, User};

fn store(req: &Request) -> Result<&Store, ApiError> {
    req.state::<Store>()
}

/// The four secrets, each its own: the app refuses to start when two are equal.
pub(crate) struct Secrets {
    pub(crate) jwt: String,
    pub(crate) cache: String,
    pub(crate) mwt: String,
    pub(crate) csrf: String,
}

impl Secrets {
    /// The built-in development secrets (distinct, never for production).
    pub(crate) fn development() -> Self {
        Self {
            jwt: "dev-only-jwt-secret-change-me-0123456789".into(),
            cache: "dev-only-cache-secret-change-me-0123456789".into(),
            mwt: "dev-only-mwt-secret-change-me-0123456789".into(),
            csrf: "dev-only-csrf-secret-change-me-0123456789".into(),
        }
    }

    /// `JWT_PRIVATE_KEY`, `MIZAN_CACHE_SECRET`, `MIZAN_MWT_SECRET`, `MIZAN_CSRF_SECRET`, each
    /// falling back to its
    /// development default; also the names of the variables that fell back.
    pub(crate) fn from_env() -> (Self, Vec<&'static str>) {
        let defaults = Self::development();
        let mut fell_back = Vec::new();
        let mut read = |name: &'static str, default: String| {
            std::env::var(name).unwrap_or_else(|_| {
                fell_back.push(name);
                default
            })
        };
        let secrets = Self {
            jwt: read("JWT_PRIVATE_KEY", defaults.jwt),
            cache: read("MIZAN_CACHE_SECRET", defaults.cache),
            mwt: read("MIZAN_MWT_SECRET", defaults.mwt),
            csrf: read("MIZAN_CSRF_SECRET", defaults.csrf),
        };
        (secrets, fell_back)
    }
}

/// JWT identity (`Authorization: Bearer`), enriched with the user's email and name from the
/// store, which the `internal_tool` guard reads.
pub(crate) struct DemoIdentity {
    jwt: JwtIdentity,
    store: Store,
}

#[async_trait]
impl IdentitySource for DemoIdentity {
    async fn identify(&self, parts: &mizan::http::request::Parts) -> Result<Identity, AuthError> {
        let identity = self.jwt.identify(parts).await?;
        let Some(id) = identity
            .user_id
            .as_deref()
            .and_then(|id| id.parse::<i64>().ok())
        else {
            return Ok(identity);
        };
        let user = self
            .store
            .user(id)
            .await
            .map_err(|err| AuthError::Backend(err.into()))?
            .ok_or(AuthError::Revoked)?;
        Ok(identity
            .with_claim("email", user.email.clone())
            .with_claim("name", user.name.clone()))
    }
}

/// `{"id", "name"}` of a user.
#[derive(Serialize, JsonSchema)]
pub(crate) struct UserRef {
    id: i64,
    name: String,
}

/// A user's profile.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Profile {
    id: i64,
    name: String,
    email: String,
}

/// An order.
#[derive(Clone, Serialize, JsonSchema)]
pub(crate) struct Order {
    id: i64,
    total: i64,
}

/// A catalog item.
#[derive(Clone, Serialize, JsonSchema)]
pub(crate) struct Item {
    id: i64,
    name: String,
}

/// A token pair.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Tokens {
    access: String,
    refresh: String,
}

/// A fresh access token.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Access {
    access: String,
}

/// A plain acknowledgement.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Done {
    ok: bool,
}

impl From<User> for Profile {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            name: user.name,
            email: user.email,
        }
    }
}

async fn profile(store: &Store, user_id: i64) -> Result<Profile, ApiError> {
    store
        .user(user_id)
        .await?
        .map(Profile::from)
        .ok_or_else(|| ApiError::not_found(format!("no user {user_id}")))
}

async fn rename_user(req: &Request, user_id: i64, name: &str) -> Result<Profile, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::bad_request("name must be 1 to 64 characters")
            .with_details(serde_json::json!({ "fields": { "name": "1 to 64 characters" } })));
    }
    store(req)?
        .rename_user(user_id, name)
        .await?
        .map(Profile::from)
        .ok_or_else(|| ApiError::not_found(format!("no user {user_id}")))
}

// ---- Auth ----

/// Logs in with username and password (the password is the username in this demo): opens a
/// session and returns a JWT pair.
#[client]
pub(crate) async fn login(
    req: &Request,
    username: String,
    password: String,
) -> Result<Tokens, ApiError> {
    let store = store(req)?;
    let user = store
        .user_by_username(&username)
        .await?
        .filter(|user| password == user.username)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "invalid username or password",
            )
        })?;
    let sid = store.create_session(user.id).await?;
    let token_user = TokenUser {
        user_id: user.id.to_string(),
        sid,
        staff: user.staff,
        superuser: user.superuser,
    };
    let pair = req.state::<Jwt>()?.mint(&token_user, req.unix_time())?;
    // Browsers may keep the pair out of JavaScript: the same tokens in HttpOnly cookies.
    req.state::<JwtCookies>()?.set(req, &pair);
    Ok(Tokens {
        access: pair.access,
        refresh: pair.refresh,
    })
}

/// Exchanges a refresh token (the argument, or else the refresh cookie) for a new access
/// token of the same session; a cookie caller gets it as a cookie too.
#[client]
pub(crate) async fn refresh(req: &Request, refresh: Option<String>) -> Result<Access, ApiError> {
    let cookies = req.state::<JwtCookies>()?;
    let from_cookie = refresh.is_none();
    let token = refresh
        .or_else(|| cookies.refresh_token(req))
        .ok_or_else(ApiError::unauthenticated)?;
    let access = req.state::<Jwt>()?.refresh(&token, req.unix_time()).await?;
    if from_cookie {
        cookies.set_access(req, &access);
    }
    Ok(Access { access })
}

/// Destroys the caller's session: every token of it stops working at once.
#[client(auth)]
pub(crate) async fn logout(req: &Request) -> Result<Done, ApiError> {
    let sid = req.identity().claim_str("sid").unwrap_or_default();
    store(req)?.destroy_session(sid).await?;
    req.state::<JwtCookies>()?.clear(req);
    Ok(Done { ok: true })
}

// ---- Contexts ----

/// The caller, or null when anonymous.
#[client(context = global)]
pub(crate) async fn current_user(req: &Request) -> Result<Option<UserRef>, ApiError> {
    let Some(id) = req
        .identity()
        .user_id
        .as_deref()
        .and_then(|id| id.parse::<i64>().ok())
    else {
        return Ok(None);
    };
    let user = store(req)?.user(id).await?;
    Ok(user.map(|u| UserRef {
        id: u.id,
        name: u.name,
    }))
}

/// A user's profile.
#[client(context = "user")]
pub(crate) async fn user_profile(req: &Request, user_id: i64) -> Result<Profile, ApiError> {
    profile(store(req)?, user_id).await
}

/// A user's orders.
#[client(context = "user")]
pub(crate) async fn user_orders(req: &Request, user_id: i64) -> Result<Vec<Order>, ApiError> {
    Ok(store(req)?.orders(user_id).await?)
}

/// The catalog (cached at most a minute; revision 2).
#[client(context = "catalog", cache = 60, rev = 2)]
pub(crate) async fn catalog_items(req: &Request) -> Result<Vec<Item>, ApiError> {
    Ok(store(req)?.catalog().await?)
}

/// The notes of a folder.
#[client(context = "notes")]
pub(crate) async fn notes_list(req: &Request, folder: String) -> Result<Vec<String>, ApiError> {
    Ok(store(req)?.notes(&folder).await?)
}

/// The subscription's state, as webhooks reported it.
#[client(context = "subscription")]
pub(crate) async fn subscription_status(req: &Request) -> Result<serde_json::Value, ApiError> {
    let subscription = store(req)?.subscription().await?;
    Ok(serde_json::json!({
        "events": subscription.events,
        "last_event": subscription.last_event,
    }))
}

// ---- Mutations ----

/// Renames a user; invalidates the `user` context, scoped by `user_id`.
#[client(affects = "user", websocket)]
pub(crate) async fn update_profile(
    req: &Request,
    user_id: i64,
    name: String,
) -> Result<Profile, ApiError> {
    rename_user(req, user_id, &name).await
}

/// Renames a user; invalidates only the `user_profile` function.
#[client(affects = "user_profile")]
pub(crate) async fn update_name(
    req: &Request,
    user_id: i64,
    name: String,
) -> Result<Profile, ApiError> {
    rename_user(req, user_id, &name).await
}

/// Adds a catalog item; invalidates `catalog`.
#[client(affects = "catalog", websocket)]
pub(crate) async fn add_item(req: &Request, name: String) -> Result<Item, ApiError> {
    Ok(store(req)?.add_item(&name).await?)
}

/// Adds a note to a folder; invalidates `notes`, scoped by `folder`.
#[client(affects = "notes", websocket)]
pub(crate) async fn add_note(
    req: &Request,
    folder: String,
    text: String,
) -> Result<Vec<String>, ApiError> {
    Ok(store(req)?.add_note(&folder, &text).await?)
}

// ---- Standalone and guarded ----

/// Which adapter served the request, as its middleware recorded it in the request extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServedBy(pub(crate) &'static str);

/// Reports what the adapter's middleware put in the request extensions.
#[client]
pub(crate) async fn served_by(req: &Request) -> Result<Option<&'static str>, ApiError> {
    Ok(req.extensions().get::<ServedBy>().map(|s| s.0))
}

/// Returns its argument.
#[client(websocket)]
pub(crate) async fn echo(message: String) -> Result<String, ApiError> {
    Ok(message)
}

/// For any authenticated caller.
#[client(auth)]
pub(crate) async fn secret(req: &Request) -> Result<serde_json::Value, ApiError> {
    Ok(serde_json::json!({ "secret": "the cake is a lie", "for": req.identity().user_id }))
}

/// Staff only.
#[client(auth = "staff")]
pub(crate) async fn admin_action(req: &Request) -> Result<serde_json::Value, ApiError> {
    Ok(serde_json::json!({ "ok": true, "by": req.identity().claim_str("name") }))
}

/// Superusers only.
#[client(auth = "superuser")]
pub(crate) async fn root_action(req: &Request) -> Result<serde_json::Value, ApiError> {
    Ok(serde_json::json!({ "ok": true, "by": req.identity().claim_str("name") }))
}

/// Callers whose email ends with `@company.com`.
pub(crate) fn company_email(identity: &Identity, _parts: &mizan::http::request::Parts) -> bool {
    identity
        .claim_str("email")
        .is_some_and(|email| email.ends_with("@company.com"))
}

/// Company accounts only.
#[client(auth = company_email)]
pub(crate) async fn internal_tool(req: &Request) -> Result<serde_json::Value, ApiError> {
    Ok(serde_json::json!({ "ok": true, "by": req.identity().claim_str("email") }))
}

// ---- Uploads ----

/// What the demo tells about a received file.
#[derive(Serialize, JsonSchema)]
pub(crate) struct FileInfo {
    file_name: String,
    size: usize,
    sha256: String,
}

impl FileInfo {
    fn of(upload: &Upload) -> Self {
        Self {
            file_name: upload.file_name().to_owned(),
            size: upload.size(),
            sha256: hex::encode(Sha256::digest(upload.bytes())),
        }
    }
}

/// A new avatar for a user.
#[derive(Serialize, JsonSchema)]
pub(crate) struct AvatarInfo {
    user_id: i64,
    #[serde(flatten)]
    file: FileInfo,
}

/// Avatars are small: 1 MiB at most, one file.
fn avatar_limits() -> UploadLimits {
    UploadLimits {
        max_body_bytes: 2 * 1024 * 1024,
        max_file_bytes: 1024 * 1024,
        max_files: 1,
        ..UploadLimits::default()
    }
}

/// Sets a user's avatar: the user themself or staff (an anonymous caller is refused before
/// the file is read).
#[client(affects = "user", auth, upload_limits = avatar_limits)]
pub(crate) async fn upload_avatar(
    req: &Request,
    user_id: i64,
    avatar: Upload,
) -> Result<AvatarInfo, ApiError> {
    let identity = req.identity();
    let own = identity.user_id.as_deref() == Some(user_id.to_string().as_str());
    if !own && !identity.is_staff && !identity.is_superuser {
        return Err(ApiError::forbidden());
    }
    profile(store(req)?, user_id).await?;
    Ok(AvatarInfo {
        user_id,
        file: FileInfo::of(&avatar),
    })
}

/// Describes each file received, in part order.
#[client]
pub(crate) async fn attach_files(files: Vec<Upload>) -> Result<Vec<FileInfo>, ApiError> {
    Ok(files.iter().map(FileInfo::of).collect())
}

// ---- Forms ----

/// What a contact message is about.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Topic {
    Sales,
    Support,
    Other,
}

impl Topic {
    /// How the topic is written (in JSON and in the database).
    fn as_str(&self) -> &'static str {
        match self {
            Self::Sales => "sales",
            Self::Support => "support",
            Self::Other => "other",
        }
    }

    /// The topic written `text`; anything unknown reads as `Other`.
    fn parse(text: &str) -> Self {
        match text {
            "sales" => Self::Sales,
            "support" => Self::Support,
            _ => Self::Other,
        }
    }
}

/// The contact form: one struct gives its schema, its validation and its submit.
#[derive(Deserialize, JsonSchema, garde::Validate)]
pub(crate) struct Contact {
    /// How we should address you.
    #[garde(length(chars, min = 1, max = 100))]
    #[schemars(title = "Your name")]
    name: String,
    /// Where we answer.
    #[garde(email)]
    #[schemars(title = "Email")]
    email: String,
    #[garde(skip)]
    #[schemars(title = "Topic")]
    topic: Topic,
    #[garde(length(chars, min = 1, max = 2000))]
    #[schemars(title = "Message", extend("x-widget" = "textarea"))]
    message: String,
}

#[async_trait]
impl Form for Contact {
    fn meta() -> FormMeta {
        FormMeta::new().with_field(
            "topic",
            FieldMeta::new().with_choices([
                ("sales", "Sales"),
                ("support", "Support"),
                ("other", "Something else"),
            ]),
        )
    }

    async fn clean(&self, _req: &Request) -> Result<(), Vec<Issue>> {
        if self.message.to_lowercase().contains("spam") {
            return Err(vec![Issue::new("spam", "this message looks like spam")]);
        }
        Ok(())
    }
}

/// A message received through the contact form (staff read them).
#[derive(Clone, Serialize, JsonSchema)]
pub(crate) struct InboxMessage {
    id: i64,
    name: String,
    email: String,
    topic: Topic,
    message: String,
}

/// The new message's id.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Created {
    id: i64,
}

/// Submits the contact form: validated as a whole before it runs.
#[client(form = "contact", affects = "inbox")]
pub(crate) async fn contact(req: &Request, form: Contact) -> Result<Created, ApiError> {
    let message = NewMessage {
        name: form.name,
        email: form.email,
        topic: form.topic,
        message: form.message,
    };
    let id = store(req)?.add_message(message).await?;
    Ok(Created { id })
}

/// The messages of the contact form, for staff.
#[client(context = "inbox", auth = "staff")]
pub(crate) async fn inbox_messages(req: &Request) -> Result<Vec<InboxMessage>, ApiError> {
    Ok(store(req)?.inbox().await?)
}

/// One line of an order.
#[derive(Deserialize, Serialize, JsonSchema, garde::Validate)]
pub(crate) struct OrderLine {
    /// Three capitals, a dash, three digits (`ABC-123`).
    #[garde(pattern(r"^[A-Z]{3}-[0-9]{3}$"))]
    #[schemars(title = "SKU")]
    sku: String,
    #[garde(range(min = 1, max = 99))]
    #[schemars(title = "Quantity")]
    qty: u32,
}

impl Form for OrderLine {
    fn formset_options() -> FormsetOptions {
        FormsetOptions::new()
            .with_min_num(1)
            .with_max_num(20)
            .with_can_delete(true)
    }
}

/// What an order placed.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Placed {
    lines: usize,
    total_qty: u32,
}

/// Places an order of several lines (a formset): deleted lines are skipped.
#[client(form = "place_order", auth, affects = "user_orders")]
pub(crate) async fn place_order(
    req: &Request,
    user_id: i64,
    lines: Formset<OrderLine>,
) -> Result<Placed, ApiError> {
    let total_qty = lines.iter().map(|line| line.qty).sum();
    let store = store(req)?;
    profile(store, user_id).await?;
    store.add_order(user_id, i64::from(total_qty)).await?;
    Ok(Placed {
        lines: lines.len(),
        total_qty,
    })
}

// ---- View paths ----

/// The profile page (HTML): server-rendered through the SSR pool when the app has one, else the
/// page shell with the props island for the client to render.
#[client(context = "user", route = "/profile/{user_id}/")]
pub(crate) async fn profile_page(
    req: &Request,
    user_id: i64,
) -> Result<mizan::http::Response<String>, ApiError> {
    // The props of the `ProfilePage` component are the page's `user` bundle, which the client
    // bundle hydrates its store from (no second fetch); a cookie-authenticated browser posts
    // the form with its CSRF token.
    let store = store(req)?;
    let props = PageProps {
        user_profile: profile(store, user_id).await?,
        user_orders: store.orders(user_id).await?,
        csrf: req.csrf_token(),
    };
    let html = match req.state::<SsrPool>() {
        Ok(pool) => pool
            .render("ProfilePage", &props)
            .await
            .inspect_err(
                |err| tracing::warn!(%err, "SSR failed; the page falls back to the client"),
            )
            .ok(),
        Err(_) => None, // SSR is off: the shell and the props island
    };
    let page = PageShell::new(format!("{}'s profile", props.user_profile.name))
        // No favicon request (the demo serves none).
        .with_head(r#"<link rel="icon" href="data:,">"#)
        // The hydrating client (examples/web's `profile` entry), where it is deployed.
        .with_script("/assets/profile.js")
        .render(html.as_ref(), &props)
        .map_err(ApiError::internal)?;
    Ok(mizan::http::Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(page)
        .expect("valid response"))
}

/// What the profile page's component renders from: the `user` bundle, and a CSRF token.
#[derive(Serialize)]
pub(crate) struct PageProps {
    user_profile: Profile,
    user_orders: Vec<Order>,
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf: Option<String>,
}

/// The profile form's target: renames, then redirects to the profile page (303).
#[client(affects = "user", route = "/profile/{user_id}/update/", methods = ["POST"])]
pub(crate) async fn update_profile_view(
    req: &Request,
    user_id: i64,
) -> Result<mizan::http::Response<String>, ApiError> {
    #[derive(Deserialize)]
    struct Form {
        name: String,
    }
    let form: Form = req.form()?;
    rename_user(req, user_id, &form.name).await?;
    Ok(mizan::http::Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, format!("/profile/{user_id}/"))
        .body(String::new())
        .expect("valid response"))
}

/// Payment provider webhook: private (no RPC, no IR), served at its route.
#[client(affects = "subscription", private, route = "/webhooks/stripe/", methods = ["POST"])]
pub(crate) async fn stripe_webhook(
    req: &Request,
) -> Result<mizan::http::Response<String>, ApiError> {
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
    }
    let event: Event = serde_json::from_slice(req.body())
        .map_err(|e| ApiError::bad_request(format!("invalid webhook payload: {e}")))?;
    store(req)?.record_webhook(&event.kind).await?;
    Ok(mizan::http::Response::new("ok".to_owned()))
}

/// How often an instance retries the purges it lost (see [`spawn_purge_retry`]).
pub(crate) const PURGE_RETRY_PERIOD: Duration = Duration::from_millis(50);

/// Retries, every `period`, the purges `app` lost while its cache backend failed
/// ([`Mizan::retry_lost_purges`]), so that each lands as soon as the backend answers again
/// rather than at this instance's next request: until it lands, another instance sharing the
/// backend may serve a bundle older than the mutation. Logs when purges are lost and when they
/// are re-applied. Runs until the handle is aborted or the runtime stops.
pub(crate) fn spawn_purge_retry(app: &Mizan, period: Duration) -> tokio::task::JoinHandle<()> {
    let app = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lost_since: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            let pending = app.retry_lost_purges().await;
            // Wall-clock time in the log, so a fault script can line it up with its own events.
            let at_unix_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            match (pending, lost_since) {
                (0, Some(since)) => {
                    let lost_ms = since.elapsed().as_millis() as u64;
                    tracing::info!(at_unix_ms, lost_ms, "mizan demo: lost purges re-applied");
                    lost_since = None;
                }
                (1.., None) => {
                    tracing::warn!(
                        at_unix_ms,
                        pending,
                        "mizan demo: purges lost; retrying every {period:?}"
                    );
                    lost_since = Some(std::time::Instant::now());
                }
                _ => {}
            }
        }
    })
}

/// Every function of the demo, its state, tokens and identity source, on a fresh seeded
/// in-memory store. The caller adds the cache backend and builds.
#[allow(dead_code)] // the tests' entry point; the binary picks its store first
pub(crate) fn builder(secrets: &Secrets) -> MizanBuilder {
    builder_on(secrets, Store::seeded())
}

/// [`builder`] on the given store (a database shared by several instances, see [`Store`]):
/// the data and the sessions behind the tokens live there.
pub(crate) fn builder_on(secrets: &Secrets, store: Store) -> MizanBuilder {
    let jwt = Jwt::hs256(secrets.jwt.as_str()).with_sessions(store.clone());
    // Served over plain HTTP on loopback: `Secure` cookies only when asked for.
    let secure = std::env::var("MIZAN_SECURE_COOKIES").is_ok_and(|v| v == "1");
    let cookies = JwtCookies::new().with_secure(secure);
    mizan::Mizan::builder()
        .with_state(store.clone())
        .with_state(cookies.clone())
        .with_jwt(jwt.clone())
        .with_mwt(Mwt::new(secrets.mwt.as_str()))
        .with_csrf(Csrf::new(secrets.csrf.as_str()).with_secure(secure))
        .with_cache_secret(secrets.cache.as_str())
        .with_identity(DemoIdentity {
            jwt: JwtIdentity::new(jwt).with_cookies(cookies),
            store,
        })
        .register::<login>()
        .register::<refresh>()
        .register::<logout>()
        .register::<current_user>()
        .register::<user_profile>()
        .register::<user_orders>()
        .register::<catalog_items>()
        .register::<notes_list>()
        .register::<subscription_status>()
        .register::<update_profile>()
        .register::<update_name>()
        .register::<add_item>()
        .register::<add_note>()
        .register::<echo>()
        .register::<served_by>()
        .register::<secret>()
        .register::<admin_action>()
        .register::<root_action>()
        .register::<internal_tool>()
        .register::<contact>()
        .register::<inbox_messages>()
        .register::<place_order>()
        .register::<upload_avatar>()
        .register::<attach_files>()
        .register::<profile_page>()
        .register::<update_profile_view>()
        .register::<stripe_webhook>()
}
