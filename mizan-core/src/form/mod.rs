//! Forms and formsets: one Rust struct gives a frontend the form's schema, live validation and
//! a checked submit.
//!
//! A form is a struct with three derives — serde's `Deserialize` for the data, `schemars`'
//! `JsonSchema` for the schema, `garde`'s `Validate` for the rules — and an implementation of
//! [`Form`], which may add UI metadata ([`Form::meta`]) and an async [`Form::clean`] for checks
//! that involve several fields or the database. A [`FormSpec`] built from it once answers the
//! three questions of a frontend:
//!
//! - [`FormSpec::schema`]: how to draw the form (fields in declaration order, types, labels,
//!   widgets, choices, and the limits of the validation rules);
//! - [`FormSpec::validate`]: every problem with some submitted data, as [`Issue`]s, without
//!   side effects;
//! - [`FormSpec::check`]: the same, as the 400 error a submit answers with.
//!
//! # Example
//!
//! ```
//! use mizan_core::form::{FieldMeta, Form, FormMeta, FormSpec, Issue};
//! use mizan_core::testing::block_on;
//! use mizan_core::{async_trait, Request};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(rename_all = "lowercase")]
//! enum Topic {
//!     Sales,
//!     Support,
//!     Other,
//! }
//!
//! #[derive(Deserialize, JsonSchema, garde::Validate)]
//! struct Contact {
//!     /// How we should address you.
//!     #[garde(length(chars, min = 1, max = 100))]
//!     name: String,
//!     #[garde(email)]
//!     email: String,
//!     #[garde(skip)]
//!     topic: Topic,
//!     #[garde(length(chars, min = 1, max = 2000))]
//!     #[schemars(extend("x-widget" = "textarea"))]
//!     message: String,
//! }
//!
//! #[async_trait]
//! impl Form for Contact {
//!     fn meta() -> FormMeta {
//!         FormMeta::new().with_field("topic", FieldMeta::new().with_label("What is it about?"))
//!     }
//!
//!     async fn clean(&self, _req: &Request) -> Result<(), Vec<Issue>> {
//!         if self.message.contains("spam") {
//!             return Err(vec![Issue::new("spam", "this message looks like spam")]);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let contact = FormSpec::form::<Contact>("contact").expect("a valid form");
//!
//! // What `GET form/contact/` answers.
//! let schema = contact.schema();
//! assert_eq!(schema["fields"][0]["name"], "name");
//! assert_eq!(schema["fields"][0]["help_text"], "How we should address you.");
//! assert_eq!(schema["fields"][0]["constraints"]["max_length"], 100);
//! assert_eq!(schema["fields"][2]["label"], "What is it about?");
//! assert_eq!(schema["fields"][2]["choices"][0]["value"], "sales");
//! assert_eq!(schema["fields"][3]["widget"], "textarea");
//!
//! // What `POST form/contact/validate/` answers: every issue at once.
//! let req = Request::new(http::Request::new(bytes::Bytes::new()));
//! let body = br#"{"name": "", "email": "ann@", "topic": "jobs", "message": 5}"#;
//! let issues = block_on(contact.validate(body, &req)).expect("well-formed JSON");
//! let codes: Vec<_> = issues.iter().map(|i| (i.dotted_path(), i.code())).collect();
//! assert_eq!(
//!     codes,
//!     [
//!         ("name".to_owned(), "min_length"),
//!         ("email".to_owned(), "email"),
//!         ("topic".to_owned(), "invalid_choice"),
//!         ("message".to_owned(), "invalid_type"),
//!     ]
//! );
//!
//! // `clean` runs once every field is valid; its issues have an empty path.
//! let body = br#"{"name": "Ann", "email": "ann@example.com", "topic": "sales", "message": "spam"}"#;
//! let issues = block_on(contact.validate(body, &req)).unwrap();
//! assert_eq!(issues[0].code(), "spam");
//! assert!(issues[0].path().is_empty());
//!
//! // Before a submit runs: a 400 `bad_request` whose details carry the issues.
//! let err = block_on(contact.check(body, &req)).unwrap_err();
//! assert_eq!(err.details().unwrap()["issues"][0]["code"], "spam");
//! ```
//!
//! # How data is checked
//!
//! 1. The JSON value is checked against the form's JSON Schema, field by field, so every
//!    failing field is reported even when several have the wrong type: a value of the wrong
//!    JSON type is `invalid_type`; a missing required field, or `null` for a field that is not
//!    an `Option`, is `required`; a key that is not a field is `unknown_field`; a value outside
//!    an enum or the [`FieldMeta::with_choices`] is `invalid_choice`; and the limits `schemars`
//!    reads from the garde rules give `min_length`/`max_length` (counted in characters, as
//!    JSON Schema does), `min_items`/`max_items`, `min_value`/`max_value`, `pattern` and
//!    `email`.
//! 2. The data is converted to the struct and garde's rules run. Their failures get codes too
//!    (`contains`, `prefix`, `url`, ... and the ones above), except a `custom` rule's, which
//!    is `invalid` with the rule's own message. A failure already reported by step 1 is not
//!    repeated.
//! 3. When nothing failed, [`Form::clean`] runs and its issues are added.
//!
//! The codes come from checking the schema (and from garde's rules through a translation hook
//! that yields codes instead of English), not from parsing garde's messages, so they are
//! stable. Messages are written from the code and its params and never contain the submitted
//! value.
//!
//! Write string limits as `#[garde(length(chars, min = .., max = ..))]`: garde's default
//! `length` counts bytes, while the schema (and a browser) counts characters. When a field is
//! renamed for serde, rename it for garde too (`#[garde(rename = "...")]`) so the issues of its
//! rules carry the wire name.
//!
//! # Formsets
//!
//! [`FormSpec::formset`] describes a list of forms of one type, sent as
//! `{"forms": [{...}, ...]}`, with the [`FormsetOptions`] of [`Form::formset_options`]. A
//! function takes the decoded list as a [`Formset<F>`] argument. Issues of a form have paths
//! like `["forms", 2, "qty"]`; `too_few_forms` and `too_many_forms` are at `["forms"]`.

