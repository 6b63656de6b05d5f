//! The protocol driven in memory with virtual time: no socket, no runtime, no clock.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::*;
use crate::error::ApiError;
use crate::invalidation::Target;
use crate::transport::CallOutcome;

/// A connection and a virtual clock.
struct Harness {
    conn: Connection,
    start: Instant,
    now: Instant,
}

impl Harness {
    fn new() -> Self {
        Self::with_limits(SocketLimits::default())
    }

    fn with_limits(limits: SocketLimits) -> Self {
        let start = Instant::now();
        Self {
            conn: Connection::new(limits, start),
            start,
            now: start,
        }
    }

    /// A connection whose `init` was accepted (no expiry), with `ack` already read.
    fn ready() -> Self {
        Self::ready_with(SocketLimits::default())
    }

    fn ready_with(limits: SocketLimits) -> Self {
        let mut h = Self::with_limits(limits);
        h.send(r#"{"type":"init","token":"t"}"#);
        assert!(matches!(h.actions()[..], [Action::Authenticate { .. }]));
        h.conn.on_init_verdict(h.now, Ok(Expiry::Never));
        assert_eq!(h.sent(), [json!({"type": "ack"})]);
        h
    }

    fn at(&mut self, millis: u64) {
        self.now = self.start + Duration::from_millis(millis);
    }

    fn send(&mut self, text: &str) {
        self.conn.handle_text(self.now, text);
    }

    fn send_json(&mut self, value: Value) {
        self.send(&value.to_string());
    }

    fn tick(&mut self) {
        self.conn.handle_timeout(self.now);
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.conn.poll_action()).collect()
    }

    /// Every queued message, parsed.
    fn sent(&mut self) -> Vec<Value> {
        self.sent_text()
            .iter()
            .map(|text| serde_json::from_str(text).unwrap())
            .collect()
    }

    fn sent_text(&mut self) -> Vec<String> {
        let now = self.now;
        std::iter::from_fn(|| self.conn.poll_transmit(now)).collect()
    }

    /// The close code, if the last action closed the connection.
    fn close_code(&mut self) -> Option<u16> {
        match self.actions().pop() {
            Some(Action::Close(reason)) => {
                assert!(self.conn.is_closed());
                Some(reason.code())
            }
            _ => None,
        }
    }

    /// Subscribes `id` and accepts it; asserts `sub_ok`.
    fn subscribe(&mut self, id: i64, context: &str, params: Value) {
        self.send_json(json!({"type": "sub", "id": id, "context": context, "params": params}));
        match &self.actions()[..] {
            [Action::Subscribe { id: got, .. }] => assert_eq!(*got, Id::from(id)),
            other => panic!("expected one Subscribe, got {other:?}"),
        }
        self.conn
            .on_subscribe_verdict(self.now, Id::from(id), Ok(()));
        assert_eq!(self.sent(), [json!({"type": "sub_ok", "id": id})]);
    }

    fn invalidate(&mut self, targets: &[Target]) {
        self.conn.on_invalidation(self.now, targets);
    }
}

fn broad(context: &str) -> Target {
    Target::Context {
        context: context.into(),
        params: None,
    }
}

fn scoped(context: &str, params: Value) -> Target {
    Target::Context {
        context: context.into(),
        params: params.as_object().cloned(),
    }
}

fn function(context: &str, name: &str, params: Option<Value>) -> Target {
    Target::Function {
        context: context.into(),
        function: name.into(),
        params: params.and_then(|p| p.as_object().cloned()),
    }
}

fn outcome(result: &str, targets: Vec<Target>) -> CallOutcome {
    CallOutcome::from_result(result, targets)
}

fn target_json(target: &Target) -> Value {
    serde_json::to_value(target).unwrap()
}

// ---- decoding and validation -------------------------------------------------------------

#[test]
fn malformed_messages_close_with_4400() {
    let cases = [
        "not json",
        "",
        "{",
        "[]",
        r#"["init"]"#,
        "42",
        r#""init""#,
        "null",
        "{}",
        r#"{"type": "subscribe", "id": 1}"#,
        r#"{"type": 1}"#,
        r#"{"type": null}"#,
        r#"{"type": "call", "fn": "echo", "args": {}}"#,
        r#"{"type": "call", "id": 1.5, "fn": "echo", "args": {}}"#,
        r#"{"type": "call", "id": true, "fn": "echo", "args": {}}"#,
        r#"{"type": "call", "id": {"a": 1}, "fn": "echo", "args": {}}"#,
        r#"{"type": "call", "id": 18446744073709551615, "fn": "echo"}"#,
        r#"{"type": "call", "id": 1, "args": {}}"#,
        r#"{"type": "call", "id": 1, "fn": 5, "args": {}}"#,
        r#"{"type": "call", "id": 1, "fn": "echo", "args": [1]}"#,
        r#"{"type": "call", "id": 1, "fn": "echo", "args": "x"}"#,
        r#"{"type": "call", "id": 1, "id": 2, "fn": "echo"}"#,
        r#"{"type": "ctx", "id": 1, "params": {}}"#,
        r#"{"type": "ctx", "id": 1, "name": ["user"]}"#,
        r#"{"type": "ctx", "id": 1, "name": "user", "params": [1]}"#,
        r#"{"type": "ctx", "id": 1, "name": "user", "params": {"user_id": [5]}}"#,
        r#"{"type": "sub", "id": 1}"#,
        r#"{"type": "sub", "id": 1, "context": "user", "params": "user_id=5"}"#,
        r#"{"type": "sub", "id": 1, "context": "user", "params": {"p": {"q": 1}}}"#,
        r#"{"type": "unsub"}"#,
        r#"{"type": "unsub", "id": null}"#,
    ];
    for case in cases {
        let mut h = Harness::ready();
        h.send(case);
        assert_eq!(h.close_code(), Some(4400), "{case:?}");
        assert_eq!(
            h.sent(),
            Vec::<Value>::new(),
            "nothing is sent after a close"
        );
    }
}

