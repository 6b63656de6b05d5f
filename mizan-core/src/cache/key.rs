//! Cache key derivation: a contract across languages (any implementation derives the same key
//! from the same context, params, revision and user).

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::escape::short_escape;

/// Derives the origin cache key of a context bundle:
/// `ctx:{context}:{hex(HMAC-SHA256(secret, message))}`.
///
/// The message is the compact JSON of `{"c": context, "p": params, "r": rev}` plus
/// `"u": user_id` when given, with sorted keys, `","`/`":"` separators and non-ASCII escaped as
/// `\uXXXX` — byte for byte what Python's
/// `json.dumps(obj, sort_keys=True, separators=(",", ":"))` produces, so keys agree across
/// implementations. Param values are already in their string form ([`param_string`]).
///
/// ```
/// let key = mizan_core::derive_cache_key(b"secret", "user", [("user_id", "5")], None, 0);
/// assert!(key.starts_with("ctx:user:"));
/// assert_eq!(key.len(), "ctx:user:".len() + 64);
/// ```
pub fn derive_cache_key<I, K, V>(
    secret: &[u8],
    context: &str,
    params: I,
    user_id: Option<&str>,
    rev: u64,
) -> String
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    CacheKeyer::new(secret).key(context, params, user_id, rev)
}

/// [`derive_cache_key`] with the HMAC key schedule computed once: each key clones the keyed
/// state instead of keying anew, which is what an app does for every cached fetch.
///
/// ```
/// use mizan_core::cache::CacheKeyer;
///
/// let keyer = CacheKeyer::new(b"secret");
/// assert_eq!(
///     keyer.key("user", [("user_id", "5")], None, 0),
///     mizan_core::derive_cache_key(b"secret", "user", [("user_id", "5")], None, 0),
/// );
/// assert_eq!(format!("{keyer:?}"), "CacheKeyer(<keyed>)");
/// ```
#[derive(Clone)]
pub struct CacheKeyer {
    mac: Hmac<Sha256>,
}

impl CacheKeyer {
    /// A keyer for `secret`.
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        Self {
            mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length"),
        }
    }

    /// The key of a context bundle, as [`derive_cache_key`] derives it.
    pub fn key<I, K, V>(&self, context: &str, params: I, user_id: Option<&str>, rev: u64) -> String
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        // Sorted by name, the last value of a repeated name winning (as a map would keep it).
        let mut pairs: Vec<(K, V)> = params.into_iter().collect();
        pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut sorted: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
        for (name, value) in &pairs {
            match sorted.last_mut() {
                Some(last) if last.0 == name.as_ref() => last.1 = value.as_ref(),
                _ => sorted.push((name.as_ref(), value.as_ref())),
            }
        }
        self.key_of_sorted(context, sorted.into_iter(), user_id, rev)
    }

    /// [`key`](Self::key) of params already sorted by name and distinct (a map's): nothing
    /// collected or sorted again.
    pub(crate) fn key_of_sorted<'a>(
        &self,
        context: &str,
        params: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
        user_id: Option<&str>,
        rev: u64,
    ) -> String {
        let message = write_message(context, params, user_id, rev);
        self.signed_key("ctx", context, message.as_bytes())
    }

    /// `{kind}:{context}:{hex(HMAC-SHA256(message))}`: a bundle's key (`ctx`) or a scoped
    /// epoch's (`gen`).
    pub(crate) fn signed_key(&self, kind: &str, context: &str, message: &[u8]) -> String {
        let mut out = String::with_capacity(kind.len() + context.len() + 2 + 64);
        out.push_str(kind);
        out.push(':');
        out.push_str(context);
        out.push(':');
        self.push_hex(&mut out, message);
        out
    }

    /// Appends the lower-case hex of HMAC-SHA256 of `message` to `out`.
    fn push_hex(&self, out: &mut String, message: &[u8]) {
        let mut mac = self.mac.clone();
        mac.update(message);
        let digest = mac.finalize().into_bytes();
        let mut hex = [0u8; 64];
        hex::encode_to_slice(digest, &mut hex).expect("32 bytes are 64 hex digits");
        out.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
    }
}

