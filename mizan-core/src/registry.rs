//! Function definitions: what `#[client(...)]` produces, and the builder to write them by hand.
//!
//! A [`Function`] is a name, its options (context or affects, guard, route, cache hints, ...),
//! its declared parameters, and a handler. The `#[client]` macro writes one for each function it
//! marks; [`Function::new`] writes one without the macro:
//!
//! ```
//! use mizan_core::{ApiError, Function, Mizan, Request};
//!
//! let profile = Function::new("user_profile")
//!     .with_context("user")
//!     .with_param::<i64>("user_id")
//!     .handler(|_req: Request, mut args| async move {
//!         let user_id: i64 = args.take("user_id")?;
//!         Ok::<_, ApiError>(serde_json::json!({ "id": user_id }))
//!     });
//! let app = Mizan::builder().with_function(profile).build().unwrap();
//! # let _ = app;
//! ```
//!
//! Validation happens when the app is built ([`MizanBuilder::build`](crate::MizanBuilder::build)),
//! never at the first request.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::form::{Form, FormError, FormSpec};
use crate::ir::schema::{describer, Describe};
use crate::request::Request;
use crate::transport::RawArgs;
use crate::upload::{schema_has_upload, UploadLimits, UploadTable};

/// A boxed, sendable future, as stored handlers return.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// A stored data handler: it converts the call's [`Inputs`] (recording every bad argument in
/// them, and giving no future when there is one) and returns the future that runs the function
/// and appends its result, as JSON, to the buffer it was given.
type DataFn = dyn Fn(Request, &mut Inputs<'_>, Vec<u8>) -> Option<BoxFuture<Result<Vec<u8>, ApiError>>>
    + Send
    + Sync;
type ViewFn =
    dyn Fn(Request, Args) -> BoxFuture<Result<http::Response<Bytes>, ApiError>> + Send + Sync;

/// The stored handler: data for RPC and bundles, or a whole response for view paths.
#[derive(Clone)]
pub(crate) enum Handler {
    Data(Arc<DataFn>),
    View(Arc<ViewFn>),
}

/// Implemented by the hidden type `#[client]` generates for each function, so that
/// `builder.register::<my_function>()` finds its definition.
pub trait ClientFunction {
    /// The function's definition.
    fn function() -> Function;
}

/// What a data function returns: `Result<T, E>` with `T: Serialize` and `E: Into<ApiError>`.
#[diagnostic::on_unimplemented(
    message = "a Mizan function returns `Result<T, E>` where `T: Serialize + JsonSchema` and `E: Into<ApiError>`",
    label = "`{Self}` is not such a `Result`"
)]
pub trait IntoData {
    /// The serializable result, which describes its shape for the IR.
    type Data: Serialize + JsonSchema;
    /// Splits into the result or the wire error.
    fn into_data(self) -> Result<Self::Data, ApiError>;
}

impl<T: Serialize + JsonSchema, E: Into<ApiError>> IntoData for Result<T, E> {
    type Data = T;
    fn into_data(self) -> Result<T, ApiError> {
        self.map_err(Into::into)
    }
}

/// What a view-path function returns: an `http::Response`, or a `Result` of one.
#[diagnostic::on_unimplemented(
    message = "a view-path function returns `http::Response<B>` or `Result<http::Response<B>, E>` with `B: Into<Bytes>`",
    label = "`{Self}` is not a response"
)]
pub trait IntoView {
    /// The response, or the wire error.
    fn into_view(self) -> Result<http::Response<Bytes>, ApiError>;
}

impl<B: Into<Bytes>> IntoView for http::Response<B> {
    fn into_view(self) -> Result<http::Response<Bytes>, ApiError> {
        Ok(self.map(Into::into))
    }
}

impl<B: Into<Bytes>, E: Into<ApiError>> IntoView for Result<http::Response<B>, E> {
    fn into_view(self) -> Result<http::Response<Bytes>, ApiError> {
        self.map(|r| r.map(Into::into)).map_err(Into::into)
    }
}

