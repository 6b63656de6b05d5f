//! Formsets: a list of the same form, `{"forms": [{...}, ...]}`.
//!
//! Each form may carry `"_delete": true` (with [`with_can_delete`](FormsetOptions::with_can_delete)) and
//! `"_order": n` (with [`with_can_order`](FormsetOptions::with_can_order)). A deleted form is neither
//! validated nor counted against `min_num`/`max_num`. The decoder keeps at most
//! [`absolute_max`](FormsetOptions::absolute_max) forms and only counts (without storing) the
//! rest, so an oversized list costs no more memory than a full one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::issue::{param, Issue, PathSegment};
use super::Form;

/// The marker field of a deleted form.
pub const DELETE_FIELD: &str = "_delete";
/// The marker field of a form's position.
pub const ORDER_FIELD: &str = "_order";

/// How many forms a formset accepts, and whether forms can be deleted or reordered.
///
/// The defaults are those of a plain list: no minimum, no maximum, no deleting, no ordering,
/// one blank form to show (`extra`).
///
/// ```
/// use mizan_core::form::FormsetOptions;
///
/// const LINES: FormsetOptions = FormsetOptions::new()
///     .with_min_num(1)
///     .with_max_num(20)
///     .with_can_delete(true);
/// assert_eq!(LINES.absolute_max(), 1020);
/// assert_eq!(FormsetOptions::new().absolute_max(), 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormsetOptions {
    min_num: usize,
    max_num: Option<usize>,
    absolute_max: Option<usize>,
    can_delete: bool,
    can_order: bool,
    extra: usize,
}

impl Default for FormsetOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl FormsetOptions {
    /// No minimum, no maximum, no deleting, no ordering, one extra form.
    pub const fn new() -> Self {
        Self {
            min_num: 0,
            max_num: None,
            absolute_max: None,
            can_delete: false,
            can_order: false,
            extra: 1,
        }
    }

    /// The fewest forms (not counting deleted ones) a valid submission has.
    pub const fn with_min_num(mut self, min_num: usize) -> Self {
        self.min_num = min_num;
        self
    }

    /// The most forms (not counting deleted ones) a valid submission has.
    pub const fn with_max_num(mut self, max_num: usize) -> Self {
        self.max_num = Some(max_num);
        self
    }

    /// The most forms the decoder reads at all, deleted ones included; beyond it the
    /// submission is refused without looking at the forms. Defaults to `max_num + 1000`, or
    /// 1000 without `max_num`.
    pub const fn with_absolute_max(mut self, absolute_max: usize) -> Self {
        self.absolute_max = Some(absolute_max);
        self
    }

    /// Whether a form may carry `"_delete": true` to be left out.
    pub const fn with_can_delete(mut self, can_delete: bool) -> Self {
        self.can_delete = can_delete;
        self
    }

    /// Whether a form may carry `"_order": n` (an integer from 0) to give its position.
    pub const fn with_can_order(mut self, can_order: bool) -> Self {
        self.can_order = can_order;
        self
    }

    /// How many blank forms a frontend shows besides the initial ones (display only).
    pub const fn with_extra(mut self, extra: usize) -> Self {
        self.extra = extra;
        self
    }

    /// The minimum number of forms.
    pub const fn min_num(&self) -> usize {
        self.min_num
    }

    /// The maximum number of forms, if any.
    pub const fn max_num(&self) -> Option<usize> {
        self.max_num
    }

    /// The number of forms beyond which the decoder stops reading.
    pub const fn absolute_max(&self) -> usize {
        match (self.absolute_max, self.max_num) {
            (Some(absolute_max), _) => absolute_max,
            (None, Some(max_num)) => max_num.saturating_add(1000),
            (None, None) => 1000,
        }
    }

    /// Whether forms can be deleted.
    pub const fn can_delete(&self) -> bool {
        self.can_delete
    }

    /// Whether forms can be ordered.
    pub const fn can_order(&self) -> bool {
        self.can_order
    }

    /// The number of extra blank forms.
    pub const fn extra(&self) -> usize {
        self.extra
    }

    /// Why these options contradict each other, if they do.
    pub(crate) fn inconsistency(&self) -> Option<&'static str> {
        match self.max_num {
            Some(max) if self.min_num > max => Some("min_num is larger than max_num"),
            Some(max) if max > self.absolute_max() => Some("max_num is larger than absolute_max"),
            _ => None,
        }
    }
}

