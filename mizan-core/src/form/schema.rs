//! The form's JSON Schema: its field descriptions, and the checks run on submitted JSON before
//! it is converted to the Rust struct.
//!
//! Checking the JSON value against the schema, field by field, is what lets every failing field
//! be reported at once: serde stops at the first wrong type, and garde only sees a struct that
//! serde managed to build. The schema is the one `schemars` derives, which already carries the
//! garde rules it understands (`length` → `minLength`/`maxLength`, `range` →
//! `minimum`/`maximum`, `pattern`, `email` → `format: email`, `inner(...)` → `items`).

use std::cmp::Ordering;
use std::collections::HashMap;

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::issue::{param, Issue, PathSegment};
use super::{FieldMeta, FormError};

/// How many `$ref` hops (and nested schemas) a check follows before it gives up on a branch.
const MAX_DEPTH: usize = 64;

/// One choice of a field: the value sent, and the label shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Choice {
    /// The value the client sends.
    pub value: Value,
    /// What a user reads.
    pub label: String,
}

impl Choice {
    /// A choice with its value and label.
    pub fn new(value: impl Into<Value>, label: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            label: label.into(),
        }
    }
}

/// A field as the form schema describes it to a frontend.
///
/// Serialized as `{"name", "type", "required", "label", "help_text", "widget", "initial",
/// "choices", "constraints"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct FieldSchema {
    /// The wire name.
    pub name: String,
    /// The JSON type of the value: `string`, `integer`, `number`, `boolean`, `array`, `object`,
    /// or `any` when the schema allows several.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the field must be sent (and must not be `null`).
    pub required: bool,
    /// The label: set in [`FieldMeta`], else the schema `title`, else the name made readable
    /// (`first_name` → `First name`).
    pub label: String,
    /// Help text: set in [`FieldMeta`], else the schema `description` (the field's doc comment).
    pub help_text: Option<String>,
    /// The widget: set in [`FieldMeta`], else the schema extension `x-widget`, else one that
    /// suits the type (`select` with choices, `checkbox`, `number`, `email`, `url`, `date`,
    /// `datetime-local`, `time`, `text`), else `null`.
    pub widget: Option<String>,
    /// The initial value: set in [`FieldMeta`], else the schema `default`.
    pub initial: Option<Value>,
    /// The allowed values: set in [`FieldMeta`], else those of an enum type.
    pub choices: Option<Vec<Choice>>,
    /// The limits from the validation rules, as `min_length`, `max_length`, `min_items`,
    /// `max_items`, `min_value`, `max_value`, `exclusive_min_value`, `exclusive_max_value`,
    /// `pattern` and `format`: each present only when set.
    pub constraints: Map<String, Value>,
}

/// The checks of a form's JSON Schema, with its patterns compiled.
#[derive(Debug)]
pub(crate) struct Checker {
    root: Value,
    patterns: HashMap<String, Regex>,
}

impl Checker {
    /// Compiles every `pattern` of the schema; a pattern that does not compile is a build error.
    pub(crate) fn new(form: &str, root: Value) -> Result<Self, FormError> {
        let mut patterns = HashMap::new();
        collect_patterns(&root, &mut patterns, form, 0)?;
        Ok(Self { root, patterns })
    }

    /// The form's JSON Schema.
    pub(crate) fn schema(&self) -> &Value {
        &self.root
    }

    fn property(&self, name: &str) -> Option<&Value> {
        self.root.get("properties")?.get(name)
    }

