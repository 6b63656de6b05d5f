//! The `#[client(...)]` attribute of Mizan.
//!
//! Do not depend on this crate directly: use the attribute through `mizan`
//! (or `mizan-core`), which re-export it next to the runtime types that the
//! generated code refers to.
//!
//! Marking an `async fn` with `#[client]` keeps the function exactly as
//! written and adds, next to it, a hidden zero-sized type of the same name
//! implementing `ClientFunction`. That type describes the function to the
//! runtime: its name, its options and its parameters, plus a handler that
//! pulls each parameter out of the call's arguments and invokes the function.
//!
//! ```text
//! #[client(context = "user")]
//! pub async fn user_profile(req: &Request, user_id: i64) -> Result<UserProfile, ApiError> {
//!     // ...
//! }
//! ```
//!
//! (The runnable, doctested examples live in `mizan-core`, which this crate cannot depend on.)
//!
//! # Options
//!
//! Options are comma separated, may come in any order and may each be given
//! at most once:
//!
//! | option | meaning |
//! |---|---|
//! | `context = "name"`, `context = global` | the function is part of a bundled context |
//! | `affects = "name"`, `affects = ["a", "b"]` | calling it invalidates these contexts or functions |
//! | `private` | no RPC endpoint and no IR entry; still in the invalidation graph and the manifest |
//! | `route = "/path/{param}/"` | also served at this route |
//! | `methods = ["POST", "PUT"]` | HTTP methods accepted on the route |
//! | `auth`, `auth = "required" \| "staff" \| "superuser"`, `auth = path::to_predicate` | access control |
//! | `websocket` | also callable over the websocket |
//! | `rev = 3` | cache revision: bumping it makes cached bundles of its context unreachable |
//! | `cache = 60`, `cache = false` | cache lifetime in seconds, or no caching |
//! | `user_scoped` | cached results are kept per user |
//! | `crate = some::path` | path of the runtime crate (default: found through Cargo) |
//!
//! `context` and `affects` cannot be combined.
//!
//! # Function shape
//!
//! The function must be a free `async fn` without generics and with an
//! explicit return type. If its first argument is a reference (`&Request`),
//! it receives the request. Every other argument must be a plain
//! `name: Type` binding and becomes a parameter named `name` on the wire.
//!
//! A function whose return type is a `Response` (optionally wrapped in a
//! `…Result<Response<…>, …>`) is registered as a view; any other function is
//! registered as a data function.

use std::collections::HashSet;

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{
    ExprPath, FnArg, GenericArgument, Ident, ItemFn, LitBool, LitInt, LitStr, Pat, Path,
    PathArguments, ReturnType, Token, Type, Visibility,
};

/// Exposes an `async fn` to the frontend.
///
/// See the [crate documentation](crate) for the accepted options and the
/// shape the function must have.
#[proc_macro_attribute]
pub fn client(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand(attr.into(), item.into()).into()
}

