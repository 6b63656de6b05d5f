//! Property-based tests of the wave-2 decoders: multipart uploads, forms and socket messages.
//!
//! - any multipart body (well-formed or not, truncated, with foreign boundaries, duplicate or
//!   missing parts, references to absent parts) gets a 2xx or a 4xx with the JSON error
//!   envelope, never a 5xx, and a successful upload reports exactly the bytes sent;
//! - any JSON sent to a form's validation or submit gets `{"valid", "issues"}` or a 4xx, every
//!   issue is well-formed, and no message repeats a submitted value;
//! - any sequence of socket messages gets JSON answers or a protocol close code, never a panic.
//!
//! Cases per property: 1024, or `MIZAN_PROPTEST_CASES`.

use bytes::Bytes;
use mizan_core::form::{Form, Formset, FormsetOptions};
use mizan_core::testing::{block_on, TestClient, TestResponse};
use mizan_core::{client, ApiError, Mizan, Upload, UploadLimits};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("MIZAN_PROPTEST_CASES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1024),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[client]
async fn sizes(files: Vec<Upload>, note: Option<Upload>) -> Result<Vec<usize>, ApiError> {
    Ok(files.iter().chain(note.iter()).map(Upload::size).collect())
}

#[client]
async fn echo(message: String) -> Result<String, ApiError> {
    Ok(message)
}

#[derive(Deserialize, Serialize, JsonSchema, garde::Validate)]
struct Line {
    #[garde(pattern(r"^[A-Z]{3}-[0-9]{3}$"))]
    sku: String,
    #[garde(range(min = 1, max = 99))]
    qty: u32,
}

impl Form for Line {
    fn formset_options() -> FormsetOptions {
        FormsetOptions::new()
            .with_min_num(1)
            .with_max_num(5)
            .with_can_delete(true)
            .with_can_order(true)
    }
}

#[derive(Deserialize, JsonSchema, garde::Validate)]
struct Signup {
    #[garde(length(chars, min = 2, max = 20))]
    name: String,
    #[garde(email)]
    email: String,
    #[garde(range(min = 13, max = 130))]
    age: Option<u8>,
}

impl Form for Signup {}

#[client(form = "signup")]
async fn signup(form: Signup) -> Result<String, ApiError> {
    Ok(form.name)
}

#[client(form = "order")]
async fn order(lines: Formset<Line>) -> Result<usize, ApiError> {
    Ok(lines.len())
}

fn app() -> &'static Mizan {
    static APP: std::sync::OnceLock<Mizan> = std::sync::OnceLock::new();
    APP.get_or_init(|| {
        let limits = mizan_core::Limits {
            uploads: UploadLimits {
                max_body_bytes: 64 * 1024,
                max_file_bytes: 4096,
                max_text_bytes: 2048,
                max_files: 4,
                max_parts: 8,
                max_file_name_bytes: 32,
            },
            ..mizan_core::Limits::default()
        };
        Mizan::builder()
            .register::<sizes>()
            .register::<echo>()
            .register::<signup>()
            .register::<order>()
            .with_limits(limits)
            .build()
            .expect("the test app builds")
    })
}

/// A 2xx, or a 4xx with exactly the error envelope and a JSON content type.
fn check_answer(response: &TestResponse) -> Result<(), TestCaseError> {
    let status = response.status().as_u16();
    prop_assert!(status < 500, "a {status}: {:?}", response.body());
    if status >= 400 {
        prop_assert_eq!(response.header("content-type"), Some("application/json"));
        let body = response.json();
        let error = body["error"].as_object().expect("an error envelope");
        prop_assert!(error["code"].is_string() && error["message"].is_string());
        prop_assert!(error.contains_key("details"));
    }
    Ok(())
}

// ---- Multipart ----

#[derive(Debug, Clone)]
struct Part {
    name: String,
    file_name: Option<String>,
    data: Vec<u8>,
}