/// An argument as it arrives, before it is converted to the declared type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RawArg<'a> {
    /// Not sent.
    Missing,
    /// JSON text from a call envelope (`call/`): converted strictly.
    Json(&'a str),
    /// From a query string or route segment: `"5"` converts to `5i64`.
    Text(&'a str),
}

type Normalize = fn(RawArg<'_>) -> Result<Value, String>;

/// Converts a raw argument to `T`. The error is what `details.fields` says of the argument.
fn decode<T: DeserializeOwned>(raw: RawArg<'_>) -> Result<T, String> {
    match raw {
        RawArg::Missing => {
            T::deserialize(Value::Null).map_err(|_| "missing required argument".to_owned())
        }
        RawArg::Json(text) => serde_json::from_str(text).map_err(|e| without_position(&e)),
        // A number or a boolean never converts from a string: its text is read as JSON
        // first, and the string reading runs only for the error message when that fails.
        RawArg::Text(text) if never_from_string::<T>() => serde_json::from_str(text)
            .or_else(|_| T::deserialize(Value::String(text.to_owned())).map_err(|e| e.to_string())),
        RawArg::Text(text) => match T::deserialize(Value::String(text.to_owned())) {
            Ok(typed) => Ok(typed),
            Err(as_string) => serde_json::from_str(text).map_err(|_| as_string.to_string()),
        },
    }
}

/// Whether `T` is a primitive number or `bool`, or an `Option` of one: a type that a JSON
/// string never converts to. (`type_name` names exactly these types so; any other type takes
/// the general path, which tries the string first.)
fn never_from_string<T>() -> bool {
    const SCALARS: [&str; 15] = [
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
        "f32", "f64", "bool",
    ];
    let name = std::any::type_name::<T>();
    let inner = name
        .strip_prefix("core::option::Option<")
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(name);
    SCALARS.contains(&inner)
}

/// Converts a raw argument to `T` and back to JSON: the canonical value that cache keys and
/// invalidation scoping read (so that `"5"` from a query and `5` from a call agree), and what
/// [`Args`] hands to builder handlers.
fn normalize<T: DeserializeOwned + Serialize>(raw: RawArg<'_>) -> Result<Value, String> {
    serde_json::to_value(decode::<T>(raw)?).map_err(|e| e.to_string())
}

/// serde_json's message without its " at line 1 column N" (meaningless for one argument).
fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    message
        .strip_suffix(&suffix)
        .map_or_else(|| message.clone(), str::to_owned)
}

/// A declared parameter: its wire name and how to convert what arrives into its type.
#[derive(Clone)]
pub struct Param {
    name: Cow<'static, str>,
    normalize: Normalize,
    describe: Describe,
    optional: bool,
    uploads: bool,
}

impl Param {
    /// A parameter named `name` of type `T` (an `Option<_>` makes it optional).
    pub fn new<T: DeserializeOwned + Serialize + JsonSchema>(
        name: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            name: name.into(),
            normalize: normalize::<T>,
            describe: describer::<T>(),
            optional: normalize::<T>(RawArg::Missing).is_ok(),
            uploads: {
                let mut generator = schemars::SchemaGenerator::default();
                let schema = generator.subschema_for::<T>();
                schema_has_upload(schema.as_value())
                    || generator.definitions().values().any(schema_has_upload)
            },
        }
    }

    /// The wire name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the parameter may be omitted.
    pub fn is_optional(&self) -> bool {
        self.optional
    }

    /// Whether the parameter's type holds an [`Upload`](crate::Upload) (itself, in an
    /// `Option` or a `Vec`, or as a field).
    pub fn takes_uploads(&self) -> bool {
        self.uploads
    }

    pub(crate) fn normalize(&self, raw: RawArg<'_>) -> Result<Value, String> {
        (self.normalize)(raw)
    }

    /// Whether `other` surely converts its input exactly as this parameter does (same name,
    /// same conversion function, hence same type): a context fetch then converts a query
    /// parameter once for all its functions. (Two copies of one function may have different
    /// addresses; that only costs a second conversion.)
    pub(crate) fn same_conversion(&self, other: &Param) -> bool {
        self.name == other.name && self.normalize as usize == other.normalize as usize
    }

    pub(crate) fn describer(&self) -> Describe {
        self.describe
    }
}

impl fmt::Debug for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Param")
            .field("name", &self.name)
            .field("optional", &self.optional)
            .field("uploads", &self.uploads)
            .finish()
    }
}

/// The arguments a handler receives, already converted to their declared types and back to
/// JSON; [`Args::take`] deserializes one.
#[derive(Debug, Clone, Default)]
pub struct Args {
    values: Map<String, Value>,
    uploads: Option<Arc<UploadTable>>,
}

impl Args {
    pub(crate) fn new(values: Map<String, Value>) -> Self {
        Self {
            values,
            uploads: None,
        }
    }