#[test]
fn malformed_messages_close_with_4400_before_init_too() {
    for case in [
        "nope",
        "[]",
        r#"{"type": "hello"}"#,
        r#"{"type": "init", "token": 5}"#,
    ] {
        let mut h = Harness::new();
        h.send(case);
        assert_eq!(h.close_code(), Some(4400), "{case:?}");
    }
}

#[test]
fn unknown_fields_are_ignored_and_nulls_are_absent() {
    let mut h = Harness::ready();
    h.send(r#"{"type": "ping", "extra": [1, 2]}"#);
    h.send(r#"{"type": "call", "id": "a", "fn": "echo", "args": null, "future": true}"#);
    match &h.actions()[..] {
        [Action::Call { id, function, args }] => {
            assert_eq!(*id, Id::from("a"));
            assert_eq!(function, "echo");
            assert_eq!(args.get(), "{}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.sent(), [json!({"type": "pong"})]);
}

#[test]
fn nesting_deeper_than_32_closes_with_4400() {
    // The message object is level 1, `args` level 2, then `depth - 2` nested arrays.
    let message = |depth: usize| {
        let inner = "[".repeat(depth - 2) + &"]".repeat(depth - 2);
        format!(r#"{{"type":"call","id":1,"fn":"f","args":{{"a":{inner}}}}}"#)
    };
    let mut h = Harness::ready();
    h.send(&message(32));
    assert!(matches!(h.actions()[..], [Action::Call { .. }]));

    let mut h = Harness::ready();
    h.send(&message(33));
    assert_eq!(h.close_code(), Some(4400));

    // Brackets inside strings are not nesting.
    let mut h = Harness::ready();
    let brackets = "[{".repeat(40);
    h.send_json(json!({"type": "call", "id": 1, "fn": "f", "args": {"s": brackets}}));
    assert!(matches!(h.actions()[..], [Action::Call { .. }]));
}

#[test]
fn a_message_over_the_limit_closes_with_1009() {
    let limit = SocketLimits::default().max_message_bytes;
    let message = |len: usize| {
        let skeleton = r#"{"type":"call","id":1,"fn":"f","args":{"s":""}}"#;
        let padding = "x".repeat(len - skeleton.len());
        format!(r#"{{"type":"call","id":1,"fn":"f","args":{{"s":"{padding}"}}}}"#)
    };
    let mut h = Harness::ready();
    let exact = message(limit);
    assert_eq!(exact.len(), limit);
    h.send(&exact);
    assert!(matches!(h.actions()[..], [Action::Call { .. }]));

    let mut h = Harness::ready();
    h.send(&message(limit + 1));
    assert_eq!(h.close_code(), Some(1009));

    // The driver refused a frame before reading it.
    let mut h = Harness::ready();
    h.conn.handle_too_large();
    assert_eq!(h.close_code(), Some(1009));
}

#[test]
fn a_binary_frame_closes_with_4400() {
    let mut h = Harness::ready();
    h.conn.handle_binary();
    assert_eq!(h.close_code(), Some(4400));
}

#[test]
fn ids_are_strings_of_at_most_128_bytes_or_integers() {
    let mut h = Harness::ready();
    let long = "x".repeat(128);
    h.send_json(json!({"type": "call", "id": long, "fn": "f"}));
    h.send_json(json!({"type": "call", "id": -7, "fn": "f"}));
    assert_eq!(h.actions().len(), 2);
    h.send_json(json!({"type": "call", "id": "x".repeat(129), "fn": "f"}));
    assert_eq!(h.close_code(), Some(4400));
}

#[test]
fn close_reasons_fit_a_close_frame() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "é".repeat(200)}));
    match h.actions().pop() {
        Some(Action::Close(reason)) => {
            assert_eq!(reason.code(), 4400);
            let text = reason.reason();
            assert!(text.len() <= 123, "{}", text.len());
            assert!(text.starts_with("malformed message: unknown message type"));
        }
        other => panic!("{other:?}"),
    }
}

// ---- lifecycle -----------------------------------------------------------------------------

#[test]
fn init_is_acknowledged_after_the_identity_is_accepted() {
    let mut h = Harness::new();
    h.send(r#"{"type":"init","token":"secret-token"}"#);
    match h.actions().pop() {
        Some(Action::Authenticate { token: Some(token) }) => {
            assert_eq!(token.expose(), "secret-token");
            assert!(
                !format!("{token:?}").contains("secret"),
                "the token is redacted"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.sent(), Vec::<Value>::new(), "no ack before the verdict");
    assert!(!h.conn.is_ready());
    h.conn.on_init_verdict(h.now, Ok(Expiry::Never));
    assert!(h.conn.is_ready());
    assert_eq!(h.sent(), [json!({"type": "ack"})]);
}

#[test]
fn init_without_a_token_asks_for_the_upgrade_identity() {
    let mut h = Harness::new();
    h.send(r#"{"type":"init"}"#);
    assert!(matches!(
        h.actions()[..],
        [Action::Authenticate { token: None }]
    ));
    let mut h = Harness::new();
    h.send(r#"{"type":"init","token":null}"#);
    assert!(matches!(
        h.actions()[..],
        [Action::Authenticate { token: None }]
    ));
}

#[test]
fn a_refused_identity_closes_with_4401() {
    let mut h = Harness::new();
    h.send(r#"{"type":"init","token":"bad"}"#);
    h.actions();
    h.conn
        .on_init_verdict(h.now, Err(ApiError::unauthenticated()));
    assert_eq!(h.close_code(), Some(4401));
    assert_eq!(h.sent(), Vec::<Value>::new());
}

#[test]
fn any_message_before_init_closes_with_4401() {
    for message in [
        json!({"type": "call", "id": 1, "fn": "echo", "args": {}}),
        json!({"type": "ctx", "id": 1, "name": "user"}),
        json!({"type": "sub", "id": 1, "context": "user"}),
        json!({"type": "unsub", "id": 1}),
        json!({"type": "ping"}),
    ] {
        let mut h = Harness::new();
        h.send_json(message.clone());
        assert_eq!(h.close_code(), Some(4401), "{message}");
    }
}

#[test]
fn messages_pipelined_after_init_wait_for_the_verdict_and_keep_their_order() {
    let mut h = Harness::new();
    h.send(r#"{"type":"init","token":"t"}"#);
    h.send_json(json!({"type": "call", "id": 1, "fn": "echo", "args": {"message": "hi"}}));
    h.send_json(json!({"type": "sub", "id": 2, "context": "user", "params": {"user_id": 5}}));
    h.send(r#"{"type":"ping"}"#);
    let actions = h.actions();
    assert!(
        matches!(actions[..], [Action::Authenticate { .. }]),
        "{actions:?}"
    );
    assert_eq!(h.sent(), Vec::<Value>::new());

    h.conn.on_init_verdict(h.now, Ok(Expiry::Never));
    let actions = h.actions();
    assert!(
        matches!(&actions[..], [Action::Call { function, .. }, Action::Subscribe { context, .. }]
            if function == "echo" && context == "user"),
        "{actions:?}"
    );
    assert_eq!(h.sent(), [json!({"type": "ack"}), json!({"type": "pong"})]);
}

#[test]
fn messages_pipelined_behind_a_refused_init_never_run() {
    let mut h = Harness::new();
    h.send(r#"{"type":"init","token":"bad"}"#);
    h.send_json(json!({"type": "call", "id": 1, "fn": "delete_everything", "args": {}}));
    h.actions();
    h.conn
        .on_init_verdict(h.now, Err(ApiError::unauthenticated()));
    let actions = h.actions();
    assert!(
        matches!(&actions[..], [Action::Close(reason)] if reason.code() == 4401),
        "{actions:?}"
    );
}

#[test]
fn too_many_pipelined_messages_close_with_4429() {
    let limits = SocketLimits::default();
    let mut h = Harness::new();
    h.send(r#"{"type":"init"}"#);
    for _ in 0..limits.max_early_messages {
        h.send(r#"{"type":"ping"}"#);
    }
    assert!(!h.conn.is_closed());
    h.send(r#"{"type":"ping"}"#);
    assert_eq!(h.close_code(), Some(4429));

    // Or too many bytes in all.
    let mut h = Harness::new();
    h.send(r#"{"type":"init"}"#);
    let big = json!({"type": "call", "id": 1, "fn": "f", "args": {"s": "x".repeat(600_000)}});
    h.send_json(big.clone());
    assert!(!h.conn.is_closed());
    h.send_json(big);
    assert_eq!(h.close_code(), Some(4429));
}

#[test]
fn a_second_init_closes_with_4429() {
    let mut h = Harness::ready();
    h.send(r#"{"type":"init","token":"again"}"#);
    assert_eq!(h.close_code(), Some(4429));

    // Also while the first one is being checked.
    let mut h = Harness::new();
    h.send(r#"{"type":"init"}"#);
    h.send(r#"{"type":"init"}"#);
    assert_eq!(h.close_code(), Some(4429));
}

#[test]
fn no_init_within_5_seconds_closes_with_4408() {
    let mut h = Harness::new();
    assert_eq!(
        h.conn.next_deadline(),
        Some(h.start + Duration::from_secs(5))
    );
    h.at(4_999);
    h.tick();
    assert_eq!(h.close_code(), None);
    h.at(5_000);
    h.tick();
    assert_eq!(h.close_code(), Some(4408));
    assert_eq!(h.conn.next_deadline(), None);
}

#[test]
fn an_init_in_time_cancels_the_init_deadline() {
    let mut h = Harness::new();
    h.at(4_900);
    h.send(r#"{"type":"init"}"#);
    h.actions();
    assert_eq!(
        h.conn.next_deadline(),
        None,
        "waiting for the driver's verdict"
    );
    h.at(6_000);
    h.tick();
    assert_eq!(h.close_code(), None);
    h.conn.on_init_verdict(h.now, Ok(Expiry::Never));
    assert!(h.conn.is_ready());
}

#[test]
fn the_socket_closes_with_4401_when_the_token_expires() {
    let mut h = Harness::new();
    h.send(r#"{"type":"init","token":"t"}"#);
    h.actions();
    let exp = h.start + Duration::from_secs(60);
    h.conn.on_init_verdict(h.now, Ok(Expiry::At(exp)));
    h.sent();
    // Keep the session re-check answered so that only the expiry closes.
    let mut last = h.now;
    while let Some(deadline) = h.conn.next_deadline() {
        if deadline >= exp {
            break;
        }
        h.now = deadline;
        h.tick();
        for action in h.actions() {
            assert!(matches!(action, Action::Recheck), "{action:?}");
            h.conn.on_recheck_verdict(h.now, Ok(()));
        }
        assert!(deadline > last);
        last = deadline;
    }
    assert_eq!(h.conn.next_deadline(), Some(exp));
    h.now = exp - Duration::from_millis(1);
    h.tick();
    assert_eq!(h.close_code(), None);
    h.now = exp;
    h.tick();
    match h.actions().pop() {
        Some(Action::Close(reason)) => assert_eq!(reason, CloseReason::TokenExpired),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_token_already_expired_at_the_verdict_closes_with_4401() {
    let mut h = Harness::new();
    h.send(r#"{"type":"init","token":"t"}"#);
    h.actions();
    h.at(1_000);
    let exp = h.start + Duration::from_secs(1);
    h.conn.on_init_verdict(h.now, Ok(Expiry::At(exp)));
    assert_eq!(h.close_code(), Some(4401));
    assert_eq!(h.sent(), Vec::<Value>::new(), "no ack");
}

#[test]
fn the_session_is_rechecked_periodically_and_a_revoked_one_closes_with_4401() {
    let mut h = Harness::ready();
    let interval = SocketLimits::default().recheck_interval;
    assert_eq!(h.conn.next_deadline(), Some(h.start + interval));
    h.now = h.start + interval - Duration::from_millis(1);
    h.tick();
    assert!(h.actions().is_empty());
    h.now = h.start + interval;
    h.tick();
    assert!(matches!(h.actions()[..], [Action::Recheck]));
    // No second re-check while one is pending.
    assert_eq!(h.conn.next_deadline(), None);
    h.now += interval * 3;
    h.tick();
    assert!(h.actions().is_empty());
    h.conn.on_recheck_verdict(h.now, Ok(()));
    assert_eq!(h.conn.next_deadline(), Some(h.now + interval));
    h.now += interval;
    h.tick();
    assert!(matches!(h.actions()[..], [Action::Recheck]));
    h.conn
        .on_recheck_verdict(h.now, Err(ApiError::unauthenticated()));
    match h.actions().pop() {
        Some(Action::Close(reason)) => {
            assert_eq!(reason, CloseReason::SessionRevoked);
            assert_eq!(reason.code(), 4401);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn shutdown_closes_with_1001_and_a_closed_connection_ignores_everything() {
    let mut h = Harness::ready();
    h.subscribe(1, "user", json!({}));
    h.send_json(json!({"type": "call", "id": 2, "fn": "f"}));
    h.actions();
    h.conn.shutdown();
    assert_eq!(h.close_code(), Some(1001));

    h.send(r#"{"type":"ping"}"#);
    h.send("garbage");
    h.invalidate(&[broad("user")]);
    h.conn
        .on_call_result(h.now, Id::from(2), Ok(&outcome("1", vec![])));
    h.conn.shutdown();
    h.now += Duration::from_secs(3600);
    h.tick();
    assert!(h.actions().is_empty());
    assert_eq!(h.sent(), Vec::<Value>::new());
    assert_eq!(h.conn.next_deadline(), None);
    assert_eq!(h.conn.close_reason(), Some(&CloseReason::Shutdown));
}

// ---- calls and fetches ------------------------------------------------------------------------

#[test]
fn a_call_runs_and_its_result_is_the_http_body_with_type_and_id() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "call", "id": "c1", "fn": "update_profile",
        "args": {"user_id": 5, "name": "Ann"}}));
    let (id, args) = match h.actions().pop() {
        Some(Action::Call { id, function, args }) => {
            assert_eq!(function, "update_profile");
            (id, args)
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        serde_json::from_str::<Value>(args.get()).unwrap(),
        json!({"user_id": 5, "name": "Ann"})
    );
    let done = outcome(
        r#"{"ok":true}"#,
        vec![scoped("user", json!({"user_id": 5}))],
    );
    h.conn.on_call_result(h.now, id, Ok(&done));
    let http_body: Value = serde_json::from_slice(&done.to_body()).unwrap();
    let mut expected = json!({"type": "result", "id": "c1"});
    expected
        .as_object_mut()
        .unwrap()
        .extend(http_body.as_object().unwrap().clone());
    assert_eq!(h.sent(), [expected]);
}

#[test]
fn a_failed_call_sends_the_wire_error_for_its_id() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "call", "id": 9, "fn": "nope"}));
    h.actions();
    let err = ApiError::not_found("unknown function").with_details(json!({"fn": "nope"}));
    let envelope = err.to_json();
    h.conn.on_call_result(h.now, Id::from(9), Err(err));
    assert_eq!(
        h.sent(),
        [json!({"type": "error", "id": 9, "error": envelope["error"]})]
    );
}

#[test]
fn server_errors_do_not_leak_their_cause() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "call", "id": 1, "fn": "f"}));
    h.actions();
    h.conn.on_call_result(
        h.now,
        Id::from(1),
        Err(ApiError::internal("database password is hunter2")),
    );
    let text = h.sent_text().concat();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains(r#""code":"internal""#), "{text}");
}

#[test]
fn a_fetch_returns_the_bundle_as_data() {
    let mut h = Harness::ready();
    h.send_json(
        json!({"type": "ctx", "id": 3, "name": "user", "params": {"user_id": 5, "x": null}}),
    );
    let id = match h.actions().pop() {
        Some(Action::Fetch {
            id,
            context,
            params,
        }) => {
            assert_eq!(context, "user");
            assert_eq!(Value::Object(params), json!({"user_id": 5}));
            id
        }
        other => panic!("{other:?}"),
    };
    let bundle = RawValue::from_string(r#"{"user_profile":{"id":5}}"#.into()).unwrap();
    h.conn.on_fetch_result(h.now, id, Ok(&bundle));
    assert_eq!(
        h.sent(),
        [json!({"type": "data", "id": 3, "data": {"user_profile": {"id": 5}}})]
    );
}

#[test]
fn http_responses_from_the_dispatcher_become_replies() {
    let response = |status: StatusCode, body: &str| {
        let mut response = http::Response::new(Bytes::from(body.to_owned()));
        *response.status_mut() = status;
        response
    };
    let mut h = Harness::ready();
    h.send_json(json!({"type": "call", "id": 1, "fn": "echo", "args": {"message": "hi"}}));
    h.send_json(json!({"type": "ctx", "id": 2, "name": "catalog"}));
    h.send_json(json!({"type": "call", "id": 3, "fn": "secret"}));
    h.send_json(json!({"type": "call", "id": 4, "fn": "broken"}));
    h.actions();
    h.conn.on_response(
        h.now,
        Id::from(1),
        &response(
            StatusCode::OK,
            r#"{"result":"hi","invalidate":["catalog"]}"#,
        ),
    );
    h.conn.on_response(
        h.now,
        Id::from(2),
        &response(StatusCode::OK, r#"{"catalog_items":[]}"#),
    );
    let denied = ApiError::forbidden().into_response();
    h.conn.on_response(h.now, Id::from(3), &denied);
    h.conn
        .on_response(h.now, Id::from(4), &response(StatusCode::OK, "not json"));
    let sent = h.sent();
    assert_eq!(
        sent[..3],
        [
            json!({"type": "result", "id": 1, "result": "hi", "invalidate": ["catalog"]}),
            json!({"type": "data", "id": 2, "data": {"catalog_items": []}}),
            json!({"type": "error", "id": 3, "error": ApiError::forbidden().to_json()["error"]}),
        ]
    );
    assert_eq!(sent[3]["type"], "error");
    assert_eq!(sent[3]["error"]["code"], "internal");
}

#[test]
fn a_duplicate_call_id_in_flight_closes_with_4409() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "call", "id": 1, "fn": "f"}));
    h.send_json(json!({"type": "call", "id": 1, "fn": "f"}));
    assert_eq!(h.close_code(), Some(4409));

    // A fetch and a call share the id space.
    let mut h = Harness::ready();
    h.send_json(json!({"type": "ctx", "id": "x", "name": "user"}));
    h.send_json(json!({"type": "call", "id": "x", "fn": "f"}));
    assert_eq!(h.close_code(), Some(4409));

    // Integer 1 and string "1" are different ids.
    let mut h = Harness::ready();
    h.send_json(json!({"type": "call", "id": 1, "fn": "f"}));
    h.send_json(json!({"type": "call", "id": "1", "fn": "f"}));
    assert_eq!(h.actions().len(), 2);
}

#[test]
fn an_id_is_free_again_once_its_reply_was_sent() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "call", "id": 1, "fn": "f"}));
    h.actions();
    h.conn
        .on_call_result(h.now, Id::from(1), Ok(&outcome("1", vec![])));
    // Queued but not sent: the client has not seen the result, the id is still in flight.
    h.send_json(json!({"type": "call", "id": 1, "fn": "f"}));
    assert_eq!(h.close_code(), Some(4409));

    let mut h = Harness::ready();
    h.send_json(json!({"type": "call", "id": 1, "fn": "f"}));
    h.actions();
    h.conn
        .on_call_result(h.now, Id::from(1), Ok(&outcome("1", vec![])));
    assert_eq!(h.sent().len(), 1);
    h.send_json(json!({"type": "call", "id": 1, "fn": "f"}));
    assert!(matches!(h.actions()[..], [Action::Call { .. }]));
}

#[test]
fn over_32_calls_in_flight_the_next_gets_an_error_and_the_socket_stays_open() {
    let mut h = Harness::ready();
    for id in 0..32 {
        h.send_json(json!({"type": "call", "id": id, "fn": "slow"}));
    }
    assert_eq!(h.actions().len(), 32);
    h.send_json(json!({"type": "ctx", "id": 32, "name": "user"}));
    assert!(h.actions().is_empty());
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "error");
    assert_eq!(sent[0]["id"], 32);
    assert_eq!(sent[0]["error"]["code"], "too_many_requests");
    assert_eq!(sent[0]["error"]["details"], json!({"limit": "calls"}));
    assert!(!h.conn.is_closed());

    // One finishes and is read: room for one more.
    h.conn
        .on_call_result(h.now, Id::from(0), Ok(&outcome("null", vec![])));
    h.sent();
    h.send_json(json!({"type": "call", "id": 33, "fn": "slow"}));
    assert!(matches!(h.actions()[..], [Action::Call { .. }]));
}

#[test]
fn results_for_unknown_ids_are_ignored() {
    let mut h = Harness::ready();
    h.conn
        .on_call_result(h.now, Id::from(77), Ok(&outcome("1", vec![])));
    h.conn.on_subscribe_verdict(h.now, Id::from(78), Ok(()));
    h.conn.on_recheck_verdict(h.now, Ok(()));
    assert!(h.actions().is_empty());
    assert_eq!(h.sent(), Vec::<Value>::new());
}

#[test]
fn several_unread_pings_get_one_pong() {
    let mut h = Harness::ready();
    for _ in 0..5 {
        h.send(r#"{"type":"ping"}"#);
    }
    assert_eq!(h.sent(), [json!({"type": "pong"})]);
    h.send(r#"{"type":"ping"}"#);
    assert_eq!(h.sent(), [json!({"type": "pong"})]);
}

// ---- subscriptions --------------------------------------------------------------------------

#[test]
fn a_subscription_is_checked_by_the_driver_then_acknowledged() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "sub", "id": 1, "context": "user", "params": {"user_id": 5}}));
    match h.actions().pop() {
        Some(Action::Subscribe {
            id,
            context,
            params,
        }) => {
            assert_eq!(id, Id::from(1));
            assert_eq!(context, "user");
            assert_eq!(Value::Object(params), json!({"user_id": 5}));
        }
        other => panic!("{other:?}"),
    }
    // Pending: no targets yet.
    h.invalidate(&[broad("user")]);
    assert_eq!(h.sent(), Vec::<Value>::new());
    h.conn.on_subscribe_verdict(h.now, Id::from(1), Ok(()));
    assert_eq!(h.sent(), [json!({"type": "sub_ok", "id": 1})]);
    assert_eq!(h.conn.subscription_count(), 1);
}

#[test]
fn a_denied_subscription_gets_an_error_for_its_id_not_a_close() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "sub", "id": "s", "context": "inbox"}));
    h.actions();
    h.conn
        .on_subscribe_verdict(h.now, Id::from("s"), Err(ApiError::forbidden()));
    assert_eq!(
        h.sent(),
        [json!({"type": "error", "id": "s", "error": ApiError::forbidden().to_json()["error"]})]
    );
    assert!(!h.conn.is_closed());
    assert_eq!(h.conn.subscription_count(), 0);
    h.invalidate(&[broad("inbox")]);
    assert_eq!(h.sent(), Vec::<Value>::new());
    // The id can be used again.
    h.subscribe(1, "user", json!({}));
}

#[test]
fn a_duplicate_subscription_id_closes_with_4409() {
    let mut h = Harness::ready();
    h.subscribe(1, "user", json!({"user_id": 5}));
    h.send_json(json!({"type": "sub", "id": 1, "context": "notes"}));
    assert_eq!(h.close_code(), Some(4409));

    // Pending counts too, and so does a call with that id.
    let mut h = Harness::ready();
    h.send_json(json!({"type": "sub", "id": 1, "context": "user"}));
    h.send_json(json!({"type": "sub", "id": 1, "context": "user"}));
    assert_eq!(h.close_code(), Some(4409));
    let mut h = Harness::ready();
    h.subscribe(1, "user", json!({}));
    h.send_json(json!({"type": "call", "id": 1, "fn": "f"}));
    assert_eq!(h.close_code(), Some(4409));
}

#[test]
fn the_129th_subscription_gets_an_error_for_its_id() {
    let mut h = Harness::ready();
    for id in 0..128 {
        h.subscribe(id, "user", json!({"user_id": id}));
    }
    h.send_json(json!({"type": "sub", "id": 128, "context": "user"}));
    assert!(h.actions().is_empty());
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "error");
    assert_eq!(sent[0]["id"], 128);
    assert_eq!(
        sent[0]["error"]["details"],
        json!({"limit": "subscriptions"})
    );
    assert!(!h.conn.is_closed());
    // Unsubscribing makes room.
    h.send_json(json!({"type": "unsub", "id": 0}));
    h.subscribe(128, "user", json!({}));
}

#[test]
fn an_oversized_subscription_gets_an_error_for_its_id() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "sub", "id": 1, "context": "notes",
        "params": {"folder": "x".repeat(5000)}}));
    assert!(h.actions().is_empty());
    let sent = h.sent();
    assert_eq!(sent[0]["error"]["code"], "bad_request");
    assert_eq!(
        sent[0]["error"]["details"],
        json!({"limit": "subscription"})
    );
}

