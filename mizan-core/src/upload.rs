//! File uploads: the [`Upload`] argument type, multipart decoding, and its limits.
//!
//! A function receives a file by declaring an argument of type [`Upload`] (or
//! `Option<Upload>`, `Vec<Upload>`, or a struct with such fields). The client calls it with
//! `POST call/` and `Content-Type: multipart/form-data`:
//!
//! - the **first** part is named `__mizan` and holds the JSON envelope
//!   `{"fn": ..., "args": {...}}`;
//! - an upload argument's value in `args` is a reference `{"$upload": "<part name>"}` (a list of
//!   references for `Vec<Upload>`);
//! - the file parts follow under those names.
//!
//! ```text
//! curl -F '__mizan={"fn":"attach_files","args":{"files":[{"$upload":"a"}]}}' -F a=@x.png \
//!      http://127.0.0.1:8000/api/mizan/call/
//! ```
//!
//! # Order of work
//!
//! Everything that can refuse the call is settled before any file byte is accepted: the route
//! and method, the caller's identity (from the request head), then the `__mizan` part, which
//! names the function, so its existence, its guard (401/403) and whether it takes uploads at all
//! are checked before the next part is read. A caller failing the guard is answered without the
//! server reading, let alone buffering, the files.
//!
//! # Limits
//!
//! [`UploadLimits`], app-wide through [`Limits::uploads`](crate::Limits::uploads) and per
//! function through [`FunctionBuilder::with_upload_limits`](crate::FunctionBuilder::with_upload_limits).
//! Every limit is counted on the bytes as they arrive, never trusted from `Content-Length`, so a
//! chunked body or a lying header cannot get past it, and the memory a request holds stays below
//! the body limit. Exceeding one answers 413 `payload_too_large` with `details.limit` saying
//! which: `"body"`, `"file"`, `"files"`, `"parts"` or `"text"`.
//!
//! A malformed body (no or bad boundary, truncated, `__mizan` missing or not first, a reference
//! to an absent part, a file part no argument references, two parts with one name, a file sent
//! to a function without upload arguments) answers 400 `bad_request` naming the part or field.
//!
//! # File names
//!
//! [`Upload::file_name`] is safe to show and to use as a *suggestion*: directory parts (`/`,
//! `\`), NUL and control characters are removed, and `.`, `..` or an empty name become
//! `"upload"`. The name as sent is kept in [`Upload::raw_file_name`]. Mizan never writes a file
//! anywhere; if you store uploads on disk, choose the path yourself.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::{ApiError, BoxError, ErrorCode};
use crate::request::has_media_type;

/// The name of the part that carries the call envelope.
pub const ENVELOPE_PART: &str = "__mizan";

/// The placeholder for file names that are empty, `.` or `..` once sanitized.
pub const PLACEHOLDER_FILE_NAME: &str = "upload";

/// The key of the JSON schema extension that marks an upload (how the IR recognizes one).
pub(crate) const SCHEMA_MARKER: &str = "x-mizan-upload";

/// A request body that arrives in chunks, as adapters hand it to
/// [`Dispatcher::dispatch_stream`](crate::Dispatcher::dispatch_stream).
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// A file received by a function.
///
/// Cloning is cheap: the bytes are reference-counted.
#[derive(Clone, PartialEq, Eq)]
pub struct Upload {
    part: String,
    file_name: String,
    raw_file_name: Option<String>,
    content_type: Option<String>,
    bytes: Bytes,
}

impl Upload {
    /// An upload with these contents, e.g. to call a function directly in a unit test. The
    /// file name is sanitized like a received one.
    pub fn new(file_name: &str, content_type: Option<&str>, bytes: impl Into<Bytes>) -> Self {
        Self {
            part: file_name.to_owned(),
            file_name: sanitize_file_name(file_name),
            raw_file_name: Some(file_name.to_owned()),
            content_type: content_type.map(str::to_owned),
            bytes: bytes.into(),
        }
    }

    /// The file name, sanitized: no directory parts, no NUL or control characters, never
    /// empty, `.` or `..` (those become `"upload"`).
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The file name exactly as the client sent it (lossily decoded as UTF-8), if it sent one.
    /// Never use it as a path.
    pub fn raw_file_name(&self) -> Option<&str> {
        self.raw_file_name.as_deref()
    }

    /// The content type the client declared for the part (not verified).
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The name of the multipart part the file arrived in.
    pub fn part_name(&self) -> &str {
        &self.part
    }

    /// The size in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The contents.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The contents, by value.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The contents are the client's data: their size is enough for a log line.
        f.debug_struct("Upload")
            .field("part", &self.part)
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("size", &self.size())
            .finish()
    }
}

