//! Fault tests of the SSR pool against `tests/workers/fault_worker.mjs`, a plain-JS worker that
//! misbehaves on demand (needs `node` on the `PATH`, no npm install).
//!
//! Tests wait for events (counters of the pool, files the worker creates, processes that are
//! gone); durations below are only failure bounds or the timeouts under test.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mizan_ssr::{SsrError, SsrPool, SsrPoolBuilder};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use tokio::time::{sleep, Instant};

fn fault_worker() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workers/fault_worker.mjs")
}

/// One worker running the fault worker in `mode`.
fn pool(mode: &str) -> SsrPoolBuilder {
    let script = fault_worker();
    SsrPool::builder(&script)
        .with_command("node", [script.into_os_string(), mode.into()])
        .with_workers(1)
}

async fn start(builder: SsrPoolBuilder) -> SsrPool {
    match builder.build().await {
        Ok(pool) => pool,
        Err(err) => panic!("the pool did not start (is `node` on the PATH?): {err}"),
    }
}

async fn render(pool: &SsrPool, component: &str, props: serde_json::Value) -> String {
    match pool.render(component, &props).await {
        Ok(html) => html.into_string(),
        Err(err) => panic!("render of {component} failed: {err}"),
    }
}

/// Polls `done` until it holds; fails the test after a generous bound.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a process with this pid exists (a zombie counts: it has not been waited for).
fn exists(pid: u32) -> bool {
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), None).is_ok()
}

/// A fresh path in the temp dir, for the files the `hold` component waits on.
fn temp_path(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("mizan-ssr-{}-{n}-{name}", std::process::id()))
}

fn only_pid(pool: &SsrPool) -> u32 {
    let pids = pool.stats().pids;
    assert_eq!(pids.len(), 1, "one ready worker");
    pids[0]
}

#[tokio::test]
async fn a_worker_that_exits_mid_render_is_replaced() {
    let pool = start(pool("normal")).await;
    let first = only_pid(&pool);
    match pool.render("exit", &json!({})).await {
        Err(SsrError::Crashed { status }) => {
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(7),
                "the worker's exit code"
            );
        }
        other => panic!("expected Crashed, got {other:?}"),
    }
    assert_eq!(
        render(&pool, "echo", json!({ "text": "after" })).await,
        "after"
    );
    assert_eq!(pool.stats().spawned, 2, "one replacement");
    assert!(!exists(first), "the crashed worker was collected");
}

#[tokio::test]
async fn a_render_that_throws_leaves_its_worker_in_service() {
    let pool = start(pool("normal")).await;
    let before = render(&pool, "pid", json!({})).await;
    match pool.render("throw", &json!({ "message": "boom" })).await {
        Err(SsrError::Render(message)) => assert_eq!(message, "boom"),
        other => panic!("expected Render, got {other:?}"),
    }
    assert_eq!(
        render(&pool, "pid", json!({})).await,
        before,
        "same process"
    );
    assert_eq!(pool.stats().spawned, 1);
}

#[tokio::test]
async fn a_render_past_the_timeout_fails_and_its_late_reply_reaches_no_one() {
    let pool = start(pool("normal").with_render_timeout(Duration::from_millis(300))).await;
    let slow = only_pid(&pool);
    match pool
        .render("slow", &json!({ "ms": 3000, "text": "late" }))
        .await
    {
        Err(SsrError::Timeout(after)) => assert_eq!(after, Duration::from_millis(300)),
        other => panic!("expected Timeout, got {other:?}"),
    }
    // The next renders get their own answers, never the slow one's.
    for text in ["second", "third"] {
        assert_eq!(render(&pool, "echo", json!({ "text": text })).await, text);
    }
    assert_eq!(pool.stats().spawned, 2, "the slow worker was replaced");
    eventually("the slow worker is gone", || !exists(slow)).await;
}

