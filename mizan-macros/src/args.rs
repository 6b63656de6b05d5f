//! Parsing of the options between the parentheses of `#[client(...)]`.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{ExprPath, Ident, LitBool, LitInt, LitStr, Path, Token};

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
pub(crate) struct ClientArgs {
    /// `context = "name"` / `context = global`.
    pub(crate) context: Option<String>,
    /// `affects = "name"` / `affects = ["a", "b"]`.
    pub(crate) affects: Option<Vec<String>>,
    /// `private`.
    pub(crate) private: bool,
    /// `route = "/path/"`.
    pub(crate) route: Option<String>,
    /// `methods = ["POST"]`.
    pub(crate) methods: Option<Vec<String>>,
    /// `auth`, `auth = "…"` or `auth = predicate`.
    pub(crate) auth: Option<Auth>,
    /// `websocket`.
    pub(crate) websocket: bool,
    /// `rev = N`.
    pub(crate) rev: Option<u32>,
    /// `cache = N` / `cache = false`.
    pub(crate) cache: Option<Cache>,
    /// `user_scoped`.
    pub(crate) user_scoped: bool,
    /// `crate = path`.
    pub(crate) krate: Option<Path>,
}

/// The access rule given with `auth`.
pub(crate) enum Auth {
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
pub(crate) enum Cache {
    /// `cache = N`: keep results for `N` seconds.
    Ttl(u64),
    /// `cache = false`: never cache.
    Disabled,
}

impl ClientArgs {
    /// Parses the tokens between the parentheses of `#[client(...)]`.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
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
    pub(crate) fn runtime_path(&self) -> TokenStream {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::tokens_text;

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
}
