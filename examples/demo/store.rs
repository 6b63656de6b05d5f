//! The demo's data behind one access layer: in process memory (the default), or in a database
//! through `sqlx` when `DATABASE_URL` is set (`sqlite://PATH` or `postgres://...`).
//!
//! Every function of the app reads and writes through [`Store`], so the behaviour is the same on
//! each backend; only where the truth lives changes. With a database, several instances of the
//! demo share users, orders, catalog, notes, inbox, webhook events *and sessions*: a logout on
//! one instance revokes the tokens on every other, because each JWT use checks its `sid` in the
//! shared `demo_sessions` table.
//!
//! The schema is created and seeded at start-up when absent. Several instances may start at once
//! on one database: the set-up runs under a lock (a transaction-scoped advisory lock on
//! PostgreSQL, `BEGIN IMMEDIATE` on SQLite) and seeds only when the `demo_meta` table does not say
//! it was done, so nothing fails and nothing is seeded twice.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mizan::auth::{new_session_id, MemorySessionStore, SessionStore};
use mizan::{async_trait, ApiError};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{InboxMessage, Item, Order, Topic};

/// The demo's data; cloning shares it.
#[derive(Clone)]
pub(crate) struct Store(Arc<Backend>);

// One per app, behind an `Arc`: the size of the memory variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Memory {
        db: Mutex<Db>,
        sessions: MemorySessionStore,
    },
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A user of the demo.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) username: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) staff: bool,
    pub(crate) superuser: bool,
}

/// What the webhooks reported.
pub(crate) struct Subscription {
    pub(crate) events: i64,
    pub(crate) last_event: Option<String>,
}

/// A contact message, before it has an id.
pub(crate) struct NewMessage {
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) topic: Topic,
    pub(crate) message: String,
}

/// Why the store failed (the database is unreachable, refused a statement, ...).
#[derive(Debug)]
pub(crate) struct StoreError(sqlx::Error);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "demo store: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self(err)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // The cause goes to the log; the client gets a plain 500.
        ApiError::internal(err)
    }
}

// ---- The seed: the same on every backend ----

/// id, username, email, staff, superuser; the name starts as the username.
const USERS: [(i64, &str, &str, bool, bool); 3] = [
    (1, "alice", "alice@company.com", true, false),
    (2, "bob", "bob@example.com", false, false),
    (3, "root", "root@example.com", false, true),
];
/// id, user id, total.
const ORDERS: [(i64, i64, i64); 3] = [(101, 1, 250), (102, 1, 75), (201, 2, 1200)];
const CATALOG: [&str; 2] = ["Widget", "Gadget"];
/// folder, text.
const NOTES: [(&str, &str); 1] = [("inbox", "welcome")];

/// The in-process data of the memory backend.
#[derive(Default)]
struct Db {
    users: Vec<User>,
    orders: HashMap<i64, Vec<Order>>,
    catalog: Vec<Item>,
    notes: HashMap<String, Vec<String>>,
    webhook_events: i64,
    last_event: Option<String>,
    inbox: Vec<InboxMessage>,
}

impl Db {
    fn seeded() -> Self {
        let mut db = Db {
            users: USERS
                .iter()
                .map(|&(id, username, email, staff, superuser)| User {
                    id,
                    username: username.to_owned(),
                    name: username.to_owned(),
                    email: email.to_owned(),
                    staff,
                    superuser,
                })
                .collect(),
            ..Db::default()
        };
        for (id, user_id, total) in ORDERS {
            db.orders
                .entry(user_id)
                .or_default()
                .push(Order { id, total });
        }
        for (i, name) in CATALOG.iter().enumerate() {
            db.catalog.push(Item {
                id: i as i64 + 1,
                name: (*name).to_owned(),
            });
        }
        for (folder, text) in NOTES {
            db.notes
                .entry(folder.to_owned())
                .or_default()
                .push(text.to_owned());
        }
        db
    }
}