#[tokio::test]
async fn console_output_and_partial_lines_on_stdout_are_discarded() {
    let pool = start(pool("normal")).await;
    assert_eq!(
        render(&pool, "noisy", json!({ "text": "one" })).await,
        "one"
    );
    // From here on, each reply continues the partial line the previous render left unended.
    assert_eq!(
        render(&pool, "noisy", json!({ "text": "two" })).await,
        "two"
    );
    assert_eq!(
        render(&pool, "echo", json!({ "text": "three" })).await,
        "three"
    );
    let stats = pool.stats();
    // Discarded: per noisy render, the console.log line and the partial line ended later; the
    // unended partial lines are dropped from the front of the replies they precede.
    assert_eq!(stats.discarded, 4);
    assert_eq!(stats.spawned, 1);
}

#[tokio::test]
async fn malformed_json_unknown_and_duplicate_ids_never_corrupt_a_reply() {
    let pool = start(pool("normal")).await;
    for text in ["a", "b", "c"] {
        assert_eq!(render(&pool, "junk", json!({ "text": text })).await, text);
    }
    let stats = pool.stats();
    // Before each reply: `{"id":`, not JSON, an array, a string id, an unknown id, and (from the
    // second on) a duplicate of the previous reply.
    assert!(
        stats.discarded >= 5 + 6 + 6,
        "discarded {}",
        stats.discarded
    );
    assert_eq!(stats.spawned, 1);
}

#[tokio::test]
async fn a_banner_before_the_ready_line_is_discarded() {
    let pool = start(pool("noise-before-ready")).await;
    assert_eq!(render(&pool, "echo", json!({ "text": "ok" })).await, "ok");
    assert_eq!(pool.stats().discarded, 1);
}

#[tokio::test]
async fn a_reply_split_across_reads_is_reassembled() {
    let pool = start(pool("normal")).await;
    let text = "a reply written in two halves — αβγ";
    assert_eq!(render(&pool, "split", json!({ "text": text })).await, text);
}

#[tokio::test]
async fn replies_over_64_kib_are_read_whole() {
    let pool = start(pool("normal")).await;
    let html = render(&pool, "big", json!({ "size": 300_000 })).await;
    assert_eq!(html.len(), 300_000);
    assert!(html.bytes().all(|b| b == b'x'));
    assert_eq!(
        render(&pool, "echo", json!({ "text": "next" })).await,
        "next"
    );
}

#[tokio::test]
async fn a_reply_over_the_line_bound_is_a_protocol_error_and_the_worker_is_replaced() {
    let pool = start(pool("normal").with_max_line_bytes(64 * 1024)).await;
    let big = only_pid(&pool);
    match pool.render("big", &json!({ "size": 4 << 20 })).await {
        Err(SsrError::Protocol(message)) => assert!(message.contains("65536"), "{message}"),
        other => panic!(
            "expected Protocol, got {:?}",
            other.map(|h| h.as_str().len())
        ),
    }
    assert_eq!(
        render(&pool, "echo", json!({ "text": "next" })).await,
        "next"
    );
    assert_eq!(pool.stats().spawned, 2);
    eventually("the worker is gone", || !exists(big)).await;
}

