//! [`Issue`]: one problem with submitted form data, as the client receives it.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// One step of an issue's path: a field name or a list index.
///
/// Serialized as a JSON string or number, so a path reads `["forms", 2, "qty"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum PathSegment {
    /// A field of an object.
    Key(String),
    /// A position in a list, from 0.
    Index(usize),
}

impl From<&str> for PathSegment {
    fn from(key: &str) -> Self {
        Self::Key(key.to_owned())
    }
}

impl From<String> for PathSegment {
    fn from(key: String) -> Self {
        Self::Key(key)
    }
}

impl From<usize> for PathSegment {
    fn from(index: usize) -> Self {
        Self::Index(index)
    }
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(key) => f.write_str(key),
            Self::Index(index) => write!(f, "{index}"),
        }
    }
}

/// One problem with submitted form data: where (`path`), what (`code`, `params`) and a
/// human-readable `message`.
///
/// On the wire an issue is
/// `{"path": ["email"], "code": "email", "message": "enter a valid email address", "params": {}}`.
/// The path is empty for a problem with the form as a whole (what
/// [`Form::clean`](super::Form::clean) usually reports). Codes are stable identifiers a frontend
/// can switch on; `params` carries the numbers behind the message (`{"min": 1}` for
/// `min_length`), so a frontend can write its own text.
///
/// Messages written by this module never repeat the submitted value, so a password or a
/// `<script>` tag is never sent back. Messages from your own [`clean`](super::Form::clean) should
/// keep that promise too.
///
/// ```
/// use mizan_core::form::Issue;
///
/// let issue = Issue::new("taken", "this email is already registered")
///     .at("email")
///     .with_param("retry", false);
/// assert_eq!(
///     serde_json::to_value(&issue).unwrap(),
///     serde_json::json!({
///         "path": ["email"],
///         "code": "taken",
///         "message": "this email is already registered",
///         "params": {"retry": false},
///     })
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    path: Vec<PathSegment>,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    params: Map<String, Value>,
}

impl Issue {
    /// A form-level issue (empty path) with a code and a message; add a path with [`Issue::at`].
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            path: Vec::new(),
            code: code.into(),
            message: message.into(),
            params: Map::new(),
        }
    }

    /// Appends one segment to the path: `.at("forms").at(2).at("qty")`.
    pub fn at(mut self, segment: impl Into<PathSegment>) -> Self {
        self.path.push(segment.into());
        self
    }

    /// Adds a parameter (e.g. `min` for `min_length`).
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Puts `prefix` in front of the path, e.g. `["forms", 2]` for the third form of a formset.
    pub fn prefixed(mut self, prefix: &[PathSegment]) -> Self {
        if !prefix.is_empty() {
            self.path.splice(0..0, prefix.iter().cloned());
        }
        self
    }

    /// Where the problem is; empty for the form as a whole.
    pub fn path(&self) -> &[PathSegment] {
        &self.path
    }

    /// The stable code, e.g. `"required"`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The numbers and names behind the message.
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// The path in dotted form (`forms.2.qty`), empty for a form-level issue.
    pub fn dotted_path(&self) -> String {
        let mut dotted = String::new();
        for (i, segment) in self.path.iter().enumerate() {
            if i > 0 {
                dotted.push('.');
            }
            dotted.push_str(&segment.to_string());
        }
        dotted
    }

    /// An issue whose message this module writes from the code and the params.
    pub(crate) fn standard(code: &'static str, params: Map<String, Value>) -> Self {
        Self {
            path: Vec::new(),
            code: Cow::Borrowed(code),
            message: standard_message(code, &params),
            params,
        }
    }

    pub(crate) fn with_path(mut self, path: Vec<PathSegment>) -> Self {
        self.path = path;
        self
    }
}

/// The 400 `bad_request` error a submit with invalid data gets: the issues travel in
/// `details.issues`.
///
/// ```
/// use mizan_core::form::{issues_error, Issue};
///
/// let err = issues_error(vec![Issue::new("spam", "no spam, please")]);
/// assert_eq!(err.status(), 400);
/// assert_eq!(err.code(), "bad_request");
/// assert_eq!(err.details().unwrap()["issues"][0]["code"], "spam");
/// ```
pub fn issues_error(issues: Vec<Issue>) -> ApiError {
    let issues = serde_json::to_value(issues).unwrap_or(Value::Array(Vec::new()));
    ApiError::bad_request("the submitted data is not valid")
        .with_details(serde_json::json!({ "issues": issues }))
}