/// Makes a client-chosen file name safe to display: keeps the part after the last `/` or `\`,
/// drops NUL and control characters, and turns an empty name, `.` or `..` into `"upload"`.
///
/// ```
/// use mizan_core::upload::sanitize_file_name;
///
/// assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
/// assert_eq!(sanitize_file_name("C:\\Users\\ann\\cv.pdf"), "cv.pdf");
/// assert_eq!(sanitize_file_name("a\r\nb\0.txt"), "ab.txt");
/// assert_eq!(sanitize_file_name(".."), "upload");
/// ```
pub fn sanitize_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    let trimmed = clean.trim();
    if trimmed.is_empty() || trimmed == "." || trimmed == ".." {
        PLACEHOLDER_FILE_NAME.to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The limits of a multipart call. Each is counted while the body is read.
///
/// ```
/// use mizan_core::UploadLimits;
///
/// // Videos: larger files, fewer of them.
/// let video = UploadLimits { max_body_bytes: 200 << 20, max_file_bytes: 200 << 20, max_files: 1, ..UploadLimits::default() };
/// # let _ = video;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// The whole multipart body, in bytes (`"body"`). Default 10 MiB.
    pub max_body_bytes: usize,
    /// Each file part, in bytes (`"file"`). Default 10 MiB.
    pub max_file_bytes: usize,
    /// Each part without a file name, `__mizan` included, in bytes (`"text"`). Default 1 MiB.
    pub max_text_bytes: usize,
    /// File parts per request (`"files"`). Default 100.
    pub max_files: usize,
    /// Parts per request, `__mizan` included (`"parts"`). Default 1000.
    pub max_parts: usize,
    /// A file name as sent, in bytes; a longer one is a 400. Default 255.
    pub max_file_name_bytes: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1024 * 1024,
            max_file_bytes: 10 * 1024 * 1024,
            max_text_bytes: 1024 * 1024,
            max_files: 100,
            max_parts: 1000,
            max_file_name_bytes: 255,
        }
    }
}

/// Which limit a multipart body exceeded (`details.limit` of the 413).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Body,
    File,
    Files,
    Parts,
    Text,
}

impl Limit {
    fn error(self, value: usize) -> ApiError {
        let (name, what) = match self {
            Self::Body => ("body", format!("multipart body larger than {value} bytes")),
            Self::File => ("file", format!("a file larger than {value} bytes")),
            Self::Files => ("files", format!("more than {value} files")),
            Self::Parts => ("parts", format!("more than {value} parts")),
            Self::Text => ("text", format!("a text part larger than {value} bytes")),
        };
        ApiError::from_code(ErrorCode::PayloadTooLarge, what)
            .with_details(serde_json::json!({ "limit": name, "max": value }))
    }
}

fn bad_part(part: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message.into()).with_details(serde_json::json!({ "part": part }))
}

/// The stream error that stops a body at its limit; recognized when multer hands it back.
#[derive(Debug)]
struct BodyLimitReached;

impl fmt::Display for BodyLimitReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("body limit reached")
    }
}

impl std::error::Error for BodyLimitReached {}

/// Whether the head announces a multipart body.
pub(crate) fn is_multipart(headers: &http::HeaderMap) -> bool {
    has_media_type(headers, "multipart/form-data")
}

/// The body, shared between the multipart parser and [`MultipartReader::drain`].
#[derive(Clone)]
struct SharedBody(Arc<Mutex<BodyStream>>);

impl Stream for SharedBody {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Never contended: the parser and the drain take turns.
        let mut body = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        body.as_mut().poll_next(cx)
    }
}

/// A multipart call being read: the envelope first, the files once the call is allowed.
pub(crate) struct MultipartReader {
    multipart: multer::Multipart<'static>,
    body: SharedBody,
    body_limit: Arc<AtomicUsize>,
    limits: UploadLimits,
    parts: usize,
}

impl MultipartReader {
    /// Starts reading `body`; the boundary comes from the head's content type.
    pub(crate) fn new(
        headers: &http::HeaderMap,
        body: BodyStream,
        limits: UploadLimits,
    ) -> Result<Self, ApiError> {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let boundary = multer::parse_boundary(content_type).map_err(|_| {
            ApiError::bad_request("multipart/form-data without a valid boundary")
                .with_details(serde_json::json!({ "part": null }))
        })?;
        let body_limit = Arc::new(AtomicUsize::new(limits.max_body_bytes));
        let body = SharedBody(Arc::new(Mutex::new(body)));
        let counted = {
            let limit = Arc::clone(&body_limit);
            let mut seen = 0usize;
            body.clone().map(move |chunk| {
                let chunk = chunk?;
                seen = seen.saturating_add(chunk.len());
                if seen > limit.load(Ordering::Relaxed) {
                    return Err(Box::new(BodyLimitReached) as BoxError);
                }
                Ok(chunk)
            })
        };
        Ok(Self {
            multipart: multer::Multipart::new(counted, boundary),
            body,
            body_limit,
            limits,
            parts: 0,
        })
    }