#[tokio::test]
async fn a_missing_program_fails_startup() {
    let err = pool("normal")
        .with_program("mizan-ssr-no-such-program")
        .build()
        .await
        .unwrap_err();
    match err {
        SsrError::Startup {
            message,
            source: Some(source),
        } => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            assert!(message.contains("mizan-ssr-no-such-program"), "{message}");
        }
        other => panic!("expected Startup with an io error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_worker_file_fails_startup() {
    let err = SsrPool::builder("/nonexistent/mizan-worker.mjs")
        .with_workers(1)
        .build()
        .await
        .unwrap_err();
    match err {
        SsrError::Startup { message, .. } => {
            assert!(message.contains("exited before it was ready"), "{message}");
            assert!(
                message.contains("Cannot find module"),
                "node's stderr: {message}"
            );
        }
        other => panic!("expected Startup, got {other:?}"),
    }
}

#[tokio::test]
async fn a_worker_that_exits_before_ready_fails_startup_with_its_stderr() {
    let err = pool("exit-before-ready").build().await.unwrap_err();
    match err {
        SsrError::Startup { message, .. } => {
            assert!(message.contains("exit status: 3"), "{message}");
            assert!(message.contains("exiting before ready"), "{message}");
        }
        other => panic!("expected Startup, got {other:?}"),
    }
}

#[tokio::test]
async fn a_worker_without_a_ready_line_fails_startup() {
    let err = pool("no-ready")
        .with_ready_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap_err();
    match err {
        SsrError::Startup { message, .. } => {
            assert!(message.contains("no ready line"), "{message}");
        }
        other => panic!("expected Startup, got {other:?}"),
    }
}

#[tokio::test]
async fn a_crash_loop_backs_off_instead_of_spinning() {
    // Says it is ready, then exits at once, forever. `sh` starts in about a millisecond, so
    // restarting without a delay would spawn hundreds of processes per second.
    let pool = start(
        SsrPool::builder("unused")
            .with_command("sh", ["-c", r#"echo '{"id":0,"ready":true}'; exit 1"#])
            .with_workers(1)
            .with_restart_backoff(Duration::from_millis(100), Duration::from_secs(10)),
    )
    .await;
    eventually("the worker was restarted twice", || {
        pool.stats().spawned >= 3
    })
    .await;
    let before = pool.stats().spawned;
    sleep(Duration::from_secs(1)).await;
    let during_one_second = pool.stats().spawned - before;
    // With 100 ms doubling, the next restarts are 400 ms, 800 ms, 1.6 s apart.
    assert!(
        during_one_second <= 3,
        "{during_one_second} spawns in one second"
    );
}

#[tokio::test]
async fn when_every_worker_is_busy_and_the_queue_is_full_renders_fail_fast() {
    let pool = start(pool("normal").with_queue_bound(1)).await;
    let release = temp_path("release");
    let held = tokio::spawn({
        let pool = pool.clone();
        let props = json!({ "release": release, "text": "held" });
        async move { pool.render("hold", &props).await }
    });
    eventually("the first render is accepted", || pool.stats().pending == 1).await;
    let queued = tokio::spawn({
        let pool = pool.clone();
        async move { pool.render("echo", &json!({ "text": "queued" })).await }
    });
    eventually("the second render is queued", || pool.stats().pending == 2).await;
    match pool.render("echo", &json!({ "text": "refused" })).await {
        Err(SsrError::Overloaded) => {}
        other => panic!("expected Overloaded, got {other:?}"),
    }
    std::fs::write(&release, "").unwrap();
    assert_eq!(held.await.unwrap().unwrap().as_str(), "held");
    assert_eq!(queued.await.unwrap().unwrap().as_str(), "queued");
    assert_eq!(
        render(&pool, "echo", json!({ "text": "again" })).await,
        "again"
    );
    std::fs::remove_file(&release).unwrap();
}

#[tokio::test]
async fn a_caller_that_drops_its_render_does_not_wedge_the_worker() {
    let pool = start(pool("normal")).await;
    let (release, started) = (temp_path("release"), temp_path("started"));
    {
        let props = json!({ "release": release, "started": started, "text": "abandoned" });
        let abandoned = pool.render("hold", &props);
        tokio::select! {
            result = abandoned => panic!("finished before its release: {result:?}"),
            () = eventually("the worker renders", || started.exists()) => {}
        }
    } // the render future is dropped here, mid-render
    let next = tokio::spawn({
        let pool = pool.clone();
        async move { pool.render("echo", &json!({ "text": "mine" })).await }
    });
    eventually("the next render waits", || pool.stats().pending == 2).await;
    std::fs::write(&release, "").unwrap();
    assert_eq!(next.await.unwrap().unwrap().as_str(), "mine");
    assert_eq!(pool.stats().spawned, 1, "the worker was not replaced");
    std::fs::remove_file(&release).unwrap();
    std::fs::remove_file(&started).unwrap();
}

#[tokio::test]
async fn a_stopped_worker_fails_its_health_check_and_is_replaced() {
    let pool = start(
        pool("normal").with_health_check(Duration::from_millis(100), Duration::from_millis(300)),
    )
    .await;
    let stopped = only_pid(&pool);
    kill(
        Pid::from_raw(i32::try_from(stopped).unwrap()),
        Signal::SIGSTOP,
    )
    .unwrap();
    eventually("a new worker replaces the stopped one", || {
        let stats = pool.stats();
        stats.spawned >= 2 && stats.ready == 1 && !stats.pids.contains(&stopped)
    })
    .await;
    eventually("the stopped worker is gone", || !exists(stopped)).await;
    assert_eq!(
        render(&pool, "echo", json!({ "text": "fresh" })).await,
        "fresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_renders_each_get_their_own_reply() {
    let pool = start(pool("normal").with_workers(4).with_queue_bound(64)).await;
    let mut renders = tokio::task::JoinSet::new();
    for i in 0..64 {
        let pool = pool.clone();
        // Mixed with replies split across reads and junk lines with stale ids.
        let component = ["echo", "junk", "split"][i % 3];
        renders.spawn(async move {
            let html = pool
                .render(component, &json!({ "text": format!("render {i}") }))
                .await;
            (i, html)
        });
    }
    let mut seen = Vec::new();
    while let Some(joined) = renders.join_next().await {
        let (i, html) = joined.unwrap();
        assert_eq!(html.unwrap().as_str(), format!("render {i}"));
        seen.push(i);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..64).collect::<Vec<_>>());
    assert_eq!(pool.stats().spawned, 4, "no worker was replaced");
}

#[tokio::test]
async fn dropping_the_pool_leaves_no_process() {
    let pool = start(pool("normal").with_workers(3)).await;
    let pids = pool.stats().pids;
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&pid| exists(pid)));
    drop(pool);
    eventually("every worker is killed and collected", || {
        pids.iter().all(|&pid| !exists(pid))
    })
    .await;
}

#[tokio::test]
async fn shutdown_finishes_the_render_in_flight_then_stops_every_worker() {
    let pool = start(pool("normal").with_workers(2)).await;
    let pids = pool.stats().pids;
    let (release, started) = (temp_path("release"), temp_path("started"));
    let in_flight = tokio::spawn({
        let pool = pool.clone();
        let props = json!({ "release": release, "started": started, "text": "finished" });
        async move { pool.render("hold", &props).await }
    });
    eventually("the worker renders", || started.exists()).await;
    let shutdown = tokio::spawn({
        let pool = pool.clone();
        async move { pool.shutdown().await }
    });
    // Renders are refused from the moment the shutdown begins.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match pool.render("echo", &json!({ "text": "late" })).await {
            Err(SsrError::Closed) => break,
            Ok(_) => assert!(Instant::now() < deadline, "the shutdown never began"),
            Err(other) => panic!("expected Closed, got {other:?}"),
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the render in flight"
    );
    std::fs::write(&release, "").unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap().as_str(), "finished");
    shutdown.await.unwrap();
    for pid in pids {
        assert!(!exists(pid), "worker {pid} was collected by shutdown");
    }
    std::fs::remove_file(&release).unwrap();
    std::fs::remove_file(&started).unwrap();
}

#[tokio::test]
async fn extreme_settings_are_accepted() {
    let pool = start(
        pool("normal")
            .with_workers(0) // means 1
            .with_queue_bound(0)
            .with_max_line_bytes(0) // means 64 bytes
            .with_render_timeout(Duration::MAX)
            .with_queue_timeout(Duration::MAX)
            .with_ready_timeout(Duration::MAX)
            .with_health_check(Duration::MAX, Duration::MAX)
            .with_restart_backoff(Duration::MAX, Duration::ZERO),
    )
    .await;
    assert_eq!(
        render(&pool, "echo", json!({ "text": "fine" })).await,
        "fine"
    );
    match pool
        .render("echo", &json!({ "text": "x".repeat(100) }))
        .await
    {
        Err(SsrError::Protocol(_)) => {}
        other => panic!("a reply over 64 bytes: expected Protocol, got {other:?}"),
    }
}