#[test]
fn unsub_of_an_unknown_id_gets_a_not_found_error_for_that_id() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "unsub", "id": 4}));
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "error");
    assert_eq!(sent[0]["id"], 4);
    assert_eq!(sent[0]["error"]["code"], "not_found");
    assert!(!h.conn.is_closed());

    // A call's id is no subscription either.
    h.send_json(json!({"type": "call", "id": 5, "fn": "f"}));
    h.actions();
    h.send_json(json!({"type": "unsub", "id": 5}));
    assert_eq!(h.sent()[0]["error"]["code"], "not_found");
}

#[test]
fn unsub_stops_pushes_at_once_even_those_queued() {
    let mut h = Harness::ready();
    h.subscribe(1, "user", json!({"user_id": 5}));
    h.subscribe(2, "user", json!({"user_id": 5}));
    h.invalidate(&[broad("user")]);
    h.send_json(json!({"type": "unsub", "id": 1}));
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["id"], 2);
    h.invalidate(&[broad("user")]);
    assert_eq!(h.sent().len(), 1);
    assert_eq!(h.conn.subscription_count(), 1);
    // Unsubscribed twice: unknown.
    h.send_json(json!({"type": "unsub", "id": 1}));
    assert_eq!(h.sent()[0]["error"]["code"], "not_found");
}

