//! Transports: how a call envelope arrives and how its outcome leaves.
//!
//! Every transport runs the same call (guard, arguments, function, invalidation and cache
//! purge); they differ in how the outcome is encoded:
//!
//! - [`HttpTransport`]: a JSON body, plus the `X-Mizan-Invalidate` header channel;
//! - [`IpcTransport`]: one JSON envelope (Tauri-style IPC): invalidation rides in the body only,
//!   there is no header channel.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::app::Mizan;
use crate::error::{no_store, ApiError};
use crate::escape::json_nesting_exceeds;
use crate::identity::Identity;
use crate::invalidation::{header_value, Target, INVALIDATE_HEADER};

/// The start of every call's body, `{"result":`, after which the function writes its result.
pub(crate) const RESULT_PREFIX: &[u8] = br#"{"result":"#;

/// The outcome of a successful call: the function's result and the invalidation targets.
#[derive(Debug)]
pub struct CallOutcome {
    /// `{"result":` and the result's JSON, as the function wrote it: the start of the body.
    body: Vec<u8>,
    /// Where the result starts in `body`.
    result_start: usize,
    pub(crate) targets: Vec<Target>,
    /// `Set-Cookie` values the function asked for (sent by transports with headers).
    pub(crate) cookies: Vec<HeaderValue>,
}

impl CallOutcome {
    /// An outcome whose `body` holds `{"result":` up to `result_start`, then the result.
    pub(crate) fn new(
        body: Vec<u8>,
        result_start: usize,
        targets: Vec<Target>,
        cookies: Vec<HeaderValue>,
    ) -> Self {
        debug_assert_eq!(body.get(..result_start), Some(RESULT_PREFIX));
        Self {
            body,
            result_start,
            targets,
            cookies,
        }
    }

    /// An outcome of `result` (JSON text) with `targets` and no cookies.
    #[cfg(test)]
    pub(crate) fn from_result(result: &str, targets: Vec<Target>) -> Self {
        Self::new(
            [RESULT_PREFIX, result.as_bytes()].concat(),
            RESULT_PREFIX.len(),
            targets,
            Vec::new(),
        )
    }

    /// The function's result, as JSON.
    pub fn result(&self) -> &RawValue {
        let text =
            std::str::from_utf8(&self.body[self.result_start..]).expect("serde_json writes UTF-8");
        serde_json::from_str(text).expect("serde_json writes valid JSON")
    }

    /// What the call invalidated (empty unless the function is a mutation).
    pub fn invalidate(&self) -> &[Target] {
        &self.targets
    }

    /// The body every transport sends: `{"result": ..., "invalidate": [...]}`.
    pub fn to_body(&self) -> Bytes {
        Self::finish(self.body.clone(), &self.targets)
    }

    /// The body, finished in place: the result is not copied.
    fn into_body(self) -> (Bytes, Vec<Target>, Vec<HeaderValue>) {
        (
            Self::finish(self.body, &self.targets),
            self.targets,
            self.cookies,
        )
    }

    fn finish(mut body: Vec<u8>, targets: &[Target]) -> Bytes {
        body.extend_from_slice(br#","invalidate":"#);
        serde_json::to_writer(&mut body, targets).expect("targets always serialize");
        body.push(b'}');
        Bytes::from(body)
    }
}

/// Encodes the outcome of a call for one transport.
pub trait Transport {
    /// What the transport sends back.
    type Output;

    /// Encodes a call's outcome, or its error.
    fn encode(&self, outcome: Result<CallOutcome, ApiError>) -> Self::Output;
}

/// HTTP: the JSON body, with the targets also in `X-Mizan-Invalidate`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpTransport;

impl HttpTransport {
    /// Adds `X-Mizan-Invalidate` for `targets` to a response (nothing when there are none).
    pub fn add_header(response: &mut http::Response<Bytes>, targets: &[Target]) {
        if let Some(value) = header_value(targets).and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(INVALIDATE_HEADER, value);
        }
    }
}

impl Transport for HttpTransport {
    type Output = http::Response<Bytes>;

    fn encode(&self, outcome: Result<CallOutcome, ApiError>) -> http::Response<Bytes> {
        match outcome {
            Ok(outcome) => {
                let (body, targets, cookies) = outcome.into_body();
                let mut response = json_response(body);
                Self::add_header(&mut response, &targets);
                for cookie in cookies {
                    response
                        .headers_mut()
                        .append(http::header::SET_COOKIE, cookie);
                }
                response
            }
            Err(err) => err.into_response(),
        }
    }
}