    fn is_required(&self, name: &str) -> bool {
        self.root
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|names| names.iter().any(|n| n == name))
    }

    /// Checks a whole form: `fields` in their order, then any key that is not a field.
    pub(crate) fn check_form(&self, fields: &[FieldSchema], data: &Value) -> Vec<Issue> {
        let mut out = Vec::new();
        let Value::Object(data) = data else {
            out.push(Issue::standard("invalid_type", param("expected", "object")));
            return out;
        };
        let mut path = Vec::with_capacity(4);
        for field in fields {
            path.push(PathSegment::Key(field.name.clone()));
            match data.get(&field.name) {
                None if field.required => out.push(required(&path)),
                None => {}
                Some(value) => {
                    let before = out.len();
                    if let Some(schema) = self.property(&field.name) {
                        self.check(schema, value, &mut path, &mut out, 0);
                    }
                    if out.len() == before && !value.is_null() {
                        check_choices(field, value, &path, &mut out);
                    }
                }
            }
            path.pop();
        }
        for key in data.keys() {
            if !fields.iter().any(|field| field.name == *key) {
                out.push(Issue::standard("unknown_field", Map::new()).at(key.as_str()));
            }
        }
        out
    }

    fn lookup(&self, reference: &str) -> &Value {
        reference
            .strip_prefix('#')
            .and_then(|pointer| self.root.pointer(pointer))
            .unwrap_or(&Value::Bool(true))
    }

    fn admits_null(&self, schema: &Value, depth: usize) -> bool {
        let Value::Object(s) = schema else {
            return schema != &Value::Bool(false);
        };
        if depth > MAX_DEPTH {
            return false;
        }
        if let Some(Value::String(reference)) = s.get("$ref") {
            if !self.admits_null(self.lookup(reference), depth + 1) {
                return false;
            }
        }
        if let Some(types) = s.get("type") {
            if !type_names(types).any(|t| t == "null") {
                return false;
            }
        }
        if let Some(Value::Array(options)) = s.get("enum") {
            if !options.contains(&Value::Null) {
                return false;
            }
        }
        if s.get("const").is_some_and(|c| !c.is_null()) {
            return false;
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(variants)) = s.get(key) {
                if !variants.iter().any(|v| self.admits_null(v, depth + 1)) {
                    return false;
                }
            }
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            if !all.iter().all(|v| self.admits_null(v, depth + 1)) {
                return false;
            }
        }
        true
    }

    /// Checks `value` against `schema`, adding what fails at `path` to `out`.
    fn check(
        &self,
        schema: &Value,
        value: &Value,
        path: &mut Vec<PathSegment>,
        out: &mut Vec<Issue>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let s = match schema {
            Value::Object(s) => s,
            Value::Bool(false) => {
                out.push(Issue::standard("invalid", Map::new()).with_path(path.clone()));
                return;
            }
            _ => return,
        };
        if value.is_null() {
            if !self.admits_null(schema, depth) {
                out.push(required(path));
            }
            return;
        }
        let before = out.len();
        if let Some(Value::String(reference)) = s.get("$ref") {
            self.check(self.lookup(reference), value, path, out, depth + 1);
            if out.len() > before {
                return;
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(variants)) = s.get(key) {
                self.check_variants(variants, value, path, out, depth);
                if out.len() > before {
                    return;
                }
            }
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            for sub in all {
                self.check(sub, value, path, out, depth + 1);
            }
            if out.len() > before {
                return;
            }
        }
        if let Some(types) = s.get("type") {
            if !type_names(types).any(|t| type_matches(t, value)) {
                let expected = type_names(types).find(|t| *t != "null").unwrap_or("null");
                out.push(invalid_type(expected, path));
                return;
            }
        }
        if let Some(Value::Array(options)) = s.get("enum") {
            if !options.contains(value) {
                out.push(invalid_choice(options.iter().cloned(), path));
                return;
            }
        }
        if let Some(constant) = s.get("const") {
            if constant != value {
                out.push(invalid_choice([constant.clone()], path));
                return;
            }
        }
        match value {
            Value::String(text) => self.check_string(s, text, path, out),
            Value::Number(number) => check_number(s, number, path, out),
            Value::Array(items) => self.check_array(s, items, path, out, depth),
            Value::Object(map) => self.check_object(s, map, path, out, depth),
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// `anyOf`/`oneOf`: a list of constants is a choice; one non-null variant (an `Option`) is
    /// checked as itself; otherwise the value must pass one of the variants.
    fn check_variants(
        &self,
        variants: &[Value],
        value: &Value,
        path: &mut Vec<PathSegment>,
        out: &mut Vec<Issue>,
        depth: usize,
    ) {
        let non_null: Vec<&Value> = variants.iter().filter(|v| !is_null_type(v)).collect();
        if let Some(constants) = self.constants(&non_null, depth) {
            if !constants.contains(value) {
                if constants.iter().any(|c| same_json_type(c, value)) {
                    out.push(invalid_choice(constants, path));
                } else {
                    let expected = constants.first().map_or("string", json_type);
                    out.push(invalid_type(expected, path));
                }
            }
            return;
        }
        if let [only] = non_null.as_slice() {
            self.check(only, value, path, out, depth + 1);
            return;
        }
        let mut first_failure: Option<Vec<Issue>> = None;
        for variant in &non_null {
            let mut attempt = Vec::new();
            self.check(variant, value, path, &mut attempt, depth + 1);
            if attempt.is_empty() {
                return;
            }
            let wrong_type = attempt
                .iter()
                .any(|i| i.code() == "invalid_type" && i.path() == path.as_slice());
            if !wrong_type && first_failure.is_none() {
                first_failure = Some(attempt);
            }
        }
        match first_failure {
            Some(issues) => out.extend(issues),
            None => out.push(Issue::standard("invalid", Map::new()).with_path(path.clone())),
        }
    }

    /// The values of variants that are all constants (`const` or `enum`), after `$ref`s.
    fn constants(&self, variants: &[&Value], depth: usize) -> Option<Vec<Value>> {
        if variants.is_empty() || depth > MAX_DEPTH {
            return None;
        }
        let mut values = Vec::new();
        for variant in variants {
            let object = variant.as_object()?;
            if let Some(Value::String(reference)) = object.get("$ref") {
                values.extend(self.constants(&[self.lookup(reference)], depth + 1)?);
            } else if let Some(constant) = object.get("const") {
                values.push(constant.clone());
            } else if let Some(Value::Array(options)) = object.get("enum") {
                values.extend(options.iter().filter(|v| !v.is_null()).cloned());
            } else {
                return None;
            }
        }
        Some(values)
    }

    fn check_string(
        &self,
        s: &Map<String, Value>,
        text: &str,
        path: &[PathSegment],
        out: &mut Vec<Issue>,
    ) {
        let length = || text.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
            if length() < min {
                out.push(Issue::standard("min_length", param("min", min)).with_path(path.to_vec()));
            }
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
            if length() > max {
                out.push(Issue::standard("max_length", param("max", max)).with_path(path.to_vec()));
            }
        }
        if let Some(Value::String(pattern)) = s.get("pattern") {
            if let Some(regex) = self.patterns.get(pattern) {
                if !regex.is_match(text) {
                    out.push(
                        Issue::standard("pattern", param("pattern", pattern.as_str()))
                            .with_path(path.to_vec()),
                    );
                }
            }
        }
        if s.get("format").and_then(Value::as_str) == Some("email")
            && garde::rules::email::parse_email(text).is_err()
        {
            out.push(Issue::standard("email", Map::new()).with_path(path.to_vec()));
        }
    }

    fn check_array(
        &self,
        s: &Map<String, Value>,
        items: &[Value],
        path: &mut Vec<PathSegment>,
        out: &mut Vec<Issue>,
        depth: usize,
    ) {
        let count = items.len() as u64;
        if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
            if count < min {
                out.push(Issue::standard("min_items", param("min", min)).with_path(path.clone()));
            }
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
            if count > max {
                out.push(Issue::standard("max_items", param("max", max)).with_path(path.clone()));
            }
        }
        if let Some(item_schema) = s.get("items") {
            for (index, item) in items.iter().enumerate() {
                path.push(PathSegment::Index(index));
                self.check(item_schema, item, path, out, depth + 1);
                path.pop();
            }
        }
    }

    fn check_object(
        &self,
        s: &Map<String, Value>,
        map: &Map<String, Value>,
        path: &mut Vec<PathSegment>,
        out: &mut Vec<Issue>,
        depth: usize,
    ) {
        let properties = s.get("properties").and_then(Value::as_object);
        if let Some(properties) = properties {
            for (name, sub) in properties {
                if let Some(value) = map.get(name) {
                    path.push(PathSegment::Key(name.clone()));
                    self.check(sub, value, path, out, depth + 1);
                    path.pop();
                }
            }
        }
        if let Some(Value::Array(required_names)) = s.get("required") {
            for name in required_names.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    out.push(required(path).at(name));
                }
            }
        }
        let extra = s.get("additionalProperties");
        for (key, value) in map {
            if properties.is_some_and(|p| p.contains_key(key)) {
                continue;
            }
            path.push(PathSegment::Key(key.clone()));
            match extra {
                Some(Value::Bool(false)) => {
                    out.push(Issue::standard("unknown_field", Map::new()).with_path(path.clone()));
                }
                Some(schema @ Value::Object(_)) => self.check(schema, value, path, out, depth + 1),
                _ => {}
            }
            path.pop();
        }
    }

    /// The description of the field `name` for the form schema.
    pub(crate) fn describe(&self, name: &str, meta: Option<&FieldMeta>) -> FieldSchema {
        let empty = Value::Object(Map::new());
        let schema = self.property(name).unwrap_or(&empty);
        let mut layers = Vec::new();
        self.layers(schema, &mut layers, 0);
        let get = |key: &str| layers.iter().find_map(|layer| layer.get(key));

        let choices = meta
            .and_then(|m| m.choices.clone())
            .or_else(|| self.schema_choices(&layers));
        let kind = match get("type") {
            Some(types) => {
                let mut names = type_names(types).filter(|t| *t != "null");
                match (names.next(), names.next()) {
                    (Some(only), None) => only.to_owned(),
                    _ => "any".to_owned(),
                }
            }
            None => match choices.as_ref().and_then(|c| c.first()) {
                Some(choice) => json_type(&choice.value).to_owned(),
                None => "any".to_owned(),
            },
        };
        let format = get("format").and_then(Value::as_str);
        let widget = meta
            .and_then(|m| m.widget.clone())
            .or_else(|| get("x-widget").and_then(Value::as_str).map(str::to_owned))
            .or_else(|| default_widget(&kind, format, choices.is_some()).map(str::to_owned));

        let mut constraints = Map::new();
        let limits: &[(&str, &str)] = match kind.as_str() {
            "string" => &[
                ("minLength", "min_length"),
                ("maxLength", "max_length"),
                ("pattern", "pattern"),
                ("format", "format"),
            ],
            "array" => &[("minItems", "min_items"), ("maxItems", "max_items")],
            "integer" | "number" => &[
                ("minimum", "min_value"),
                ("maximum", "max_value"),
                ("exclusiveMinimum", "exclusive_min_value"),
                ("exclusiveMaximum", "exclusive_max_value"),
            ],
            _ => &[],
        };
        for (keyword, constraint) in limits {
            if let Some(value) = get(keyword) {
                constraints.insert((*constraint).to_owned(), value.clone());
            }
        }

        FieldSchema {
            name: name.to_owned(),
            kind,
            required: self.is_required(name),
            label: meta
                .and_then(|m| m.label.clone())
                .or_else(|| get("title").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| humanize(name)),
            help_text: meta.and_then(|m| m.help_text.clone()).or_else(|| {
                get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }),
            widget,
            initial: meta
                .and_then(|m| m.initial.clone())
                .or_else(|| get("default").cloned()),
            choices,
            constraints,
        }
    }

    /// The schema objects that describe one field, outermost first: the property itself, what
    /// its `$ref` points to, and the one non-null variant of an `Option`.
    fn layers<'a>(
        &'a self,
        schema: &'a Value,
        out: &mut Vec<&'a Map<String, Value>>,
        depth: usize,
    ) {
        let Value::Object(s) = schema else { return };
        if depth > MAX_DEPTH {
            return;
        }
        out.push(s);
        if let Some(Value::String(reference)) = s.get("$ref") {
            self.layers(self.lookup(reference), out, depth + 1);
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(variants)) = s.get(key) {
                let non_null: Vec<&Value> = variants.iter().filter(|v| !is_null_type(v)).collect();
                if let [only] = non_null.as_slice() {
                    self.layers(only, out, depth + 1);
                }
            }
        }
    }

    fn schema_choices(&self, layers: &[&Map<String, Value>]) -> Option<Vec<Choice>> {
        for layer in layers {
            if let Some(Value::Array(options)) = layer.get("enum") {
                return Some(
                    options
                        .iter()
                        .filter(|v| !v.is_null())
                        .map(|v| Choice::new(v.clone(), humanize_value(v)))
                        .collect(),
                );
            }
            for key in ["oneOf", "anyOf"] {
                let Some(Value::Array(variants)) = layer.get(key) else {
                    continue;
                };
                let non_null: Vec<&Value> = variants.iter().filter(|v| !is_null_type(v)).collect();
                if non_null.len() < 2 {
                    continue;
                }
                let mut choices = Vec::new();
                for variant in non_null {
                    let mut variant_layers = Vec::new();
                    self.layers(variant, &mut variant_layers, 0);
                    let constant = variant_layers.iter().find_map(|l| l.get("const"))?;
                    let label = variant_layers
                        .iter()
                        .find_map(|l| l.get("title").and_then(Value::as_str))
                        .map_or_else(|| humanize_value(constant), str::to_owned);
                    choices.push(Choice::new(constant.clone(), label));
                }
                return Some(choices);
            }
        }
        None
    }
}