    /// Reads the `__mizan` part, which must come first, and returns its bytes.
    pub(crate) async fn envelope(&mut self) -> Result<Bytes, ApiError> {
        let missing = || bad_part(ENVELOPE_PART, "the first part must be named \"__mizan\"");
        let mut field = self
            .multipart
            .next_field()
            .await
            .map_err(|e| self.error(e))?
            .ok_or_else(missing)?;
        self.parts += 1;
        if field.name() != Some(ENVELOPE_PART) {
            return Err(missing());
        }
        let max = self.limits.max_text_bytes;
        let mut out = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| self.error(e))? {
            if out.len() + chunk.len() > max {
                return Err(Limit::Text.error(max));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// Reads the remaining parts under the limits of the function that was called (`takes`:
    /// whether it has upload arguments at all).
    pub(crate) async fn files(
        &mut self,
        limits: UploadLimits,
        takes_uploads: bool,
    ) -> Result<UploadTable, ApiError> {
        self.limits = limits;
        self.body_limit
            .store(limits.max_body_bytes, Ordering::Relaxed);
        let mut table = BTreeMap::new();
        let mut files = 0usize;
        while let Some(mut field) = self
            .multipart
            .next_field()
            .await
            .map_err(|e| self.error(e))?
        {
            self.parts += 1;
            if self.parts > limits.max_parts {
                return Err(Limit::Parts.error(limits.max_parts));
            }
            let Some(name) = field.name().map(str::to_owned) else {
                return Err(bad_part("", "a part without a name"));
            };
            if !takes_uploads {
                return Err(bad_part(&name, "this function takes no uploads"));
            }
            if name == ENVELOPE_PART || table.contains_key(&name) {
                return Err(bad_part(&name, format!("two parts named {name:?}")));
            }
            let raw_file_name = field.file_name().map(str::to_owned);
            let max = match &raw_file_name {
                Some(raw) => {
                    files += 1;
                    if files > limits.max_files {
                        return Err(Limit::Files.error(limits.max_files));
                    }
                    if raw.len() > limits.max_file_name_bytes {
                        return Err(bad_part(
                            &name,
                            format!("file name longer than {} bytes", limits.max_file_name_bytes),
                        ));
                    }
                    limits.max_file_bytes
                }
                None => limits.max_text_bytes,
            };
            let content_type = field.content_type().map(ToString::to_string);
            let mut bytes = BytesMut::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| self.error(e))? {
                if bytes.len() + chunk.len() > max {
                    let limit = if raw_file_name.is_some() {
                        Limit::File
                    } else {
                        Limit::Text
                    };
                    return Err(limit.error(max));
                }
                bytes.extend_from_slice(&chunk);
            }
            let upload = Upload {
                file_name: sanitize_file_name(raw_file_name.as_deref().unwrap_or_default()),
                part: name.clone(),
                raw_file_name,
                content_type,
                bytes: bytes.freeze(),
            };
            table.insert(name, upload);
        }
        Ok(UploadTable { parts: table })
    }

    /// Reads and discards what is left of a refused body, up to the body limit, so that the
    /// client, which is usually still sending, reads the error instead of a reset connection.
    /// Nothing is kept; a client that sends more than that, or stalls, is left to the server's
    /// connection handling.
    pub(crate) async fn drain(self) {
        let budget = self.body_limit.load(Ordering::Relaxed);
        let mut body = self.body.clone();
        drop(self);
        let mut drained = 0usize;
        while let Some(Ok(chunk)) = body.next().await {
            drained = drained.saturating_add(chunk.len());
            if drained > budget {
                break;
            }
        }
    }

    fn error(&self, err: multer::Error) -> ApiError {
        match err {
            multer::Error::StreamReadFailed(source) if source.is::<BodyLimitReached>() => {
                Limit::Body.error(self.body_limit.load(Ordering::Relaxed))
            }
            multer::Error::StreamReadFailed(source) => {
                ApiError::bad_request("could not read the request body").with_source(source)
            }
            multer::Error::IncompleteStream
            | multer::Error::IncompleteFieldData { .. }
            | multer::Error::IncompleteHeaders => bad_part("", "the multipart body is truncated"),
            other => bad_part("", format!("malformed multipart body: {other}")),
        }
    }
}

/// The parts of a multipart call, by name, that upload arguments refer to.
#[derive(Debug, Default)]
pub(crate) struct UploadTable {
    parts: BTreeMap<String, Upload>,
}

impl UploadTable {
    /// Runs `f` with the table visible to [`Upload`]'s `Deserialize`, and returns what it
    /// gave together with the names of the parts it referred to.
    pub(crate) fn scope<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> (R, BTreeSet<String>) {
        let previous = CURRENT.with(|current| {
            current.replace(Some(Scope {
                table: Arc::clone(self),
                seen: BTreeSet::new(),
            }))
        });
        let result = f();
        let seen = CURRENT.with(|current| current.replace(previous));
        (result, seen.map(|scope| scope.seen).unwrap_or_default())
    }

