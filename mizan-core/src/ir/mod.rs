//! The IR: one canonical KDL document describing every public function and every named type it
//! uses, from which typed clients are generated. The format is documented in `docs/IR.md`.
//!
//! The IR describes the wire, not the Rust types: a field that serde skips when `None` is
//! optional; an `i64` is a JSON number that may exceed 2^53 (marked `i64`, see the docs for the
//! TypeScript mapping).

mod kdl;
pub(crate) mod schema;
pub mod typescript;

use std::collections::BTreeMap;

pub use self::kdl::to_kdl;

/// A type as it travels over the wire.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TypeExpr {
    /// `true` / `false`.
    Bool,
    /// An integer; `bits` is 8 to 128, `signed` says whether it can be negative.
    Int {
        /// Width in bits.
        bits: u8,
        /// Signedness.
        signed: bool,
    },
    /// A floating-point number.
    Float,
    /// A string.
    String,
    /// `null` (Rust's `()`).
    Null,
    /// Any JSON value.
    Any,
    /// An array.
    List(Box<TypeExpr>),
    /// An object with string keys and values of one type.
    Map(Box<TypeExpr>),
    /// The value or `null`.
    Optional(Box<TypeExpr>),
    /// A fixed-length array.
    Tuple(Vec<TypeExpr>),
    /// A named type, defined in [`Ir::types`].
    Named(String),
    /// Exactly this string (a unit enum variant, a tag).
    Literal(String),
    /// An object with these fields (an enum variant's payload).
    Object(Vec<Field>),
    /// A file, sent as a multipart part (a Rust `Upload`).
    Upload,
}

impl TypeExpr {
    /// The IR spelling: `i64`, `string`, `list<Item>`, `option<map<f64>>`, `Profile`, ...
    /// Inline objects and literals have no spelling of their own (they appear as nodes).
    pub fn spelling(&self) -> String {
        match self {
            Self::Bool => "bool".into(),
            Self::Int { bits, signed } => format!("{}{bits}", if *signed { "i" } else { "u" }),
            Self::Float => "f64".into(),
            Self::String => "string".into(),
            Self::Null => "null".into(),
            Self::Any => "any".into(),
            Self::List(item) => format!("list<{}>", item.spelling()),
            Self::Map(value) => format!("map<{}>", value.spelling()),
            Self::Optional(inner) => format!("option<{}>", inner.spelling()),
            Self::Tuple(items) => {
                let items: Vec<String> = items.iter().map(Self::spelling).collect();
                format!("tuple<{}>", items.join(","))
            }
            Self::Named(name) => name.clone(),
            Self::Literal(value) => format!("literal<{value}>"),
            Self::Object(_) => "object".into(),
            Self::Upload => "upload".into(),
        }
    }
}

/// A field of a struct or inline object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Field {
    /// The wire name.
    pub name: String,
    /// Its type.
    pub ty: TypeExpr,
    /// Whether it may be absent.
    pub optional: bool,
}

/// A named type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDef {
    /// An object with named fields.
    Struct(Vec<Field>),
    /// One of these strings.
    Enum(Vec<String>),
    /// One of these shapes (serde's tagged and untagged enums).
    Union(Vec<TypeExpr>),
    /// Another name for a type.
    Alias(TypeExpr),
}

/// What a function is to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// A member of a context bundle (`fetchXxx`).
    Query,
    /// A function with `affects` (`callXxx`, then refetch).
    Mutation,
    /// Neither (`callXxx`).
    Standalone,
}

impl FunctionKind {
    /// The IR spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
            Self::Standalone => "standalone",
        }
    }
}

/// An argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The wire name.
    pub name: String,
    /// Its type.
    pub ty: TypeExpr,
    /// Whether it may be omitted.
    pub optional: bool,
}

/// A public function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrFunction {
    /// Its name.
    pub name: String,
    /// Query, mutation or standalone.
    pub kind: FunctionKind,
    /// Its context (queries).
    pub context: Option<String>,
    /// Its arguments, in declaration order.
    pub args: Vec<Arg>,
    /// What it returns.
    pub returns: TypeExpr,
    /// What it invalidates, resolved: `(context, function)` per target, as declared.
    pub affects: Vec<Affects>,
    /// Its guard (`required`, `staff`, `superuser`, `predicate`).
    pub auth: Option<String>,
    /// The transports it can be called on (`http`, `websocket`).
    pub transports: Vec<String>,
    /// Arguments that hold file uploads, in declaration order.
    pub uploads: Vec<String>,
    /// The form it submits, if any.
    pub form: Option<IrForm>,
}

/// The form a function submits: `form/<name>/` serves its schema (with each field's
/// constraints) and validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrForm {
    /// The form's name.
    pub name: String,
    /// For a formset: the argument that holds it, and its counts and options.
    pub formset: Option<IrFormset>,
}

/// A formset argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrFormset {
    /// The argument.
    pub arg: String,
    /// Fewest forms (not counting deleted ones).
    pub min_num: usize,
    /// Most forms (not counting deleted ones), if bounded.
    pub max_num: Option<usize>,
    /// Past this many forms the body is refused without reading them.
    pub absolute_max: usize,
    /// Whether forms may carry `"_delete": true`.
    pub can_delete: bool,
    /// Whether forms may carry `"_order": n`.
    pub can_order: bool,
    /// Empty forms a frontend shows beyond the data.
    pub extra: usize,
}

/// One `affects` target of a mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affects {
    /// The context.
    pub context: String,
    /// The function, for a function-level target.
    pub function: Option<String>,
}

/// The whole IR: public functions (sorted by name) and the named types they use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ir {
    /// Public functions, sorted by name.
    pub functions: Vec<IrFunction>,
    /// Named types, sorted by name.
    pub types: BTreeMap<String, TypeDef>,
    /// Every context with a bundle: name → the params its bundle takes, with types.
    pub contexts: BTreeMap<String, Vec<Arg>>,
}