fn check_choices(field: &FieldSchema, value: &Value, path: &[PathSegment], out: &mut Vec<Issue>) {
    let Some(choices) = &field.choices else {
        return;
    };
    if !choices.iter().any(|choice| choice.value == *value) {
        out.push(invalid_choice(
            choices.iter().map(|choice| choice.value.clone()),
            path,
        ));
    }
}

fn check_number(
    s: &Map<String, Value>,
    number: &Number,
    path: &[PathSegment],
    out: &mut Vec<Issue>,
) {
    let bound = |key: &str| match s.get(key) {
        Some(Value::Number(limit)) => Some(limit),
        _ => None,
    };
    let issue = |code: &'static str, name: &str, limit: Value, exclusive: bool| {
        let mut params = param(name, limit);
        if exclusive {
            params.insert("exclusive".to_owned(), Value::Bool(true));
        }
        Issue::standard(code, params).with_path(path.to_vec())
    };
    let mut low = false;
    let mut high = false;
    if let Some(min) = bound("minimum") {
        if compare(number, min) == Ordering::Less {
            out.push(issue("min_value", "min", min.clone().into(), false));
            low = true;
        }
    }
    if let Some(min) = bound("exclusiveMinimum") {
        if !low && compare(number, min) != Ordering::Greater {
            out.push(issue("min_value", "min", min.clone().into(), true));
            low = true;
        }
    }
    if let Some(max) = bound("maximum") {
        if compare(number, max) == Ordering::Greater {
            out.push(issue("max_value", "max", max.clone().into(), false));
            high = true;
        }
    }
    if let Some(max) = bound("exclusiveMaximum") {
        if !high && compare(number, max) != Ordering::Less {
            out.push(issue("max_value", "max", max.clone().into(), true));
            high = true;
        }
    }
    // The Rust integer type's own range, which schemars only states as a `format`.
    if let Some((min, max)) = s
        .get("format")
        .and_then(Value::as_str)
        .and_then(integer_range)
    {
        let value = number
            .as_i64()
            .map(i128::from)
            .or_else(|| number.as_u64().map(i128::from));
        if let Some(value) = value {
            if !low && value < min {
                out.push(issue("min_value", "min", range_value(min), false));
            } else if !high && value > max {
                out.push(issue("max_value", "max", range_value(max), false));
            }
        }
    }
}