impl Serialize for FormsetOptions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("min_num", &self.min_num)?;
        map.serialize_entry("max_num", &self.max_num)?;
        map.serialize_entry("absolute_max", &self.absolute_max())?;
        map.serialize_entry("can_delete", &self.can_delete)?;
        map.serialize_entry("can_order", &self.can_order)?;
        map.serialize_entry("extra", &self.extra)?;
        map.end()
    }
}

/// A formset body as the decoder read it.
#[derive(Debug)]
pub(crate) struct Body {
    pub(crate) shape: Shape,
    /// Top-level keys other than `forms`.
    pub(crate) unknown: Vec<String>,
}

#[derive(Debug)]
pub(crate) enum Shape {
    /// The body is not a JSON object.
    NotAnObject,
    /// No `forms` key.
    Missing,
    /// `forms` is not a list.
    NotAList,
    /// The first `absolute_max` forms, and how many there were in all.
    Forms { kept: Vec<Value>, total: usize },
}

impl Body {
    /// Reads a formset body, keeping at most `absolute_max` forms. Malformed JSON is an error.
    pub(crate) fn decode(body: &[u8], absolute_max: usize) -> Result<Self, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let decoded = BodySeed { absolute_max }.deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(decoded)
    }
}

struct BodySeed {
    absolute_max: usize,
}

impl<'de> DeserializeSeed<'de> for BodySeed {
    type Value = Body;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Body, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Answers `NotAnObject` (or `NotAList`) for any value that is not the expected container.
macro_rules! refuse_scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

impl<'de> Visitor<'de> for BodySeed {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a formset object")
    }

    refuse_scalars!(Body {
        shape: Shape::NotAnObject,
        unknown: Vec::new(),
    });

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Body {
            shape: Shape::NotAnObject,
            unknown: Vec::new(),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut shape = Shape::Missing;
        let mut unknown = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "forms" && matches!(shape, Shape::Missing) {
                shape = map.next_value_seed(FormsSeed {
                    absolute_max: self.absolute_max,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
                if key != "forms" {
                    unknown.push(key.into_owned());
                }
            }
        }
        Ok(Body { shape, unknown })
    }
}

struct FormsSeed {
    absolute_max: usize,
}

impl<'de> DeserializeSeed<'de> for FormsSeed {
    type Value = Shape;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Shape, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FormsSeed {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of forms")
    }

    refuse_scalars!(Shape::NotAList);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Shape::NotAList)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        // Grows with what arrives (never from a size hint), and stops at `absolute_max`.
        let mut kept = Vec::new();
        while kept.len() < self.absolute_max {
            match seq.next_element::<Value>()? {
                Some(form) => kept.push(form),
                None => {
                    let total = kept.len();
                    return Ok(Shape::Forms { kept, total });
                }
            }
        }
        // The rest is parsed (the JSON must stay well-formed) but not stored.
        let mut total = kept.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            total += 1;
        }
        Ok(Shape::Forms { kept, total })
    }
}

/// One form of a formset, its markers taken out.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its position in the submitted list.
    pub(crate) index: usize,
    /// The form's data without `_delete` and `_order` (`None` when it is not an object).
    pub(crate) data: Option<Map<String, Value>>,
    pub(crate) deleted: bool,
    pub(crate) order: Option<u64>,
}