/// Expands one `#[client(attr)] item`.
///
/// On error the original item is still emitted next to the compile errors, so
/// that a typo in an option does not also produce "cannot find function"
/// errors at every call site.
fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let error =
                syn::Error::new_spanned(&item, "`#[client]` can only be applied to an `async fn`");
            let error = error.to_compile_error();
            return quote! { #error #item };
        }
    };

    match (ClientArgs::parse(attr), FnShape::analyze(&func)) {
        (Ok(args), Ok(shape)) => {
            let krate = args.runtime_path();
            let generated = generate(&args, &shape, &krate);
            quote! { #item #generated }
        }
        (args, shape) => {
            let mut errors = None;
            if let Err(error) = args {
                push_error(&mut errors, error);
            }
            if let Err(error) = shape {
                push_error(&mut errors, error);
            }
            let errors = errors.map(|error| error.to_compile_error());
            quote! { #errors #item }
        }
    }
}

/// Adds `error` to an accumulated set of errors.
fn push_error(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(existing) => existing.combine(error),
        None => *errors = Some(error),
    }
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/// The options every `#[client]` attribute may carry, in the order they are
/// listed in error messages.
const OPTIONS: &[&str] = &[
    "context",
    "affects",
    "private",
    "route",
    "methods",
    "auth",
    "websocket",
    "rev",
    "cache",
    "user_scoped",
    "crate",
];

/// The message used whenever `context` and `affects` meet.
const CONTEXT_AND_AFFECTS: &str = "`context` and `affects` cannot be combined: a context \
     function only reads data, while `affects` marks a function that changes it";

/// The accepted forms of `auth`, for error messages.
const AUTH_FORMS: &str = "`auth`, `auth = \"required\"`, `auth = \"staff\"`, \
     `auth = \"superuser\"` or `auth = path::to_predicate`";

/// The parsed options of one `#[client(...)]` attribute.
#[derive(Default)]
struct ClientArgs {
    /// `context = "name"` / `context = global`.
    context: Option<String>,
    /// `affects = "name"` / `affects = ["a", "b"]`.
    affects: Option<Vec<String>>,
    /// `private`.
    private: bool,
    /// `route = "/path/"`.
    route: Option<String>,
    /// `methods = ["POST"]`.
    methods: Option<Vec<String>>,
    /// `auth`, `auth = "…"` or `auth = predicate`.
    auth: Option<Auth>,
    /// `websocket`.
    websocket: bool,
    /// `rev = N`.
    rev: Option<u32>,
    /// `cache = N` / `cache = false`.
    cache: Option<Cache>,
    /// `user_scoped`.
    user_scoped: bool,
    /// `crate = path`.
    krate: Option<Path>,
}

/// The access rule given with `auth`.
enum Auth {
    /// Any signed-in identity (`auth`, `auth = "required"`).
    Required,
    /// Staff only (`auth = "staff"`).
    Staff,
    /// Superusers only (`auth = "superuser"`).
    Superuser,
    /// A custom predicate (`auth = path::to_predicate`).
    Predicate(ExprPath),
}

/// The caching rule given with `cache`.
enum Cache {
    /// `cache = N`: keep results for `N` seconds.
    Ttl(u64),
    /// `cache = false`: never cache.
    Disabled,
}

impl ClientArgs {
    /// Parses the tokens between the parentheses of `#[client(...)]`.
    fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut args = Self::default();
        let mut seen = HashSet::new();
        let parser = syn::meta::parser(|meta| {
            let Some(name) = meta.path.get_ident().map(|ident| ident.unraw().to_string()) else {
                return Err(unknown_option(&meta));
            };
            if OPTIONS.contains(&name.as_str()) && !seen.insert(name.clone()) {
                return Err(meta.error(format_args!(
                    "`{name}` is given more than once; each option may appear only once"
                )));
            }
            args.apply(&name, &meta)
        });
        parser.parse2(tokens)?;
        Ok(args)
    }

    /// Parses the option `name`, whose key `meta` has just been read.
    fn apply(&mut self, name: &str, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        match name {
            "context" => {
                if self.affects.is_some() {
                    return Err(meta.error(CONTEXT_AND_AFFECTS));
                }
                let input = value(meta, "context = \"name\"` or `context = global")?;
                self.context = Some(parse_context(input)?);
            }
            "affects" => {
                if self.context.is_some() {
                    return Err(meta.error(CONTEXT_AND_AFFECTS));
                }
                let input = value(meta, "affects = \"name\"` or `affects = [\"a\", \"b\"]")?;
                let names = parse_strings(input, "affects = [\"a\", \"b\"]")?;
                self.affects = Some(names.iter().map(LitStr::value).collect());
            }
            "private" => self.private = flag(meta, name)?,
            "route" => {
                let input = value(meta, "route = \"/path/{param}/\"")?;
                let route = parse_string(input, "route = \"/path/{param}/\"")?;
                self.route = Some(route.value());
            }
            "methods" => {
                let input = value(meta, "methods = [\"POST\", \"PUT\"]")?;
                let methods = parse_strings(input, "methods = [\"POST\", \"PUT\"]")?;
                for method in &methods {
                    check_method(method)?;
                }
                self.methods = Some(methods.iter().map(LitStr::value).collect());
            }
            "auth" => {
                self.auth = Some(if meta.input.peek(Token![=]) {
                    parse_auth(meta.value()?)?
                } else {
                    flag(meta, name)?;
                    Auth::Required
                });
            }
            "websocket" => self.websocket = flag(meta, name)?,
            "rev" => {
                let input = value(meta, "rev = 3")?;
                if !input.peek(LitInt) {
                    return Err(input.error("`rev` expects an integer literal, e.g. `rev = 3`"));
                }
                self.rev = Some(input.parse::<LitInt>()?.base10_parse()?);
            }
            "cache" => {
                let input = value(meta, "cache = 60` or `cache = false")?;
                self.cache = Some(parse_cache(input)?);
            }
            "user_scoped" => self.user_scoped = flag(meta, name)?,
            "crate" => {
                let input = value(meta, "crate = path::to::mizan")?;
                self.krate = Some(if input.peek(LitStr) {
                    input.parse::<LitStr>()?.parse_with(Path::parse_mod_style)?
                } else {
                    Path::parse_mod_style(input)?
                });
            }
            _ => return Err(unknown_option(meta)),
        }
        Ok(())
    }

    /// The path of the runtime crate that generated code refers to.
    ///
    /// An explicit `crate = path` wins; otherwise Cargo's manifest is asked
    /// for `mizan`, then for `mizan-core`, and `::mizan` is the fallback.
    fn runtime_path(&self) -> TokenStream {
        use proc_macro_crate::{crate_name, FoundCrate};

        if let Some(path) = &self.krate {
            return path.to_token_stream();
        }
        let found = crate_name("mizan")
            .map(|found| (found, "mizan"))
            .or_else(|_| crate_name("mizan-core").map(|found| (found, "mizan_core")));
        let name = match found {
            Ok((FoundCrate::Itself, own_name)) => own_name.to_owned(),
            Ok((FoundCrate::Name(name), _)) => name,
            Err(_) => "mizan".to_owned(),
        };
        let ident = Ident::new(&name, Span::call_site());
        quote!(::#ident)
    }
}

/// The error for an option that does not exist.
fn unknown_option(meta: &ParseNestedMeta<'_>) -> syn::Error {
    let name = meta.path.to_token_stream().to_string().replace(' ', "");
    let valid = OPTIONS
        .iter()
        .map(|option| format!("`{option}`"))
        .collect::<Vec<_>>()
        .join(", ");
    syn::Error::new_spanned(
        &meta.path,
        format!("unknown `#[client]` option `{name}`; valid options are: {valid}"),
    )
}

/// Checks that a bare option (`private`, `websocket`, …) carries no value.
///
/// Returns `true` so that callers can assign the result to the option's flag.
fn flag(meta: &ParseNestedMeta<'_>, name: &str) -> syn::Result<bool> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        Ok(true)
    } else {
        Err(meta.error(format_args!("`{name}` takes no value; write just `{name}`")))
    }
}

