//! The messages: client messages decoded and validated, server messages encoded.

use crate::escape::json_nesting_exceeds;
use std::borrow::Cow;
use std::fmt;

use serde::ser::{Serialize, Serializer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::close::CloseReason;
use super::limits::SocketLimits;
use crate::error::ApiError;
use crate::invalidation::Target;

/// The `id` of a call, fetch or subscription, as the client sent it: a string or an integer.
/// Replies carry it back in the same form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id(Repr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    Int(i64),
    Str(Box<str>),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Int(n) => write!(f, "{n}"),
            Repr::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Int(n) => serializer.serialize_i64(*n),
            Repr::Str(s) => serializer.serialize_str(s),
        }
    }
}

impl From<&str> for Id {
    fn from(value: &str) -> Self {
        Self(Repr::Str(value.into()))
    }
}

impl From<String> for Id {
    fn from(value: String) -> Self {
        Self(Repr::Str(value.into_boxed_str()))
    }
}

impl From<i64> for Id {
    fn from(value: i64) -> Self {
        Self(Repr::Int(value))
    }
}

/// The access token of an `init` message. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Box<str>);

impl Token {
    /// The token, for the code that verifies it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(<redacted, {} bytes>)", self.0.len())
    }
}

/// A decoded, validated client message.
#[derive(Debug)]
pub(crate) enum ClientMessage {
    Init {
        token: Option<Token>,
    },
    Call {
        id: Id,
        function: String,
        args: Box<RawValue>,
    },
    Fetch {
        id: Id,
        context: String,
        params: Map<String, Value>,
    },
    Sub {
        id: Id,
        context: String,
        params: Map<String, Value>,
    },
    Unsub {
        id: Id,
    },
    Ping,
}

/// Decodes one text message: size and depth first, then the fields its `type` requires.
/// Unknown fields are ignored; everything else wrong is a [`CloseReason`].
pub(crate) fn decode(text: &str, limits: &SocketLimits) -> Result<ClientMessage, CloseReason> {
    #[derive(Deserialize)]
    struct Fields<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<&'a RawValue>,
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        token: Option<&'a RawValue>,
        #[serde(rename = "fn", borrow, default)]
        function: Option<&'a RawValue>,
        #[serde(borrow, default)]
        args: Option<&'a RawValue>,
        #[serde(borrow, default)]
        name: Option<&'a RawValue>,
        #[serde(borrow, default)]
        context: Option<&'a RawValue>,
        #[serde(borrow, default)]
        params: Option<&'a RawValue>,
    }

    if text.len() > limits.max_message_bytes {
        return Err(CloseReason::MessageTooBig {
            limit: limits.max_message_bytes,
        });
    }
    check_depth(text.as_bytes(), limits.max_json_depth)?;
    if !text.trim_start().starts_with('{') {
        return Err(malformed("a message must be a JSON object"));
    }
    let fields: Fields<'_> =
        serde_json::from_str(text).map_err(|e| malformed(format!("invalid JSON: {e}")))?;
    let kind = match fields.kind {
        None => return Err(malformed("`type` is missing")),
        Some(raw) => string(raw, "type")?,
    };
    let id = || id(fields.id, limits.max_id_bytes);
    Ok(match &*kind {
        "init" => ClientMessage::Init {
            token: fields
                .token
                .map(|raw| string(raw, "token"))
                .transpose()?
                .map(|token| Token(token.into_owned().into_boxed_str())),
        },
        "call" => ClientMessage::Call {
            id: id()?,
            function: required_string(fields.function, "fn")?,
            args: match fields.args {
                None => {
                    RawValue::from_string("{}".to_owned()).map_err(|e| malformed(e.to_string()))?
                }
                Some(raw) if is_object(raw) => raw.to_owned(),
                Some(_) => return Err(malformed("`args` must be an object")),
            },
        },
        "ctx" => ClientMessage::Fetch {
            id: id()?,
            context: required_string(fields.name, "name")?,
            params: params(fields.params)?,
        },
        "sub" => ClientMessage::Sub {
            id: id()?,
            context: required_string(fields.context, "context")?,
            params: params(fields.params)?,
        },
        "unsub" => ClientMessage::Unsub { id: id()? },
        "ping" => ClientMessage::Ping,
        other => {
            return Err(malformed(format!("unknown message type {other:?}")));
        }
    })
}

fn malformed(problem: impl Into<String>) -> CloseReason {
    CloseReason::Malformed(problem.into())
}

fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