mod fields;
mod formset;
mod issue;
mod rules;
mod schema;

use futures_util::future::BoxFuture;
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{ApiError, BoxError};
use crate::request::Request;

pub use formset::{Formset, FormsetOptions, DELETE_FIELD, ORDER_FIELD};
pub use issue::{issues_error, Issue, PathSegment};
pub use schema::{Choice, FieldSchema};

use schema::Checker;

/// A form: a struct whose data, schema and rules come from its derives, plus optional UI
/// metadata and a final async check.
///
/// Every method has a default, so `impl Form for MyForm {}` is enough. The rules of
/// `garde::Validate` use the unit context (`#[garde(context(...))]` is not supported).
/// Implement it with [`#[async_trait]`](crate::async_trait) when you write [`clean`](Form::clean).
#[crate::async_trait]
pub trait Form:
    DeserializeOwned + JsonSchema + garde::Validate<Context = ()> + Send + Sync + 'static
{
    /// Labels, help texts, widgets, initial values and choices that the derives do not say.
    fn meta() -> FormMeta {
        FormMeta::new()
    }

    /// How a list of this form behaves as a [`Formset`] (counts, deleting, ordering).
    fn formset_options() -> FormsetOptions {
        FormsetOptions::new()
    }

    /// A last check with the whole form and the request (its identity and app state), for
    /// rules across fields or against the database. Runs only when every field is valid.
    ///
    /// Issues without a path concern the form as a whole; use [`Issue::at`] to point at a
    /// field. It must not change anything: validation runs it too.
    async fn clean(&self, req: &Request) -> Result<(), Vec<Issue>> {
        let _ = req;
        Ok(())
    }
}

