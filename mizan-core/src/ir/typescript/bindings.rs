//! The second stage of the TypeScript generator: a framework-agnostic store and, on request,
//! React, Vue and Svelte bindings over it (documented on [`Bindings`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{json_string, pascal, GeneratedFile, HEADER};
use crate::ir::{FunctionKind, Ir};

const STORE: &str = include_str!("../store.ts");
const REACT: &str = include_str!("../react.ts");
const VUE: &str = include_str!("../vue.ts");
const SVELTE: &str = include_str!("../svelte.ts");

/// Which framework bindings to generate besides the client, the store and the TanStack Query
/// options (those are always generated). Each framework file imports its framework (`react`,
/// `vue`, `svelte/store`) as a peer, so ask only for the ones the app uses.
///
/// | file | per context `user` | per context function `user_profile` | per call `update_profile` |
/// |---|---|---|---|
/// | `react.ts` | `useUser(params)` | `useUserProfile(params)` | `useUpdateProfile()` |
/// | `vue.ts` | `useUser(params)` (refs) | `useUserProfile(params)` | `useUpdateProfile()` |
/// | `svelte.ts` | `createUserQuery(params)` | `createUserProfileQuery(params)` | `createUpdateProfileMutation()` |
/// | `queries.ts` (always) | `userQueryOptions(params)` | — | `updateProfileMutationOptions()` |
///
/// `react.ts` also has `<MizanProvider>` and `useMizan()`; `vue.ts` has `createMizan()`,
/// `provideMizan()` and `useMizan()`. A name already taken (a context and a function of the same
/// name, or a name of the bindings themselves such as `useMizan`) falls back to a longer one:
/// `use{Context}{Function}` for a function of a context, `use{Function}Mutation` for a call,
/// `use{Context}Query` (then `use{Context}Context`) for a context.
///
/// Every binding reads a `MizanStore` (`store.ts`, always generated). It caches bundles by
/// context and canonical params (sorted names, string values), sends one request per instance at
/// a time, counts observers and drops an instance nobody observes after a grace period, keeps
/// data while refetching, refetches the observed instances that a call's invalidation (or a
/// resync) marks stale, takes initial data for hydration, and gives immutable snapshots that
/// change identity only when something changed.
///
/// ```
/// use mizan_core::ir::typescript::Bindings;
///
/// let bindings = Bindings::new().with_react(true);
/// assert!(bindings.react() && !bindings.vue() && !bindings.svelte());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bindings {
    react: bool,
    vue: bool,
    svelte: bool,
}

impl Bindings {
    /// No framework bindings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to write `react.ts`: `<MizanProvider>`, `useMizan()` and one hook per context,
    /// context function and call.
    pub fn with_react(mut self, on: bool) -> Self {
        self.react = on;
        self
    }

    /// Whether to write `vue.ts`: `createMizan()`, `useMizan()` and one composable per context,
    /// context function and call.
    pub fn with_vue(mut self, on: bool) -> Self {
        self.vue = on;
        self
    }

    /// Whether to write `svelte.ts`: one store factory per context, context function and call.
    pub fn with_svelte(mut self, on: bool) -> Self {
        self.svelte = on;
        self
    }

    /// Whether `react.ts` is written.
    pub fn react(&self) -> bool {
        self.react
    }

    /// Whether `vue.ts` is written.
    pub fn vue(&self) -> bool {
        self.vue
    }

    /// Whether `svelte.ts` is written.
    pub fn svelte(&self) -> bool {
        self.svelte
    }
}

/// `store.ts` and `queries.ts`: written for every client.
pub(super) fn store_files(ir: &Ir) -> Vec<GeneratedFile> {
    vec![
        GeneratedFile {
            name: "store.ts",
            contents: format!("{HEADER}{STORE}"),
        },
        GeneratedFile {
            name: "queries.ts",
            contents: queries(ir),
        },
    ]
}