/// Takes the markers out of each form and checks them and the counts. Returns the forms and
/// the issues of the formset itself (paths start with `forms`).
pub(crate) fn sort_out(
    options: &FormsetOptions,
    body: Body,
) -> (Vec<Entry>, Vec<Issue>, Vec<Issue>) {
    let mut formset_issues = Vec::new();
    for key in body.unknown {
        formset_issues.push(Issue::standard("unknown_field", Map::new()).at(key));
    }
    let (kept, total) = match body.shape {
        Shape::NotAnObject => {
            formset_issues.push(Issue::standard("invalid_type", param("expected", "object")));
            return (Vec::new(), formset_issues, Vec::new());
        }
        Shape::Missing => {
            formset_issues.push(Issue::standard("required", Map::new()).at("forms"));
            return (Vec::new(), formset_issues, Vec::new());
        }
        Shape::NotAList => {
            formset_issues
                .push(Issue::standard("invalid_type", param("expected", "array")).at("forms"));
            return (Vec::new(), formset_issues, Vec::new());
        }
        Shape::Forms { kept, total } => (kept, total),
    };
    let absolute_max = options.absolute_max();
    if total > absolute_max {
        formset_issues
            .push(Issue::standard("too_many_forms", param("max", absolute_max as u64)).at("forms"));
        return (Vec::new(), formset_issues, Vec::new());
    }

    let mut marker_issues = Vec::new();
    let mut entries = Vec::with_capacity(kept.len());
    for (index, form) in kept.into_iter().enumerate() {
        let at = |issue: Issue, field: &str| issue.at("forms").at(index).at(field);
        let Value::Object(mut data) = form else {
            marker_issues.push(
                Issue::standard("invalid_type", param("expected", "object"))
                    .at("forms")
                    .at(index),
            );
            entries.push(Entry {
                index,
                data: None,
                deleted: false,
                order: None,
            });
            continue;
        };
        let mut deleted = false;
        if let Some(flag) = data.remove(DELETE_FIELD) {
            match flag {
                _ if !options.can_delete => marker_issues.push(at(
                    Issue::standard("unknown_field", Map::new()),
                    DELETE_FIELD,
                )),
                Value::Bool(flag) => deleted = flag,
                Value::Null => {}
                _ => marker_issues.push(at(
                    Issue::standard("invalid_type", param("expected", "boolean")),
                    DELETE_FIELD,
                )),
            }
        }
        let mut order = None;
        if let Some(position) = data.remove(ORDER_FIELD) {
            match position {
                _ if !options.can_order => marker_issues.push(at(
                    Issue::standard("unknown_field", Map::new()),
                    ORDER_FIELD,
                )),
                Value::Null => {}
                Value::Number(n) if n.is_u64() => order = n.as_u64(),
                Value::Number(n) if n.is_i64() => marker_issues.push(at(
                    Issue::standard("min_value", param("min", 0)),
                    ORDER_FIELD,
                )),
                _ => marker_issues.push(at(
                    Issue::standard("invalid_type", param("expected", "integer")),
                    ORDER_FIELD,
                )),
            }
        }
        entries.push(Entry {
            index,
            data: Some(data),
            deleted,
            order,
        });
    }

    let mut seen: HashMap<u64, usize> = HashMap::new();
    for entry in entries.iter().filter(|e| !e.deleted) {
        if let Some(order) = entry.order {
            if seen.insert(order, entry.index).is_some() {
                marker_issues.push(
                    Issue::standard("duplicate_order", Map::new())
                        .at("forms")
                        .at(entry.index)
                        .at(ORDER_FIELD),
                );
            }
        }
    }

    let active = entries.iter().filter(|e| !e.deleted).count();
    if active < options.min_num {
        formset_issues.push(
            Issue::standard("too_few_forms", param("min", options.min_num as u64)).at("forms"),
        );
    }
    if let Some(max) = options.max_num.filter(|max| active > *max) {
        formset_issues
            .push(Issue::standard("too_many_forms", param("max", max as u64)).at("forms"));
    }
    (entries, formset_issues, marker_issues)
}

/// The path of the form at `index`: `["forms", index]`.
pub(crate) fn form_path(index: usize) -> [PathSegment; 2] {
    [
        PathSegment::Key("forms".to_owned()),
        PathSegment::Index(index),
    ]
}

/// A list of forms of type `F`, as a function argument: `lines: Formset<OrderLine>`.
///
/// It decodes from `{"forms": [{...}, ...]}` with the options of
/// [`F::formset_options`](Form::formset_options): forms marked `"_delete": true` are set apart
/// in [`deleted`](Formset::deleted), the others are in [`forms`](Formset::forms), sorted by
/// `_order` when ordering is on (forms without `_order` keep their place after the ordered
/// ones). Decoding reads at most `absolute_max` forms and fails beyond that.
///
/// Decoding checks the shape, the markers and the counts (`min_num`, `max_num`), and fails on
/// the first problem; it does not run the form's rules. The validation of the form spec
/// ([`FormSpec::validate`](super::FormSpec::validate)) does that, and reports every issue,
/// before the function is called.
pub struct Formset<F> {
    forms: Vec<F>,
    deleted: Vec<Map<String, Value>>,
}

impl<F> Formset<F> {
    /// A formset holding these forms (for tests and direct calls).
    pub fn new(forms: Vec<F>) -> Self {
        Self {
            forms,
            deleted: Vec::new(),
        }
    }

