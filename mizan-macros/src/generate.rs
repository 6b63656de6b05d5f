//! Generation of the registration type and its `ClientFunction` impl.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

use crate::args::{Auth, Cache, ClientArgs};
use crate::shape::{FnShape, Param};

/// Generates the registration type and its `ClientFunction` impl.
///
/// `krate` is the path of the runtime crate.
///
/// With `form = "name"`, a function with one argument submits that argument's type as a form
/// (its fields are the call's arguments); otherwise its `Formset<F>` argument is the formset.
pub(crate) fn generate(args: &ClientArgs, shape: &FnShape, krate: &TokenStream) -> TokenStream {
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
    if let Some(limits) = &args.upload_limits {
        options.extend(quote!(.with_upload_limits(#limits())));
    }
    let form = match args
        .form
        .as_deref()
        .map(|form| FormBinding::find(form, params))
    {
        Some(Err(error)) => return error.to_compile_error(),
        Some(Ok(binding)) => Some(binding),
        None => None,
    };
    for param in params {
        let Param { name, ty } = param;
        match &form {
            Some(FormBinding::Whole { form, param: whole }) if std::ptr::eq(*whole, param) => {
                options.extend(quote!(.with_form::<#ty>(#form)));
            }
            Some(FormBinding::Formset {
                form,
                param: set,
                inner,
            }) if std::ptr::eq(*set, param) => {
                options
                    .extend(quote!(.with_param::<#ty>(#name).with_formset::<#inner>(#form, #name)));
            }
            _ => options.extend(quote!(.with_param::<#ty>(#name))),
        }
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
    // The wire name of each parameter (a whole form's struct takes the form's data).
    let keys: Vec<TokenStream> = params
        .iter()
        .map(|param| match &form {
            Some(FormBinding::Whole { param: whole, .. }) if std::ptr::eq(*whole, param) => {
                quote!(#krate::__private::FORM_ARG)
            }
            _ => {
                let name = &param.name;
                quote!(#name)
            }
        })
        .collect();
    let types: Vec<&syn::Type> = params.iter().map(|param| &param.ty).collect();
    let request_arg = takes_request.then(|| quote!(&#req));
    let arguments: Vec<TokenStream> = request_arg
        .into_iter()
        .chain(locals.iter().map(|local| quote!(#local)))
        .collect();
    let register = if *is_view {
        // A view takes its arguments from `Args` (converted to JSON values, which its
        // header-only invalidation reads too).
        let args_pattern = if params.is_empty() {
            quote!(_)
        } else {
            quote!(mut #call_args)
        };
        quote! {
            .view(|#req_pattern: #krate::Request, #args_pattern: #krate::Args| async move {
                #(
                    let #locals: #types = match #call_args.take(#keys) {
                        ::core::result::Result::Ok(value) => value,
                        ::core::result::Result::Err(error) => return ::core::result::Result::Err(error),
                    };
                )*
                #krate::__private::IntoView::into_view(#ident(#(#arguments),*).await)
            })
        }
    } else {
        // A data function converts each argument straight into its parameter's type; every
        // argument is tried (each bad one is reported) before the call is refused.
        let inputs = Ident::new("__inputs", Span::mixed_site());
        let inputs_pattern = if params.is_empty() {
            quote!(_)
        } else {
            quote!(#inputs)
        };
        let unwrap = (!params.is_empty()).then(|| {
            quote! {
                let (#(::core::option::Option::Some(#locals),)*) = (#(#locals,)*) else {
                    return ::core::option::Option::None;
                };
            }
        });
        quote! {
            .typed_handler(|#req_pattern: #krate::Request, #inputs_pattern: &mut #krate::__private::Inputs<'_>| {
                #( let #locals = #inputs.arg::<#types>(#keys); )*
                #unwrap
                ::core::option::Option::Some(async move {
                    #krate::__private::IntoData::into_data(#ident(#(#arguments),*).await)
                })
            })
        }
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
                    #register
            }
        }
    }
}

/// How a `form = "name"` function's arguments relate to the form.
enum FormBinding<'a> {
    /// The only argument is the form struct: the call's arguments are its fields.
    Whole { form: &'a str, param: &'a Param },
    /// One argument is a `Formset<F>`.
    Formset {
        form: &'a str,
        param: &'a Param,
        inner: &'a syn::Type,
    },
}

impl<'a> FormBinding<'a> {
    fn find(form: &'a str, params: &'a [Param]) -> syn::Result<Self> {
        if let [param] = params {
            if formset_inner(&param.ty).is_none() {
                return Ok(Self::Whole { form, param });
            }
        }
        params
            .iter()
            .find_map(|param| {
                formset_inner(&param.ty).map(|inner| Self::Formset { form, param, inner })
            })
            .ok_or_else(|| {
                syn::Error::new(
                    proc_macro2::Span::call_site(),
                    "a `form` function takes the form struct as its only argument, \
                     or a `Formset<F>` argument among others",
                )
            })
    }
}

/// `F` of a `Formset<F>` type (by the last path segment's name).
fn formset_inner(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Formset" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(generics) = &last.arguments else {
        return None;
    };
    match generics.args.first()? {
        syn::GenericArgument::Type(inner) => Some(inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::expanded;

    #[test]
    fn form_functions_take_the_whole_struct_or_a_formset() {
        let whole = expanded(
            r#"form = "contact", crate = ::mizan"#,
            "async fn contact(form: Contact) -> Result<u8, E> { todo!() }",
        );
        assert!(
            whole.contains(".with_form::<Contact>(\"contact\")"),
            "{whole}"
        );
        assert!(!whole.contains("with_param"), "{whole}");
        assert!(
            whole.contains("__inputs.arg::<Contact>(::mizan::__private::FORM_ARG)"),
            "{whole}"
        );
        let set = expanded(
            r#"form = "order", crate = ::mizan"#,
            "async fn order(user_id: i64, lines: Formset<Line>) -> Result<u8, E> { todo!() }",
        );
        assert!(
            set.contains(
                ".with_param::<i64>(\"user_id\").with_param::<Formset<Line>>(\"lines\")\
                          .with_formset::<Line>(\"order\",\"lines\")"
            ),
            "{set}"
        );
        let neither = expanded(
            r#"form = "x""#,
            "async fn x(a: i64, b: i64) -> Result<u8, E> { todo!() }",
        );
        assert!(neither.contains("compile_error!"), "{neither}");
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
        assert!(
            out.contains(
                "::mizan::Function::new(\"user_profile\").with_context(\"user\")\
             .with_auth(::mizan::Auth::Staff).with_rev(3).with_cache_ttl(60)\
             .with_param::<i64>(\"user_id\")\
             .typed_handler(|__req:::mizan::Request,__inputs:&mut::mizan::__private::Inputs<'_>|"
            ),
            "{out}"
        );
        // Each argument is converted straight into its type; the call is refused (no future)
        // when one does not convert.
        assert!(
            out.contains(
                "let__arg0=__inputs.arg::<i64>(\"user_id\");\
                 let(::core::option::Option::Some(__arg0),)=(__arg0,)else{return::core::option::Option::None;};"
            ),
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
}
