//! `examples/tower_sessions.rs` over real loopback HTTP: Mizan on axum identifying callers by
//! their tower-sessions session, with CSRF on.

#[path = "support/browser.rs"]
mod browser;
#[path = "../examples/tower_sessions.rs"]
#[allow(dead_code)]
mod example;

#[tokio::test]
async fn tower_sessions_log_in_guard_and_csrf() {
    let router = example::router("a-csrf-secret-for-the-session-tests!").expect("the app builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    // The memory store deletes the session at logout: a copy of the cookie stops working too.
    browser::scenario(addr, true).await;
    server.abort();
}