/// Runs the same query code on whichever pool the store has (the SQL is written once, with
/// `$1`-style placeholders, which both PostgreSQL and SQLite accept).
macro_rules! on_pool {
    ($backend:expr, $pool:ident => $body:expr, memory $db:pat => $memory:expr) => {
        match $backend {
            Backend::Postgres($pool) => Ok::<_, StoreError>($body),
            Backend::Sqlite($pool) => Ok($body),
            Backend::Memory { db: $db, .. } => Ok($memory),
        }
    };
}

/// How many times an insert whose id is computed from the table (orders) is retried when a
/// concurrent insert took that id first.
const ID_RETRIES: usize = 20;

impl Store {
    /// The seeded in-memory store: one process's data.
    pub(crate) fn seeded() -> Self {
        Self(Arc::new(Backend::Memory {
            db: Mutex::new(Db::seeded()),
            sessions: MemorySessionStore::new(),
        }))
    }

    /// Connects to `url` (`sqlite://PATH`, `sqlite::memory:`, `postgres://...`), creating the
    /// schema and seeding it if that was never done.
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Backend::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                // Readers do not block the writer (several processes share the file).
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10));
            // An in-memory database exists once per connection: keep exactly one.
            let connections = if url.contains(":memory:") || url.contains("mode=memory") {
                1
            } else {
                8
            };
            let pool = SqlitePoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Backend::Sqlite(pool)
        } else {
            let message = "DATABASE_URL must start with sqlite: or postgres:";
            return Err(StoreError(sqlx::Error::Configuration(message.into())));
        };
        let store = Self(Arc::new(backend));
        store.set_up().await?;
        Ok(store)
    }

    /// Which backend holds the data (`"memory"`, `"PostgreSQL"`, `"SQLite"`), for the start-up
    /// message.
    pub(crate) fn kind(&self) -> &'static str {
        match &*self.0 {
            Backend::Memory { .. } => "memory",
            Backend::Postgres(_) => "PostgreSQL",
            Backend::Sqlite(_) => "SQLite",
        }
    }

    fn db(db: &Mutex<Db>) -> MutexGuard<'_, Db> {
        db.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates the tables and seeds them, once, whatever other instance starts at the same time.
    async fn set_up(&self) -> Result<(), StoreError> {
        match &*self.0 {
            Backend::Memory { .. } => Ok(()),
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // Held until the transaction ends: the other instances wait here, then find
                // the tables and the seed in place.
                sqlx::query("SELECT pg_advisory_xact_lock(72620311)")
                    .execute(&mut *tx)
                    .await?;
                let auto = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY";
                for statement in schema(auto) {
                    sqlx::query(&statement).execute(&mut *tx).await?;
                }
                let seeded: Option<String> =
                    sqlx::query_scalar("SELECT value FROM demo_meta WHERE key = 'seeded'")
                        .fetch_optional(&mut *tx)
                        .await?;
                if seeded.is_none() {
                    for statement in seed_statements() {
                        statement.run_pg(&mut tx).await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }
            Backend::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                // A write lock from the start: a second process waits (busy timeout) instead
                // of failing when it upgrades a read.
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let result = async {
                    for statement in schema("INTEGER PRIMARY KEY") {
                        sqlx::query(&statement).execute(&mut *conn).await?;
                    }
                    let seeded: Option<String> =
                        sqlx::query_scalar("SELECT value FROM demo_meta WHERE key = 'seeded'")
                            .fetch_optional(&mut *conn)
                            .await?;
                    if seeded.is_none() {
                        for statement in seed_statements() {
                            statement.run_sqlite(&mut conn).await?;
                        }
                    }
                    Ok::<_, sqlx::Error>(())
                }
                .await;
                let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
                let ended = sqlx::query(end).execute(&mut *conn).await;
                result?;
                ended?;
                Ok(())
            }
        }
    }

    // ---- Users ----

    /// The user with this id.
    pub(crate) async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        const SQL: &str = "SELECT id, username, name, email, staff, superuser \
                           FROM demo_users WHERE id = $1";
        on_pool!(&*self.0,
            pool => sqlx::query_as::<_, UserRow>(SQL).bind(id).fetch_optional(pool).await?.map(User::from),
            memory db => Self::db(db).users.iter().find(|u| u.id == id).cloned()
        )
    }

    /// The user who logs in as `username`.
    pub(crate) async fn user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<User>, StoreError> {
        const SQL: &str = "SELECT id, username, name, email, staff, superuser \
                           FROM demo_users WHERE username = $1";
        on_pool!(&*self.0,
            pool => sqlx::query_as::<_, UserRow>(SQL).bind(username).fetch_optional(pool).await?.map(User::from),
            memory db => Self::db(db).users.iter().find(|u| u.username == username).cloned()
        )
    }

    /// Renames a user; the user after the change, `None` if there is no such user.
    pub(crate) async fn rename_user(
        &self,
        id: i64,
        name: &str,
    ) -> Result<Option<User>, StoreError> {
        const SQL: &str = "UPDATE demo_users SET name = $2 WHERE id = $1 \
                           RETURNING id, username, name, email, staff, superuser";
        on_pool!(&*self.0,
            pool => sqlx::query_as::<_, UserRow>(SQL).bind(id).bind(name).fetch_optional(pool).await?.map(User::from),
            memory db => {
                let mut db = Self::db(db);
                db.users.iter_mut().find(|u| u.id == id).map(|user| {
                    user.name = name.to_owned();
                    user.clone()
                })
            }
        )
    }

    // ---- Orders ----

    /// A user's orders, oldest first.
    pub(crate) async fn orders(&self, user_id: i64) -> Result<Vec<Order>, StoreError> {
        const SQL: &str = "SELECT id, total FROM demo_orders WHERE user_id = $1 ORDER BY id";
        on_pool!(&*self.0,
            pool => sqlx::query_as::<_, (i64, i64)>(SQL).bind(user_id).fetch_all(pool).await?
                .into_iter().map(|(id, total)| Order { id, total }).collect(),
            memory db => Self::db(db).orders.get(&user_id).cloned().unwrap_or_default()
        )
    }

    /// Records an order for a user; its id (`user_id * 100 + n` for the user's `n`th order).
    pub(crate) async fn add_order(&self, user_id: i64, total: i64) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO demo_orders (id, user_id, total) \
                           SELECT $1 * 100 + COUNT(*) + 1, $1, $2 FROM demo_orders \
                           WHERE user_id = $1 RETURNING id";
        let mut attempt = 0;
        loop {
            let inserted: Result<i64, StoreError> = on_pool!(&*self.0,
                pool => sqlx::query_scalar::<_, i64>(SQL).bind(user_id).bind(total).fetch_one(pool).await?,
                memory db => {
                    let mut db = Self::db(db);
                    let orders = db.orders.entry(user_id).or_default();
                    let id = user_id * 100 + orders.len() as i64 + 1;
                    orders.push(Order { id, total });
                    id
                }
            );
            match inserted {
                // Another instance took that id at the same moment: count again.
                Err(StoreError(sqlx::Error::Database(err)))
                    if err.is_unique_violation() && attempt < ID_RETRIES =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    // ---- Catalog ----

    /// The catalog, in the order items were added.
    pub(crate) async fn catalog(&self) -> Result<Vec<Item>, StoreError> {
        const SQL: &str = "SELECT id, name FROM demo_catalog ORDER BY id";
        on_pool!(&*self.0,
            pool => sqlx::query_as::<_, (i64, String)>(SQL).fetch_all(pool).await?
                .into_iter().map(|(id, name)| Item { id, name }).collect(),
            memory db => Self::db(db).catalog.clone()
        )
    }

    /// Adds an item to the catalog.
    pub(crate) async fn add_item(&self, name: &str) -> Result<Item, StoreError> {
        const SQL: &str = "INSERT INTO demo_catalog (name) VALUES ($1) RETURNING id";
        let id = on_pool!(&*self.0,
            pool => sqlx::query_scalar::<_, i64>(SQL).bind(name).fetch_one(pool).await?,
            memory db => {
                let mut db = Self::db(db);
                let id = db.catalog.len() as i64 + 1;
                db.catalog.push(Item { id, name: name.to_owned() });
                id
            }
        )?;
        Ok(Item {
            id,
            name: name.to_owned(),
        })
    }

    // ---- Notes ----

    /// The notes of a folder, oldest first.
    pub(crate) async fn notes(&self, folder: &str) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT text FROM demo_notes WHERE folder = $1 ORDER BY id";
        on_pool!(&*self.0,
            pool => sqlx::query_scalar::<_, String>(SQL).bind(folder).fetch_all(pool).await?,
            memory db => Self::db(db).notes.get(folder).cloned().unwrap_or_default()
        )
    }

    /// Adds a note to a folder; the folder's notes after it.
    pub(crate) async fn add_note(
        &self,
        folder: &str,
        text: &str,
    ) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "INSERT INTO demo_notes (folder, text) VALUES ($1, $2)";
        match &*self.0 {
            Backend::Memory { db, .. } => {
                let mut db = Self::db(db);
                let notes = db.notes.entry(folder.to_owned()).or_default();
                notes.push(text.to_owned());
                return Ok(notes.clone());
            }
            Backend::Postgres(pool) => {
                sqlx::query(SQL)
                    .bind(folder)
                    .bind(text)
                    .execute(pool)
                    .await?;
            }
            Backend::Sqlite(pool) => {
                sqlx::query(SQL)
                    .bind(folder)
                    .bind(text)
                    .execute(pool)
                    .await?;
            }
        }
        self.notes(folder).await
    }

    // ---- Webhook events ----

    /// Counts a webhook event of this kind.
    pub(crate) async fn record_webhook(&self, kind: &str) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE demo_subscription SET events = events + 1, last_event = $1 WHERE id = 1";
        on_pool!(&*self.0,
            pool => sqlx::query(SQL).bind(kind).execute(pool).await.map(drop)?,
            memory db => {
                let mut db = Self::db(db);
                db.webhook_events += 1;
                db.last_event = Some(kind.to_owned());
            }
        )
    }

    /// What the webhooks reported so far.
    pub(crate) async fn subscription(&self) -> Result<Subscription, StoreError> {
        const SQL: &str = "SELECT events, last_event FROM demo_subscription WHERE id = 1";
        on_pool!(&*self.0,
            pool => {
                let (events, last_event) = sqlx::query_as::<_, (i64, Option<String>)>(SQL)
                    .fetch_one(pool)
                    .await?;
                Subscription { events, last_event }
            },
            memory db => {
                let db = Self::db(db);
                Subscription { events: db.webhook_events, last_event: db.last_event.clone() }
            }
        )
    }

    // ---- Inbox ----

    /// Files a contact message; its id.
    pub(crate) async fn add_message(&self, message: NewMessage) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO demo_inbox (name, email, topic, message) \
                           VALUES ($1, $2, $3, $4) RETURNING id";
        let topic = message.topic.as_str();
        on_pool!(&*self.0,
            pool => sqlx::query_scalar::<_, i64>(SQL)
                .bind(&message.name).bind(&message.email).bind(topic).bind(&message.message)
                .fetch_one(pool).await?,
            memory db => {
                let mut db = Self::db(db);
                let id = db.inbox.len() as i64 + 1;
                db.inbox.push(InboxMessage {
                    id,
                    name: message.name,
                    email: message.email,
                    topic: message.topic,
                    message: message.message,
                });
                id
            }
        )
    }

    /// The contact messages, oldest first.
    pub(crate) async fn inbox(&self) -> Result<Vec<InboxMessage>, StoreError> {
        const SQL: &str = "SELECT id, name, email, topic, message FROM demo_inbox ORDER BY id";
        type Row = (i64, String, String, String, String);
        let to_message = |(id, name, email, topic, message): Row| InboxMessage {
            id,
            name,
            email,
            topic: Topic::parse(&topic),
            message,
        };
        on_pool!(&*self.0,
            pool => sqlx::query_as::<_, Row>(SQL).fetch_all(pool).await?.into_iter().map(to_message).collect(),
            memory db => Self::db(db).inbox.clone()
        )
    }

    // ---- Sessions ----

    /// Opens a session for a user; its id (128 random bits, hex).
    pub(crate) async fn create_session(&self, user_id: i64) -> Result<String, StoreError> {
        const SQL: &str = "INSERT INTO demo_sessions (sid, user_id) VALUES ($1, $2)";
        let sid = new_session_id();
        match &*self.0 {
            Backend::Memory { sessions, .. } => return Ok(sessions.create(user_id.to_string())),
            Backend::Postgres(pool) => {
                sqlx::query(SQL)
                    .bind(&sid)
                    .bind(user_id)
                    .execute(pool)
                    .await?;
            }
            Backend::Sqlite(pool) => {
                sqlx::query(SQL)
                    .bind(&sid)
                    .bind(user_id)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(sid)
    }

    /// Destroys a session (every token of it stops working); whether it existed.
    pub(crate) async fn destroy_session(&self, sid: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM demo_sessions WHERE sid = $1";
        match &*self.0 {
            Backend::Memory { sessions, .. } => Ok(sessions.destroy(sid)),
            Backend::Postgres(pool) => Ok(sqlx::query(SQL)
                .bind(sid)
                .execute(pool)
                .await?
                .rows_affected()
                > 0),
            Backend::Sqlite(pool) => Ok(sqlx::query(SQL)
                .bind(sid)
                .execute(pool)
                .await?
                .rows_affected()
                > 0),
        }
    }

    /// Whether a session exists.
    pub(crate) async fn session_active(&self, sid: &str) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM demo_sessions WHERE sid = $1";
        match &*self.0 {
            Backend::Memory { sessions, .. } => Ok(sessions.is_active(sid).await),
            Backend::Postgres(pool) => Ok(sqlx::query_scalar::<_, i64>(SQL)
                .bind(sid)
                .fetch_one(pool)
                .await?
                > 0),
            Backend::Sqlite(pool) => Ok(sqlx::query_scalar::<_, i64>(SQL)
                .bind(sid)
                .fetch_one(pool)
                .await?
                > 0),
        }
    }
}