impl std::fmt::Debug for CacheKeyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKeyer(<keyed>)")
    }
}

/// The canonical JSON message that [`derive_cache_key`] signs, of sorted, distinct `params`.
pub(crate) fn write_message<'a>(
    context: &str,
    params: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    user_id: Option<&str>,
    rev: u64,
) -> String {
    let mut out = String::with_capacity(32 + params.len() * 16);
    out.push_str("{\"c\":");
    write_json_string(&mut out, context);
    out.push_str(",\"p\":{");
    for (i, (name, value)) in params.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(&mut out, name);
        out.push(':');
        write_json_string(&mut out, value);
    }
    out.push_str("},\"r\":");
    out.push_str(itoa::Buffer::new().format(rev));
    if let Some(user_id) = user_id {
        out.push_str(",\"u\":");
        write_json_string(&mut out, user_id);
    }
    out.push('}');
    out
}

/// Writes `s` as a JSON string the way Python's `json.dumps` does with `ensure_ascii=True`:
/// everything outside printable ASCII becomes `\uXXXX` (lower-case hex, surrogate pairs above
/// U+FFFF), with the short escapes for `"`, `\`, and the five named controls.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    // The usual name or value is printable ASCII with nothing to escape: copied whole.
    if s.bytes()
        .all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\')
    {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        if let Some(escape) = short_escape(c) {
            out.push_str(escape);
            continue;
        }
        match c {
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// The string form of a parameter value for cache keys and the invalidation header: strings as
/// they are, integers in decimal, booleans `true`/`false`, floats in Python's shortest
/// round-trip form (`1.0`, `1e+16`, `1e-05`), other values as compact JSON; `None` for `null`
/// (the parameter is omitted).
pub fn param_string(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => python_float_repr(f),
            _ => n.to_string(),
        }),
        other => Some(other.to_string()),
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, fixed notation for exponents in
/// `-4..16`, otherwise `d.ddde+XX`. When two shortest digit strings are equally close to the
/// value, Python takes the one ending in an even digit (`1497088442659746.25` gives
/// `1497088442659746.2`); `ryu` breaks ties the same way, std's `{:e}` rounds them up.
fn python_float_repr(f: f64) -> String {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(f);
    let (sign, text) = text.strip_prefix('-').map_or(("", text), |t| ("-", t));
    // `ryu` writes `123.45`, `0.0001`, `1e16` or `2.5e-7`: read the significant digits and the
    // decimal exponent of the first one.
    let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int}{frac}");
    let digits = all.trim_matches('0');
    if digits.is_empty() {
        return format!("{sign}0.0");
    }
    let leading_zeros = all.len() - all.trim_start_matches('0').len();
    let exp = exp.parse::<i32>().unwrap_or(0) + int.len() as i32 - 1 - leading_zeros as i32;
    let mantissa = match digits.split_at(1) {
        (first, "") => first.to_owned(),
        (first, rest) => format!("{first}.{rest}"),
    };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_keyer_sorts_and_lets_the_last_repeated_name_win() {
        let keyer = CacheKeyer::new(b"secret");
        let from_map = derive_cache_key(
            b"secret",
            "c",
            BTreeMap::from([("a", "2"), ("b", "1")]),
            None,
            3,
        );
        assert_eq!(
            keyer.key("c", [("b", "1"), ("a", "1"), ("a", "2")], None, 3),
            from_map
        );
        assert_ne!(keyer.key("c", [("a", "1"), ("b", "1")], None, 3), from_map);
    }

    // Vectors computed with CPython 3.11:
    //   msg = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    //   "ctx:%s:%s" % (c, hmac.new(secret, msg.encode(), hashlib.sha256).hexdigest())
    const SECRET: &[u8] = b"test-cache-secret-0123456789";

    fn key_message(
        context: &str,
        params: &BTreeMap<String, String>,
        user_id: Option<&str>,
        rev: u64,
    ) -> String {
        let pairs = params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        write_message(context, pairs, user_id, rev)
    }

    #[test]
    fn message_matches_python_json_dumps() {
        let params: BTreeMap<_, _> = [("user_id".to_owned(), "5".to_owned())].into();
        assert_eq!(
            key_message("user", &params, None, 0),
            r#"{"c":"user","p":{"user_id":"5"},"r":0}"#
        );
        let params: BTreeMap<_, _> = [
            ("name".to_owned(), "Zoë ☃ 😀".to_owned()),
            ("a".to_owned(), "q\"\\\n\u{7f}".to_owned()),
        ]
        .into();
        assert_eq!(
            key_message("notes", &params, Some("42"), 3),
            r#"{"c":"notes","p":{"a":"q\"\\\n\u007f","name":"Zo\u00eb \u2603 \ud83d\ude00"},"r":3,"u":"42"}"#
        );
    }

    struct Vector {
        context: &'static str,
        params: &'static [(&'static str, &'static str)],
        user: Option<&'static str>,
        rev: u64,
        key: &'static str,
    }

    #[test]
    fn keys_match_python_vectors() {
        let vectors = [
            Vector {
                context: "user",
                params: &[("user_id", "5")],
                user: None,
                rev: 0,
                key: PY_USER_5,
            },
            Vector {
                context: "catalog",
                params: &[],
                user: None,
                rev: 2,
                key: PY_CATALOG,
            },
            Vector {
                context: "global",
                params: &[],
                user: Some("1"),
                rev: 0,
                key: PY_GLOBAL_U1,
            },
            Vector {
                context: "notes",
                params: &[("folder", "été/😀"), ("a", "x y")],
                user: Some("2"),
                rev: 1,
                key: PY_NOTES_UNICODE,
            },
        ];
        for v in vectors {
            let key = derive_cache_key(SECRET, v.context, v.params.iter().copied(), v.user, v.rev);
            assert_eq!(key, v.key, "{}", v.context);
        }
    }

    #[test]
    fn param_strings_follow_python_str() {
        let s = |v: Value| param_string(&v);
        assert_eq!(s(Value::Null), None);
        assert_eq!(s(Value::from("x")), Some("x".into()));
        assert_eq!(s(Value::from(5)), Some("5".into()));
        assert_eq!(s(Value::from(-5)), Some("-5".into()));
        assert_eq!(
            s(Value::from(u64::MAX)),
            Some("18446744073709551615".into())
        );
        assert_eq!(s(Value::from(true)), Some("true".into()));
        for (f, py) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-0.25, "-0.25"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (1e22, "1e+22"),
            (5e-324, "5e-324"),
            // Exact ties between two shortest digit strings (the spacing here is 0.25).
            (1497088442659746.0 + 0.25, "1497088442659746.2"),
            (1497088442659746.0 + 0.75, "1497088442659746.8"),
        ] {
            assert_eq!(s(Value::from(f)), Some(py.to_owned()), "{f}");
        }
    }

    const PY_USER_5: &str =
        "ctx:user:04e4c76578dd8f689982fac68f73c10f7f25b49e9079067dc94cec5a32287eeb";
    const PY_CATALOG: &str =
        "ctx:catalog:ab8d087a06524e10177110838b5fe727cb25fe3058e3474debf824683eac988d";
    const PY_GLOBAL_U1: &str =
        "ctx:global:4cd82c849b4d34ea63fb9aae9a03ddfd8aa44b9bf64898c58a91883b4ec560c2";
    const PY_NOTES_UNICODE: &str =
        "ctx:notes:1a25b4e3334d10a51915759034e03aac58ad044809a66f4a642986d34433c44c";
}
