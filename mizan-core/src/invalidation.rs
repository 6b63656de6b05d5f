//! Invalidation targets: what a mutation tells the client to refetch.
//!
//! A mutation's `affects` list becomes targets when it succeeds. Each affected context is
//! scoped by argument-name matching: the context's parameters that the mutation also takes
//! become the target's params (with the mutation's values); without a match the target is broad.
//! A function name in `affects` gives a function-level target in that function's context.
//!
//! Targets travel in the JSON body (`"invalidate": [...]`) and, for HTTP, in the
//! `X-Mizan-Invalidate` header: `user;user_id=5, notifications` ([`header_value`] encodes it,
//! [`parse_header`] decodes it).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::cache::param_string;

/// The name of the invalidation header.
pub const INVALIDATE_HEADER: &str = "x-mizan-invalidate";

/// Everything but RFC 3986 unreserved characters is percent-encoded in the header.
const HEADER_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One invalidation target.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Target {
    /// A whole context (`params: None`, sent as `"user"`) or the instances matching `params`.
    Context {
        /// The context.
        context: String,
        /// The scoping params, with their JSON types.
        params: Option<Map<String, Value>>,
    },
    /// One function of a context, optionally scoped.
    Function {
        /// The function's context.
        context: String,
        /// The function.
        function: String,
        /// The scoping params, with their JSON types.
        params: Option<Map<String, Value>>,
    },
}

impl Target {
    /// The context the target is in.
    pub fn context(&self) -> &str {
        match self {
            Self::Context { context, .. } | Self::Function { context, .. } => context,
        }
    }

    /// The scoping params, if scoped.
    pub fn params(&self) -> Option<&Map<String, Value>> {
        match self {
            Self::Context { params, .. } | Self::Function { params, .. } => params.as_ref(),
        }
    }

    /// Whether the target is a whole context.
    pub fn is_broad(&self) -> bool {
        matches!(self, Self::Context { params: None, .. })
    }

    /// The header form: the context, then `;name=value` for each param.
    fn header_entry(&self) -> String {
        let mut entry = utf8_percent_encode(self.context(), HEADER_ENCODE).to_string();
        for (name, value) in self.params().into_iter().flatten() {
            if let Some(value) = param_string(value) {
                entry.push(';');
                entry.extend(utf8_percent_encode(name, HEADER_ENCODE));
                entry.push('=');
                entry.extend(utf8_percent_encode(&value, HEADER_ENCODE));
            }
        }
        entry
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Context {
                context,
                params: None,
            } => serializer.serialize_str(context),
            Self::Context {
                context,
                params: Some(params),
            } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("context", context)?;
                map.serialize_entry("params", params)?;
                map.end()
            }
            Self::Function {
                context,
                function,
                params,
            } => {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("context", context)?;
                map.serialize_entry("function", function)?;
                if let Some(params) = params {
                    map.serialize_entry("params", params)?;
                }
                map.end()
            }
        }
    }
}

/// A target as planned when the app is built: which context (or function) and which params
/// scope it; the values come from each call's arguments.
#[derive(Debug, Clone)]
pub(crate) struct PlannedTarget {
    pub(crate) context: String,
    pub(crate) function: Option<String>,
    pub(crate) scope: Vec<String>,
}

impl PlannedTarget {
    /// The target for one call: scoped by the arguments' values (nulls dropped).
    pub(crate) fn resolve(&self, args: &Map<String, Value>) -> Target {
        let params: Map<String, Value> = self
            .scope
            .iter()
            .filter_map(|name| match args.get(name) {
                None | Some(Value::Null) => None,
                Some(value) => Some((name.clone(), value.clone())),
            })
            .collect();
        let params = (!params.is_empty()).then_some(params);
        match &self.function {
            None => Target::Context {
                context: self.context.clone(),
                params,
            },
            Some(function) => Target::Function {
                context: self.context.clone(),
                function: function.clone(),
                params,
            },
        }
    }
}

