//! The names of a struct's fields in declaration order, as serde sees them.
//!
//! The JSON Schema of a struct keeps its properties in a map sorted by name (`serde_json` is
//! built without `preserve_order` here), so the order of declaration comes from serde instead:
//! a derived `Deserialize` hands `deserialize_struct` the list of its (renamed) field names, in
//! order. This deserializer records that list and stops.

use std::fmt;

use serde::de::{self, Deserialize, Visitor};

/// The wire names of `T`'s fields in declaration order, or `None` when `T` is not a struct with
/// named fields (or flattens another struct, which hides the list from serde).
///
/// The list may also hold the `#[serde(alias)]` names; callers keep only the names that the
/// schema knows.
pub(crate) fn declared_fields<'de, T: Deserialize<'de>>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    // The deserializer always fails (it has no data); it only records the field list.
    let _ = T::deserialize(FieldNames {
        fields: &mut fields,
    });
    fields
}

struct FieldNames<'a> {
    fields: &'a mut Option<&'static [&'static str]>,
}

#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.fields = Some(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::declared_fields;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Signup {
        zeta: String,
        #[serde(rename = "alpha")]
        first: String,
        middle: Option<u8>,
    }

    #[test]
    fn keeps_the_declaration_order_and_the_wire_names() {
        assert_eq!(
            declared_fields::<Signup>(),
            Some(&["zeta", "alpha", "middle"][..])
        );
    }

    #[test]
    fn a_non_struct_has_no_field_list() {
        assert_eq!(declared_fields::<Vec<u8>>(), None);
        assert_eq!(declared_fields::<String>(), None);
    }
}