/// UI metadata of a form's fields, for what the derives do not say.
///
/// Each field can also be described on the struct: a doc comment or
/// `#[schemars(description = "...")]` gives the help text, `#[schemars(title = "...")]` the
/// label, `#[schemars(extend("x-widget" = "textarea"))]` the widget, a serde default the
/// initial value and an enum type the choices. What is set here wins.
///
/// ```
/// use mizan_core::form::{FieldMeta, FormMeta};
///
/// let meta = FormMeta::new()
///     .with_field(
///         "topic",
///         FieldMeta::new().with_choices([("sales", "Sales"), ("other", "Something else")]),
///     )
///     .with_field(
///         "password",
///         FieldMeta::new()
///             .with_widget("password")
///             .with_help_text("At least 12 characters."),
///     );
/// # let _ = meta;
/// ```
#[derive(Debug, Clone, Default)]
pub struct FormMeta {
    fields: Vec<(String, FieldMeta)>,
}

impl FormMeta {
    /// No metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the metadata of the field with this wire name (a later call for the same field
    /// replaces it). Naming a field the form does not have is an error when the spec is built.
    pub fn with_field(mut self, name: impl Into<String>, meta: FieldMeta) -> Self {
        let name = name.into();
        self.fields.retain(|(n, _)| *n != name);
        self.fields.push((name, meta));
        self
    }

    fn get(&self, name: &str) -> Option<&FieldMeta> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }
}

/// UI metadata of one field; see [`FormMeta`].
#[derive(Debug, Clone, Default)]
pub struct FieldMeta {
    label: Option<String>,
    help_text: Option<String>,
    widget: Option<String>,
    initial: Option<Value>,
    choices: Option<Vec<Choice>>,
}

impl FieldMeta {
    /// No metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// The label shown next to the field.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// A sentence that helps fill the field in.
    pub fn with_help_text(mut self, help_text: impl Into<String>) -> Self {
        self.help_text = Some(help_text.into());
        self
    }

    /// The widget a frontend should draw, e.g. `textarea` or `password`.
    pub fn with_widget(mut self, widget: impl Into<String>) -> Self {
        self.widget = Some(widget.into());
        self
    }

    /// The value the field starts with.
    pub fn with_initial(mut self, initial: impl Into<Value>) -> Self {
        self.initial = Some(initial.into());
        self
    }

    /// The allowed values, each with its label. A value outside the list is an
    /// `invalid_choice` issue.
    pub fn with_choices<V: Into<Value>, L: Into<String>>(
        mut self,
        choices: impl IntoIterator<Item = (V, L)>,
    ) -> Self {
        self.choices = Some(
            choices
                .into_iter()
                .map(|(value, label)| Choice::new(value, label))
                .collect(),
        );
        self
    }
}

/// Why a form cannot be described; found when the spec is built, never at a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// The name is empty or has characters other than ASCII letters, digits, `_` and `-`.
    #[error("form name `{form}` must be ASCII letters, digits, `_` or `-`")]
    Name {
        /// The form's name.
        form: String,
    },
    /// The form's type is not a struct with named fields.
    #[error("form `{form}`: the form type must be a struct with named fields")]
    NotAStruct {
        /// The form's name.
        form: String,
    },
    /// [`FormMeta`] names a field the form does not have.
    #[error("form `{form}`: the metadata names `{field}`, which is not one of its fields")]
    UnknownField {
        /// The form's name.
        form: String,
        /// The name in the metadata.
        field: String,
    },
    /// A `pattern` rule does not compile as a regular expression.
    #[error("form `{form}`: the pattern `{pattern}` does not compile")]
    Pattern {
        /// The form's name.
        form: String,
        /// The pattern.
        pattern: String,
        /// What the regex compiler said.
        #[source]
        source: BoxError,
    },
    /// The formset options contradict each other.
    #[error("formset `{form}`: {reason}")]
    Formset {
        /// The form's name.
        form: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Converts the data to the struct, runs garde's rules and, when all is well, `clean`. Gets
/// the issues found so far; returns the new ones.
type TypedStage = for<'a> fn(&'a Value, &'a Request, &'a [Issue]) -> BoxFuture<'a, Vec<Issue>>;