/// Merges targets: duplicates go, and a broad target absorbs every other target of its context.
/// Order is kept (first occurrence).
pub fn merge(targets: Vec<Target>) -> Vec<Target> {
    let broad: Vec<String> = targets
        .iter()
        .filter(|t| t.is_broad())
        .map(|t| t.context().to_owned())
        .collect();
    let mut merged: Vec<Target> = Vec::with_capacity(targets.len());
    for target in targets {
        let absorbed = !target.is_broad() && broad.iter().any(|c| c == target.context());
        if !absorbed && !merged.contains(&target) {
            merged.push(target);
        }
    }
    merged
}

/// The `X-Mizan-Invalidate` value for `targets` (function-level targets appear as their
/// context; equal entries once), or `None` when there is nothing to invalidate.
///
/// ```
/// use mizan_core::invalidation::{header_value, Target};
/// use serde_json::json;
///
/// let targets = [
///     Target::Context { context: "user".into(), params: json!({"user_id": 5}).as_object().cloned() },
///     Target::Context { context: "notes".into(), params: json!({"folder": "a b;c"}).as_object().cloned() },
/// ];
/// assert_eq!(header_value(&targets).unwrap(), "user;user_id=5, notes;folder=a%20b%3Bc");
/// ```
pub fn header_value(targets: &[Target]) -> Option<String> {
    let mut entries: Vec<String> = Vec::with_capacity(targets.len());
    for target in targets {
        let entry = target.header_entry();
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    (!entries.is_empty()).then(|| entries.join(", "))
}

/// One entry of an `X-Mizan-Invalidate` header, decoded: a context and its scoping params (in
/// header order, values in their string form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEntry {
    /// The context to refetch.
    pub context: String,
    /// `(name, value)` pairs that scope it; empty for the whole context.
    pub params: Vec<(String, String)>,
}

/// Decodes an `X-Mizan-Invalidate` value, the inverse of [`header_value`], for clients and edge
/// workers written in Rust.
///
/// The rules: entries are separated by `,`, with optional spaces or tabs around them (empty
/// entries are skipped, as in any HTTP list); within an entry, the first `;`-separated part is
/// the context and each following part is a `name=value` pair split at its first `=`. Every
/// context, name and value is then percent-decoded as UTF-8 (`+` stays a plus sign). An empty
/// context, a pair without `=`, a `%` not followed by two hex digits, or bytes that do not
/// decode to UTF-8 make the whole value invalid.
///
/// ```
/// use mizan_core::invalidation::{parse_header, HeaderEntry};
///
/// let entries = parse_header("user;user_id=5, notes;folder=a%20b%3Bc").unwrap();
/// assert_eq!(entries, [
///     HeaderEntry { context: "user".into(), params: vec![("user_id".into(), "5".into())] },
///     HeaderEntry { context: "notes".into(), params: vec![("folder".into(), "a b;c".into())] },
/// ]);
/// assert!(parse_header("user;user_id").is_err());
/// ```
pub fn parse_header(value: &str) -> Result<Vec<HeaderEntry>, InvalidateHeaderError> {
    let mut entries = Vec::new();
    for entry in value.split(',').map(|e| e.trim_matches([' ', '\t'])) {
        if entry.is_empty() {
            continue;
        }
        let mut parts = entry.split(';');
        let context = header_decode(parts.next().unwrap_or_default())?;
        if context.is_empty() {
            return Err(InvalidateHeaderError::EmptyContext);
        }
        let params = parts
            .map(|pair| {
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| InvalidateHeaderError::MissingValue(pair.to_owned()))?;
                Ok((header_decode(name)?, header_decode(value)?))
            })
            .collect::<Result<_, InvalidateHeaderError>>()?;
        entries.push(HeaderEntry { context, params });
    }
    Ok(entries)
}

/// Strict percent-decoding: every `%` starts a two-hex-digit escape, and the result is UTF-8.
fn header_decode(part: &str) -> Result<String, InvalidateHeaderError> {
    let bytes = part.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err(InvalidateHeaderError::BadEscape(part.to_owned()));
    }
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| InvalidateHeaderError::NotUtf8(part.to_owned()))
}

