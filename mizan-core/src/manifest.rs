//! The edge manifest: what a CDN worker needs to cache context bundles and pages and to purge
//! them on mutation.
//!
//! Keys are sorted and the output is compact, so the same registry always gives the same bytes.
//! Shape:
//!
//! ```json
//! {"contexts": {"user": {"endpoints": ["/api/mizan/ctx/user/"],
//!                        "functions": [{"name": "user_profile", "path": "rpc"},
//!                                      {"name": "profile_page", "path": "view", "route": "/profile/{user_id}/"}],
//!                        "page_routes": ["/profile/{user_id}/"], "params": ["user_id"],
//!                        "render_strategy": "dynamic_cached", "user_scoped": true}},
//!  "mutations": {"update_profile": {"affects": ["user"], "auto_scoped_params": ["user_id"]}}}
//! ```
//!
//! `render_strategy` is `dynamic_cached` when the context's params overlap
//! [`USER_PARAMS`], `psr` otherwise. Private functions appear with
//! `"private": true`; routes come with their methods.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::app::{Registry, USER_PARAMS};
use crate::registry::Function;

/// Renders the manifest of a validated registry mounted at `mount`.
pub(crate) fn render(registry: &Registry, mount: &str) -> Bytes {
    let mut contexts = Map::new();
    for (name, info) in &registry.contexts {
        let members = info.functions.iter().map(|&i| &registry.functions[i]);
        let functions: Vec<Value> = members.clone().map(function_entry).collect();
        let page_routes: Vec<&str> = members
            .filter(|f| f.is_view())
            .filter_map(Function::route)
            .collect();
        let dynamic = info
            .params
            .iter()
            .any(|p| USER_PARAMS.contains(&p.as_str()));
        contexts.insert(
            name.clone(),
            json!({
                "functions": functions,
                "endpoints": [format!("{mount}ctx/{name}/")],
                "params": info.params,
                "user_scoped": info.user_scoped,
                "render_strategy": if dynamic { "dynamic_cached" } else { "psr" },
                "page_routes": page_routes,
            }),
        );
    }

    let mut mutations = Map::new();
    for (index, function) in registry.functions.iter().enumerate() {
        if function.affects().is_empty() {
            continue;
        }
        let mut entry = Map::new();
        entry.insert("affects".into(), json!(function.affects()));
        let mut scoped: Vec<&str> = Vec::new();
        for target in &registry.plans[index] {
            for param in &target.scope {
                if !scoped.contains(&param.as_str()) {
                    scoped.push(param);
                }
            }
        }
        if !scoped.is_empty() {
            entry.insert("auto_scoped_params".into(), json!(scoped));
        }
        add_route_and_privacy(&mut entry, function, &registry.methods[index]);
        mutations.insert(function.name().to_owned(), Value::Object(entry));
    }

    let manifest = json!({ "contexts": contexts, "mutations": mutations });
    Bytes::from(serde_json::to_vec(&manifest).expect("a JSON value always serializes"))
}

fn function_entry(function: &Function) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), json!(function.name()));
    entry.insert(
        "path".into(),
        json!(if function.is_view() { "view" } else { "rpc" }),
    );
    if let Some(route) = function.route() {
        entry.insert("route".into(), json!(route));
    }
    if function.is_private() {
        entry.insert("private".into(), json!(true));
    }
    Value::Object(entry)
}

fn add_route_and_privacy(
    entry: &mut Map<String, Value>,
    function: &Function,
    methods: &[http::Method],
) {
    if function.is_private() {
        entry.insert("private".into(), json!(true));
    }
    if let Some(route) = function.route() {
        entry.insert("route".into(), json!(route));
        let methods: Vec<&str> = methods.iter().map(http::Method::as_str).collect();
        entry.insert("methods".into(), json!(methods));
    }
}