#[test]
fn unsub_while_the_verdict_is_pending_drops_the_verdict() {
    let mut h = Harness::ready();
    h.send_json(json!({"type": "sub", "id": 1, "context": "user"}));
    h.actions();
    h.send_json(json!({"type": "unsub", "id": 1}));
    assert_eq!(h.sent(), Vec::<Value>::new());
    // The id stays in use until the verdict.
    h.send_json(json!({"type": "sub", "id": 1, "context": "user"}));
    assert_eq!(h.close_code(), Some(4409));

    let mut h = Harness::ready();
    h.send_json(json!({"type": "sub", "id": 1, "context": "user"}));
    h.actions();
    h.send_json(json!({"type": "unsub", "id": 1}));
    h.conn.on_subscribe_verdict(h.now, Id::from(1), Ok(()));
    assert_eq!(
        h.sent(),
        Vec::<Value>::new(),
        "no sub_ok for a cancelled subscription"
    );
    assert_eq!(h.conn.subscription_count(), 0);
    h.invalidate(&[broad("user")]);
    assert_eq!(h.sent(), Vec::<Value>::new());
    h.subscribe(1, "user", json!({}));
}

#[test]
fn a_subscription_receives_exactly_the_targets_that_make_it_stale() {
    let matching = [
        broad("user"),
        scoped("user", json!({"user_id": 5})),
        scoped("user", json!({"user_id": "5"})),
        function("user", "user_profile", None),
        function("user", "user_profile", Some(json!({"user_id": 5}))),
    ];
    let other = [
        broad("notes"),
        scoped("notes", json!({"user_id": 5})),
        scoped("user", json!({"user_id": 6})),
        scoped("user", json!({"user_id": "05"})),
        scoped("user", json!({"user_id": 5, "tab": "a"})),
        scoped("user", json!({"folder": "x"})),
        function("user", "user_profile", Some(json!({"user_id": 6}))),
        function("notes", "notes_list", None),
    ];
    for target in &matching {
        let mut h = Harness::ready();
        h.subscribe(1, "user", json!({"user_id": 5}));
        h.invalidate(std::slice::from_ref(target));
        assert_eq!(
            h.sent(),
            [json!({"type": "invalidate", "id": 1, "targets": [target_json(target)]})],
            "{target:?}"
        );
    }
    for target in &other {
        let mut h = Harness::ready();
        h.subscribe(1, "user", json!({"user_id": 5}));
        h.invalidate(std::slice::from_ref(target));
        assert_eq!(h.sent(), Vec::<Value>::new(), "{target:?}");
    }
}