    /// The part names no argument referred to.
    pub(crate) fn unreferenced<'a>(
        &'a self,
        seen: &'a BTreeSet<String>,
    ) -> impl Iterator<Item = &'a str> {
        self.parts
            .keys()
            .filter(|name| !seen.contains(*name))
            .map(String::as_str)
    }
}

struct Scope {
    table: Arc<UploadTable>,
    seen: BTreeSet<String>,
}

thread_local! {
    /// The parts that `Upload`'s `Deserialize` resolves references against. Deserialization
    /// is synchronous, so a scope set around it never leaks across an `.await`.
    static CURRENT: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// The wire form of an upload argument: a reference to a part.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reference {
    #[serde(rename = "$upload")]
    part: String,
}

impl<'de> Deserialize<'de> for Upload {
    /// Resolves `{"$upload": "<part>"}` against the parts of the multipart call being handled.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let reference = Reference::deserialize(deserializer)?;
        CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            let found = current.as_mut().and_then(|scope| {
                let upload = scope.table.parts.get(&reference.part).cloned()?;
                scope.seen.insert(reference.part.clone());
                Some(upload)
            });
            found.ok_or_else(|| {
                D::Error::custom(format!(
                    "\"$upload\" names part {:?}, which the request does not carry",
                    reference.part
                ))
            })
        })
    }
}

impl Serialize for Upload {
    /// An upload serializes as its reference, `{"$upload": "<part>"}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Reference {
            part: self.part.clone(),
        }
        .serialize(serializer)
    }
}

impl JsonSchema for Upload {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Upload".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "A file, sent as a multipart part; the argument holds a reference to it.",
            "properties": { "$upload": { "type": "string" } },
            "required": ["$upload"],
            SCHEMA_MARKER: true,
        })
    }
}

