//! A database of a test's own, for the demo's `DATABASE_URL`: a PostgreSQL database created with
//! a unique name on the server at `MIZAN_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust auth) and dropped, with any connection
//! still open to it, on drop; or a SQLite file in a private temporary directory, removed on drop.
//! Parallel tests and parallel runs never share one.

// Each test binary that includes this file uses a different part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::Connection as _;

/// The server the test databases are created on.
fn admin_url() -> String {
    std::env::var("MIZAN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh, empty database, dropped on drop.
pub(crate) struct TestDatabase {
    name: String,
    url: String,
    /// `Some(directory)` for SQLite.
    sqlite_dir: Option<std::path::PathBuf>,
}

/// `<prefix>_<pid>_<n>_<random>`: unique across tests and runs.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        &mizan::auth::new_session_id()[..8]
    )
}

impl TestDatabase {
    /// A SQLite file (not created yet: the demo creates it) in a temporary directory.
    pub(crate) fn sqlite() -> Self {
        let name = unique_name("mizan-sqlite");
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("create a directory for the SQLite file");
        Self {
            url: format!("sqlite://{}", dir.join("demo.db").display()),
            name,
            sqlite_dir: Some(dir),
        }
    }

    /// Creates the PostgreSQL database `mizan_test_<pid>_<n>_<random>`.
    ///
    /// Panics with instructions when the server cannot be reached.
    pub(crate) async fn postgres() -> Self {
        let admin = admin_url();
        let name = unique_name("mizan_test");
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|err| {
                panic!(
                "cannot reach PostgreSQL at {admin} ({err}); the database tests create their own \
                 database there. Start PostgreSQL or set MIZAN_TEST_POSTGRES to a server's URL"
            )
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
        Self {
            url: format!("{base}/{name}"),
            name,
            sqlite_dir: None,
        }
    }

    /// Its `postgres://` or `sqlite://` URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
            return;
        }
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url()).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}