#[test]
fn a_scoped_target_matches_a_subscription_with_more_params() {
    let mut h = Harness::ready();
    h.subscribe(1, "notes", json!({"folder": "work", "page": 2}));
    h.invalidate(&[scoped("notes", json!({"folder": "work"}))]);
    assert_eq!(h.sent().len(), 1);
    h.invalidate(&[scoped("notes", json!({"folder": "home"}))]);
    assert_eq!(h.sent(), Vec::<Value>::new());
}

#[test]
fn one_mutation_reaches_only_the_subscriptions_it_makes_stale() {
    let mut h = Harness::ready();
    h.subscribe(1, "user", json!({"user_id": 5}));
    h.subscribe(2, "user", json!({"user_id": 6}));
    h.subscribe(3, "catalog", json!({}));
    h.invalidate(&[
        scoped("user", json!({"user_id": 5})),
        function("user", "user_profile", Some(json!({"user_id": 5}))),
        broad("notes"),
    ]);
    assert_eq!(
        h.sent(),
        [json!({"type": "invalidate", "id": 1, "targets": [
            {"context": "user", "params": {"user_id": 5}},
            {"context": "user", "function": "user_profile", "params": {"user_id": 5}},
        ]})]
    );
}

#[test]
fn a_users_targets_never_reach_another_users_subscription() {
    // Alice (user 1) and Bob (user 2) each watch their own profile on their own socket.
    let mut alice = Harness::ready();
    alice.subscribe(1, "user", json!({"user_id": 1}));
    let mut bob = Harness::ready();
    bob.subscribe(1, "user", json!({"user_id": 2}));
    // Alice updates her profile: the bus carries the same targets to both sockets.
    let targets = [scoped("user", json!({"user_id": 1}))];
    alice.invalidate(&targets);
    bob.invalidate(&targets);
    assert_eq!(alice.sent().len(), 1);
    assert_eq!(bob.sent(), Vec::<Value>::new());
}

