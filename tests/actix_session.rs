//! `examples/actix_session.rs` over real loopback HTTP: Mizan on actix-web identifying callers
//! by their actix-session session (cookie store), with CSRF on.

#[path = "support/browser.rs"]
mod browser;
#[path = "../examples/actix_session.rs"]
#[allow(dead_code)]
mod example;

#[actix_web::test]
async fn actix_session_log_in_guard_and_csrf() {
    let app = example::mizan("a-csrf-secret-for-the-session-tests!").expect("the app builds");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = example::server(listener, app, actix_web::cookie::Key::generate()).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    // The cookie store keeps the session in the cookie: logout removes it from the browser, but
    // a copy stays valid (documented), so that row is not checked here.
    browser::scenario(addr, false).await;
    handle.stop(false).await;
}
