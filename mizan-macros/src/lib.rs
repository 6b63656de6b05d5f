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

mod args;
mod generate;
mod shape;

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use crate::args::ClientArgs;
use crate::generate::generate;
use crate::shape::FnShape;

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

/// Helpers shared by the unit tests of every module.
#[cfg(test)]
mod test_support {
    use quote::ToTokens;

    /// The tokens as text, without the spaces the printer puts between them.
    pub(crate) fn tokens_text(tokens: impl ToTokens) -> String {
        tokens.to_token_stream().to_string().replace(' ', "")
    }

    /// The expansion of `#[client(attr)] item`, checked to be valid Rust, as text.
    pub(crate) fn expanded(attr: &str, item: &str) -> String {
        let output = crate::expand(syn::parse_str(attr).unwrap(), syn::parse_str(item).unwrap());
        syn::parse2::<syn::File>(output.clone()).expect("expansion is valid Rust");
        tokens_text(output)
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::expanded;

    #[test]
    fn non_functions_are_rejected() {
        let out = expanded("", "struct Foo;");
        assert!(
            out.contains("compile_error!") && out.contains("structFoo;"),
            "{out}"
        );
    }
}
