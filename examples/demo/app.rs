//! The reference app: every usage pattern of the protocol, on an in-process store.
//!
//! Users: 1 `alice` (staff, alice@company.com), 2 `bob` (bob@example.com), 3 `root`
//! (superuser, root@example.com); the password is the username. `login` opens a session and
//! returns a JWT pair (`Authorization: Bearer <access>`); `logout` destroys the session, which
//! revokes every token of it at once. `GET /api/mizan/session/` returns an MWT to a logged-in
//! caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use mizan::auth::{Jwt, JwtCookies, JwtIdentity, MemorySessionStore, Mwt, TokenUser};
use mizan::form::{FieldMeta, Form, FormMeta, Formset, FormsetOptions, Issue};
use mizan::http::{header, StatusCode};
use mizan::{
    async_trait, client, ApiError, AuthError, Csrf, Identity, IdentitySource, MizanBuilder,
    Request, Upload, UploadLimits,
};
use mizan_ssr::{PageShell, SsrPool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The demo's in-process database, shared as app state.
#[derive(Clone, Default)]
pub(crate) struct Store(Arc<Mutex<Db>>);

#[derive(Default)]
struct Db {
    users: Vec<User>,
    orders: HashMap<i64, Vec<Order>>,
    catalog: Vec<Item>,
    notes: HashMap<String, Vec<String>>,
    webhook_events: u64,
    last_event: Option<String>,
    inbox: Vec<InboxMessage>,
}

#[derive(Clone)]
struct User {
    id: i64,
    username: &'static str,
    name: String,
    email: String,
    staff: bool,
    superuser: bool,
}

impl Store {
    /// The seeded store: alice (staff), bob, root (superuser), their orders, the catalog, notes.
    pub(crate) fn seeded() -> Self {
        let user = |id, username: &'static str, email: &str, staff, superuser| User {
            id,
            username,
            name: username.to_owned(),
            email: email.to_owned(),
            staff,
            superuser,
        };
        let db = Db {
            users: vec![
                user(1, "alice", "alice@company.com", true, false),
                user(2, "bob", "bob@example.com", false, false),
                user(3, "root", "root@example.com", false, true),
            ],
            orders: HashMap::from([
                (
                    1,
                    vec![
                        Order {
                            id: 101,
                            total: 250,
                        },
                        Order { id: 102, total: 75 },
                    ],
                ),
                (
                    2,
                    vec![Order {
                        id: 201,
                        total: 1200,
                    }],
                ),
            ]),
            catalog: vec![
                Item {
                    id: 1,
                    name: "Widget".into(),
                },
                Item {
                    id: 2,
                    name: "Gadget".into(),
                },
            ],
            notes: HashMap::from([("inbox".to_owned(), vec!["welcome".to_owned()])]),
            ..Db::default()
        };
        Self(Arc::new(Mutex::new(db)))
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn store(req: &Request) -> Result<MutexGuard<'_, Db>, ApiError> {
    Ok(req.state::<Store>()?.db())
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
        let db = self.store.db();
        let user = db
            .users
            .iter()
            .find(|u| u.id == id)
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

fn profile(db: &Db, user_id: i64) -> Result<Profile, ApiError> {
    db.users
        .iter()
        .find(|u| u.id == user_id)
        .map(|u| Profile {
            id: u.id,
            name: u.name.clone(),
            email: u.email.clone(),
        })
        .ok_or_else(|| ApiError::not_found(format!("no user {user_id}")))
}

fn rename_user(req: &Request, user_id: i64, name: &str) -> Result<Profile, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::bad_request("name must be 1 to 64 characters")
            .with_details(serde_json::json!({ "fields": { "name": "1 to 64 characters" } })));
    }
    let mut db = store(req)?;
    let user = db
        .users
        .iter_mut()
        .find(|u| u.id == user_id)
        .ok_or_else(|| ApiError::not_found(format!("no user {user_id}")))?;
    user.name = name.to_owned();
    profile(&db, user_id)
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
    let user = store(req)?
        .users
        .iter()
        .find(|u| u.username == username && password == u.username)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "invalid username or password",
            )
        })?;
    let sid = req
        .state::<Arc<MemorySessionStore>>()?
        .create(user.id.to_string());
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
    req.state::<Arc<MemorySessionStore>>()?.destroy(sid);
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
    let db = store(req)?;
    Ok(db.users.iter().find(|u| u.id == id).map(|u| UserRef {
        id: u.id,
        name: u.name.clone(),
    }))
}

/// A user's profile.
#[client(context = "user")]
pub(crate) async fn user_profile(req: &Request, user_id: i64) -> Result<Profile, ApiError> {
    profile(&*store(req)?, user_id)
}

