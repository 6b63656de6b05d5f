//! From the JSON Schemas that `schemars` derives to IR types.

use std::collections::BTreeMap;

use schemars::{generate::SchemaSettings, Schema, SchemaGenerator};
use serde_json::{Map, Value};

use super::{Field, TypeDef, TypeExpr};

/// How a declared type describes itself: `|g| g.subschema_for::<T>()`.
pub(crate) type Describe = fn(&mut SchemaGenerator) -> Schema;

/// The describer of `T`, for parameters and results.
pub(crate) fn describer<T: schemars::JsonSchema>() -> Describe {
    |generator| generator.subschema_for::<T>()
}

/// Collects type expressions for every described type, and the named definitions they use.
pub(crate) struct SchemaCollector {
    generator: SchemaGenerator,
}

impl SchemaCollector {
    pub(crate) fn new() -> Self {
        Self {
            generator: SchemaGenerator::new(SchemaSettings::draft2020_12()),
        }
    }

    /// The wire type of a described Rust type.
    pub(crate) fn describe(&mut self, describe: Describe) -> TypeExpr {
        let schema = describe(&mut self.generator);
        expr(schema.as_value())
    }

    /// The fields of a described struct (none for anything else).
    pub(crate) fn struct_fields(&mut self, describe: Describe) -> Vec<Field> {
        let schema = describe(&mut self.generator);
        let resolved = match expr(schema.as_value()) {
            TypeExpr::Named(name) => self.generator.definitions().get(&name).map(definition),
            other => Some(TypeDef::Alias(other)),
        };
        match resolved {
            Some(TypeDef::Struct(fields)) => fields,
            Some(TypeDef::Alias(TypeExpr::Object(fields))) => fields,
            _ => Vec::new(),
        }
    }

    /// The named types met so far.
    pub(crate) fn finish(self) -> BTreeMap<String, TypeDef> {
        self.generator
            .definitions()
            .iter()
            .map(|(name, schema)| (name.clone(), definition(schema)))
            .collect()
    }
}

/// A schema as a type expression.
pub(crate) fn expr(schema: &Value) -> TypeExpr {
    let Value::Object(object) = schema else {
        return TypeExpr::Any;
    };
    if object.contains_key(crate::upload::SCHEMA_MARKER) {
        return TypeExpr::Upload;
    }
    if let Some(Value::String(reference)) = object.get("$ref") {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return TypeExpr::Named(name.to_owned());
    }
    if let Some(Value::String(value)) = object.get("const") {
        return TypeExpr::Literal(value.clone());
    }
    if let Some(Value::Array(values)) = object.get("enum") {
        if let [Value::String(value)] = values.as_slice() {
            return TypeExpr::Literal(value.clone());
        }
        if values.iter().all(Value::is_string) && values.len() > 1 {
            // An inline string enum: the IR names enums, so it travels as a string.
            return TypeExpr::String;
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(variants)) = object.get(key) {
            let variants: Vec<TypeExpr> = variants.iter().map(expr).collect();
            return optional_or(variants, TypeExpr::Any);
        }
    }
    match object.get("type") {
        Some(Value::String(ty)) => typed(ty, object),
        Some(Value::Array(types)) => {
            let variants: Vec<TypeExpr> = types
                .iter()
                .filter_map(Value::as_str)
                .map(|ty| {
                    if ty == "null" {
                        TypeExpr::Null
                    } else {
                        typed(ty, object)
                    }
                })
                .collect();
            optional_or(variants, TypeExpr::Any)
        }
        _ => TypeExpr::Any,
    }
}

/// `[T, null]` (either order) is `option<T>`; one variant is itself; anything else `fallback`.
fn optional_or(mut variants: Vec<TypeExpr>, fallback: TypeExpr) -> TypeExpr {
    let had_null = variants.len();
    variants.retain(|v| *v != TypeExpr::Null);
    let nullable = variants.len() < had_null;
    let inner = match variants.len() {
        0 => return TypeExpr::Null,
        1 => variants.pop().unwrap_or(TypeExpr::Any),
        _ => fallback,
    };
    if nullable {
        TypeExpr::Optional(Box::new(inner))
    } else {
        inner
    }
}