    /// The forms that were not deleted, in order.
    pub fn forms(&self) -> &[F] {
        &self.forms
    }

    /// Takes the forms out.
    pub fn into_forms(self) -> Vec<F> {
        self.forms
    }

    /// The data of the forms marked `"_delete": true`, as sent (they were not validated).
    pub fn deleted(&self) -> &[Map<String, Value>] {
        &self.deleted
    }

    /// The number of forms that were not deleted.
    pub fn len(&self) -> usize {
        self.forms.len()
    }

    /// Whether no form is left once deleted ones are set apart.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// The forms that were not deleted, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, F> {
        self.forms.iter()
    }
}

impl<F: fmt::Debug> fmt::Debug for Formset<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Formset")
            .field("forms", &self.forms)
            .field("deleted", &self.deleted.len())
            .finish()
    }
}

impl<F: Clone> Clone for Formset<F> {
    fn clone(&self) -> Self {
        Self {
            forms: self.forms.clone(),
            deleted: self.deleted.clone(),
        }
    }
}

impl<'a, F> IntoIterator for &'a Formset<F> {
    type Item = &'a F;
    type IntoIter = std::slice::Iter<'a, F>;
    fn into_iter(self) -> Self::IntoIter {
        self.forms.iter()
    }
}

impl<F> IntoIterator for Formset<F> {
    type Item = F;
    type IntoIter = std::vec::IntoIter<F>;
    fn into_iter(self) -> Self::IntoIter {
        self.forms.into_iter()
    }
}

impl<'de, F: Form> Deserialize<'de> for Formset<F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let options = F::formset_options();
        let body = BodySeed {
            absolute_max: options.absolute_max(),
        }
        .deserialize(deserializer)?;
        let (entries, formset_issues, marker_issues) = sort_out(&options, body);
        if let Some(issue) = formset_issues.first().or(marker_issues.first()) {
            return Err(de::Error::custom(format_args!(
                "{} at {}",
                issue.message(),
                issue.dotted_path()
            )));
        }
        let mut active: Vec<(Option<u64>, usize, Map<String, Value>)> = Vec::new();
        let mut deleted = Vec::new();
        for entry in entries {
            let Some(data) = entry.data else { continue };
            if entry.deleted {
                deleted.push(data);
            } else {
                active.push((entry.order, entry.index, data));
            }
        }
        // Ordered forms first by `_order`, then the others in their submitted order.
        active.sort_by_key(|(order, index, _)| (order.is_none(), *order, *index));
        let mut forms = Vec::with_capacity(active.len());
        for (_, index, data) in active {
            let form = F::deserialize(Value::Object(data)).map_err(|e| {
                de::Error::custom(format_args!("form {index}: {}", without_position(&e)))
            })?;
            forms.push(form);
        }
        Ok(Self { forms, deleted })
    }
}

fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    }
}

impl<F: Serialize> Serialize for Formset<F> {
    /// `{"forms": [...]}`: the kept forms in order, then the deleted ones with
    /// `"_delete": true`, so the value decodes back to the same formset.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Forms<'a, F>(&'a [F], &'a [Map<String, Value>]);
        impl<F: Serialize> Serialize for Forms<'_, F> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = serializer.serialize_seq(Some(self.0.len() + self.1.len()))?;
                for form in self.0 {
                    seq.serialize_element(form)?;
                }
                for data in self.1 {
                    seq.serialize_element(&Deleted(data))?;
                }
                seq.end()
            }
        }
        struct Deleted<'a>(&'a Map<String, Value>);
        impl Serialize for Deleted<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len() + 1))?;
                for (key, value) in self.0 {
                    map.serialize_entry(key, value)?;
                }
                map.serialize_entry(DELETE_FIELD, &true)?;
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("forms", &Forms(&self.forms, &self.deleted))?;
        map.end()
    }
}

impl<F: Form> JsonSchema for Formset<F> {
    fn schema_name() -> Cow<'static, str> {
        format!("Formset_{}", F::schema_name()).into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("mizan_core::form::Formset<{}>", F::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let options = F::formset_options();
        let item = generator.subschema_for::<F>();
        schemars::json_schema!({
            "type": "object",
            "properties": {
                "forms": {
                    "type": "array",
                    "items": item,
                    "maxItems": options.absolute_max(),
                }
            },
            "required": ["forms"],
        })
    }
}