/// A form or formset, described once: its schema and its validation.
///
/// Build it when the app is built (it compiles the patterns and checks the metadata), then
/// share it; validation takes `&self`.
pub struct FormSpec {
    name: String,
    fields: Vec<FieldSchema>,
    checker: Checker,
    formset: Option<FormsetOptions>,
    schema: Value,
    typed: TypedStage,
}

impl std::fmt::Debug for FormSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormSpec")
            .field("name", &self.name)
            .field("fields", &self.fields)
            .field("formset", &self.formset)
            .finish_non_exhaustive()
    }
}

impl FormSpec {
    /// The form `F` under `name`.
    pub fn form<F: Form>(name: impl Into<String>) -> Result<Self, FormError> {
        Self::build::<F>(name.into(), None)
    }

    /// A formset of `F` under `name`, with [`F::formset_options`](Form::formset_options).
    pub fn formset<F: Form>(name: impl Into<String>) -> Result<Self, FormError> {
        let name = name.into();
        let options = F::formset_options();
        if let Some(reason) = options.inconsistency() {
            return Err(FormError::Formset { form: name, reason });
        }
        Self::build::<F>(name, Some(options))
    }

    fn build<F: Form>(name: String, formset: Option<FormsetOptions>) -> Result<Self, FormError> {
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(FormError::Name { form: name });
        }
        let root = SchemaSettings::draft2020_12()
            .into_generator()
            .root_schema_for::<F>()
            .to_value();
        let properties = root
            .get("properties")
            .and_then(Value::as_object)
            .filter(|_| root.get("type") == Some(&Value::String("object".to_owned())));
        let Some(properties) = properties else {
            return Err(FormError::NotAStruct { form: name });
        };
        // Declaration order from serde; fields serde cannot list (flattened) follow by name.
        let mut order: Vec<String> = fields::declared_fields::<F>()
            .unwrap_or_default()
            .iter()
            .filter(|field| properties.contains_key(**field))
            .map(|field| (*field).to_owned())
            .collect();
        for field in properties.keys() {
            if !order.contains(field) {
                order.push(field.clone());
            }
        }
        let meta = F::meta();
        if let Some((field, _)) = meta.fields.iter().find(|(f, _)| !order.contains(f)) {
            return Err(FormError::UnknownField {
                form: name,
                field: field.clone(),
            });
        }
        let checker = Checker::new(&name, root)?;
        let fields: Vec<FieldSchema> = order
            .iter()
            .map(|field| checker.describe(field, meta.get(field)))
            .collect();