/// Every JWT use asks the store whether its session still exists; a store that cannot tell
/// (the database is down) says no.
#[async_trait]
impl SessionStore for Store {
    async fn is_active(&self, sid: &str) -> bool {
        self.session_active(sid).await.unwrap_or_else(|err| {
            tracing::warn!(%err, "session check failed; the token is refused");
            false
        })
    }
}

/// A `demo_users` row: id, username, name, email, staff, superuser.
type UserRow = (i64, String, String, String, bool, bool);

impl From<UserRow> for User {
    fn from((id, username, name, email, staff, superuser): UserRow) -> Self {
        Self {
            id,
            username,
            name,
            email,
            staff,
            superuser,
        }
    }
}

/// The tables, with `auto` as the type of the ids the database assigns.
fn schema(auto: &str) -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS demo_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)".into(),
        "CREATE TABLE IF NOT EXISTS demo_users (id BIGINT PRIMARY KEY, \
         username TEXT NOT NULL UNIQUE, name TEXT NOT NULL, email TEXT NOT NULL, \
         staff BOOLEAN NOT NULL, superuser BOOLEAN NOT NULL)"
            .into(),
        "CREATE TABLE IF NOT EXISTS demo_orders (id BIGINT PRIMARY KEY, \
         user_id BIGINT NOT NULL, total BIGINT NOT NULL)"
            .into(),
        format!("CREATE TABLE IF NOT EXISTS demo_catalog (id {auto}, name TEXT NOT NULL)"),
        format!(
            "CREATE TABLE IF NOT EXISTS demo_notes (id {auto}, folder TEXT NOT NULL, \
             text TEXT NOT NULL)"
        ),
        "CREATE INDEX IF NOT EXISTS demo_notes_folder ON demo_notes (folder, id)".into(),
        format!(
            "CREATE TABLE IF NOT EXISTS demo_inbox (id {auto}, name TEXT NOT NULL, \
             email TEXT NOT NULL, topic TEXT NOT NULL, message TEXT NOT NULL)"
        ),
        "CREATE TABLE IF NOT EXISTS demo_subscription (id BIGINT PRIMARY KEY, \
         events BIGINT NOT NULL, last_event TEXT)"
            .into(),
        "CREATE TABLE IF NOT EXISTS demo_sessions (sid TEXT PRIMARY KEY, \
         user_id BIGINT NOT NULL)"
            .into(),
    ]
}