/// Whether a described type contains an upload anywhere (itself, an option, a list, a field).
pub(crate) fn schema_has_upload(schema: &Value) -> bool {
    match schema {
        Value::Object(object) => {
            object.contains_key(SCHEMA_MARKER) || object.values().any(schema_has_upload)
        }
        Value::Array(items) => items.iter().any(schema_has_upload),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::block_on;
    use futures_util::stream;

    fn body(chunks: Vec<&'static [u8]>) -> BodyStream {
        Box::pin(stream::iter(
            chunks.into_iter().map(|c| Ok(Bytes::from_static(c))),
        ))
    }

    fn headers(content_type: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            content_type.parse().expect("a header value"),
        );
        headers
    }

    const FORM: &str = "multipart/form-data; boundary=X";

    fn read(
        chunks: Vec<&'static [u8]>,
        limits: UploadLimits,
    ) -> Result<(Bytes, UploadTable), ApiError> {
        block_on(async {
            let mut reader = MultipartReader::new(&headers(FORM), body(chunks), limits)?;
            let envelope = reader.envelope().await?;
            let files = reader.files(limits, true).await?;
            Ok((envelope, files))
        })
    }

    #[test]
    fn reads_the_envelope_then_the_files() {
        let (envelope, table) = read(
            vec![
                b"--X\r\nContent-Disposition: form-data; name=\"__mizan\"\r\n\r\n{\"fn\":\"f\"}\r\n",
                b"--X\r\nContent-Disposition: form-data; name=\"a\"; filename=\"../x.png\"\r\n",
                b"Content-Type: image/png\r\n\r\nPNG",
                b"DATA\r\n--X--\r\n",
            ],
            UploadLimits::default(),
        )
        .unwrap();
        assert_eq!(envelope, r#"{"fn":"f"}"#);
        let a = &table.parts["a"];
        assert_eq!(a.file_name(), "x.png");
        assert_eq!(a.raw_file_name(), Some("../x.png"));
        assert_eq!(a.content_type(), Some("image/png"));
        assert_eq!(a.bytes(), "PNGDATA");
    }

    fn limit_of(err: ApiError) -> (u16, Value) {
        (
            err.status().as_u16(),
            err.details().cloned().unwrap_or(Value::Null),
        )
    }

    #[test]
    fn limits_are_counted_on_what_arrives() {
        let envelope = b"--X\r\nContent-Disposition: form-data; name=\"__mizan\"\r\n\r\n{}\r\n";
        let file = b"--X\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f\"\r\n\r\n0123456789\r\n--X--\r\n";
        let at = |limits: UploadLimits| read(vec![envelope, file], limits);
        let exactly = UploadLimits {
            max_file_bytes: 10,
            ..UploadLimits::default()
        };
        assert_eq!(at(exactly).unwrap().1.parts["a"].size(), 10);
        let over = |limits: UploadLimits| limit_of(at(limits).err().unwrap());
        let (status, details) = over(UploadLimits {
            max_file_bytes: 9,
            ..exactly
        });
        assert_eq!((status, &details["limit"]), (413, &Value::from("file")));
        let body = over(UploadLimits {
            max_body_bytes: 60,
            ..exactly
        });
        assert_eq!(body.1["limit"], "body");
        let files = over(UploadLimits {
            max_files: 0,
            ..exactly
        });
        assert_eq!(files.1["limit"], "files");
        let parts = over(UploadLimits {
            max_parts: 1,
            ..exactly
        });
        assert_eq!(parts.1["limit"], "parts");
        let text = UploadLimits {
            max_text_bytes: 1,
            ..UploadLimits::default()
        };
        let (_, details) = limit_of(at(text).err().unwrap());
        assert_eq!(details["limit"], "text");
    }

    #[test]
    fn malformed_bodies_name_the_problem() {
        let err = |chunks| read(chunks, UploadLimits::default()).err().unwrap();
        let truncated = err(vec![
            b"--X\r\nContent-Disposition: form-data; name=\"__mizan\"\r\n\r\n{}",
        ]);
        assert_eq!(truncated.status(), 400);
        assert!(truncated.message().contains("truncated"), "{truncated:?}");
        let not_first = err(vec![
            b"--X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--X--\r\n",
        ]);
        assert_eq!(not_first.details().unwrap()["part"], "__mizan");
        let duplicate = err(vec![
            b"--X\r\nContent-Disposition: form-data; name=\"__mizan\"\r\n\r\n{}\r\n",
            b"--X\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f\"\r\n\r\n1\r\n",
            b"--X\r\nContent-Disposition: form-data; name=\"a\"; filename=\"g\"\r\n\r\n2\r\n--X--\r\n",
        ]);
        assert_eq!(duplicate.details().unwrap()["part"], "a");
        let no_boundary = MultipartReader::new(
            &headers("multipart/form-data"),
            body(vec![]),
            UploadLimits::default(),
        );
        assert_eq!(no_boundary.err().unwrap().status(), 400);
    }

    #[test]
    fn references_resolve_only_inside_a_scope() {
        let table = Arc::new(UploadTable {
            parts: BTreeMap::from([("a".to_owned(), Upload::new("a.txt", None, "hi"))]),
        });
        let reference = serde_json::json!({"$upload": "a"});
        assert!(serde_json::from_value::<Upload>(reference.clone()).is_err());
        let (found, seen) = table.scope(|| {
            serde_json::from_value::<Vec<Upload>>(serde_json::json!([reference, {"$upload": "b"}]))
        });
        assert!(found.unwrap_err().to_string().contains("\"b\""));
        assert!(seen.contains("a"));
        let (found, seen) = table.scope(|| serde_json::from_value::<Upload>(reference.clone()));
        assert_eq!(found.unwrap().bytes(), "hi");
        assert_eq!(table.unreferenced(&seen).count(), 0);
    }

    #[test]
    fn schemas_mark_uploads_wherever_they_are() {
        let mut generator = SchemaGenerator::default();
        for schema in [
            generator.subschema_for::<Upload>(),
            generator.subschema_for::<Option<Upload>>(),
            generator.subschema_for::<Vec<Upload>>(),
        ] {
            assert!(schema_has_upload(schema.as_value()));
        }
        assert!(!schema_has_upload(
            generator.subschema_for::<Vec<String>>().as_value()
        ));
    }
}