/// Consumes the `=` after an option that requires a value.
fn value<'a>(meta: &ParseNestedMeta<'a>, usage: &str) -> syn::Result<ParseStream<'a>> {
    if meta.input.peek(Token![=]) {
        meta.value()
    } else {
        Err(meta.error(format_args!("this option needs a value: `{usage}`")))
    }
}

/// Parses one non-empty string literal.
fn parse_string(input: ParseStream<'_>, usage: &str) -> syn::Result<LitStr> {
    if !input.peek(LitStr) {
        return Err(input.error(format_args!("expected a string literal: `{usage}`")));
    }
    let lit: LitStr = input.parse()?;
    if lit.value().is_empty() {
        return Err(syn::Error::new(lit.span(), "this string must not be empty"));
    }
    Ok(lit)
}

/// Parses `"a"` or `["a", "b", …]` (non-empty, without repeats).
fn parse_strings(input: ParseStream<'_>, usage: &str) -> syn::Result<Vec<LitStr>> {
    if !input.peek(syn::token::Bracket) {
        return Ok(vec![parse_string(input, usage)?]);
    }
    let content;
    let brackets = syn::bracketed!(content in input);
    let mut list = Vec::new();
    while !content.is_empty() {
        list.push(parse_string(&content, usage)?);
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    if list.is_empty() {
        return Err(syn::Error::new(
            brackets.span.join(),
            format_args!("the list must not be empty: `{usage}`"),
        ));
    }
    let mut seen = HashSet::new();
    for lit in &list {
        if !seen.insert(lit.value()) {
            return Err(syn::Error::new(lit.span(), "this name is listed twice"));
        }
    }
    Ok(list)
}

/// Parses the value of `context`: a string, or the bare word `global`.
fn parse_context(input: ParseStream<'_>) -> syn::Result<String> {
    if input.peek(LitStr) {
        return Ok(parse_string(input, "context = \"name\"")?.value());
    }
    if input.peek(Ident) {
        let ident: Ident = input.parse()?;
        if ident == "global" {
            return Ok("global".to_owned());
        }
        return Err(syn::Error::new(
            ident.span(),
            "expected a context name: `context = \"name\"` or `context = global`",
        ));
    }
    Err(input.error("expected a context name: `context = \"name\"` or `context = global`"))
}

/// Parses the value of `auth = …`.
fn parse_auth(input: ParseStream<'_>) -> syn::Result<Auth> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return match lit.value().as_str() {
            "required" => Ok(Auth::Required),
            "staff" => Ok(Auth::Staff),
            "superuser" => Ok(Auth::Superuser),
            other => Err(syn::Error::new(
                lit.span(),
                format_args!("unknown auth level \"{other}\"; expected {AUTH_FORMS}"),
            )),
        };
    }
    let looks_like_path = input.peek(Ident::peek_any) || input.peek(Token![::]);
    if input.peek(LitBool) || !looks_like_path {
        return Err(input.error(format_args!("expected {AUTH_FORMS}")));
    }
    Ok(Auth::Predicate(input.parse()?))
}