/// The framework files `bindings` asks for.
pub(super) fn framework_files(ir: &Ir, bindings: Bindings) -> Vec<GeneratedFile> {
    let mut files = Vec::new();
    if bindings.react {
        files.push(GeneratedFile {
            name: "react.ts",
            contents: react(ir),
        });
    }
    if bindings.vue {
        files.push(GeneratedFile {
            name: "vue.ts",
            contents: vue(ir),
        });
    }
    if bindings.svelte {
        files.push(GeneratedFile {
            name: "svelte.ts",
            contents: svelte(ir),
        });
    }
    files
}

/// A hook over a context bundle, or over one function's slice of it.
struct QueryHook {
    name: String,
    context: String,
    /// The function whose slice this hook selects (`None`: the whole bundle).
    function: Option<String>,
    /// `UserParams`, and whether every param may be omitted.
    params: String,
    optional: bool,
    /// `UserBundle` or `UserBundle["user_profile"]`.
    data: String,
    doc: String,
}

/// A hook over a call.
struct CallHook {
    name: String,
    /// `callUpdateProfile`.
    call: String,
    doc: String,
}

/// Candidate names per hook kind, first free one wins.
struct Naming {
    reserved: &'static [&'static str],
    context: fn(&str) -> Vec<String>,
    slice: fn(&str, &str) -> Vec<String>,
    call: fn(&str) -> Vec<String>,
}

const HOOKS: Naming = Naming {
    reserved: &[
        "useMizan",
        "useMizanQuery",
        "useMizanMutation",
        "MizanProvider",
        "createMizan",
        "provideMizan",
    ],
    context: |c| {
        vec![
            format!("use{c}"),
            format!("use{c}Query"),
            format!("use{c}Context"),
        ]
    },
    slice: |c, f| {
        vec![
            format!("use{f}"),
            format!("use{c}{f}"),
            format!("use{c}{f}Query"),
        ]
    },
    call: |f| vec![format!("use{f}"), format!("use{f}Mutation")],
};

const SVELTE_STORES: Naming = Naming {
    reserved: &["createMizanQuery", "createMizanMutation"],
    context: |c| vec![format!("create{c}Query"), format!("create{c}ContextQuery")],
    slice: |c, f| vec![format!("create{f}Query"), format!("create{c}{f}Query")],
    call: |f| {
        vec![
            format!("create{f}Mutation"),
            format!("create{f}CallMutation"),
        ]
    },
};

/// The hooks of `ir` under `naming`: contexts first (they keep the short names), then the
/// functions of each context, then calls. A hook whose every candidate name is taken is left out.
fn hooks(ir: &Ir, naming: &Naming) -> (Vec<QueryHook>, Vec<CallHook>) {
    let mut taken: BTreeSet<String> = naming.reserved.iter().map(|&s| s.to_owned()).collect();
    let mut pick = |candidates: Vec<String>| {
        let name = candidates.into_iter().find(|c| !taken.contains(c))?;
        taken.insert(name.clone());
        Some(name)
    };
    let mut queries = Vec::new();
    for (context, params) in &ir.contexts {
        let ctx = pascal(context);
        if let Some(name) = pick((naming.context)(&ctx)) {
            queries.push(QueryHook {
                name,
                context: context.clone(),
                function: None,
                params: format!("{ctx}Params"),
                optional: params.iter().all(|p| p.optional),
                data: format!("{ctx}Bundle"),
                doc: format!(
                    "The `{context}` bundle of one instance: fetched when first observed, refetched when a call invalidates it."
                ),
            });
        }
    }
    for (context, params) in &ir.contexts {
        let ctx = pascal(context);
        for function in ir
            .functions
            .iter()
            .filter(|f| f.kind == FunctionKind::Query && f.context.as_deref() == Some(context))
        {
            if let Some(name) = pick((naming.slice)(&ctx, &pascal(&function.name))) {
                queries.push(QueryHook {
                    name,
                    context: context.clone(),
                    function: Some(function.name.clone()),
                    params: format!("{ctx}Params"),
                    optional: params.iter().all(|p| p.optional),
                    data: format!("{ctx}Bundle[{}]", json_string(&function.name)),
                    doc: format!(
                        "`{}` from the `{context}` bundle (one request serves every function of an instance).",
                        function.name
                    ),
                });
            }
        }
    }
    let mut calls = Vec::new();
    for function in ir
        .functions
        .iter()
        .filter(|f| f.kind != FunctionKind::Query)
    {
        let fname = pascal(&function.name);
        if let Some(name) = pick((naming.call)(&fname)) {
            calls.push(CallHook {
                name,
                call: format!("call{fname}"),
                doc: call_doc(function),
            });
        }
    }
    (queries, calls)
}