fn string<'a>(raw: &'a RawValue, field: &str) -> Result<Cow<'a, str>, CloseReason> {
    // A string with escapes cannot be borrowed.
    serde_json::from_str::<Cow<'a, str>>(raw.get())
        .map_err(|_| malformed(format!("`{field}` must be a string")))
}

fn required_string(raw: Option<&RawValue>, field: &str) -> Result<String, CloseReason> {
    match raw {
        None => Err(malformed(format!("`{field}` is missing"))),
        Some(raw) => string(raw, field).map(Cow::into_owned),
    }
}

fn id(raw: Option<&RawValue>, max_bytes: usize) -> Result<Id, CloseReason> {
    let raw = raw.ok_or_else(|| malformed("`id` is missing"))?;
    if raw.get().starts_with('"') {
        let id = string(raw, "id")?;
        if id.len() > max_bytes {
            return Err(malformed(format!("`id` is longer than {max_bytes} bytes")));
        }
        return Ok(Id::from(id.into_owned()));
    }
    serde_json::from_str::<i64>(raw.get())
        .map(Id::from)
        .map_err(|_| malformed("`id` must be a string or an integer"))
}

/// Context params: an object of strings, numbers, booleans (a `null` is the same as absent).
fn params(raw: Option<&RawValue>) -> Result<Map<String, Value>, CloseReason> {
    let Some(raw) = raw else {
        return Ok(Map::new());
    };
    if !is_object(raw) {
        return Err(malformed("`params` must be an object"));
    }
    let params: Map<String, Value> =
        serde_json::from_str(raw.get()).map_err(|e| malformed(format!("invalid JSON: {e}")))?;
    for (name, value) in &params {
        if matches!(value, Value::Array(_) | Value::Object(_)) {
            return Err(malformed(format!(
                "param {name:?} must be a string, a number or a boolean"
            )));
        }
    }
    Ok(params
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .collect())
}

/// Refuses JSON nested deeper than `max` before it is parsed.
fn check_depth(bytes: &[u8], max: usize) -> Result<(), CloseReason> {
    if json_nesting_exceeds(bytes, max) {
        return Err(malformed(format!("JSON nested deeper than {max} levels")));
    }
    Ok(())
}

/// The server messages, encoded.
pub(crate) mod encode {
    use super::*;

    pub(crate) const ACK: &str = r#"{"type":"ack"}"#;
    pub(crate) const PONG: &str = r#"{"type":"pong"}"#;
    pub(crate) const RESYNC: &str = r#"{"type":"resync"}"#;

    #[derive(serde::Serialize)]
    struct WithId<'a, T: Serialize> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a Id,
        #[serde(flatten)]
        body: T,
    }

    fn with_id<T: Serialize>(kind: &'static str, id: &Id, body: T) -> String {
        serde_json::to_string(&WithId { kind, id, body })
            .expect("server messages hold plain JSON values")
    }

    /// `{"type":"result","id","result","invalidate"}`: a call's result, the HTTP body plus
    /// `type` and `id`.
    pub(crate) fn result(id: &Id, result: &RawValue, invalidate: &impl Serialize) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a, I> {
            result: &'a RawValue,
            invalidate: &'a I,
        }
        with_id("result", id, Body { result, invalidate })
    }

    /// `{"type":"data","id","data"}`: a context bundle.
    pub(crate) fn data(id: &Id, data: &RawValue) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            data: &'a RawValue,
        }
        with_id("data", id, Body { data })
    }

    /// `{"type":"error","id","error":{"code","message","details"}}`. Server errors are logged
    /// with their cause here, as over HTTP; the client sees only the code and message.
    pub(crate) fn error(id: &Id, err: &ApiError) -> String {
        err.log();
        error_envelope(id, &err.to_json()["error"])
    }

    /// An error message around an envelope already encoded (the `error` object of 5.4).
    pub(crate) fn error_envelope(id: &Id, error: &Value) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: &'a Value,
        }
        with_id("error", id, Body { error })
    }

    /// `{"type":"sub_ok","id"}`.
    pub(crate) fn sub_ok(id: &Id) -> String {
        #[derive(serde::Serialize)]
        struct Body {}
        with_id("sub_ok", id, Body {})
    }

    /// `{"type":"invalidate","id","targets"}`: `id` is the subscription's.
    pub(crate) fn invalidate(id: &Id, targets: &[Target]) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            targets: &'a [Target],
        }
        with_id("invalidate", id, Body { targets })
    }
}