fn part() -> impl Strategy<Value = Part> {
    (
        select(vec!["__mizan", "a", "b", "c", "note", ""]),
        proptest::option::of(select(vec!["x.bin", "../x", "", "a\\b", "é.txt"])),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(|(name, file_name, data)| Part {
            name: name.to_owned(),
            file_name: file_name.map(str::to_owned),
            data,
        })
}

fn reference() -> impl Strategy<Value = Value> {
    select(vec!["a", "b", "c", "zz"]).prop_map(|part| json!({ "$upload": part }))
}

fn envelope() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (vec(reference(), 0..4), proptest::option::of(reference())).prop_map(|(files, note)| {
            json!({"fn": "sizes", "args": {"files": files, "note": note}})
                .to_string()
                .into_bytes()
        }),
        Just(br#"{"fn":"echo","args":{"message":"hi"}}"#.to_vec()),
        Just(br#"{"fn":"nope"}"#.to_vec()),
        vec(any::<u8>(), 0..32),
    ]
}

/// How a body is damaged after it is written.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => Just(Damage::None),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Flip(at, byte)),
        1 => (any::<usize>(), vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Damage::Insert(at, b)),
    ]
}

fn multipart(envelope: &[u8], parts: &[Part], boundary: &str, damage: &Damage) -> Vec<u8> {
    let mut out = Vec::new();
    let mut write = |name: &str, file_name: Option<&str>, data: &[u8]| {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(file_name) = file_name {
            out.extend_from_slice(format!("; filename=\"{file_name}\"").as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    };
    write("__mizan", None, envelope);
    for part in parts {
        write(&part.name, part.file_name.as_deref(), &part.data);
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    match damage {
        Damage::None => {}
        Damage::Truncate(at) => out.truncate(at % (out.len() + 1)),
        Damage::Flip(at, byte) => {
            let at = at % out.len();
            out[at] = *byte;
        }
        Damage::Insert(at, bytes) => {
            let at = at % (out.len() + 1);
            out.splice(at..at, bytes.iter().copied());
        }
    }
    out
}

fn post(content_type: &str, body: Vec<u8>) -> TestResponse {
    let request = http::Request::post("/api/mizan/call/")
        .header("content-type", content_type)
        .body(Bytes::from(body))
        .expect("a request");
    block_on(TestClient::new(app()).send(request))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_multipart_body_gets_a_2xx_or_an_error_envelope(
        envelope in envelope(),
        parts in vec(part(), 0..6),
        declared in select(vec!["B0UND", "other", ""]),
        damage in damage(),
    ) {
        let body = multipart(&envelope, &parts, "B0UND", &damage);
        let content_type = format!("multipart/form-data; boundary={declared}");
        let response = post(&content_type, body);
        check_answer(&response)?;
        // A well-formed upload reports exactly the parts it referred to.
        if response.status().is_success() && matches!(damage, Damage::None) {
            let call: Value = serde_json::from_slice(&envelope).unwrap();
            if call["fn"] == "sizes" {
                let mut referred: Vec<&str> = call["args"]["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .chain(call["args"]["note"].as_object().map(|_| &call["args"]["note"]))
                    .map(|r| r["$upload"].as_str().unwrap())
                    .collect();
                let expected: Vec<usize> = referred
                    .drain(..)
                    .map(|name| parts.iter().find(|p| p.name == name).unwrap().data.len())
                    .collect();
                prop_assert_eq!(response.result(), json!(expected));
            }
        }
    }

    #[test]
    fn random_bytes_as_multipart_get_an_error_envelope(body in vec(any::<u8>(), 0..512)) {
        check_answer(&post("multipart/form-data; boundary=B0UND", body))?;
    }
}

// ---- Forms ----

fn marker_text() -> impl Strategy<Value = String> {
    "[a-z]{3,12}".prop_map(|s| format!("zq{s}"))
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        marker_text().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        (0u8..200).prop_map(Value::from),
        vec(marker_text(), 0..3).prop_map(|v| json!(v)),
        Just(json!({"nested": "zqvalue"})),
        Just(Value::from("ann@example.com")),
        Just(Value::from("ABC-123")),
    ]
}

fn form_object() -> impl Strategy<Value = Value> {
    vec(
        (
            select(vec![
                "name", "email", "age", "sku", "qty", "_delete", "_order", "zqextra",
            ]),
            field_value(),
        ),
        0..6,
    )
    .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn form_body() -> impl Strategy<Value = (&'static str, Value)> {
    prop_oneof![
        form_object().prop_map(|data| ("signup", data)),
        vec(form_object(), 0..12).prop_map(|forms| ("order", json!({ "forms": forms }))),
        field_value().prop_map(|data| ("signup", data)),
        field_value().prop_map(|forms| ("order", json!({ "forms": forms }))),
    ]
}

/// Every string the data holds (a message must repeat none of them).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.starts_with("zq") => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn check_issues(issues: &Value, data: &Value) -> Result<(), TestCaseError> {
    let mut submitted = Vec::new();
    strings(data, &mut submitted);
    for issue in issues.as_array().expect("an issues array") {
        prop_assert!(issue["path"].is_array() && issue["code"].is_string());
        prop_assert!(issue["params"].is_object());
        let message = issue["message"].as_str().expect("a message");
        for value in &submitted {
            prop_assert!(
                !message.contains(value.as_str()),
                "{message} repeats {value}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_form_data_gets_issues_or_a_result((form, data) in form_body()) {
        let client = TestClient::new(app());
        let request = http::Request::post(format!("/api/mizan/form/{form}/validate/"))
            .header("content-type", "application/json")
            .body(Bytes::from(data.to_string()))
            .expect("a request");
        let validated = block_on(client.send(request));
        check_answer(&validated)?;
        prop_assert_eq!(validated.status().as_u16(), 200);
        let report = validated.json();
        check_issues(&report["issues"], &data)?;

        // The submit agrees with the validation: it runs exactly when the data is valid.
        let args = match form {
            "signup" => data.clone(),
            _ => json!({ "lines": data }),
        };
        let submitted = block_on(client.call(form, args));
        check_answer(&submitted)?;
        let valid = report["valid"].as_bool().unwrap();
        prop_assert_eq!(submitted.status().is_success(), valid, "{}", submitted.json());
        if !valid && data.is_object() {
            check_issues(&submitted.json()["error"]["details"]["issues"], &data)?;
        }
    }
}

// ---- Socket messages ----

fn socket_message() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        (0u32..4).prop_map(|n| json!(n)),
        select(vec!["a", "b", ""]).prop_map(|s| json!(s)),
        Just(json!(null)),
        Just(json!([1])),
    ];
    let kind = select(vec![
        "init", "call", "ctx", "sub", "unsub", "ping", "nope", "",
    ]);
    prop_oneof![
        4 => (kind, id, proptest::option::of(field_value()), proptest::option::of(field_value()))
            .prop_map(|(kind, id, a, b)| {
                let mut message = json!({"type": kind, "id": id, "fn": "echo", "name": "user",
                                         "context": "user"});
                if let Some(a) = a { message["args"] = a; }
                if let Some(b) = b { message["params"] = b; }
                message.to_string()
            }),
        1 => vec(any::<char>(), 0..64).prop_map(|chars| chars.into_iter().collect()),
        1 => "[\\[{\"a-z:,0-9\\]} ]{0,80}",
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Any sequence of text messages leaves the machine open and answering, or closed with a
    /// protocol close code; it never panics, and everything it sends is JSON.
    #[test]
    fn any_socket_messages_get_answers_or_a_protocol_close(
        messages in vec(socket_message(), 1..12),
        authenticate in any::<bool>(),
    ) {
        use mizan_core::socket::{Action, Connection, Expiry};
        let now = std::time::Instant::now();
        let mut connection = Connection::new(mizan_core::SocketLimits::default(), now);
        for message in &messages {
            connection.handle_text(now, message);
            while let Some(action) = connection.poll_action() {
                if let Action::Authenticate { .. } = action {
                    let verdict = if authenticate {
                        Ok(Expiry::Never)
                    } else {
                        Err(ApiError::unauthenticated())
                    };
                    connection.on_init_verdict(now, verdict);
                }
            }
            while let Some(text) = connection.poll_transmit(now) {
                prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "{text}");
            }
        }
        if let Some(reason) = connection.close_reason() {
            prop_assert!(
                [4400, 4401, 4408, 4409, 4429, 1009, 1013, 1001].contains(&reason.code()),
                "close {}", reason.code()
            );
        }
    }
}