    pub(crate) fn with_uploads(mut self, uploads: Option<Arc<UploadTable>>) -> Self {
        self.uploads = uploads;
        self
    }

    /// Removes the argument `name` and deserializes it (a missing one reads as `null`, which
    /// an `Option` accepts). An [`Upload`](crate::Upload) argument resolves to the file its
    /// part carried.
    pub fn take<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, ApiError> {
        let value = self.values.remove(name).unwrap_or(Value::Null);
        let typed = match &self.uploads {
            Some(uploads) => uploads.scope(|| T::deserialize(value)).0,
            None => T::deserialize(value),
        };
        typed.map_err(|e| {
            ApiError::bad_request(format!("invalid argument {name:?}"))
                .with_details(serde_json::json!({ "fields": { name: e.to_string() } }))
        })
    }

    /// The argument `name` as JSON, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }
}

/// Where the arguments of one call come from, before conversion.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// A call envelope's `args` (`call/`, the socket, IPC): JSON, converted strictly; names
    /// that the function does not declare are refused before.
    Json(&'a RawArgs<'a>),
    /// A query string or route segments: `"5"` converts to `5i64`; the first occurrence of a
    /// name wins.
    Text(&'a [(String, String)]),
    /// A whole form's data (the JSON of the envelope's `args`), under [`FORM_ARG`].
    Form(&'a str),
}

impl<'a> Source<'a> {
    /// The argument `name` as it arrived.
    pub(crate) fn raw(&self, name: &str) -> RawArg<'a> {
        match *self {
            Self::Json(args) => args
                .get(name)
                .map_or(RawArg::Missing, |raw| RawArg::Json(raw.get())),
            Self::Text(pairs) => pairs
                .iter()
                .find(|(n, _)| n == name)
                .map_or(RawArg::Missing, |(_, v)| RawArg::Text(v)),
            Self::Form(data) if name == FORM_ARG => RawArg::Json(data),
            Self::Form(_) => RawArg::Missing,
        }
    }
}

/// The arguments of one call as they arrived, which a handler converts to its parameters'
/// types: each one straight from its JSON or text into the type, with no JSON value in
/// between. Every argument that does not convert is recorded (the call is then refused with
/// `400 bad_request` naming each of them) and the handler gives no future.
///
/// Functions marked `#[client]` take their arguments through [`arg`](Self::arg); handlers
/// written with [`FunctionBuilder::handler`] receive [`Args`] instead.
#[doc(hidden)]
pub struct Inputs<'a> {
    params: &'a [Param],
    source: Source<'a>,
    problems: &'a mut Map<String, Value>,
    uploads: Option<&'a Arc<UploadTable>>,
}

impl fmt::Debug for Inputs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inputs")
            .field("source", &self.source)
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

impl<'a> Inputs<'a> {
    pub(crate) fn new(
        params: &'a [Param],
        source: Source<'a>,
        problems: &'a mut Map<String, Value>,
        uploads: Option<&'a Arc<UploadTable>>,
    ) -> Self {
        Self {
            params,
            source,
            problems,
            uploads,
        }
    }

    /// Converts the argument `name` to `T` (a missing one reads as `null`, which an `Option`
    /// accepts). `None` when it does not convert: the problem is recorded under `name`.
    pub fn arg<T: DeserializeOwned>(&mut self, name: &str) -> Option<T> {
        match decode::<T>(self.source.raw(name)) {
            Ok(value) => Some(value),
            Err(problem) => {
                self.problems.insert(name.to_owned(), Value::from(problem));
                None
            }
        }
    }

    /// Every declared parameter, converted to its type and back to JSON, as [`Args`] (a whole
    /// form: its data under [`FORM_ARG`]). `None` when one does not convert.
    pub(crate) fn convert_all(&mut self) -> Option<Args> {
        let mut values = Map::new();
        if let Source::Form(data) = self.source {
            match serde_json::from_str(data) {
                Ok(form) => values.insert(FORM_ARG.to_owned(), form),
                Err(e) => self
                    .problems
                    .insert(FORM_ARG.to_owned(), Value::from(without_position(&e))),
            };
        }
        for param in self.params {
            match param.normalize(self.source.raw(param.name())) {
                Ok(value) => {
                    values.insert(param.name().to_owned(), value);
                }
                Err(problem) => {
                    self.problems
                        .insert(param.name().to_owned(), Value::from(problem));
                }
            }
        }
        let uploads = self.uploads.cloned();
        (self.problems.is_empty()).then(|| Args::new(values).with_uploads(uploads))
    }