/// IPC (one envelope in, one out): `{"result", "invalidate"}` or `{"error": {...}}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct IpcTransport;

impl Transport for IpcTransport {
    type Output = Bytes;

    fn encode(&self, outcome: Result<CallOutcome, ApiError>) -> Bytes {
        match outcome {
            Ok(outcome) => outcome.into_body().0,
            Err(err) => {
                err.log();
                Bytes::from(err.to_json().to_string())
            }
        }
    }
}

impl Mizan {
    /// Handles one call envelope (`{"fn": ..., "args": {...}}`) that arrived on `transport`
    /// from `identity`, with the same guards, limits and invalidation as `POST call/`.
    ///
    /// ```
    /// use mizan_core::{ApiError, Function, Identity, IpcTransport, Mizan};
    ///
    /// let app = Mizan::builder()
    ///     .with_function(Function::new("echo").with_param::<String>("message")
    ///         .handler(|_, mut args| async move { args.take::<String>("message") }))
    ///     .build()
    ///     .unwrap();
    /// let reply = futures_executor::block_on(app.call_envelope(
    ///     &IpcTransport,
    ///     br#"{"fn": "echo", "args": {"message": "hi"}}"#,
    ///     Identity::anonymous(),
    /// ));
    /// assert_eq!(&reply[..], br#"{"result":"hi","invalidate":[]}"#);
    /// ```
    pub async fn call_envelope<T: Transport>(
        &self,
        transport: &T,
        envelope: &[u8],
        identity: Identity,
    ) -> T::Output {
        let limits = self.inner.limits;
        if envelope.len() > limits.max_body_bytes {
            return transport.encode(Err(ApiError::payload_too_large(limits.max_body_bytes)));
        }
        let outcome = match parse_envelope(envelope, limits.max_json_depth) {
            Ok(parsed) => {
                let uri = format!("{}call/", self.inner.mount);
                let (mut parts, ()) = http::Request::new(()).into_parts();
                parts.method = http::Method::POST;
                parts.uri = uri.parse().unwrap_or_default();
                let body = Bytes::copy_from_slice(envelope);
                self.run_call(parsed, parts, body, identity).await
            }
            Err(err) => Err(err),
        };
        transport.encode(outcome)
    }
}

/// A `200` JSON answer of the protocol: `Content-Type: application/json` and
/// `Cache-Control: no-store` (what the origin cache keeps, HTTP caches must not).
pub(crate) fn json_response(body: Bytes) -> http::Response<Bytes> {
    let mut response = http::Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, no_store());
    response
}

/// Rejects JSON nested deeper than `max` before it is parsed.
pub(crate) fn check_depth(bytes: &[u8], max: usize) -> Result<(), ApiError> {
    if json_nesting_exceeds(bytes, max) {
        return Err(ApiError::bad_request(format!(
            "JSON nested deeper than {max} levels"
        )));
    }
    Ok(())
}

/// A call envelope, borrowed from the body: the function's name and each argument's raw JSON.
pub(crate) struct Envelope<'a> {
    pub(crate) function: Cow<'a, str>,
    pub(crate) args: RawArgs<'a>,
}

/// The arguments of a call envelope, borrowed from the body: each name once (a name sent twice
/// keeps its last value), sorted, with its raw JSON. A sorted `Vec` rather than a map: a call
/// carries a few arguments, so the usual call allocates once (none without arguments).
#[derive(Debug, Default)]
pub(crate) struct RawArgs<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawArgs<'a> {
    /// The arguments of `entries`, in the order they were sent.
    fn from_sent(mut entries: Vec<(Cow<'a, str>, &'a RawValue)>) -> Self {
        // Stable: the entries of one name stay in the order sent, and the last one is kept.
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        Self(entries)
    }

    /// The raw JSON of the argument `name`, if sent.
    pub(crate) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .binary_search_by(|(sent, _)| sent.as_ref().cmp(name))
            .ok()
            .map(|index| self.0[index].1)
    }

    /// The names sent, sorted.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_ref())
    }

    /// How many arguments were sent (each name once).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// As a JSON object of the raw values (a whole form's data).
impl Serialize for RawArgs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
    }
}

