//! garde's report as [`Issue`]s with stable codes.
//!
//! garde's errors carry a message only. Its `I18n` hook lets a caller write the message of each
//! built-in rule; this module installs one that writes a marker, the rule's code and its
//! parameters instead of English, and decodes them back into an [`Issue`] (whose message this
//! module writes, without the submitted value). A message without the marker comes from a
//! `custom` rule: its code is `invalid` and its message is kept as written.

use std::borrow::Cow;
use std::fmt::Display;

use garde::i18n::{I18n, InvalidCreditCard, InvalidEmail, InvalidPhoneNumber, InvalidUrl, IpKind};
use garde::Validate;
use serde_json::{Map, Value};

use super::issue::{param, Issue, PathSegment};

/// Starts a coded message; no English message starts with it.
const MARK: char = '\u{0}';

/// Runs garde's rules on `form` and returns what failed, as issues.
pub(crate) fn garde_issues<F: Validate<Context = ()>>(form: &F) -> Vec<Issue> {
    let Err(report) = garde::with_i18n(Coded, || form.validate()) else {
        return Vec::new();
    };
    report
        .into_inner()
        .into_iter()
        .map(|(path, error)| decode(error.message()).with_path(path_segments(&path)))
        .collect()
}

/// Whether a garde issue says again what a schema check already said at the same path.
pub(crate) fn same_rule(schema_code: &str, garde_code: &str) -> bool {
    schema_code == garde_code
        || matches!(
            (schema_code, garde_code),
            ("min_items", "min_length") | ("max_items", "max_length") | ("pattern", "contains")
        )
}

fn path_segments(path: &garde::Path) -> Vec<PathSegment> {
    // garde serializes a path as `[["key", "name"], ["index", "0"], ...]`.
    let Ok(Value::Array(components)) = serde_json::to_value(path) else {
        return Vec::new();
    };
    components
        .iter()
        .filter_map(|component| match component.as_array()?.as_slice() {
            [Value::String(kind), Value::String(name)] => match kind.as_str() {
                "index" => name.parse().ok().map(PathSegment::Index),
                "key" => Some(PathSegment::Key(name.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn decode(message: &str) -> Issue {
    let Some(rest) = message.strip_prefix(MARK) else {
        return Issue::new("invalid", message.to_owned());
    };
    let (code, params) = rest.split_once(MARK).unwrap_or((rest, "{}"));
    let params: Map<String, Value> = serde_json::from_str(params).unwrap_or_default();
    match STANDARD.iter().find(|known| **known == code) {
        Some(code) => Issue::standard(code, params),
        None => Issue::standard("invalid", params),
    }
}

/// The codes the coded messages use.
const STANDARD: &[&str] = &[
    "min_length",
    "max_length",
    "min_value",
    "max_value",
    "credit_card",
    "pattern",
    "contains",
    "url",
    "prefix",
    "suffix",
    "phone_number",
    "ip",
    "matches",
    "email",
    "ascii",
    "alphanumeric",
    "required",
];

fn coded(code: &str, params: Map<String, Value>) -> Cow<'static, str> {
    format!("{MARK}{code}{MARK}{}", Value::Object(params)).into()
}

/// A number when the bound prints as one, else its text.
fn bound(value: &dyn Display) -> Value {
    let text = value.to_string();
    serde_json::from_str::<serde_json::Number>(&text).map_or(Value::String(text), Value::Number)
}

fn text(value: &dyn Display) -> Value {
    Value::String(value.to_string())
}

struct Coded;

impl I18n for Coded {
    fn length_lower_than(&self, min: usize) -> Cow<'static, str> {
        coded("min_length", param("min", min))
    }
    fn length_greater_than(&self, max: usize) -> Cow<'static, str> {
        coded("max_length", param("max", max))
    }
    fn range_lower_than(&self, min: &dyn Display) -> Cow<'static, str> {
        coded("min_value", param("min", bound(min)))
    }
    fn range_greater_than(&self, max: &dyn Display) -> Cow<'static, str> {
        coded("max_value", param("max", bound(max)))
    }
    fn credit_card_invalid(&self, _: InvalidCreditCard) -> Cow<'static, str> {
        coded("credit_card", Map::new())
    }
    fn pattern_no_match(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded("pattern", param("pattern", text(pattern)))
    }
    fn contains_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded("contains", param("pattern", text(pattern)))
    }
    fn url_invalid(&self, _: InvalidUrl) -> Cow<'static, str> {
        coded("url", Map::new())
    }
    fn prefix_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded("prefix", param("pattern", text(pattern)))
    }
    fn suffix_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded("suffix", param("pattern", text(pattern)))
    }
    fn phone_number_invalid(&self, _: InvalidPhoneNumber) -> Cow<'static, str> {
        coded("phone_number", Map::new())
    }
    fn ip_invalid(&self, kind: IpKind) -> Cow<'static, str> {
        coded("ip", param("kind", kind.to_string()))
    }
    fn matches_field_mismatch(&self, field: &dyn Display) -> Cow<'static, str> {
        coded("matches", param("field", text(field)))
    }
    fn email_invalid(&self, _: InvalidEmail) -> Cow<'static, str> {
        coded("email", Map::new())
    }
    fn ascii_invalid(&self) -> Cow<'static, str> {
        coded("ascii", Map::new())
    }
    fn alphanumeric_invalid(&self) -> Cow<'static, str> {
        coded("alphanumeric", Map::new())
    }
    fn required_not_set(&self) -> Cow<'static, str> {
        coded("required", Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn must_be_even(value: &u32, _: &()) -> garde::Result {
        if value.is_multiple_of(2) {
            Ok(())
        } else {
            Err(garde::Error::new("must be even"))
        }
    }

    #[derive(garde::Validate)]
    struct Sample {
        #[garde(length(chars, min = 2, max = 3))]
        name: String,
        #[garde(range(min = 1, max = 99))]
        qty: u32,
        #[garde(custom(must_be_even))]
        pairs: u32,
        #[garde(contains("@"), ascii)]
        handle: String,
        #[garde(inner(length(min = 1)))]
        tags: Vec<String>,
    }

    #[test]
    fn built_in_rules_get_codes_and_params() {
        let sample = Sample {
            name: "ééé€".into(),
            qty: 100,
            pairs: 3,
            handle: "bob".into(),
            tags: vec!["a".into(), String::new()],
        };
        let issues = garde_issues(&sample);
        let find = |path: &str, code: &str| {
            issues
                .iter()
                .find(|i| i.dotted_path() == path && i.code() == code)
                .unwrap_or_else(|| panic!("no {code} at {path} in {issues:?}"))
        };
        assert_eq!(find("name", "max_length").params()["max"], 3);
        assert_eq!(find("qty", "max_value").params()["max"], 99);
        assert_eq!(find("qty", "max_value").message(), "must be at most 99");
        assert_eq!(find("pairs", "invalid").message(), "must be even");
        assert_eq!(find("handle", "contains").params()["pattern"], "@");
        assert_eq!(find("tags.1", "min_length").params()["min"], 1);
        assert_eq!(issues.len(), 5);
    }

    #[test]
    fn a_valid_value_has_no_issue() {
        let sample = Sample {
            name: "ééé".into(),
            qty: 99,
            pairs: 2,
            handle: "@bob".into(),
            tags: vec!["a".into()],
        };
        assert!(garde_issues(&sample).is_empty());
    }
}