#[test]
fn pending_invalidations_of_one_subscription_coalesce_into_one_message() {
    let mut h = Harness::ready();
    h.subscribe(1, "user", json!({"user_id": 5}));
    let profile = function("user", "user_profile", Some(json!({"user_id": 5})));
    let orders = function("user", "user_orders", None);
    for _ in 0..100 {
        h.invalidate(std::slice::from_ref(&profile));
        h.invalidate(&[orders.clone(), profile.clone()]);
    }
    assert_eq!(
        h.sent(),
        [json!({"type": "invalidate", "id": 1,
            "targets": [target_json(&profile), target_json(&orders)]})]
    );

    // A broad target absorbs the others.
    h.invalidate(std::slice::from_ref(&profile));
    h.invalidate(&[broad("user")]);
    h.invalidate(std::slice::from_ref(&orders));
    assert_eq!(
        h.sent(),
        [json!({"type": "invalidate", "id": 1, "targets": ["user"]})]
    );
}

#[test]
fn too_many_distinct_pending_targets_collapse_into_the_broad_target() {
    let limits = SocketLimits::default();
    let mut h = Harness::ready();
    h.subscribe(1, "user", json!({"user_id": 5}));
    for i in 0..limits.max_pending_targets {
        h.invalidate(&[function("user", &format!("f{i}"), None)]);
    }
    let sent = h.sent();
    assert_eq!(
        sent[0]["targets"].as_array().unwrap().len(),
        limits.max_pending_targets
    );
    for i in 0..=limits.max_pending_targets {
        h.invalidate(&[function("user", &format!("f{i}"), None)]);
    }
    assert_eq!(
        h.sent(),
        [json!({"type": "invalidate", "id": 1, "targets": ["user"]})]
    );
}