    /// The canonical JSON value of each declared parameter that `wanted` accepts (a whole
    /// form: each field of its data), for invalidation scoping. Parameters that did not
    /// convert are left out: the call is refused anyway.
    pub(crate) fn canonical(&self, wanted: impl Fn(&str) -> bool) -> Map<String, Value> {
        if let Source::Form(data) = self.source {
            return serde_json::from_str(data).unwrap_or_default();
        }
        self.params
            .iter()
            .filter(|param| wanted(param.name()))
            .filter_map(|param| {
                let value = param.normalize(self.source.raw(param.name())).ok()?;
                Some((param.name().to_owned(), value))
            })
            .collect()
    }
}

/// Appends `data` as JSON to `out`.
fn write_data<T: Serialize>(mut out: Vec<u8>, data: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_writer(&mut out, data)?;
    Ok(out)
}

/// The `cache` hint of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CacheHint {
    /// No hint: the app's default TTL (24 h) applies.
    #[default]
    Default,
    /// `cache = N`: bundles containing the function live at most N seconds.
    Ttl(u64),
    /// `cache = false`: bundles containing the function are never stored.
    Never,
}

/// The options of a function, as declared.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spec {
    pub(crate) name: String,
    pub(crate) context: Option<String>,
    pub(crate) affects: Option<Vec<String>>,
    pub(crate) private: bool,
    pub(crate) route: Option<String>,
    pub(crate) methods: Vec<String>,
    pub(crate) auth: Option<Auth>,
    pub(crate) websocket: bool,
    pub(crate) rev: u32,
    pub(crate) cache: CacheHint,
    pub(crate) user_scoped: bool,
    pub(crate) params: Vec<Param>,
    pub(crate) upload_limits: Option<UploadLimits>,
    pub(crate) form: Option<FormDecl>,
}

/// The key under which a whole-form function's handler finds the form's data in its [`Args`].
pub const FORM_ARG: &str = "__form";

/// How a form is built when the app is (its errors are build errors).
type MakeForm = fn(String) -> Result<FormSpec, FormError>;

/// A function's form, as declared.
#[derive(Clone)]
pub(crate) struct FormDecl {
    pub(crate) name: String,
    pub(crate) make: MakeForm,
    pub(crate) kind: FormKind,
}

/// What a function's form covers.
#[derive(Debug, Clone)]
pub(crate) enum FormKind {
    /// The function's arguments are the form's fields; its handler receives the whole struct.
    Whole { describe: Describe },
    /// The argument `param` is a formset.
    Formset { param: String },
}

impl fmt::Debug for FormDecl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormDecl")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A function definition, ready to register on the app.
#[derive(Clone)]
pub struct Function {
    pub(crate) spec: Spec,
    pub(crate) handler: Handler,
    /// How the result describes itself (data functions).
    pub(crate) returns: Option<Describe>,
}

impl Function {
    /// Starts the definition of a function named `name`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: impl Into<String>) -> FunctionBuilder {
        FunctionBuilder {
            spec: Spec {
                name: name.into(),
                ..Spec::default()
            },
        }
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The context it belongs to, if it is a context function.
    pub fn context(&self) -> Option<&str> {
        self.spec.context.as_deref()
    }

    /// What it affects, as declared, if it is a mutation.
    pub fn affects(&self) -> &[String] {
        self.spec.affects.as_deref().unwrap_or_default()
    }

    /// Its declared parameters, in declaration order.
    pub fn params(&self) -> &[Param] {
        &self.spec.params
    }

    /// Its guard.
    pub fn auth(&self) -> Option<Auth> {
        self.spec.auth
    }

    /// Whether it has no RPC endpoint.
    pub fn is_private(&self) -> bool {
        self.spec.private
    }

    /// Whether it returns an `http::Response` (a view-path function).
    pub fn is_view(&self) -> bool {
        matches!(self.handler, Handler::View(_))
    }

    /// Its route, for view-path functions.
    pub fn route(&self) -> Option<&str> {
        self.spec.route.as_deref()
    }

    /// Whether it declares the WebSocket transport.
    pub fn is_websocket(&self) -> bool {
        self.spec.websocket
    }

    /// Its cache revision.
    pub fn rev(&self) -> u32 {
        self.spec.rev
    }

    /// Its cache hint.
    pub fn cache_hint(&self) -> CacheHint {
        self.spec.cache
    }

    /// Whether its results depend on who asks (`user_scoped`).
    pub fn is_user_scoped(&self) -> bool {
        self.spec.user_scoped
    }