/// The doc line of a `callXxx` function or its hook: what it is, invalidates and requires.
pub(super) fn call_doc(function: &crate::ir::IrFunction) -> String {
    let mut doc = format!("Calls `{}` ({}", function.name, function.kind.as_str());
    if !function.affects.is_empty() {
        let targets: Vec<String> = function
            .affects
            .iter()
            .map(|a| match &a.function {
                Some(f) => format!("{}.{f}", a.context),
                None => a.context.clone(),
            })
            .collect();
        let _ = write!(doc, "; invalidates {}", targets.join(", "));
    }
    if let Some(auth) = &function.auth {
        let _ = write!(doc, "; auth: {auth}");
    }
    if function.transports.iter().any(|t| t == "websocket") {
        doc.push_str("; callable over the socket");
    }
    doc.push_str(").");
    doc
}

/// `import { a, b } from "./client.js";` and `import type { ... }` for what the hooks use.
fn client_imports(queries: &[QueryHook], calls: &[CallHook]) -> String {
    let mut out = String::new();
    let values: BTreeSet<&str> = calls.iter().map(|c| c.call.as_str()).collect();
    if !values.is_empty() {
        let values: Vec<&str> = values.into_iter().collect();
        let _ = writeln!(
            out,
            "import {{ {} }} from \"./client.js\";",
            values.join(", ")
        );
    }
    let types: BTreeSet<String> = queries
        .iter()
        .flat_map(|q| {
            let ctx = pascal(&q.context);
            [format!("{ctx}Params"), format!("{ctx}Bundle")]
        })
        .collect();
    if !types.is_empty() {
        let types: Vec<String> = types.into_iter().collect();
        let _ = writeln!(
            out,
            "import type {{ {} }} from \"./client.js\";",
            types.join(", ")
        );
    }
    out
}

fn default_params(query: &QueryHook) -> &'static str {
    if query.optional {
        " = {}"
    } else {
        ""
    }
}

fn function_arg(query: &QueryHook) -> String {
    query
        .function
        .as_deref()
        .map(|f| format!(", {}", json_string(f)))
        .unwrap_or_default()
}

fn mutation_types(call: &CallHook) -> String {
    format!(
        "Parameters<typeof {0}>, Awaited<ReturnType<typeof {0}>>",
        call.call
    )
}

fn react(ir: &Ir) -> String {
    let (queries, calls) = hooks(ir, &HOOKS);
    let mut out = format!("{HEADER}{}{REACT}", client_imports(&queries, &calls));
    for q in &queries {
        let _ = write!(
            out,
            "\n/** {} */\nexport function {}(params: {}{}): MizanQuery<{}> {{\n  \
             return useMizanQuery<{}>({}, params{});\n}}\n",
            q.doc,
            q.name,
            q.params,
            default_params(q),
            q.data,
            q.data,
            json_string(&q.context),
            function_arg(q),
        );
    }
    for c in &calls {
        let _ = write!(
            out,
            "\n/** {} */\nexport function {}(): MizanMutation<{}> {{\n  return useMizanMutation({});\n}}\n",
            c.doc,
            c.name,
            mutation_types(c),
            c.call,
        );
    }
    out
}

fn vue(ir: &Ir) -> String {
    let (queries, calls) = hooks(ir, &HOOKS);
    let mut out = format!("{HEADER}{}{VUE}", client_imports(&queries, &calls));
    for q in &queries {
        let _ = write!(
            out,
            "\n/** {} `params` may be a ref or a getter: the composable follows it. */\n\
             export function {}(params: MaybeRefOrGetter<{}>{}): MizanQueryRefs<{}> {{\n  \
             return useMizanQuery<{}>({}, params{});\n}}\n",
            q.doc,
            q.name,
            q.params,
            default_params(q),
            q.data,
            q.data,
            json_string(&q.context),
            function_arg(q),
        );
    }
    for c in &calls {
        let _ = write!(
            out,
            "\n/** {} */\nexport function {}(): MizanMutationRefs<{}> {{\n  return useMizanMutation({});\n}}\n",
            c.doc,
            c.name,
            mutation_types(c),
            c.call,
        );
    }
    out
}