fn range_value(bound: i128) -> Value {
    i64::try_from(bound)
        .map(Value::from)
        .or_else(|_| u64::try_from(bound).map(Value::from))
        .unwrap_or(Value::Null)
}

fn integer_range(format: &str) -> Option<(i128, i128)> {
    Some(match format {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" | "int" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" | "uint" => (0, u64::MAX.into()),
        _ => return None,
    })
}

/// Compares two JSON numbers exactly when both are integers, else as floats.
fn compare(a: &Number, b: &Number) -> Ordering {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            a.partial_cmp(&b).unwrap_or(Ordering::Equal)
        }
    }
}

fn required(path: &[PathSegment]) -> Issue {
    Issue::standard("required", Map::new()).with_path(path.to_vec())
}

fn invalid_type(expected: &str, path: &[PathSegment]) -> Issue {
    Issue::standard("invalid_type", param("expected", expected)).with_path(path.to_vec())
}

fn invalid_choice(choices: impl IntoIterator<Item = Value>, path: &[PathSegment]) -> Issue {
    let choices: Vec<Value> = choices.into_iter().filter(|v| !v.is_null()).collect();
    Issue::standard("invalid_choice", param("choices", choices)).with_path(path.to_vec())
}

fn type_names(types: &Value) -> impl Iterator<Item = &str> {
    let list: &[Value] = match types {
        Value::Array(list) => list,
        single => std::slice::from_ref(single),
    };
    list.iter().filter_map(Value::as_str)
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => true,
    }
}