/// One parameter, for [`Issue::standard`].
pub(crate) fn param(name: &str, value: impl Into<Value>) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert(name.to_owned(), value.into());
    params
}

/// The message of a standard code. Built from the params only: the submitted value is never
/// part of it.
fn standard_message(code: &str, params: &Map<String, Value>) -> Cow<'static, str> {
    let number = |name: &str| {
        params
            .get(name)
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    let text = |name: &str| {
        params
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let plural = |name: &str, one: &'static str, many: &'static str| {
        if params.get(name).and_then(Value::as_u64) == Some(1) {
            one
        } else {
            many
        }
    };
    let exclusive = params.get("exclusive") == Some(&Value::Bool(true));
    let message: String = match code {
        "required" => return "this field is required".into(),
        "unknown_field" => return "unknown field".into(),
        "invalid" => return "this value is not valid".into(),
        "email" => return "enter a valid email address".into(),
        "url" => return "enter a valid URL".into(),
        "ip" => return "enter a valid IP address".into(),
        "ascii" => return "use ASCII characters only".into(),
        "alphanumeric" => return "use letters and digits only".into(),
        "credit_card" => return "enter a valid card number".into(),
        "phone_number" => return "enter a valid phone number".into(),
        "pattern" => return "this value does not have the expected format".into(),
        "invalid_choice" => return "select one of the available choices".into(),
        "duplicate_order" => return "another form already has this position".into(),
        "invalid_type" => match params.get("expected").and_then(Value::as_str) {
            Some("string") => return "expected text".into(),
            Some("integer") => return "expected a whole number".into(),
            Some("number") => return "expected a number".into(),
            Some("boolean") => return "expected true or false".into(),
            Some("array") => return "expected a list".into(),
            Some("object") => return "expected an object".into(),
            _ => return "this value has the wrong type".into(),
        },
        "min_length" => format!(
            "must have at least {} {}",
            number("min"),
            plural("min", "character", "characters")
        ),
        "max_length" => format!(
            "must have at most {} {}",
            number("max"),
            plural("max", "character", "characters")
        ),
        "min_items" => format!(
            "must have at least {} {}",
            number("min"),
            plural("min", "item", "items")
        ),
        "max_items" => format!(
            "must have at most {} {}",
            number("max"),
            plural("max", "item", "items")
        ),
        "min_value" if exclusive => format!("must be greater than {}", number("min")),
        "min_value" => format!("must be at least {}", number("min")),
        "max_value" if exclusive => format!("must be less than {}", number("max")),
        "max_value" => format!("must be at most {}", number("max")),
        "contains" => format!("must contain \"{}\"", text("pattern")),
        "prefix" => format!("must begin with \"{}\"", text("pattern")),
        "suffix" => format!("must end with \"{}\"", text("pattern")),
        "matches" => format!("must match the field {}", text("field")),
        "too_few_forms" => format!(
            "submit at least {} {}",
            number("min"),
            plural("min", "form", "forms")
        ),
        "too_many_forms" => format!(
            "submit at most {} {}",
            number("max"),
            plural("max", "form", "forms")
        ),
        _ => return "this value is not valid".into(),
    };
    message.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_to_the_wire_shape() {
        let issue = Issue::standard("min_length", param("min", 1))
            .at("forms")
            .at(2)
            .at("name");
        assert_eq!(
            serde_json::to_value(&issue).unwrap(),
            serde_json::json!({
                "path": ["forms", 2, "name"],
                "code": "min_length",
                "message": "must have at least 1 character",
                "params": {"min": 1},
            })
        );
        assert_eq!(issue.dotted_path(), "forms.2.name");
    }

    #[test]
    fn prefixing_keeps_the_inner_path() {
        let issue = Issue::new("spam", "no spam").at("message");
        let prefixed = issue.prefixed(&["forms".into(), 0.into()]);
        assert_eq!(prefixed.dotted_path(), "forms.0.message");
    }

    #[test]
    fn plural_messages() {
        assert_eq!(
            Issue::standard("max_length", param("max", 100)).message(),
            "must have at most 100 characters"
        );
        assert_eq!(
            Issue::standard("too_few_forms", param("min", 1)).message(),
            "submit at least 1 form"
        );
    }

    #[test]
    fn the_error_carries_every_issue() {
        let err = issues_error(vec![
            Issue::standard("required", Map::new()).at("name"),
            Issue::new("spam", "no spam"),
        ]);
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        let issues = &err.details().unwrap()["issues"];
        assert_eq!(issues[0]["path"], serde_json::json!(["name"]));
        assert_eq!(issues[1]["path"], serde_json::json!([]));
    }
}