/// A user's orders.
#[client(context = "user")]
pub(crate) async fn user_orders(req: &Request, user_id: i64) -> Result<Vec<Order>, ApiError> {
    Ok(store(req)?
        .orders
        .get(&user_id)
        .cloned()
        .unwrap_or_default())
}

/// The catalog (cached at most a minute; revision 2).
#[client(context = "catalog", cache = 60, rev = 2)]
pub(crate) async fn catalog_items(req: &Request) -> Result<Vec<Item>, ApiError> {
    Ok(store(req)?.catalog.clone())
}

/// The notes of a folder.
#[client(context = "notes")]
pub(crate) async fn notes_list(req: &Request, folder: String) -> Result<Vec<String>, ApiError> {
    Ok(store(req)?.notes.get(&folder).cloned().unwrap_or_default())
}

/// The subscription's state, as webhooks reported it.
#[client(context = "subscription")]
pub(crate) async fn subscription_status(req: &Request) -> Result<serde_json::Value, ApiError> {
    let db = store(req)?;
    Ok(serde_json::json!({ "events": db.webhook_events, "last_event": db.last_event }))
}

// ---- Mutations ----

/// Renames a user; invalidates the `user` context, scoped by `user_id`.
#[client(affects = "user", websocket)]
pub(crate) async fn update_profile(
    req: &Request,
    user_id: i64,
    name: String,
) -> Result<Profile, ApiError> {
    rename_user(req, user_id, &name)
}

/// Renames a user; invalidates only the `user_profile` function.
#[client(affects = "user_profile")]
pub(crate) async fn update_name(
    req: &Request,
    user_id: i64,
    name: String,
) -> Result<Profile, ApiError> {
    rename_user(req, user_id, &name)
}

/// Adds a catalog item; invalidates `catalog`.
#[client(affects = "catalog", websocket)]
pub(crate) async fn add_item(req: &Request, name: String) -> Result<Item, ApiError> {
    let mut db = store(req)?;
    let item = Item {
        id: db.catalog.len() as i64 + 1,
        name,
    };
    db.catalog.push(item.clone());
    Ok(item)
}

/// Adds a note to a folder; invalidates `notes`, scoped by `folder`.
#[client(affects = "notes", websocket)]
pub(crate) async fn add_note(
    req: &Request,
    folder: String,
    text: String,
) -> Result<Vec<String>, ApiError> {
    let mut db = store(req)?;
    let notes = db.notes.entry(folder).or_default();
    notes.push(text);
    Ok(notes.clone())
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
    profile(&*store(req)?, user_id)?;
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
    let mut db = store(req)?;
    let id = db.inbox.len() as i64 + 1;
    db.inbox.push(InboxMessage {
        id,
        name: form.name,
        email: form.email,
        topic: form.topic,
        message: form.message,
    });
    Ok(Created { id })
}

/// The messages of the contact form, for staff.
#[client(context = "inbox", auth = "staff")]
pub(crate) async fn inbox_messages(req: &Request) -> Result<Vec<InboxMessage>, ApiError> {
    Ok(store(req)?.inbox.clone())
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
    let mut db = store(req)?;
    profile(&db, user_id)?;
    let orders = db.orders.entry(user_id).or_default();
    let id = user_id * 100 + orders.len() as i64 + 1;
    orders.push(Order {
        id,
        total: i64::from(total_qty),
    });
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
    let props = {
        let db = store(req)?;
        PageProps {
            user_profile: profile(&db, user_id)?,
            user_orders: db.orders.get(&user_id).cloned().unwrap_or_default(),
            csrf: req.csrf_token(),
        }
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
    rename_user(req, user_id, &form.name)?;
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
    let mut db = store(req)?;
    db.webhook_events += 1;
    db.last_event = Some(event.kind);
    Ok(mizan::http::Response::new("ok".to_owned()))
}

/// Every function of the demo, its state, tokens and identity source, on a fresh seeded store.
/// The caller adds the cache backend and builds.
pub(crate) fn builder(secrets: &Secrets) -> MizanBuilder {
    let store = Store::seeded();
    let sessions = Arc::new(MemorySessionStore::new());
    let jwt = Jwt::hs256(secrets.jwt.as_str()).with_sessions(sessions.clone());
    // Served over plain HTTP on loopback: `Secure` cookies only when asked for.
    let secure = std::env::var("MIZAN_SECURE_COOKIES").is_ok_and(|v| v == "1");
    let cookies = JwtCookies::new().with_secure(secure);
    mizan::Mizan::builder()
        .with_state(store.clone())
        .with_state(sessions)
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