// ---- the outbound queue and slow readers ----------------------------------------------------

fn small_queue() -> SocketLimits {
    SocketLimits {
        max_queued_messages: 4,
        ..SocketLimits::default()
    }
}

#[test]
fn a_full_queue_drops_pending_invalidations_for_one_resync() {
    let mut h = Harness::ready_with(small_queue());
    for id in 0..6 {
        h.subscribe(id, "user", json!({"user_id": id}));
    }
    h.send_json(json!({"type": "call", "id": "c", "fn": "f"}));
    h.actions();
    h.conn
        .on_call_result(h.now, Id::from("c"), Ok(&outcome("1", vec![])));
    // One reply queued; invalidations for six subscriptions do not fit in four entries.
    for id in 0..6 {
        h.invalidate(&[scoped("user", json!({"user_id": id}))]);
    }
    h.invalidate(&[broad("user")]);
    let sent = h.sent();
    let kinds: Vec<&str> = sent.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["result", "resync"], "{sent:?}");

    // Read: pushes resume.
    h.invalidate(&[scoped("user", json!({"user_id": 3}))]);
    assert_eq!(
        h.sent(),
        [
            json!({"type": "invalidate", "id": 3, "targets": [{"context": "user", "params": {"user_id": 3}}]})
        ]
    );
}

