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

/// Parameter names whose presence makes a context user-scoped (and `dynamic_cached`).
pub const USER_PARAMS: [&str; 4] = ["user_id", "user", "owner_id", "account_id"];