fn typed(ty: &str, object: &Map<String, Value>) -> TypeExpr {
    match ty {
        "boolean" => TypeExpr::Bool,
        "string" => TypeExpr::String,
        "null" => TypeExpr::Null,
        "number" => TypeExpr::Float,
        "integer" => integer(object),
        "array" => match (object.get("prefixItems"), object.get("items")) {
            (Some(Value::Array(items)), _) => TypeExpr::Tuple(items.iter().map(expr).collect()),
            (_, Some(items)) => TypeExpr::List(Box::new(expr(items))),
            _ => TypeExpr::List(Box::new(TypeExpr::Any)),
        },
        "object" => match object.get("properties") {
            Some(Value::Object(_)) => TypeExpr::Object(fields(object)),
            _ => TypeExpr::Map(Box::new(
                object
                    .get("additionalProperties")
                    .map_or(TypeExpr::Any, expr),
            )),
        },
        _ => TypeExpr::Any,
    }
}

/// Integers by `format` (`int8` … `uint128`, `int`/`uint` for `isize`/`usize`).
fn integer(object: &Map<String, Value>) -> TypeExpr {
    let format = object
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("int64");
    let signed = !format.starts_with('u');
    let digits = format.trim_start_matches('u').trim_start_matches("int");
    let bits = digits.parse::<u8>().unwrap_or(64);
    TypeExpr::Int { bits, signed }
}

fn fields(object: &Map<String, Value>) -> Vec<Field> {
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(Value::Object(properties)) = object.get("properties") else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, schema)| Field {
            name: name.clone(),
            ty: expr(schema),
            optional: !required.contains(&name.as_str()),
        })
        .collect()
}

/// A named definition.
fn definition(schema: &Value) -> TypeDef {
    let Value::Object(object) = schema else {
        return TypeDef::Alias(TypeExpr::Any);
    };
    if let Some(Value::Array(values)) = object.get("enum") {
        if values.len() > 1 && values.iter().all(Value::is_string) {
            return TypeDef::Enum(
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            );
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(variants)) = object.get(key) {
            let variants: Vec<TypeExpr> = variants.iter().map(expr).collect();
            if variants.iter().all(|v| matches!(v, TypeExpr::Literal(_))) {
                let values = variants
                    .into_iter()
                    .filter_map(|v| match v {
                        TypeExpr::Literal(value) => Some(value),
                        _ => None,
                    })
                    .collect();
                return TypeDef::Enum(values);
            }
            return TypeDef::Union(variants);
        }
    }
    match expr(schema) {
        TypeExpr::Object(fields) => TypeDef::Struct(fields),
        other => TypeDef::Alias(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn primitives_containers_and_options() {
        let int = |format: &str| expr(&json!({"type": "integer", "format": format}));
        assert_eq!(
            int("int64"),
            TypeExpr::Int {
                bits: 64,
                signed: true
            }
        );
        assert_eq!(
            int("uint32"),
            TypeExpr::Int {
                bits: 32,
                signed: false
            }
        );
        assert_eq!(
            int("uint"),
            TypeExpr::Int {
                bits: 64,
                signed: false
            }
        );
        assert_eq!(
            expr(&json!({"type": "array", "items": {"$ref": "#/$defs/Item"}})).spelling(),
            "list<Item>"
        );
        assert_eq!(
            expr(&json!({"type": ["string", "null"]})).spelling(),
            "option<string>"
        );
        assert_eq!(
            expr(&json!({"anyOf": [{"$ref": "#/$defs/P"}, {"type": "null"}]})).spelling(),
            "option<P>"
        );
        assert_eq!(
            expr(&json!({"type": "object", "additionalProperties": {"type": "number", "format": "double"}})).spelling(),
            "map<f64>"
        );
        assert_eq!(expr(&json!(true)), TypeExpr::Any);
        assert_eq!(expr(&json!({"type": "null"})), TypeExpr::Null);
    }

    #[test]
    fn definitions_become_structs_enums_and_unions() {
        let def = definition(&json!({
            "type": "object",
            "properties": {"id": {"type": "integer", "format": "int64"}, "nick": {"type": ["string", "null"]}},
            "required": ["id"],
        }));
        assert_eq!(
            def,
            TypeDef::Struct(vec![
                Field {
                    name: "id".into(),
                    ty: TypeExpr::Int {
                        bits: 64,
                        signed: true
                    },
                    optional: false
                },
                Field {
                    name: "nick".into(),
                    ty: TypeExpr::Optional(Box::new(TypeExpr::String)),
                    optional: true
                },
            ])
        );
        assert_eq!(
            definition(&json!({"type": "string", "enum": ["a", "b"]})),
            TypeDef::Enum(vec!["a".into(), "b".into()])
        );
        let union = definition(
            &json!({"oneOf": [{"const": "unit"}, {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]}]}),
        );
        assert!(
            matches!(union, TypeDef::Union(ref v) if v.len() == 2),
            "{union:?}"
        );
    }
}