#[test]
fn an_unread_resync_closes_with_1013_at_its_deadline() {
    let limits = SocketLimits {
        max_queued_messages: 4,
        ..no_rechecks()
    };
    let mut h = Harness::ready_with(limits);
    for id in 0..5 {
        h.subscribe(id, "user", json!({}));
    }
    h.invalidate(&[broad("user")]);
    let deadline = h.now + limits.resync_timeout;
    assert_eq!(h.conn.next_deadline(), Some(deadline));
    h.now = deadline - Duration::from_millis(1);
    h.tick();
    assert_eq!(h.close_code(), None);
    h.now = deadline;
    h.tick();
    assert_eq!(h.close_code(), Some(1013));
}

#[test]
fn replies_filling_the_queue_again_while_a_resync_waits_close_with_1013() {
    let mut h = Harness::ready_with(small_queue());
    for id in 0..5 {
        h.subscribe(id, "user", json!({}));
    }
    h.invalidate(&[broad("user")]);
    // The resync waits; the client keeps sending without reading.
    for _ in 0..4 {
        h.send_json(json!({"type": "unsub", "id": "nope"}));
    }
    assert!(!h.conn.is_closed());
    h.send_json(json!({"type": "unsub", "id": "nope"}));
    assert_eq!(h.close_code(), Some(1013));
}

/// Limits where only the slow-reader deadlines matter.
fn no_rechecks() -> SocketLimits {
    SocketLimits {
        recheck_interval: Duration::from_secs(24 * 3600),
        ..SocketLimits::default()
    }
}

#[test]
fn a_client_that_reads_nothing_gets_a_resync_in_place_of_its_pushes() {
    let limits = no_rechecks();
    let mut h = Harness::ready_with(limits);
    h.subscribe(1, "user", json!({}));
    let stalled_at = h.now;
    h.invalidate(&[function("user", "user_profile", None)]);
    assert_eq!(
        h.conn.next_deadline(),
        Some(stalled_at + limits.stall_timeout)
    );
    h.now = stalled_at + limits.stall_timeout - Duration::from_millis(1);
    h.invalidate(&[function("user", "user_orders", None)]);
    h.tick();
    h.now = stalled_at + limits.stall_timeout;
    h.tick();
    assert!(h.actions().is_empty());
    // Read at last: the resync replaced the pending invalidations.
    assert_eq!(h.sent(), [json!({"type": "resync"})]);
    h.invalidate(&[broad("user")]);
    assert_eq!(
        h.sent(),
        [json!({"type": "invalidate", "id": 1, "targets": ["user"]})]
    );
}

#[test]
fn a_client_that_reads_nothing_is_closed_with_1013_after_its_resync() {
    let limits = no_rechecks();
    let mut h = Harness::ready_with(limits);
    h.subscribe(1, "user", json!({}));
    let stalled_at = h.now;
    h.invalidate(&[broad("user")]);
    h.now = stalled_at + limits.stall_timeout;
    h.tick();
    assert_eq!(h.close_code(), None);
    let deadline = h.now + limits.resync_timeout;
    assert_eq!(h.conn.next_deadline(), Some(deadline));
    h.now = deadline - Duration::from_millis(1);
    h.tick();
    assert_eq!(h.close_code(), None);
    h.now = deadline;
    h.tick();
    assert_eq!(h.close_code(), Some(1013));
    assert_eq!(h.sent(), Vec::<Value>::new());
}

#[test]
fn a_client_that_keeps_reading_never_stalls() {
    let limits = no_rechecks();
    let mut h = Harness::ready_with(limits);
    h.subscribe(1, "user", json!({}));
    for _ in 0..120 {
        h.invalidate(&[broad("user")]);
        h.now += Duration::from_millis(500);
        h.tick();
        assert_eq!(
            h.sent(),
            [json!({"type": "invalidate", "id": 1, "targets": ["user"]})]
        );
    }
    assert!(!h.conn.is_closed());
}

#[test]
fn a_stalled_client_does_not_affect_another_connection() {
    let limits = no_rechecks();
    let mut slow = Harness::ready_with(limits);
    let mut fast = Harness::ready_with(limits);
    slow.subscribe(1, "catalog", json!({}));
    fast.subscribe(1, "catalog", json!({}));
    for _ in 0..60 {
        for h in [&mut slow, &mut fast] {
            h.invalidate(&[broad("catalog")]);
            h.now += Duration::from_secs(1);
            h.tick();
        }
        assert_eq!(fast.sent().len(), 1);
    }
    assert_eq!(slow.close_code(), Some(1013));
    assert!(!fast.conn.is_closed());
}

#[test]
fn a_bus_resync_reaches_connections_with_subscriptions() {
    let mut watching = Harness::ready();
    watching.subscribe(1, "user", json!({"user_id": 5}));
    watching.invalidate(&[broad("user")]);
    watching.conn.on_resync(watching.now);
    assert_eq!(
        watching.sent(),
        [json!({"type": "resync"})],
        "it replaces pending pushes"
    );

    let mut idle = Harness::ready();
    idle.conn.on_resync(idle.now);
    assert_eq!(idle.sent(), Vec::<Value>::new());
}

#[test]
fn resync_pending_lasts_until_the_resync_is_read_or_the_connection_closes() {
    let limits = no_rechecks();
    let mut h = Harness::ready_with(limits);
    h.subscribe(1, "user", json!({}));
    h.invalidate(&[broad("user")]);
    assert!(!h.conn.resync_pending());
    h.now += limits.stall_timeout;
    h.tick();
    assert!(h.conn.resync_pending());
    assert_eq!(h.sent(), [json!({"type": "resync"})]);
    assert!(!h.conn.resync_pending());
    // Stalled again and never read: closed with 1013, nothing pending any more.
    h.invalidate(&[broad("user")]);
    h.now += limits.stall_timeout;
    h.tick();
    assert!(h.conn.resync_pending());
    h.now += limits.resync_timeout;
    h.tick();
    assert_eq!(h.close_code(), Some(1013));
    assert!(!h.conn.resync_pending());
}