    /// Whether any parameter holds an [`Upload`](crate::Upload).
    pub fn takes_uploads(&self) -> bool {
        self.spec.params.iter().any(Param::takes_uploads)
    }

    /// Its own upload limits, if it declared any (otherwise the app's apply).
    pub fn upload_limits(&self) -> Option<UploadLimits> {
        self.spec.upload_limits
    }

    /// The name of its form, if it is a form's submit.
    pub fn form_name(&self) -> Option<&str> {
        self.spec.form.as_ref().map(|form| form.name.as_str())
    }

    pub(crate) fn declares(&self, param: &str) -> bool {
        self.spec.params.iter().any(|p| p.name() == param)
    }
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("spec", &self.spec)
            .field("view", &self.is_view())
            .finish()
    }
}

/// Builds a [`Function`]; finish with [`handler`](Self::handler) (data) or
/// [`view`](Self::view) (a function returning an `http::Response`).
#[derive(Debug, Clone)]
#[must_use = "a function builder does nothing until `.handler(..)` or `.view(..)`"]
pub struct FunctionBuilder {
    spec: Spec,
}

impl FunctionBuilder {
    /// Places the function in the context `name` (bundled into `GET ctx/<name>/`).
    pub fn with_context(mut self, name: impl Into<String>) -> Self {
        self.spec.context = Some(name.into());
        self
    }

    /// Makes the function a mutation invalidating these contexts or context functions.
    pub fn with_affects<I, S>(mut self, targets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec.affects = Some(targets.into_iter().map(Into::into).collect());
        self
    }

    /// No RPC endpoint and no IR entry; still in the invalidation graph and the manifest.
    pub fn private(mut self) -> Self {
        self.spec.private = true;
        self
    }

    /// Serves a view-path function at this route (`/profile/{user_id}/`), outside the mount.
    pub fn with_route(mut self, route: impl Into<String>) -> Self {
        self.spec.route = Some(route.into());
        self
    }

    /// The HTTP methods of the route (default `GET` for context functions, `POST` otherwise).
    pub fn with_methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec.methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Guards the function.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.spec.auth = Some(auth);
        self
    }

    /// Declares the WebSocket transport.
    pub fn websocket(mut self) -> Self {
        self.spec.websocket = true;
        self
    }

    /// The cache revision: bump it to make cached bundles of its context unreachable.
    pub fn with_rev(mut self, rev: u32) -> Self {
        self.spec.rev = rev;
        self
    }

    /// Bundles containing the function are cached at most `seconds`.
    pub fn with_cache_ttl(mut self, seconds: u64) -> Self {
        self.spec.cache = CacheHint::Ttl(seconds);
        self
    }

    /// Bundles containing the function are never cached.
    pub fn no_cache(mut self) -> Self {
        self.spec.cache = CacheHint::Never;
        self
    }

    /// The function's results depend on who asks: its context's cache entries are per user.
    pub fn user_scoped(mut self) -> Self {
        self.spec.user_scoped = true;
        self
    }

    /// Limits for multipart calls of this function, instead of the app's
    /// [`Limits::uploads`](crate::Limits::uploads) (e.g. larger files for a video upload).
    /// They apply once the `__mizan` part has named the function.
    pub fn with_upload_limits(mut self, limits: UploadLimits) -> Self {
        self.spec.upload_limits = Some(limits);
        self
    }

    /// Makes the function the submit of the form `name`, whose fields are its arguments: a call
    /// passes the form's data as `args`, which is validated as a whole (every issue at once,
    /// 400 `bad_request` with `details.issues`) before the function runs, and the handler
    /// takes the struct with `args.take::<F>(FORM_ARG)`. `GET form/<name>/` serves its schema
    /// and `POST form/<name>/validate/` validates data without running the function.
    pub fn with_form<F: Form>(mut self, name: impl Into<String>) -> Self {
        self.spec.form = Some(FormDecl {
            name: name.into(),
            make: FormSpec::form::<F>,
            kind: FormKind::Whole {
                describe: describer::<F>(),
            },
        });
        self
    }

    /// Makes the argument `param` (declared with
    /// `with_param::<Formset<F>>`) the formset `name`: it is validated as a whole before the
    /// function runs, and `form/<name>/` serves its schema and validation.
    pub fn with_formset<F: Form>(
        mut self,
        name: impl Into<String>,
        param: impl Into<String>,
    ) -> Self {
        self.spec.form = Some(FormDecl {
            name: name.into(),
            make: FormSpec::formset::<F>,
            kind: FormKind::Formset {
                param: param.into(),
            },
        });
        self
    }

    /// Declares a parameter of type `T` (an `Option<_>` makes it optional); `T` describes its
    /// shape for the IR through `schemars::JsonSchema`.
    pub fn with_param<T: DeserializeOwned + Serialize + JsonSchema>(
        mut self,
        name: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.spec.params.push(Param::new::<T>(name));
        self
    }

    /// Finishes a data function: the handler returns `Result<T, E>` with
    /// `T: Serialize + JsonSchema` (the IR describes `T`).
    pub fn handler<F, Fut>(self, f: F) -> Function
    where
        F: Fn(Request, Args) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoData,
    {
        self.typed_handler(move |req, inputs| Some(f(req, inputs.convert_all()?)))
    }

    /// Finishes a data function whose handler converts its own arguments from the call's
    /// [`Inputs`] ([`Inputs::arg`] for each declared parameter, straight into its type) and
    /// returns the future to run, or `None` when an argument did not convert. What
    /// `#[client]` generates; [`handler`](Self::handler) is the same over [`Args`].
    #[doc(hidden)]
    pub fn typed_handler<F, Fut>(self, f: F) -> Function
    where
        F: Fn(Request, &mut Inputs<'_>) -> Option<Fut> + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoData,
    {
        let handler: Arc<DataFn> = Arc::new(move |req, inputs, out| {
            let fut = f(req, inputs)?;
            Some(Box::pin(async move {
                let data = fut.await.into_data()?;
                write_data(out, &data)
            }))
        });
        Function {
            spec: self.spec,
            handler: Handler::Data(handler),
            returns: Some(describer::<<Fut::Output as IntoData>::Data>()),
        }
    }

    /// Finishes a view-path function: the handler returns an `http::Response` (or a `Result`
    /// of one), served at its route with invalidation in the `X-Mizan-Invalidate` header only.
    pub fn view<F, Fut>(self, f: F) -> Function
    where
        F: Fn(Request, Args) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoView,
    {
        let handler: Arc<ViewFn> = Arc::new(move |req, args| {
            let fut = f(req, args);
            Box::pin(async move { fut.await.into_view() })
        });
        Function {
            spec: self.spec,
            handler: Handler::View(handler),
            returns: None,
        }
    }
}