fn is_null_type(schema: &Value) -> bool {
    schema.get("type") == Some(&Value::String("null".to_owned()))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn same_json_type(a: &Value, b: &Value) -> bool {
    a.is_number() && b.is_number() || json_type(a) == json_type(b)
}

fn default_widget(kind: &str, format: Option<&str>, has_choices: bool) -> Option<&'static str> {
    if has_choices {
        return Some("select");
    }
    Some(match (kind, format) {
        ("boolean", _) => "checkbox",
        ("integer" | "number", _) => "number",
        ("string", Some("email")) => "email",
        ("string", Some("uri")) => "url",
        ("string", Some("date")) => "date",
        ("string", Some("date-time")) => "datetime-local",
        ("string", Some("time")) => "time",
        ("string", _) => "text",
        _ => return None,
    })
}

/// `first_name` or `firstName` → `First name`.
pub(crate) fn humanize(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    let mut previous_lower = false;
    for c in name.chars() {
        if c == '_' || c == '-' {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            out.push(' ');
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        if out.is_empty() {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out.trim_end().to_owned()
}

fn humanize_value(value: &Value) -> String {
    match value {
        Value::String(text) => humanize(text),
        other => other.to_string(),
    }
}

fn collect_patterns(
    schema: &Value,
    patterns: &mut HashMap<String, Regex>,
    form: &str,
    depth: usize,
) -> Result<(), FormError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    match schema {
        Value::Object(object) => {
            if let Some(Value::String(pattern)) = object.get("pattern") {
                if !patterns.contains_key(pattern) {
                    let regex = Regex::new(pattern).map_err(|source| FormError::Pattern {
                        form: form.to_owned(),
                        pattern: pattern.clone(),
                        source: Box::new(source),
                    })?;
                    patterns.insert(pattern.clone(), regex);
                }
            }
            for (key, value) in object {
                // Values that are data, not schemas.
                if matches!(key.as_str(), "default" | "const" | "enum" | "examples") {
                    continue;
                }
                collect_patterns(value, patterns, form, depth + 1)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_patterns(item, patterns, form, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanized_labels() {
        assert_eq!(humanize("first_name"), "First name");
        assert_eq!(humanize("firstName"), "First name");
        assert_eq!(humanize("email"), "Email");
        assert_eq!(humanize("sales"), "Sales");
    }

    #[test]
    fn numbers_compare_exactly_as_integers() {
        let big = Number::from(u64::MAX);
        let small = Number::from(-1i64);
        assert_eq!(compare(&small, &big), Ordering::Less);
        assert_eq!(
            compare(&Number::from_f64(0.5).unwrap(), &Number::from(1)),
            Ordering::Less
        );
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_a_build_error() {
        let root = serde_json::json!({
            "type": "object",
            "properties": {"code": {"type": "string", "pattern": "(unclosed"}},
        });
        let err = Checker::new("broken", root).unwrap_err();
        assert!(err.to_string().contains("(unclosed"), "{err}");
    }
}
