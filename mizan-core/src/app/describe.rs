//! The IR of a registry: what the app describes of its public functions and their types.

use std::collections::BTreeMap;

use super::Registry;
use crate::ir::schema::SchemaCollector;
use crate::ir::{Affects, Arg, FunctionKind, Ir, IrForm, IrFormset, IrFunction};
use crate::registry::FormKind;

/// The IR of a validated registry: public data functions (neither private nor view-path), the
/// bundles of their contexts, and every named type they use.
pub(crate) fn build(registry: &Registry) -> Ir {
    let mut collector = SchemaCollector::new();
    let mut functions = Vec::new();
    let mut contexts: BTreeMap<String, Vec<Arg>> = BTreeMap::new();
    for (index, function) in registry.functions.iter().enumerate() {
        let Some(returns) = function.returns.filter(|_| !function.is_private()) else {
            continue;
        };
        let spec = registry.form_specs[index].as_deref();
        let whole_form = function
            .spec
            .form
            .as_ref()
            .and_then(|form| match form.kind {
                FormKind::Whole { describe } => Some(describe),
                FormKind::Formset { .. } => None,
            });
        let form_args = whole_form.zip(spec).map(|(describe, spec)| {
            // A form's arguments are its fields, in declaration order.
            let fields = collector.struct_fields(describe);
            spec.fields()
                .iter()
                .filter_map(|field| fields.iter().find(|f| f.name == field.name))
                .map(|f| Arg {
                    name: f.name.clone(),
                    ty: f.ty.clone(),
                    optional: f.optional,
                })
                .collect::<Vec<_>>()
        });
        let form = function.spec.form.as_ref().map(|form| IrForm {
            name: form.name.clone(),
            formset: match (&form.kind, spec.and_then(|s| s.formset_options())) {
                (FormKind::Formset { param }, Some(options)) => Some(IrFormset {
                    arg: param.clone(),
                    min_num: options.min_num(),
                    max_num: options.max_num(),
                    absolute_max: options.absolute_max(),
                    can_delete: options.can_delete(),
                    can_order: options.can_order(),
                    extra: options.extra(),
                }),
                _ => None,
            },
        });
        let args: Vec<Arg> = form_args.unwrap_or_else(|| {
            function
                .params()
                .iter()
                .map(|p| Arg {
                    name: p.name().to_owned(),
                    ty: collector.describe(p.describer()),
                    optional: p.is_optional(),
                })
                .collect()
        });
        let kind = match (function.context(), function.affects().is_empty()) {
            (Some(context), _) => {
                let params = contexts.entry(context.to_owned()).or_default();
                for arg in &args {
                    if !params.iter().any(|p| p.name == arg.name) {
                        params.push(arg.clone());
                    }
                }
                FunctionKind::Query
            }
            (None, false) => FunctionKind::Mutation,
            (None, true) => FunctionKind::Standalone,
        };
        let mut transports = vec!["http".to_owned()];
        if function.is_websocket() {
            transports.push("websocket".to_owned());
        }
        functions.push(IrFunction {
            name: function.name().to_owned(),
            kind,
            context: function.context().map(str::to_owned),
            args,
            returns: collector.describe(returns),
            affects: registry.plans[index]
                .iter()
                .map(|plan| Affects {
                    context: plan.context.clone(),
                    function: plan.function.clone(),
                })
                .collect(),
            auth: function.auth().map(|auth| auth.as_str().to_owned()),
            transports,
            uploads: function
                .params()
                .iter()
                .filter(|param| param.takes_uploads())
                .map(|param| param.name().to_owned())
                .collect(),
            form,
        });
    }
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    Ir {
        functions,
        types: collector.finish(),
        contexts,
    }
}