/// Whether `name` matches `^[A-Za-z_][A-Za-z0-9_]*$`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_identifier_rule() {
        for ok in ["a", "_x", "user_profile", "A9"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "9a", "user-profile", "a b", "ü", "a.b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn params_convert_text_and_json_to_their_type() {
        let id = Param::new::<i64>("user_id");
        assert!(!id.is_optional());
        assert_eq!(id.normalize(RawArg::Text("5")), Ok(Value::from(5)));
        assert_eq!(id.normalize(RawArg::Json("5")), Ok(Value::from(5)));
        assert!(
            id.normalize(RawArg::Json("\"5\"")).is_err(),
            "JSON is strict"
        );
        assert!(id
            .normalize(RawArg::Text("five"))
            .unwrap_err()
            .contains("i64"));
        assert_eq!(
            id.normalize(RawArg::Missing).unwrap_err(),
            "missing required argument"
        );

        let folder = Param::new::<String>("folder");
        assert_eq!(folder.normalize(RawArg::Text("5")), Ok(Value::from("5")));

        assert!(never_from_string::<i64>() && never_from_string::<Option<bool>>());
        assert!(!never_from_string::<String>() && !never_from_string::<Option<Value>>());
        // Numbers read from text as JSON; a failure keeps the string reading's message.
        assert_eq!(decode::<Option<f64>>(RawArg::Text("2.5")), Ok(Some(2.5)));
        assert_eq!(decode::<Option<i64>>(RawArg::Text("null")), Ok(None));
        assert_eq!(
            decode::<i64>(RawArg::Text("x")),
            Err("invalid type: string \"x\", expected i64".to_owned())
        );
        assert_eq!(
            decode::<Value>(RawArg::Text("5")),
            Ok(Value::from("5")),
            "a type that takes strings keeps the text"
        );

        let page = Param::new::<Option<u32>>("page");
        assert!(page.is_optional());
        assert_eq!(page.normalize(RawArg::Missing), Ok(Value::Null));
        assert_eq!(page.normalize(RawArg::Text("2")), Ok(Value::from(2)));
    }
}
