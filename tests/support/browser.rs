//! A browser-like client for the session examples (`tests/tower_sessions.rs`,
//! `tests/actix_session.rs`), and the scenario both run over real loopback HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The name of the session cookie in both examples (tower-sessions' and actix-session's
/// default).
const SESSION_COOKIE: &str = "id";

/// One response: status, `Set-Cookie` values and JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) set_cookies: Vec<String>,
    pub(crate) body: Value,
}

/// Keeps the cookies responses set, and sends them back, as a browser does.
pub(crate) struct Browser {
    client: reqwest::Client,
    base: String,
    pub(crate) jar: BTreeMap<String, String>,
}

impl Browser {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: format!("http://{addr}"),
            jar: BTreeMap::new(),
        }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if !self.jar.is_empty() {
            let cookie: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header("cookie", cookie.join("; "));
        }
        if let Some(token) = csrf {
            request = request.header("x-csrftoken", token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let removed = value.is_empty() || cookie.to_ascii_lowercase().contains("max-age=0");
            if removed {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            set_cookies,
            body,
        }
    }

    /// `POST call/` of `function`, with the CSRF token when given.
    pub(crate) async fn call(&mut self, function: &str, args: Value, csrf: Option<&str>) -> Reply {
        let body = json!({ "fn": function, "args": args });
        self.send(Method::POST, "/api/mizan/call/", csrf, Some(body))
            .await
    }

    /// The `csrfToken` of `GET session/` (null for a caller without a logged-in session).
    pub(crate) async fn csrf_token(&mut self) -> Option<String> {
        let reply = self
            .send(Method::GET, "/api/mizan/session/", None, None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply.body["csrfToken"].as_str().map(str::to_owned)
    }

    /// Logs in as `name` (password = name) and checks the session cookie it gets.
    pub(crate) async fn login(&mut self, name: &str) -> Reply {
        let reply = self
            .call("login", json!({"username": name, "password": name}), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let cookie = reply
            .set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
            .unwrap_or_else(|| panic!("a session cookie: {reply:?}"));
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
        reply
    }
}

fn assert_status(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.body["error"]["code"], code, "{reply:?}");
}

/// The scenario of both examples: login sets the session cookie; a cookie-authenticated call
/// needs the CSRF token of its own session; the guarded function sees the user; logout ends the
/// session; a request without a session is anonymous. `revokes_copies`: whether a copy of the
/// cookie taken before logout stops working (a server-side store) or not (a cookie store).
pub(crate) async fn scenario(addr: SocketAddr, revokes_copies: bool) {
    let mut anonymous = Browser::new(addr);
    assert_eq!(anonymous.csrf_token().await, None);
    let reply = anonymous.call("whoami", json!({}), None).await;
    assert_status(&reply, StatusCode::UNAUTHORIZED, "unauthenticated");
    let wrong = anonymous
        .call(
            "login",
            json!({"username": "bob", "password": "alice"}),
            None,
        )
        .await;
    assert_status(&wrong, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(anonymous.jar.is_empty(), "{:?}", anonymous.jar);

    let mut bob = Browser::new(addr);
    let login = bob.login("bob").await;
    assert_eq!(login.body["result"], json!({"id": "bob", "staff": false}));
    // The cookie authenticates the call, so it needs a token.
    let missing = bob.call("whoami", json!({}), None).await;
    assert_status(&missing, StatusCode::FORBIDDEN, "forbidden");
    let token = bob
        .csrf_token()
        .await
        .expect("a token for a logged-in session");
    let me = bob.call("whoami", json!({}), Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    assert_eq!(me.body["result"], json!({"id": "bob", "staff": false}));

    let mut alice = Browser::new(addr);
    alice.login("alice").await;
    let alices = alice.csrf_token().await.unwrap();
    let me = alice.call("whoami", json!({}), Some(&alices)).await;
    assert_eq!(me.body["result"], json!({"id": "alice", "staff": true}));
    let crossed = bob.call("whoami", json!({}), Some(&alices)).await;
    assert_status(&crossed, StatusCode::FORBIDDEN, "forbidden");

    let copy = bob.jar.clone();
    let out = bob.call("logout", json!({}), Some(&token)).await;
    assert_eq!(out.status, StatusCode::OK, "{out:?}");
    assert!(
        !bob.jar.contains_key(SESSION_COOKIE),
        "logout removes the cookie: {out:?}"
    );
    let after = bob.call("whoami", json!({}), Some(&token)).await;
    assert_status(&after, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(bob.csrf_token().await, None);
    if revokes_copies {
        let mut replay = Browser::new(addr);
        replay.jar = copy;
        let stale = replay.call("whoami", json!({}), Some(&token)).await;
        assert_status(&stale, StatusCode::UNAUTHORIZED, "unauthenticated");
    }

    // A new login is a new session: the token of the previous one is refused.
    bob.login("bob").await;
    let stale = bob.call("whoami", json!({}), Some(&token)).await;
    assert_status(&stale, StatusCode::FORBIDDEN, "forbidden");
    let fresh = bob.csrf_token().await.unwrap();
    let me = bob.call("whoami", json!({}), Some(&fresh)).await;
    assert_eq!(me.body["result"]["id"], "bob", "{me:?}");
}