/// Parses a call envelope `{"fn": "name", "args": {...}}` (limits checked first). Arguments stay
/// raw JSON until each is deserialized straight into its declared type. The body is read in
/// one pass: the name and each argument are borrowed from it.
pub(crate) fn parse_envelope(body: &[u8], max_depth: usize) -> Result<Envelope<'_>, ApiError> {
    #[derive(Deserialize)]
    struct Fields<'a> {
        #[serde(rename = "fn", borrow, default)]
        function: Option<Name<'a>>,
        #[serde(borrow, default)]
        args: Option<ArgsField<'a>>,
    }

    check_depth(body, max_depth)?;
    let malformed = |e: serde_json::Error| ApiError::bad_request(format!("malformed JSON: {e}"));
    let is_object = |text: &str| text.trim_start().starts_with('{');
    let field = |name: &str, problem: &str| {
        invalid_args(
            "invalid call envelope".to_owned(),
            Map::from_iter([(name.to_owned(), Value::from(problem))]),
        )
    };
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("malformed JSON: not UTF-8"))?;
    if !is_object(text) {
        serde_json::from_str::<&RawValue>(text).map_err(malformed)?;
        return Err(ApiError::bad_request("the call body must be a JSON object"));
    }
    let Ok(fields) = serde_json::from_str::<Fields<'_>>(text) else {
        // The refusal is worded by the reading that keeps `fn` and `args` raw (a number too
        // large for the fast reading is still only "not a string" there).
        return Err(refuse_envelope(text));
    };
    let function = match fields.function {
        None => return Err(field("fn", "missing")),
        Some(Name::NotString) => return Err(field("fn", "must be a string")),
        Some(Name::Str(name)) => name,
    };
    let args = match fields.args {
        None => RawArgs::default(),
        Some(ArgsField::Object(args)) => args,
        Some(ArgsField::NotObject) => return Err(field("args", "must be an object")),
    };
    Ok(Envelope { function, args })
}

/// Why the envelope `text` (a JSON object that the one-pass reading refused) is refused: the
/// error of reading it with `fn` and `args` kept raw, then checked one after the other.
fn refuse_envelope(text: &str) -> ApiError {
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(rename = "fn", borrow, default)]
        function: Option<&'a RawValue>,
        #[serde(borrow, default)]
        args: Option<&'a RawValue>,
    }
    let malformed = |e: serde_json::Error| ApiError::bad_request(format!("malformed JSON: {e}"));
    let field = |name: &str, problem: &str| {
        invalid_args(
            "invalid call envelope".to_owned(),
            Map::from_iter([(name.to_owned(), Value::from(problem))]),
        )
    };
    let fields = match serde_json::from_str::<Raw<'_>>(text) {
        Ok(fields) => fields,
        Err(e) => return malformed(e),
    };
    let Some(function) = fields.function else {
        return field("fn", "missing");
    };
    if serde_json::from_str::<String>(function.get()).is_err() {
        return field("fn", "must be a string");
    }
    match fields.args {
        Some(raw) if !raw.get().trim_start().starts_with('{') => field("args", "must be an object"),
        Some(raw) => match serde_json::from_str::<BTreeMap<Cow<'_, str>, &RawValue>>(raw.get()) {
            Err(e) => malformed(e),
            Ok(_) => ApiError::bad_request("malformed JSON: the call envelope does not parse"),
        },
        None => ApiError::bad_request("malformed JSON: the call envelope does not parse"),
    }
}

/// The envelope's `fn`: a string, borrowed unless it has escapes, or any other JSON value
/// (read through, then refused).
enum Name<'a> {
    Str(Cow<'a, str>),
    NotString,
}

/// The envelope's `args`: an object whose values stay raw, or any other JSON value (read
/// through, then refused). A name sent twice keeps its last value.
enum ArgsField<'a> {
    Object(RawArgs<'a>),
    NotObject,
}

/// A string borrowed from the body unless it has escapes.
struct Key<'a>(Cow<'a, str>);

