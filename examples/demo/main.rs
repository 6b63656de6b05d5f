//! The Mizan reference app.
//!
//! ```text
//! cargo run --example demo
//! MIZAN_ADAPTER=tower MIZAN_ADDR=127.0.0.1:9000 cargo run --example demo
//! cargo run --example demo -- export-ir            # the KDL IR on stdout
//! cargo run --example demo -- export-ts web/api    # the typed TypeScript client
//! cargo run --example demo -- export-ts web/api --react --vue --svelte   # plus framework bindings
//! ```
//!
//! Environment: `MIZAN_ADDR` (default `127.0.0.1:8000`), `MIZAN_ADAPTER` (`axum` default, `actix`,
//! `tower`), and the three secrets `JWT_PRIVATE_KEY`, `MIZAN_CACHE_SECRET`, `MIZAN_MWT_SECRET`
//! (distinct development defaults are used, and said so, when unset); `MIZAN_REDIS_URL` makes the
//! origin cache Redis instead of memory (`MIZAN_REDIS_CLUSTER=host:port,...`: a Redis Cluster, by
//! its seed nodes); `DATABASE_URL` (`sqlite://PATH`, `postgres://...`) keeps the
//! data and the sessions in that database instead of this process's memory, so several instances
//! share them.

mod app;
mod serve;

use serve::Adapter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let addr = std::env::var("MIZAN_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let adapter_name = std::env::var("MIZAN_ADAPTER").unwrap_or_else(|_| "axum".into());
    let adapter = Adapter::parse(&adapter_name).ok_or_else(|| {
        let names: Vec<&str> = Adapter::ALL.iter().map(|a| a.name()).collect();
        format!("MIZAN_ADAPTER={adapter_name:?}: expected one of {names:?}")
    })?;
    let (secrets, defaulted) = app::Secrets::from_env();
    let exporting = std::env::args().nth(1).is_some();
    for name in defaulted.into_iter().filter(|_| !exporting) {
        println!("{name} is not set: using its built-in development default (never in production)");
    }
    let store = match std::env::var("DATABASE_URL") {
        Ok(url) if !exporting => app::Store::connect(&url).await?,
        _ => app::Store::seeded(),
    };
    let data_name = store.kind();
    let builder = app::builder_on(&secrets, store);
    let cluster = std::env::var("MIZAN_REDIS_CLUSTER").ok();
    let (builder, cache_name) = match (cluster, std::env::var("MIZAN_REDIS_URL")) {
        // Several instances on one Redis (or one Redis Cluster) share the cache and the
        // invalidation bus: a mutation on one reaches the socket subscribers of every other.
        (Some(seeds), _) => {
            let nodes: Vec<&str> = seeds.split(',').map(str::trim).collect();
            (
                builder
                    .with_cache(
                        mizan_cache_redis::RedisCache::connect_cluster(nodes.iter().copied())
                            .await?,
                    )
                    .with_bus(
                        mizan_cache_redis::RedisBus::connect_cluster(nodes.iter().copied()).await?,
                    ),
                "Redis Cluster",
            )
        }
        (None, Ok(url)) => (
            builder
                .with_cache(mizan_cache_redis::RedisCache::connect(&url).await?)
                .with_bus(mizan_cache_redis::RedisBus::connect(&url).await?),
            "Redis",
        ),
        (None, Err(_)) => (builder.with_cache(mizan::MemoryCache::new()), "memory"),
    };
    // SSR: the profile page renders through a pool of Node workers when Node is here and
    // MIZAN_SSR is not `off`; otherwise (or if the pool cannot start) the client renders it.
    let ssr = std::env::var("MIZAN_SSR").as_deref() != Ok("off");
    let builder = if ssr && !exporting {
        match start_ssr().await {
            Ok(pool) => {
                println!("SSR: the profile page renders through 2 Node workers");
                builder.with_state(pool)
            }
            Err(err) => {
                println!("SSR off ({err}): pages fall back to client rendering");
                builder
            }
        }
    } else {
        builder
    };
    let app = builder.build()?;

    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {}
        ["export-ir"] => {
            print!("{}", String::from_utf8_lossy(&app.schema()));
            return Ok(());
        }
        ["export-ts", dir, flags @ ..] => {
            let mut bindings = mizan::ir::typescript::Bindings::new();
            for flag in flags {
                bindings = match *flag {
                    "--react" => bindings.with_react(true),
                    "--vue" => bindings.with_vue(true),
                    "--svelte" => bindings.with_svelte(true),
                    other => {
                        let expected = "expected --react, --vue or --svelte";
                        return Err(
                            format!("export-ts: unknown flag {other:?} ({expected})").into()
                        );
                    }
                };
            }
            let dir = std::path::Path::new(dir);
            std::fs::create_dir_all(dir)?;
            for file in mizan::ir::typescript::generate_with(app.ir(), bindings) {
                std::fs::write(dir.join(file.name), file.contents)?;
            }
            println!(
                "wrote the TypeScript client to {} (entry: index.ts)",
                dir.display()
            );
            return Ok(());
        }
        _ => {
            return Err(
                "usage: demo [export-ir | export-ts <dir> [--react] [--vue] [--svelte]]".into(),
            )
        }
    }

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    println!(
        "Mizan demo on http://{local} ({adapter_name} adapter, {cache_name} cache, data in {data_name})"
    );
    // Purges lost while the cache backend failed are re-applied as soon as it answers again.
    let _purge_retry = app::spawn_purge_retry(&app, app::PURGE_RETRY_PERIOD);
    println!("Try:");
    println!("  curl -s -X POST http://{local}/api/mizan/call/ -H 'content-type: application/json' -d '{{\"fn\":\"echo\",\"args\":{{\"message\":\"hi\"}}}}'");
    println!("  curl -s 'http://{local}/api/mizan/ctx/user/?user_id=1'");
    println!("  curl -si -X POST http://{local}/api/mizan/call/ -H 'content-type: application/json' -d '{{\"fn\":\"update_profile\",\"args\":{{\"user_id\":1,\"name\":\"Alicia\"}}}}'");

    // Ctrl-C: open sockets are closed with 1001 ("going away") before the server stops.
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down");
    };
    adapter.serve_until(listener, app, ctrl_c).await?;
    Ok(())
}

/// The pool of the demo's SSR workers: the example components shipped with `mizan-ssr`, their
/// npm dependencies installed from the lockfile on first use.
async fn start_ssr() -> Result<mizan_ssr::SsrPool, Box<dyn std::error::Error>> {
    let dir = mizan_ssr::worker_dir();
    mizan_ssr::ensure_node_modules(&dir).await?;
    let pool = mizan_ssr::SsrPool::builder(dir.join("example/server.mjs"))
        .with_workers(2)
        .build()
        .await?;
    Ok(pool)
}