fn svelte(ir: &Ir) -> String {
    let (queries, calls) = hooks(ir, &SVELTE_STORES);
    let mut out = format!("{HEADER}{}{SVELTE}", client_imports(&queries, &calls));
    for q in &queries {
        let function = q
            .function
            .as_deref()
            .map_or_else(|| "undefined".to_owned(), json_string);
        let _ = write!(
            out,
            "\n/** {} A readable store; `store` defaults to the shared one. */\n\
             export function {}(params: {}{}, store?: MizanStore): MizanQueryStore<{}> {{\n  \
             return createMizanQuery<{}>({}, params, {function}, store);\n}}\n",
            q.doc,
            q.name,
            q.params,
            default_params(q),
            q.data,
            q.data,
            json_string(&q.context),
        );
    }
    for c in &calls {
        let _ = write!(
            out,
            "\n/** {} A readable store of the call's state. */\nexport function {}(): MizanMutationStore<{}> {{\n  \
             return createMizanMutation({});\n}}\n",
            c.doc,
            c.name,
            mutation_types(c),
            c.call,
        );
    }
    out
}

/// `update_profile` → `updateProfile`.
fn camel(name: &str) -> String {
    let pascal = pascal(name);
    let mut chars = pascal.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_lowercase().to_string() + chars.as_str()
    })
}

