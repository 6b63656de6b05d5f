//! Analysis of the annotated function's signature: the request argument, the
//! parameters filled from the call, and whether the function is a view.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type, Visibility,
};

use crate::push_error;

/// What the generated code needs to know about the annotated function.
pub(crate) struct FnShape {
    /// The function's visibility, given to the generated type as well.
    pub(crate) vis: Visibility,
    /// The function's identifier (also the generated type's identifier).
    pub(crate) ident: Ident,
    /// The function's name as registered (without any `r#` prefix).
    pub(crate) name: String,
    /// Whether the first argument is the request (`&Request`).
    pub(crate) takes_request: bool,
    /// The arguments filled from the call, in declaration order.
    pub(crate) params: Vec<Param>,
    /// Whether the function returns a `Response` (a view) rather than data.
    pub(crate) is_view: bool,
}

/// One argument filled from the call.
pub(crate) struct Param {
    /// The name on the wire (the argument's identifier without `r#`).
    pub(crate) name: String,
    /// The argument's type.
    pub(crate) ty: Type,
}

impl FnShape {
    /// Checks that `func` can be exposed and records its shape.
    ///
    /// Every problem found is reported, not only the first one.
    pub(crate) fn analyze(func: &ItemFn) -> syn::Result<Self> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::tokens_text;

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
}