/// One seeding statement and its arguments.
struct Seed {
    sql: &'static str,
    ints: Vec<i64>,
    texts: Vec<String>,
    flags: Vec<bool>,
}

impl Seed {
    fn new(sql: &'static str) -> Self {
        Self {
            sql,
            ints: Vec::new(),
            texts: Vec::new(),
            flags: Vec::new(),
        }
    }
}

/// Binds a seed's arguments in the order the statements expect them: integers, texts, flags.
macro_rules! bind_seed {
    ($seed:expr) => {{
        let mut query = sqlx::query($seed.sql);
        for value in &$seed.ints {
            query = query.bind(*value);
        }
        for value in &$seed.texts {
            query = query.bind(value.as_str());
        }
        for value in &$seed.flags {
            query = query.bind(*value);
        }
        query
    }};
}

impl Seed {
    async fn run_pg(&self, tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        bind_seed!(self).execute(&mut *tx).await.map(drop)
    }

    async fn run_sqlite(&self, conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
        bind_seed!(self).execute(&mut *conn).await.map(drop)
    }
}

/// The seed, as statements (the same rows as the memory backend's).
fn seed_statements() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (id, username, email, staff, superuser) in USERS {
        let mut seed = Seed::new(
            "INSERT INTO demo_users (id, username, name, email, staff, superuser) \
             VALUES ($1, $2, $2, $3, $4, $5)",
        );
        seed.ints = vec![id];
        seed.texts = vec![username.to_owned(), email.to_owned()];
        seed.flags = vec![staff, superuser];
        seeds.push(seed);
    }
    for (id, user_id, total) in ORDERS {
        let mut seed =
            Seed::new("INSERT INTO demo_orders (id, user_id, total) VALUES ($1, $2, $3)");
        seed.ints = vec![id, user_id, total];
        seeds.push(seed);
    }
    for name in CATALOG {
        let mut seed = Seed::new("INSERT INTO demo_catalog (name) VALUES ($1)");
        seed.texts = vec![name.to_owned()];
        seeds.push(seed);
    }
    for (folder, text) in NOTES {
        let mut seed = Seed::new("INSERT INTO demo_notes (folder, text) VALUES ($1, $2)");
        seed.texts = vec![folder.to_owned(), text.to_owned()];
        seeds.push(seed);
    }
    seeds.push(Seed::new(
        "INSERT INTO demo_subscription (id, events, last_event) VALUES (1, 0, NULL)",
    ));
    seeds.push(Seed::new(
        "INSERT INTO demo_meta (key, value) VALUES ('seeded', 'yes')",
    ));
    seeds
}