/// Why an `X-Mizan-Invalidate` value could not be decoded by [`parse_header`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidateHeaderError {
    /// An entry has params but no context (`;user_id=5`).
    #[error("an invalidation header entry has no context")]
    EmptyContext,
    /// A param has no `=` (`user;user_id`).
    #[error("invalidation header param {0:?} has no '='")]
    MissingValue(String),
    /// A `%` is not followed by two hex digits.
    #[error("invalidation header part {0:?} has a malformed percent escape")]
    BadEscape(String),
    /// A part does not percent-decode to UTF-8.
    #[error("invalidation header part {0:?} does not decode to UTF-8")]
    NotUtf8(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scoped(context: &str, params: Value) -> Target {
        Target::Context {
            context: context.into(),
            params: params.as_object().cloned(),
        }
    }

    fn broad(context: &str) -> Target {
        Target::Context {
            context: context.into(),
            params: None,
        }
    }

    #[test]
    fn body_forms() {
        let function = Target::Function {
            context: "user".into(),
            function: "user_profile".into(),
            params: json!({"user_id": 5}).as_object().cloned(),
        };
        assert_eq!(
            serde_json::to_value([
                broad("user"),
                scoped("user", json!({"user_id": 5})),
                function
            ])
            .unwrap(),
            json!(["user", {"context": "user", "params": {"user_id": 5}},
                   {"context": "user", "function": "user_profile", "params": {"user_id": 5}}])
        );
    }

    #[test]
    fn merging_dedupes_and_lets_broad_absorb_its_context() {
        let merged = merge(vec![
            scoped("user", json!({"user_id": 5})),
            broad("notes"),
            scoped("notes", json!({"folder": "x"})),
            scoped("user", json!({"user_id": 5})),
            broad("notes"),
        ]);
        assert_eq!(
            merged,
            vec![scoped("user", json!({"user_id": 5})), broad("notes")]
        );
    }

    #[test]
    fn header_percent_encodes_names_and_values() {
        let targets = [
            scoped("user", json!({"user_id": 5, "tag": "a,b=c%d é"})),
            Target::Function {
                context: "user".into(),
                function: "f".into(),
                params: None,
            },
            broad("notifications"),
        ];
        assert_eq!(
            header_value(&targets).unwrap(),
            "user;tag=a%2Cb%3Dc%25d%20%C3%A9;user_id=5, user, notifications"
        );
        assert_eq!(header_value(&[]), None);
    }

    #[test]
    fn header_decoding_inverts_encoding_and_refuses_malformed_values() {
        let targets = [
            scoped("user", json!({"user_id": 5, "tag": "a,b=c%d é+"})),
            broad("notifications"),
        ];
        let entry = |context: &str, params: &[(&str, &str)]| HeaderEntry {
            context: context.into(),
            params: params.iter().map(|&(n, v)| (n.into(), v.into())).collect(),
        };
        assert_eq!(
            parse_header(&header_value(&targets).unwrap()).unwrap(),
            [
                entry("user", &[("tag", "a,b=c%d é+"), ("user_id", "5")]),
                entry("notifications", &[]),
            ]
        );
        assert_eq!(
            parse_header(" a ,, b;x=,\t").unwrap(),
            [entry("a", &[]), entry("b", &[("x", "")])]
        );
        assert_eq!(parse_header("").unwrap(), []);
        use InvalidateHeaderError as E;
        assert_eq!(parse_header(";x=1"), Err(E::EmptyContext));
        assert_eq!(parse_header("a;x"), Err(E::MissingValue("x".into())));
        assert_eq!(parse_header("a;x=%2"), Err(E::BadEscape("%2".into())));
        assert_eq!(parse_header("a%zz"), Err(E::BadEscape("a%zz".into())));
        assert_eq!(parse_header("a;x=%FF"), Err(E::NotUtf8("%FF".into())));
    }

    #[test]
    fn resolution_scopes_by_present_non_null_args() {
        let planned = PlannedTarget {
            context: "user".into(),
            function: None,
            scope: vec!["user_id".into()],
        };
        let args = json!({"user_id": 5, "name": "x"});
        assert_eq!(
            planned.resolve(args.as_object().unwrap()),
            scoped("user", json!({"user_id": 5}))
        );
        let args = json!({"user_id": null});
        assert_eq!(planned.resolve(args.as_object().unwrap()), broad("user"));
    }
}