        let mut schema = Map::new();
        schema.insert("name".to_owned(), Value::String(name.clone()));
        schema.insert(
            "fields".to_owned(),
            serde_json::to_value(&fields).unwrap_or_default(),
        );
        schema.insert("json_schema".to_owned(), checker.schema().clone());
        if let Some(options) = &formset {
            schema.insert(
                "formset".to_owned(),
                serde_json::to_value(options).unwrap_or_default(),
            );
        }
        Ok(Self {
            name,
            fields,
            checker,
            formset,
            schema: Value::Object(schema),
            typed: typed_stage::<F>,
        })
    }

    /// The name (the `<name>` of `form/<name>/`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fields, in declaration order.
    pub fn fields(&self) -> &[FieldSchema] {
        &self.fields
    }

    /// The formset options, for a formset.
    pub fn formset_options(&self) -> Option<&FormsetOptions> {
        self.formset.as_ref()
    }

    /// The schema a frontend draws the form from:
    /// `{"name", "fields": [...], "json_schema": {...}}`, plus
    /// `"formset": {"min_num", "max_num", "absolute_max", "can_delete", "can_order", "extra"}`
    /// for a formset. See [`FieldSchema`] for a field.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Every issue with the JSON `body` (a form's data, or `{"forms": [...]}` for a formset);
    /// empty when it is valid. Runs the type checks, the rules and [`Form::clean`], and
    /// nothing else.
    ///
    /// A body that is not JSON at all is a 400 `bad_request` error rather than issues.
    pub async fn validate(&self, body: &[u8], req: &Request) -> Result<Vec<Issue>, ApiError> {
        match &self.formset {
            None => {
                let data: Value = serde_json::from_slice(body).map_err(malformed)?;
                Ok(self.validate_form(&data, req).await)
            }
            Some(options) => self.validate_formset(options, body, req).await,
        }
    }

    /// [`validate`](Self::validate) for a submit: `Ok(())` when the data is valid, else the
    /// 400 `bad_request` error whose `details.issues` lists every issue.
    pub async fn check(&self, body: &[u8], req: &Request) -> Result<(), ApiError> {
        let issues = self.validate(body, req).await?;
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues_error(issues))
        }
    }

    async fn validate_form(&self, data: &Value, req: &Request) -> Vec<Issue> {
        let mut issues = self.checker.check_form(&self.fields, data);
        if data.is_object() {
            let more = (self.typed)(data, req, &issues).await;
            issues.extend(more);
        }
        issues
    }

    async fn validate_formset(
        &self,
        options: &FormsetOptions,
        body: &[u8],
        req: &Request,
    ) -> Result<Vec<Issue>, ApiError> {
        let body = formset::Body::decode(body, options.absolute_max()).map_err(malformed)?;
        let (entries, mut issues, marker_issues) = formset::sort_out(options, body);
        issues.extend(marker_issues);
        for entry in entries {
            let Some(data) = entry.data.filter(|_| !entry.deleted) else {
                continue;
            };
            let prefix = formset::form_path(entry.index);
            let data = Value::Object(data);
            for issue in self.validate_form(&data, req).await {
                issues.push(issue.prefixed(&prefix));
            }
        }
        Ok(issues)
    }
}

fn malformed(err: serde_json::Error) -> ApiError {
    ApiError::bad_request(format!("malformed JSON: {err}"))
}

fn typed_stage<'a, F: Form>(
    data: &'a Value,
    req: &'a Request,
    found: &'a [Issue],
) -> BoxFuture<'a, Vec<Issue>> {
    Box::pin(async move {
        let form: F = match serde_path_to_error::deserialize(data) {
            Ok(form) => form,
            // What serde refused is most likely what the checks already reported.
            Err(_) if !found.is_empty() => return Vec::new(),
            Err(err) => return vec![not_convertible(err.path())],
        };
        let mut new: Vec<Issue> = rules::garde_issues(&form)
            .into_iter()
            .filter(|issue| {
                !found.iter().any(|known| {
                    known.path() == issue.path() && rules::same_rule(known.code(), issue.code())
                })
            })
            .collect();
        if found.is_empty() && new.is_empty() {
            if let Err(issues) = form.clean(req).await {
                new.extend(issues);
            }
        }
        new
    })
}

/// An `invalid` issue where serde refused the data that the schema checks let through (e.g. a
/// date in the wrong format). serde's message is not used: it may quote the value.
fn not_convertible(path: &serde_path_to_error::Path) -> Issue {
    use serde_path_to_error::Segment;
    let segments = path
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(PathSegment::Index(*index)),
            Segment::Map { key } => Some(PathSegment::Key(key.clone())),
            Segment::Enum { variant } => Some(PathSegment::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect();
    Issue::standard("invalid", Map::new()).with_path(segments)
}

#[cfg(test)]
mod tests;