/// TanStack Query options: plain objects, no dependency on TanStack.
fn queries(ir: &Ir) -> String {
    let contexts: Vec<(String, bool)> = ir
        .contexts
        .iter()
        .map(|(c, params)| (c.clone(), params.iter().all(|p| p.optional)))
        .collect();
    let calls: Vec<&crate::ir::IrFunction> = ir
        .functions
        .iter()
        .filter(|f| f.kind != FunctionKind::Query)
        .collect();
    let mut out = format!("{HEADER}import {{ mizanQueryKey }} from \"./store.js\";\n");
    out.push_str("import type { MizanMutationOptions, MizanQueryOptions } from \"./store.js\";\n");
    let mut values: Vec<String> = contexts
        .iter()
        .map(|(c, _)| format!("fetch{}", pascal(c)))
        .collect();
    values.extend(calls.iter().map(|f| format!("call{}", pascal(&f.name))));
    if !values.is_empty() {
        let _ = writeln!(
            out,
            "import {{ {} }} from \"./client.js\";",
            values.join(", ")
        );
    }
    let types: Vec<String> = contexts
        .iter()
        .flat_map(|(c, _)| {
            [
                format!("{}Params", pascal(c)),
                format!("{}Bundle", pascal(c)),
            ]
        })
        .collect();
    if !types.is_empty() {
        let _ = writeln!(
            out,
            "import type {{ {} }} from \"./client.js\";",
            types.join(", ")
        );
    }
    for (context, optional) in &contexts {
        let ctx = pascal(context);
        let _ = write!(
            out,
            "\n/** TanStack Query options for the `{context}` bundle: `useQuery({camel}QueryOptions(params))`. */\n\
             export function {camel}QueryOptions(params: {ctx}Params{default}): MizanQueryOptions<{ctx}Bundle> {{\n  \
             return {{ queryKey: mizanQueryKey({name}, params), queryFn: () => fetch{ctx}(params) }};\n}}\n",
            camel = camel(context),
            default = if *optional { " = {}" } else { "" },
            name = json_string(context),
        );
    }
    for function in &calls {
        let fname = pascal(&function.name);
        let _ = write!(
            out,
            "\n/** TanStack Query options for `{name}`: `useMutation({camel}MutationOptions())`. */\n\
             export function {camel}MutationOptions(): MizanMutationOptions<Parameters<typeof call{fname}>[0], Awaited<ReturnType<typeof call{fname}>>> {{\n  \
             return {{ mutationKey: [\"mizan\", {quoted}], mutationFn: (args) => call{fname}(args) }};\n}}\n",
            name = function.name,
            camel = camel(&function.name),
            quoted = json_string(&function.name),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Arg, IrFunction, TypeExpr};

    fn function(name: &str, kind: FunctionKind, context: Option<&str>) -> IrFunction {
        IrFunction {
            name: name.into(),
            kind,
            context: context.map(Into::into),
            args: Vec::new(),
            returns: TypeExpr::Null,
            affects: Vec::new(),
            auth: None,
            transports: vec!["http".into()],
            uploads: Vec::new(),
            form: None,
        }
    }

    fn ir() -> Ir {
        let mut ir = Ir::default();
        ir.contexts.insert(
            "user".into(),
            vec![Arg {
                name: "user_id".into(),
                ty: TypeExpr::Int {
                    bits: 64,
                    signed: true,
                },
                optional: false,
            }],
        );
        ir.contexts.insert("mizan".into(), Vec::new());
        ir.functions = vec![
            function("user_profile", FunctionKind::Query, Some("user")),
            // A function named like a context: its hook takes the longer name.
            function("user", FunctionKind::Query, Some("user")),
            function("update_profile", FunctionKind::Mutation, None),
            function("mizan", FunctionKind::Query, Some("mizan")),
        ];
        ir
    }

    #[test]
    fn only_the_requested_frameworks_are_written() {
        let names = |b: Bindings| -> Vec<&str> {
            framework_files(&ir(), b)
                .into_iter()
                .map(|f| f.name)
                .collect()
        };
        assert!(names(Bindings::new()).is_empty());
        assert_eq!(names(Bindings::new().with_react(true)), ["react.ts"]);
        assert_eq!(
            names(
                Bindings::new()
                    .with_react(true)
                    .with_vue(true)
                    .with_svelte(true)
            ),
            ["react.ts", "vue.ts", "svelte.ts"]
        );
    }

    #[test]
    fn react_hooks_take_free_names() {
        let react = react(&ir());
        assert!(
            react.contains("export function useUser(params: UserParams): MizanQuery<UserBundle>"),
            "{react}"
        );
        assert!(
            react.contains(
                "export function useUserProfile(params: UserParams): MizanQuery<UserBundle[\"user_profile\"]> {\n  \
                 return useMizanQuery<UserBundle[\"user_profile\"]>(\"user\", params, \"user_profile\");"
            ),
            "{react}"
        );
        assert!(
            react.contains("export function useUserUser(params: UserParams)"),
            "{react}"
        );
        // `useMizan` is the provider lookup: the context hook takes the longer name.
        assert!(
            react.contains("export function useMizanContext(params: MizanParams = {})"),
            "{react}"
        );
        assert!(
            react.contains("export function useMizanMizan(params: MizanParams = {})"),
            "{react}"
        );
        assert!(
            react.contains("export function useUpdateProfile(): MizanMutation<Parameters<typeof callUpdateProfile>, Awaited<ReturnType<typeof callUpdateProfile>>>"),
            "{react}"
        );
        assert!(react.contains("import { callUpdateProfile } from \"./client.js\";"));
    }

    #[test]
    fn svelte_and_tanstack_names() {
        let svelte = svelte(&ir());
        assert!(
            svelte.contains(
                "export function createUserQuery(params: UserParams, store?: MizanStore)"
            ),
            "{svelte}"
        );
        assert!(
            svelte.contains("export function createUpdateProfileMutation()"),
            "{svelte}"
        );
        let queries = queries(&ir());
        assert!(
            queries.contains("export function userQueryOptions(params: UserParams): MizanQueryOptions<UserBundle>"),
            "{queries}"
        );
        assert!(
            queries.contains("export function mizanQueryOptions(params: MizanParams = {})"),
            "{queries}"
        );
        assert!(
            queries.contains("mutationKey: [\"mizan\", \"update_profile\"]"),
            "{queries}"
        );
    }
}