/// Parses the value of `cache = …`.
fn parse_cache(input: ParseStream<'_>) -> syn::Result<Cache> {
    if input.peek(LitBool) {
        let lit: LitBool = input.parse()?;
        if lit.value {
            return Err(syn::Error::new(
                lit.span,
                "`cache = true` is not an option: give a lifetime in seconds \
                 (`cache = 60`) or turn caching off (`cache = false`)",
            ));
        }
        return Ok(Cache::Disabled);
    }
    if input.peek(LitInt) {
        return Ok(Cache::Ttl(input.parse::<LitInt>()?.base10_parse()?));
    }
    Err(input.error("`cache` expects seconds (`cache = 60`) or `cache = false`"))
}

/// Checks that a string given in `methods` is an HTTP method.
fn check_method(lit: &LitStr) -> syn::Result<()> {
    const STANDARD: &[&str] = &[
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    let method = lit.value();
    let is_token_char =
        |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if !method.bytes().all(is_token_char) {
        return Err(syn::Error::new(
            lit.span(),
            format_args!("\"{method}\" is not a valid HTTP method"),
        ));
    }
    let upper = method.to_ascii_uppercase();
    if upper != method && STANDARD.contains(&upper.as_str()) {
        return Err(syn::Error::new(
            lit.span(),
            format_args!("HTTP methods are case-sensitive: write \"{upper}\""),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Signature analysis
// ---------------------------------------------------------------------------

/// What the generated code needs to know about the annotated function.
struct FnShape {
    /// The function's visibility, given to the generated type as well.
    vis: Visibility,
    /// The function's identifier (also the generated type's identifier).
    ident: Ident,
    /// The function's name as registered (without any `r#` prefix).
    name: String,
    /// Whether the first argument is the request (`&Request`).
    takes_request: bool,
    /// The arguments filled from the call, in declaration order.
    params: Vec<Param>,
    /// Whether the function returns a `Response` (a view) rather than data.
    is_view: bool,
}

/// One argument filled from the call.
struct Param {
    /// The name on the wire (the argument's identifier without `r#`).
    name: String,
    /// The argument's type.
    ty: Type,
}

impl FnShape {
    /// Checks that `func` can be exposed and records its shape.
    ///
    /// Every problem found is reported, not only the first one.
    fn analyze(func: &ItemFn) -> syn::Result<Self> {
        let sig = &func.sig;
        let mut errors = None;
        let mut fail = |span: Span, message: &str| {
            push_error(&mut errors, syn::Error::new(span, message));
        };

        for attr in &func.attrs {
            if attr
                .path()
                .segments
                .last()
                .is_some_and(|last| last.ident == "client")
            {
                fail(
                    attr.span(),
                    "`#[client]` is applied more than once to this function",
                );
            }
        }
        if sig.asyncness.is_none() {
            fail(
                sig.fn_token.span,
                "`#[client]` functions must be `async fn`",
            );
        }
        if let Some(unsafety) = &sig.unsafety {
            fail(unsafety.span, "`#[client]` functions cannot be `unsafe`");
        }
        if let Some(abi) = &sig.abi {
            fail(abi.span(), "`#[client]` functions cannot declare an ABI");
        }
        if !sig.generics.params.is_empty() {
            fail(
                sig.generics.span(),
                "`#[client]` functions cannot be generic",
            );
        }
        if let Some(where_clause) = &sig.generics.where_clause {
            fail(
                where_clause.span(),
                "`#[client]` functions cannot have a `where` clause",
            );
        }
        let is_view = match &sig.output {
            ReturnType::Type(_, ty) => returns_response(ty),
            ReturnType::Default => {
                fail(
                    sig.paren_token.span.close(),
                    "`#[client]` functions need an explicit return type, \
                     e.g. `-> Result<T, ApiError>`",
                );
                false
            }
        };

        let mut takes_request = false;
        let mut params = Vec::new();
        for (index, input) in sig.inputs.iter().enumerate() {
            let arg = match input {
                FnArg::Receiver(receiver) => {
                    fail(
                        receiver.span(),
                        "`#[client]` cannot be used on methods; write a free `async fn`",
                    );
                    continue;
                }
                FnArg::Typed(arg) => arg,
            };
            match peel(&arg.ty) {
                Type::Reference(reference) if index == 0 => {
                    if reference.mutability.is_some() {
                        fail(
                            reference.span(),
                            "the request must be taken by shared reference (`req: &Request`)",
                        );
                    }
                    takes_request = true;
                    continue;
                }
                Type::Reference(reference) => {
                    fail(
                        reference.span(),
                        "only the first argument may be a reference (the request, \
                         `req: &Request`); parameters are decoded from the call and \
                         must be owned types",
                    );
                    continue;
                }
                Type::ImplTrait(impl_trait) => {
                    fail(
                        impl_trait.span(),
                        "`impl Trait` arguments are not supported; name a concrete type",
                    );
                    continue;
                }
                _ => {}
            }
            match &*arg.pat {
                Pat::Ident(binding) if binding.by_ref.is_none() && binding.subpat.is_none() => {
                    params.push(Param {
                        name: binding.ident.unraw().to_string(),
                        ty: (*arg.ty).clone(),
                    });
                }
                pattern => fail(
                    pattern.span(),
                    "`#[client]` arguments must be plain `name: Type` bindings \
                     (the name is the parameter's name on the wire); destructure \
                     inside the function instead",
                ),
            }
        }

        match errors {
            Some(errors) => Err(errors),
            None => Ok(Self {
                vis: func.vis.clone(),
                ident: sig.ident.clone(),
                name: sig.ident.unraw().to_string(),
                takes_request,
                params,
                is_view,
            }),
        }
    }
}

/// Strips the invisible groups and parentheses around a type.
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => peel(&group.elem),
        Type::Paren(paren) => peel(&paren.elem),
        other => other,
    }
}

/// Whether a return type makes the function a view: `…Response` or
/// `…Result<…Response, …>`.
fn returns_response(ty: &Type) -> bool {
    let Type::Path(path) = peel(ty) else {
        return false;
    };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    if !last.ident.to_string().ends_with("Result") {
        return is_response(peel(ty));
    }
    let PathArguments::AngleBracketed(generics) = &last.arguments else {
        return false;
    };
    generics.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(inner) => Some(is_response(peel(inner))),
        _ => None,
    }) == Some(true)
}

/// Whether a type is a path whose last segment is `Response`.
fn is_response(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Response"),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Code generation
// ---------------------------------------------------------------------------

/// Generates the registration type and its `ClientFunction` impl.
///
/// `krate` is the path of the runtime crate.
fn generate(args: &ClientArgs, shape: &FnShape, krate: &TokenStream) -> TokenStream {
    let FnShape {
        vis,
        ident,
        name,
        takes_request,
        params,
        is_view,
    } = shape;

    let mut options = TokenStream::new();
    if let Some(context) = &args.context {
        options.extend(quote!(.with_context(#context)));
    }
    if let Some(affects) = &args.affects {
        options.extend(quote!(.with_affects([#(#affects),*])));
    }
    if args.private {
        options.extend(quote!(.private()));
    }
    if let Some(route) = &args.route {
        options.extend(quote!(.with_route(#route)));
    }
    if let Some(methods) = &args.methods {
        options.extend(quote!(.with_methods([#(#methods),*])));
    }
    if let Some(auth) = &args.auth {
        let rule = match auth {
            Auth::Required => quote!(#krate::Auth::Required),
            Auth::Staff => quote!(#krate::Auth::Staff),
            Auth::Superuser => quote!(#krate::Auth::Superuser),
            Auth::Predicate(predicate) => quote!(#krate::Auth::Predicate(#predicate)),
        };
        options.extend(quote!(.with_auth(#rule)));
    }
    if args.websocket {
        options.extend(quote!(.websocket()));
    }
    if let Some(rev) = args.rev {
        let rev = Literal::u32_unsuffixed(rev);
        options.extend(quote!(.with_rev(#rev)));
    }
    match args.cache {
        Some(Cache::Ttl(seconds)) => {
            let seconds = Literal::u64_unsuffixed(seconds);
            options.extend(quote!(.with_cache_ttl(#seconds)));
        }
        Some(Cache::Disabled) => options.extend(quote!(.no_cache())),
        None => {}
    }
    if args.user_scoped {
        options.extend(quote!(.user_scoped()));
    }
    for Param { name, ty } in params {
        options.extend(quote!(.with_param::<#ty>(#name)));
    }

    // Locals of the generated closure use mixed-site hygiene, so they can
    // never capture or shadow anything the user named (including a parameter
    // that happens to share the function's name).
    let req = Ident::new("__req", Span::mixed_site());
    let call_args = Ident::new("__args", Span::mixed_site());
    let locals: Vec<Ident> = (0..params.len())
        .map(|index| format_ident!("__arg{}", index, span = Span::mixed_site()))
        .collect();

    let req_pattern = if *takes_request {
        quote!(#req)
    } else {
        quote!(_)
    };
    let args_pattern = if params.is_empty() {
        quote!(_)
    } else {
        quote!(mut #call_args)
    };
    let decode = params
        .iter()
        .zip(&locals)
        .map(|(Param { name, ty }, local)| {
            quote! {
                let #local: #ty = match #call_args.take(#name) {
                    ::core::result::Result::Ok(value) => value,
                    ::core::result::Result::Err(error) => return ::core::result::Result::Err(error),
                };
            }
        });
    let request_arg = takes_request.then(|| quote!(&#req));
    let arguments = request_arg
        .into_iter()
        .chain(locals.iter().map(|local| quote!(#local)));
    let (register, convert) = if *is_view {
        (quote!(view), quote!(#krate::__private::IntoView::into_view))
    } else {
        (
            quote!(handler),
            quote!(#krate::__private::IntoData::into_data),
        )
    };
    let doc = format!("Registration handle generated by `#[client]` for `{name}`.");

    quote! {
        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}

        #[automatically_derived]
        #[allow(
            deprecated,
            unused_qualifications,
            clippy::question_mark,
            clippy::needless_return,
            clippy::used_underscore_binding
        )]
        impl #krate::ClientFunction for #ident {
            fn function() -> #krate::Function {
                #krate::Function::new(#name)
                    #options
                    .#register(|#req_pattern: #krate::Request, #args_pattern: #krate::Args| async move {
                        #(#decode)*
                        #convert(#ident(#(#arguments),*).await)
                    })
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tokens: &str) -> ClientArgs {
        match ClientArgs::parse(syn::parse_str(tokens).unwrap()) {
            Ok(args) => args,
            Err(error) => panic!("`{tokens}` was rejected: {error}"),
        }
    }

    fn args_error(tokens: &str) -> String {
        match ClientArgs::parse(syn::parse_str(tokens).unwrap()) {
            Ok(_) => panic!("`{tokens}` was accepted"),
            Err(error) => error.to_string(),
        }
    }

    fn shape(func: ItemFn) -> FnShape {
        match FnShape::analyze(&func) {
            Ok(shape) => shape,
            Err(error) => panic!("function was rejected: {error}"),
        }
    }

    fn shape_error(func: ItemFn) -> String {
        match FnShape::analyze(&func) {
            Ok(_) => panic!("function was accepted"),
            Err(error) => error
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn tokens_text(tokens: impl ToTokens) -> String {
        tokens.to_token_stream().to_string().replace(' ', "")
    }

    fn expanded(attr: &str, item: &str) -> String {
        let output = expand(syn::parse_str(attr).unwrap(), syn::parse_str(item).unwrap());
        syn::parse2::<syn::File>(output.clone()).expect("expansion is valid Rust");
        tokens_text(output)
    }

    #[test]
    fn empty_attribute_has_no_options() {
        let parsed = args("");
        assert!(parsed.context.is_none() && parsed.affects.is_none() && parsed.auth.is_none());
        assert!(!parsed.private && !parsed.websocket && !parsed.user_scoped);
    }

    #[test]
    fn accepts_every_option() {
        let parsed = args(
            r#"affects = ["user", "user_profile"], private, route = "/p/{id}/",
               methods = ["POST", "PUT"], auth = "staff", websocket, rev = 3,
               cache = 60, user_scoped, crate = ::my::runtime"#,
        );
        assert_eq!(parsed.affects.unwrap(), ["user", "user_profile"]);
        assert!(parsed.private && parsed.websocket && parsed.user_scoped);
        assert_eq!(parsed.route.as_deref(), Some("/p/{id}/"));
        assert_eq!(parsed.methods.unwrap(), ["POST", "PUT"]);
        assert!(matches!(parsed.auth, Some(Auth::Staff)));
        assert_eq!(parsed.rev, Some(3));
        assert!(matches!(parsed.cache, Some(Cache::Ttl(60))));
        assert_eq!(tokens_text(parsed.krate.unwrap()), "::my::runtime");
    }

    #[test]
    fn accepts_context_forms() {
        assert_eq!(args(r#"context = "user""#).context.as_deref(), Some("user"));
        assert_eq!(args("context = global").context.as_deref(), Some("global"));
        assert_eq!(args(r#"affects = "user""#).affects.unwrap(), ["user"]);
        assert_eq!(args(r#"methods = "PATCH""#).methods.unwrap(), ["PATCH"]);
    }

    #[test]
    fn accepts_auth_forms() {
        assert!(matches!(args("auth").auth, Some(Auth::Required)));
        assert!(matches!(
            args(r#"auth = "required""#).auth,
            Some(Auth::Required)
        ));
        assert!(matches!(args(r#"auth = "staff""#).auth, Some(Auth::Staff)));
        assert!(matches!(
            args(r#"auth = "superuser""#).auth,
            Some(Auth::Superuser)
        ));
        match args("auth = some::path::to_predicate, private").auth {
            Some(Auth::Predicate(path)) => {
                assert_eq!(tokens_text(path), "some::path::to_predicate");
            }
            _ => panic!("expected a predicate"),
        }
        assert!(matches!(
            args("auth = is_admin").auth,
            Some(Auth::Predicate(_))
        ));
    }

    #[test]
    fn accepts_cache_off_and_crate_string() {
        assert!(matches!(args("cache = false").cache, Some(Cache::Disabled)));
        assert_eq!(
            tokens_text(args(r#"crate = "mizan_core""#).krate.unwrap()),
            "mizan_core"
        );
        assert_eq!(
            tokens_text(args("crate = crate::rt").krate.unwrap()),
            "crate::rt"
        );
    }

    #[test]
    fn rejects_unknown_options() {
        let error = args_error("contxt = \"user\"");
        assert!(
            error.contains("unknown `#[client]` option `contxt`"),
            "{error}"
        );
        assert!(
            error.contains("`context`") && error.contains("`user_scoped`"),
            "{error}"
        );
        assert!(args_error("a::b").contains("`a::b`"));
    }

    #[test]
    fn rejects_context_with_affects() {
        for tokens in [
            r#"context = "user", affects = "user""#,
            r#"affects = ["user"], private, context = global"#,
        ] {
            let error = args_error(tokens);
            assert!(
                error.contains("`context` and `affects` cannot be combined"),
                "{error}"
            );
        }
    }

    #[test]
    fn rejects_repeated_options() {
        assert!(args_error("private, private").contains("more than once"));
        assert!(args_error("rev = 1, rev = 2").contains("more than once"));
        assert!(args_error("auth, auth = \"staff\"").contains("more than once"));
    }

    #[test]
    fn rejects_bad_values() {
        let error = args_error(r#"auth = "admin""#);
        assert!(
            error.contains("\"admin\"") && error.contains("\"superuser\""),
            "{error}"
        );
        assert!(args_error("auth = true").contains("expected `auth`"));
        assert!(args_error("cache = true").contains("cache = false"));
        assert!(args_error("cache = \"60\"").contains("`cache` expects"));
        assert!(args_error("rev = \"3\"").contains("integer literal"));
        args_error("rev = -1");
        assert!(args_error("rev = 99999999999").contains("too large"));
        assert!(args_error("private = true").contains("takes no value"));
        assert!(args_error("websocket(1)").contains("takes no value"));
        assert!(args_error("route").contains("needs a value"));
        assert!(args_error("route = 3").contains("string literal"));
        assert!(args_error("context = local").contains("expected a context name"));
        assert!(args_error("affects = []").contains("must not be empty"));
        assert!(args_error(r#"affects = ["a", "a"]"#).contains("listed twice"));
        assert!(args_error(r#"affects = """#).contains("must not be empty"));
        assert!(args_error(r#"methods = ["post"]"#).contains("write \"POST\""));
        assert!(args_error(r#"methods = ["GE T"]"#).contains("not a valid HTTP method"));
    }

    #[test]
    fn finds_request_and_params() {
        let found = shape(syn::parse_quote! {
            pub async fn user_profile(req: &Request, user_id: i64, mut r#type: String)
                -> Result<UserProfile, ApiError> {}
        });
        assert_eq!(found.name, "user_profile");
        assert!(found.takes_request && !found.is_view);
        assert!(matches!(found.vis, Visibility::Public(_)));
        let names: Vec<_> = found.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["user_id", "type"]);
        assert_eq!(tokens_text(&found.params[1].ty), "String");

        let found = shape(syn::parse_quote! {
            async fn echo(message: String) -> Result<String, ApiError> {}
        });
        assert!(!found.takes_request);
        assert_eq!(found.params.len(), 1);

        let found = shape(syn::parse_quote! {
            async fn r#ping(_: &mizan::Request) -> Result<(), ApiError> {}
        });
        assert!(found.takes_request && found.params.is_empty());
        assert_eq!(found.name, "ping");
    }

    #[test]
    fn rejects_bad_signatures() {
        let check = |func: ItemFn, expected: &str| {
            let error = shape_error(func);
            assert!(
                error.contains(expected),
                "expected `{expected}` in: {error}"
            );
        };
        check(
            syn::parse_quote!(
                fn f() -> u8 {}
            ),
            "must be `async fn`",
        );
        check(
            syn::parse_quote!(
                async fn f<T>(t: T) -> u8 {}
            ),
            "cannot be generic",
        );
        check(
            syn::parse_quote!(
                async fn f() {}
            ),
            "explicit return type",
        );
        check(
            syn::parse_quote!(
                async fn f(&self) -> u8 {}
            ),
            "free `async fn`",
        );
        check(
            syn::parse_quote!(
                async fn f(a: i64, b: &str) -> u8 {}
            ),
            "only the first",
        );
        check(
            syn::parse_quote!(
                async fn f(req: &mut Request) -> u8 {}
            ),
            "shared reference",
        );
        check(
            syn::parse_quote!(
                async fn f((a, b): (i64, i64)) -> u8 {}
            ),
            "plain `name: Type`",
        );
        check(
            syn::parse_quote!(
                async fn f(ref a: i64) -> u8 {}
            ),
            "plain `name: Type`",
        );
        check(
            syn::parse_quote!(
                async fn f(a: impl Fn()) -> u8 {}
            ),
            "`impl Trait`",
        );
        check(
            syn::parse_quote!(
                unsafe fn f() -> u8 {}
            ),
            "cannot be `unsafe`",
        );
        check(
            syn::parse_quote!(
                #[client]
                async fn f() -> u8 {}
            ),
            "more than once",
        );

        // Every problem is reported at once.
        let error = shape_error(syn::parse_quote!(
            fn f<T>(x: &T, y: &T) {}
        ));
        assert_eq!(error.lines().count(), 4, "{error}");
    }

    #[test]
    fn detects_views() {
        let view = |ty: Type| returns_response(&ty);
        assert!(view(syn::parse_quote!(Response<String>)));
        assert!(view(syn::parse_quote!(http::Response<String>)));
        assert!(view(syn::parse_quote!(Result<http::Response<String>, E>)));
        assert!(view(syn::parse_quote!(ApiResult<Response>)));
        assert!(view(syn::parse_quote!(
            ::std::result::Result<Response<Body>, Error>
        )));
        assert!(!view(syn::parse_quote!(Result<Profile, E>)));
        assert!(!view(syn::parse_quote!(Result<Vec<Response>, E>)));
        assert!(!view(syn::parse_quote!(Option<Response>)));
        assert!(!view(syn::parse_quote!(String)));
        assert!(!view(syn::parse_quote!(())));
        assert!(!view(syn::parse_quote!(Result)));
    }

    #[test]
    fn generates_data_function() {
        let out = expanded(
            r#"context = "user", auth = "staff", rev = 3, cache = 60, crate = ::mizan"#,
            "pub async fn user_profile(req: &Request, user_id: i64) -> Result<P, E> { todo!() }",
        );
        assert!(out.starts_with("pubasyncfnuser_profile("), "{out}");
        assert!(out.contains("pubstructuser_profile{}"), "{out}");
        assert!(
            out.contains("impl::mizan::ClientFunctionforuser_profile"),
            "{out}"
        );
        assert!(out.contains(
            "::mizan::Function::new(\"user_profile\").with_context(\"user\")\
             .with_auth(::mizan::Auth::Staff).with_rev(3).with_cache_ttl(60)\
             .with_param::<i64>(\"user_id\").handler(|__req:::mizan::Request,mut__args:::mizan::Args|"
        ), "{out}");
        assert!(
            out.contains("let__arg0:i64=match__args.take(\"user_id\")"),
            "{out}"
        );
        assert!(
            out.contains(
                "::mizan::__private::IntoData::into_data(user_profile(&__req,__arg0).await)"
            ),
            "{out}"
        );
    }

    #[test]
    fn generates_view_without_request_or_params() {
        let out = expanded(
            r#"affects = ["a", "b"], methods = ["POST"], auth = my::pred, no_cache_unused_check_skip = 1"#,
            "async fn page() -> http::Response<String> { todo!() }",
        );
        // An unknown option: the error is emitted next to the untouched function.
        assert!(out.contains("compile_error!"), "{out}");
        assert!(out.contains("asyncfnpage()"), "{out}");
        assert!(!out.contains("ClientFunction"), "{out}");

        let out = expanded(
            r#"affects = ["a", "b"], methods = ["POST"], auth = my::pred, cache = false, crate = rt"#,
            "async fn page() -> http::Response<String> { todo!() }",
        );
        assert!(
            out.contains(
                ".with_affects([\"a\",\"b\"]).with_methods([\"POST\"])\
             .with_auth(rt::Auth::Predicate(my::pred)).no_cache()\
             .view(|_:rt::Request,_:rt::Args|asyncmove{\
             rt::__private::IntoView::into_view(page().await)})"
            ),
            "{out}"
        );
    }

    #[test]
    fn non_functions_are_rejected() {
        let out = expanded("", "struct Foo;");
        assert!(
            out.contains("compile_error!") && out.contains("structFoo;"),
            "{out}"
        );
    }
}
