//! [`Filter`]: which invalidation targets make one subscription stale.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::cache::param_string;
use crate::invalidation::Target;

/// What one subscription watches: a context instance, named by the context and its params.
///
/// # The matching rule
///
/// A target matches when it is in the same context and every param it is scoped by is among
/// the subscription's params with an equal value, values compared in their string form
/// ([`param_string`], so `5` and `"5"` are equal):
///
/// - a broad target of the context (`"user"`) matches every subscription of the context;
/// - a scoped target (`{"context": "user", "params": {"user_id": 5}}`) matches the
///   subscriptions whose params carry `user_id` = `5`, whatever other params they have;
/// - a function-level target (`{"context": "user", "function": "user_profile"}`, scoped or
///   not) follows the same two rules.
///
/// Nothing else matches: not another context's target, not a target scoped by a param the
/// subscription lacks or holds with another value.
///
/// # Users
///
/// Targets carry context params, never a user. A user-scoped context has one instance per
/// (params, viewer), and a target makes stale every viewer's instance with those params, which
/// is also how the origin cache drops them. So matching looks at params only:
///
/// - a target scoped by `user_id=5` reaches the subscriptions to `user_id=5` and never one to
///   `user_id=6`: another user's instance is another params instance;
/// - whether a viewer may watch an instance at all is decided when it subscribes, by the same
///   guard as fetching that context (a `sub` the caller may not read gets an `error`);
/// - a broad target of a user-scoped context (a context that picks its user from the identity
///   alone, without a user param, can only be invalidated broadly) reaches every subscriber of
///   that context, because it makes every user's instance stale. A target holds no data: the
///   most such a push tells another user is that something in that context changed.
///
/// ```
/// use mizan_core::socket::Filter;
/// use mizan_core::Target;
/// use serde_json::json;
///
/// let filter = Filter::new("user", json!({"user_id": "5"}).as_object().unwrap());
/// let scoped = |id: i64| Target::Context {
///     context: "user".into(),
///     params: json!({"user_id": id}).as_object().cloned(),
/// };
/// assert!(filter.matches(&scoped(5)));
/// assert!(!filter.matches(&scoped(6)));
/// assert!(filter.matches(&Target::Context { context: "user".into(), params: None }));
/// assert!(!filter.matches(&Target::Context { context: "notes".into(), params: None }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    context: String,
    params: BTreeMap<String, String>,
}

impl Filter {
    /// The filter of a subscription to `context` with `params` (`null` params are absent).
    pub fn new(context: impl Into<String>, params: &Map<String, Value>) -> Self {
        Self {
            context: context.into(),
            params: params
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), param_string(value)?)))
                .collect(),
        }
    }

    /// The context watched.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The params in their string form.
    pub fn params(&self) -> &BTreeMap<String, String> {
        &self.params
    }

    /// Whether `target` makes the watched instance stale.
    pub fn matches(&self, target: &Target) -> bool {
        target.context() == self.context
            && target.params().is_none_or(|params| {
                params.iter().all(|(name, value)| {
                    let wanted = self.params.get(name).map(String::as_str);
                    match value {
                        Value::String(s) => wanted == Some(s.as_str()),
                        other => param_string(other).as_deref() == wanted,
                    }
                })
            })
    }

    /// Bytes the filter holds (for the per-subscription limit).
    pub(crate) fn size(&self) -> usize {
        self.context.len()
            + self
                .params
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>()
    }
}