/// Reads through any JSON value that is not the kind wanted, answering `other`.
macro_rules! refuse_other_kinds {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<de::IgnoredAny>()?.is_some() {}
            Ok($other)
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(PhantomData<Name<'a>>);
        impl<'de: 'a, 'a> de::Visitor<'de> for Visitor<'a> {
            type Value = Name<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a function name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'a>, E> {
                Ok(Name::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'a>, E> {
                Ok(Name::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Name<'a>, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Name::NotString)
            }
            refuse_other_kinds!(Name::NotString);
        }
        deserializer.deserialize_any(Visitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ArgsField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(PhantomData<ArgsField<'a>>);
        impl<'de: 'a, 'a> de::Visitor<'de> for Visitor<'a> {
            type Value = ArgsField<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the arguments object")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ArgsField<'a>, A::Error> {
                let mut args = Vec::new();
                while let Some((Key(name), value)) = map.next_entry::<Key<'a>, &'a RawValue>()? {
                    args.push((name, value));
                }
                Ok(ArgsField::Object(RawArgs::from_sent(args)))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ArgsField<'a>, E> {
                Ok(ArgsField::NotObject)
            }
            refuse_other_kinds!(ArgsField::NotObject);
        }
        deserializer.deserialize_any(Visitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(PhantomData<Key<'a>>);
        impl<'de: 'a, 'a> de::Visitor<'de> for Visitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an argument name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(Visitor(PhantomData))
    }
}

/// A 400 `bad_request` whose `details.fields` names each bad argument.
pub(crate) fn invalid_args(message: String, fields: Map<String, Value>) -> ApiError {
    ApiError::bad_request(message).with_details(serde_json::json!({ "fields": fields }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_outside_strings_only() {
        assert!(check_depth(br#"{"a":[[1]]}"#, 3).is_ok());
        assert!(check_depth(br#"{"a":[[[1]]]}"#, 3).is_err());
        assert!(check_depth(br#"{"a":"[[[[[[\"[["}"#, 1).is_ok());
        // More brackets than the limit, none nested deeper than it.
        assert!(check_depth(br#"[[],[],{"a":[]},[[]]]"#, 3).is_ok());
        assert!(check_depth(br#"[[],[],{"a":[]},[[[]]]]"#, 3).is_err());
    }

    #[test]
    fn an_argument_sent_twice_keeps_its_last_value() {
        let envelope = parse_envelope(
            br#"{"fn":"f","args":{"b":1,"a":"x","b":3,"c":null,"b":[5]}}"#,
            32,
        )
        .unwrap();
        let args = &envelope.args;
        assert_eq!(args.names().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(args.len(), 3);
        assert_eq!(args.get("b").unwrap().get(), "[5]");
        assert_eq!(args.get("a").unwrap().get(), r#""x""#);
        assert!(args.get("d").is_none());
        // A whole form's data is the object of what was kept.
        assert_eq!(
            serde_json::to_string(args).unwrap(),
            r#"{"a":"x","b":[5],"c":null}"#
        );
    }

    #[test]
    fn envelopes_name_the_bad_field() {
        let err = |body: &str| match parse_envelope(body.as_bytes(), 32) {
            Ok(_) => panic!("{body} parsed"),
            Err(err) => err,
        };
        assert!(err("{").message().starts_with("malformed JSON"));
        assert_eq!(err("[]").message(), "the call body must be a JSON object");
        assert_eq!(err("{}").details().unwrap()["fields"]["fn"], "missing");
        assert_eq!(
            err(r#"{"fn": 1}"#).details().unwrap()["fields"]["fn"],
            "must be a string"
        );
        assert_eq!(
            err(r#"{"fn": "f", "args": []}"#).details().unwrap()["fields"]["args"],
            "must be an object"
        );
        let envelope = parse_envelope(br#"{"fn": "f"}"#, 32).unwrap();
        let (name, args) = (envelope.function, envelope.args);
        assert_eq!((name.as_ref(), args.len()), ("f", 0));
        let escaped =
            parse_envelope(br#"{"fn": "e\u0063ho", "args": {"a": [1, {"b": 2}]}}"#, 32).unwrap();
        assert_eq!(escaped.function, "echo");
        assert_eq!(escaped.args.get("a").unwrap().get(), r#"[1, {"b": 2}]"#);
        // Values the one-pass reading cannot hold are refused as a raw reading words it.
        assert_eq!(
            err(r#"{"fn": 1e400}"#).details().unwrap()["fields"]["fn"],
            "must be a string"
        );
        assert_eq!(
            err(r#"{"fn": "f", "args": 1e400}"#).details().unwrap()["fields"]["args"],
            "must be an object"
        );
        assert!(err(r#"{"fn": "f", "fn": "g"}"#)
            .message()
            .starts_with("malformed JSON: duplicate field `fn`"));
        let big = parse_envelope(br#"{"fn": "f", "args": {"n": 1e400}}"#, 32).unwrap();
        assert_eq!(big.args.get("n").unwrap().get(), "1e400");
    }
}
