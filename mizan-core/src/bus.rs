//! The invalidation bus: how a mutation's targets reach the sockets of every app instance.
//!
//! After a mutation succeeds, on any transport, its targets are [published](InvalidationBus::publish).
//! Each socket holds a [`BusReceiver`] ([`InvalidationBus::subscribe`]) and hands what it
//! receives to its protocol state machine, which pushes each target to the subscriptions it
//! makes stale. Delivery is at most once: a receiver that misses events (it lagged behind, or
//! the bus lost its broker connection) receives [`BusEvent::Resync`] instead, so the client
//! refetches everything rather than silently keeping stale data.
//!
//! [`MemoryBus`] serves one process. A bus spanning several instances publishes to a broker
//! and serves its local receivers with a `MemoryBus`:
//!
//! ```
//! use std::sync::Mutex;
//!
//! use futures_util::StreamExt;
//! use mizan_core::bus::{decode_targets, encode_targets, BusError, BusEvent, BusReceiver, InvalidationBus, MemoryBus};
//! use mizan_core::{async_trait, Target};
//!
//! /// A bus over a broker; here the broker is a list of messages.
//! #[derive(Default)]
//! struct BrokerBus {
//!     broker: Mutex<Vec<String>>,
//!     local: MemoryBus,
//! }
//!
//! #[async_trait]
//! impl InvalidationBus for BrokerBus {
//!     async fn publish(&self, targets: &[Target]) -> Result<(), BusError> {
//!         // A real bus sends to its broker (and maps a failure to `BusError::Unavailable`).
//!         self.broker.lock().unwrap().push(encode_targets(targets));
//!         Ok(())
//!     }
//!
//!     fn subscribe(&self) -> BusReceiver {
//!         self.local.subscribe()
//!     }
//! }
//!
//! impl BrokerBus {
//!     /// What the task reading the broker does for each message (every instance, the
//!     /// publisher included, gets its own messages back from the broker).
//!     fn on_broker_message(&self, message: &str) -> Result<(), BusError> {
//!         self.local.deliver(&decode_targets(message)?);
//!         Ok(())
//!     }
//!
//!     /// What it does after reconnecting to the broker: messages may have been lost.
//!     fn on_reconnect(&self) {
//!         self.local.resync();
//!     }
//! }
//!
//! futures_executor::block_on(async {
//!     let bus = BrokerBus::default();
//!     let mut receiver = bus.subscribe();
//!     bus.publish(&[Target::Context { context: "catalog".into(), params: None }]).await?;
//!     let message = bus.broker.lock().unwrap().pop().unwrap();
//!     bus.on_broker_message(&message)?;
//!     match receiver.next().await {
//!         Some(BusEvent::Targets(targets)) => assert_eq!(targets[0].context(), "catalog"),
//!         other => panic!("{other:?}"),
//!     }
//!     bus.on_reconnect();
//!     assert!(matches!(receiver.next().await, Some(BusEvent::Resync)));
//!     Ok::<(), BusError>(())
//! })
//! .unwrap();
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::BoxError;
use crate::invalidation::Target;

/// What a [`BusReceiver`] yields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BusEvent {
    /// The targets of one mutation, shared by every receiver.
    Targets(Arc<[Target]>),
    /// Events were lost before this one (the receiver lagged, the bus reconnected): anything
    /// subscribed may be stale.
    Resync,
}

/// The invalidation bus failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The broker cannot be reached.
    #[error("invalidation bus unavailable")]
    Unavailable(#[source] BoxError),
    /// The broker answered with an error.
    #[error("invalidation bus error")]
    Backend(#[source] BoxError),
    /// A message on the bus is not a list of targets.
    #[error("malformed invalidation bus message")]
    Malformed(#[source] BoxError),
}

/// Carries invalidation targets from the mutations to the sockets that watch the data.
///
/// Object safe; an app holds an `Arc<dyn InvalidationBus>`. A failed
/// [`publish`](Self::publish) never fails the mutation that made the targets: the caller logs
/// it, and the bus sends [`BusEvent::Resync`] to its receivers once it is back.
#[async_trait]
pub trait InvalidationBus: Send + Sync + 'static {
    /// Sends the targets of one successful mutation to every receiver, on every instance.
    async fn publish(&self, targets: &[Target]) -> Result<(), BusError>;

    /// A new receiver of every event published from now on. Dropping it unsubscribes.
    fn subscribe(&self) -> BusReceiver;
}

#[async_trait]
impl<T: InvalidationBus + ?Sized> InvalidationBus for Arc<T> {
    async fn publish(&self, targets: &[Target]) -> Result<(), BusError> {
        (**self).publish(targets).await
    }

    fn subscribe(&self) -> BusReceiver {
        (**self).subscribe()
    }
}

/// A stream of [`BusEvent`]s (`futures` [`Stream`]), independent of any async runtime.
pub struct BusReceiver {
    inner: Pin<Box<dyn Stream<Item = BusEvent> + Send>>,
}

impl BusReceiver {
    /// A receiver over any stream of events, for bus implementations.
    pub fn new(stream: impl Stream<Item = BusEvent> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }
}

impl fmt::Debug for BusReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusReceiver").finish_non_exhaustive()
    }
}

impl Stream for BusReceiver {
    type Item = BusEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BusEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The in-process bus: every receiver gets every event, in order.
///
/// Each receiver buffers at most `capacity` events (default 1024). One that falls further
/// behind loses its buffered events and receives [`BusEvent::Resync`] in their place, then
/// the events published after. Cloning gives a handle to the same bus.
///
/// ```
/// use futures_util::{FutureExt, StreamExt};
/// use mizan_core::bus::{BusEvent, InvalidationBus, MemoryBus};
/// use mizan_core::Target;
///
/// let bus = MemoryBus::with_capacity(2);
/// let mut receiver = bus.subscribe();
/// let broad = |c: &str| vec![Target::Context { context: c.into(), params: None }];
/// for context in ["a", "b", "c"] {
///     bus.deliver(&broad(context));
/// }
/// // Three events for a buffer of two: the receiver lagged.
/// assert_eq!(receiver.next().now_or_never(), Some(Some(BusEvent::Resync)));
/// bus.deliver(&broad("d"));
/// assert_eq!(receiver.next().now_or_never(), Some(Some(BusEvent::Targets(broad("d").into()))));
/// assert_eq!(receiver.next().now_or_never(), None); // nothing more yet
/// ```
#[derive(Clone)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

struct Shared {
    capacity: usize,
    receivers: Mutex<Vec<Weak<Slot>>>,
}

#[derive(Default)]
struct Slot(Mutex<SlotState>);

#[derive(Default)]
struct SlotState {
    events: VecDeque<BusEvent>,
    lagged: bool,
    waker: Option<Waker>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBus")
            .field("capacity", &self.shared.capacity)
            .field("receivers", &self.receiver_count())
            .finish()
    }
}

impl MemoryBus {
    /// A bus whose receivers buffer up to 1024 events each.
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    /// A bus whose receivers buffer up to `capacity` events each (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                capacity: capacity.max(1),
                receivers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Hands `targets` to every receiver at once (what [`publish`](InvalidationBus::publish)
    /// does). A bus over a broker calls it for each message the broker delivers.
    pub fn deliver(&self, targets: &[Target]) {
        if targets.is_empty() {
            return;
        }
        let event: Arc<[Target]> = targets.into();
        let capacity = self.shared.capacity;
        self.each_slot(|state| {
            if state.events.len() >= capacity {
                state.events.clear();
                state.lagged = true;
            } else {
                state
                    .events
                    .push_back(BusEvent::Targets(Arc::clone(&event)));
            }
        });
    }

    /// Tells every receiver that events were lost ([`BusEvent::Resync`]), replacing what
    /// they have not read yet. A bus over a broker calls it after reconnecting.
    pub fn resync(&self) {
        self.each_slot(|state| {
            state.events.clear();
            state.lagged = true;
        });
    }

    /// Receivers alive (a dropped receiver no longer counts).
    pub fn receiver_count(&self) -> usize {
        let mut receivers = self.receivers();
        receivers.retain(|slot| slot.strong_count() > 0);
        receivers.len()
    }

    fn receivers(&self) -> MutexGuard<'_, Vec<Weak<Slot>>> {
        self.shared
            .receivers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn each_slot(&self, mut update: impl FnMut(&mut SlotState)) {
        let mut receivers = self.receivers();
        receivers.retain(|slot| {
            let Some(slot) = slot.upgrade() else {
                return false;
            };
            let mut state = slot.lock();
            update(&mut state);
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
            true
        });
    }
}

#[async_trait]
impl InvalidationBus for MemoryBus {
    async fn publish(&self, targets: &[Target]) -> Result<(), BusError> {
        self.deliver(targets);
        Ok(())
    }

    fn subscribe(&self) -> BusReceiver {
        let slot = Arc::new(Slot::default());
        self.receivers().push(Arc::downgrade(&slot));
        BusReceiver::new(MemoryReceiver { slot })
    }
}

/// The receiving end of a [`MemoryBus`]; dropping it drops its buffer.
struct MemoryReceiver {
    slot: Arc<Slot>,
}

impl Stream for MemoryReceiver {
    type Item = BusEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BusEvent>> {
        let mut state = self.slot.lock();
        if state.lagged {
            state.lagged = false;
            return Poll::Ready(Some(BusEvent::Resync));
        }
        match state.events.pop_front() {
            Some(event) => Poll::Ready(Some(event)),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Encodes targets for a bus message: the JSON array of their body form, as in a call's
/// `invalidate` (`["catalog", {"context": "user", "params": {"user_id": 5}}]`).
pub fn encode_targets(targets: &[Target]) -> String {
    serde_json::to_string(targets).expect("targets are plain JSON values")
}

/// Decodes a bus message made by [`encode_targets`].
///
/// ```
/// use mizan_core::bus::{decode_targets, encode_targets};
/// use mizan_core::Target;
/// use serde_json::json;
///
/// let targets = vec![
///     Target::Context { context: "catalog".into(), params: None },
///     Target::Function {
///         context: "user".into(),
///         function: "user_profile".into(),
///         params: json!({"user_id": 5}).as_object().cloned(),
///     },
/// ];
/// assert_eq!(decode_targets(&encode_targets(&targets)).unwrap(), targets);
/// assert!(decode_targets(r#"[{"params": {}}]"#).is_err());
/// ```
pub fn decode_targets(message: &str) -> Result<Vec<Target>, BusError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Broad(String),
        Scoped {
            context: String,
            #[serde(default)]
            function: Option<String>,
            #[serde(default)]
            params: Option<Map<String, Value>>,
        },
    }
    let wire: Vec<Wire> =
        serde_json::from_str(message).map_err(|e| BusError::Malformed(Box::new(e)))?;
    Ok(wire
        .into_iter()
        .map(|target| match target {
            Wire::Broad(context) => Target::Context {
                context,
                params: None,
            },
            Wire::Scoped {
                context,
                function: None,
                params,
            } => Target::Context { context, params },
            Wire::Scoped {
                context,
                function: Some(function),
                params,
            } => Target::Function {
                context,
                function,
                params,
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use futures_util::{FutureExt, StreamExt};
    use serde_json::json;

    use super::*;
    use crate::testing::block_on;

    fn broad(context: &str) -> Target {
        Target::Context {
            context: context.into(),
            params: None,
        }
    }

    fn next(receiver: &mut BusReceiver) -> Option<BusEvent> {
        receiver.next().now_or_never().flatten()
    }

    #[test]
    fn every_receiver_gets_every_event_in_order() {
        let bus = MemoryBus::new();
        let (mut a, mut b) = (bus.subscribe(), bus.subscribe());
        block_on(bus.publish(&[broad("x")])).unwrap();
        block_on(bus.publish(&[broad("y"), broad("z")])).unwrap();
        for receiver in [&mut a, &mut b] {
            assert_eq!(
                next(receiver),
                Some(BusEvent::Targets(vec![broad("x")].into()))
            );
            assert_eq!(
                next(receiver),
                Some(BusEvent::Targets(vec![broad("y"), broad("z")].into()))
            );
            assert_eq!(next(receiver), None);
        }
    }

    #[test]
    fn a_receiver_sees_only_what_is_published_after_it_subscribed() {
        let bus = MemoryBus::new();
        bus.deliver(&[broad("before")]);
        let mut receiver = bus.subscribe();
        bus.deliver(&[]);
        assert_eq!(next(&mut receiver), None);
        bus.deliver(&[broad("after")]);
        assert_eq!(
            next(&mut receiver),
            Some(BusEvent::Targets(vec![broad("after")].into()))
        );
    }

    #[test]
    fn a_lagging_receiver_gets_resync_and_others_are_unaffected() {
        let bus = MemoryBus::with_capacity(3);
        let mut slow = bus.subscribe();
        let mut fast = bus.subscribe();
        for i in 0..5 {
            bus.deliver(&[broad(&format!("c{i}"))]);
            assert_eq!(
                next(&mut fast),
                Some(BusEvent::Targets(vec![broad(&format!("c{i}"))].into()))
            );
        }
        // c0..c2 filled the buffer, c3 overflowed it (dropped c0..c2), c4 came after.
        assert_eq!(next(&mut slow), Some(BusEvent::Resync));
        assert_eq!(
            next(&mut slow),
            Some(BusEvent::Targets(vec![broad("c4")].into()))
        );
        assert_eq!(next(&mut slow), None);
    }

    #[test]
    fn resync_replaces_unread_events() {
        let bus = MemoryBus::new();
        let mut receiver = bus.subscribe();
        bus.deliver(&[broad("lost")]);
        bus.resync();
        assert_eq!(next(&mut receiver), Some(BusEvent::Resync));
        assert_eq!(next(&mut receiver), None);
    }

    #[test]
    fn a_waiting_receiver_wakes_on_publish() {
        let bus = MemoryBus::new();
        let mut receiver = bus.subscribe();
        let publisher = bus.clone();
        let waiting = async {
            let event = receiver.next().await;
            assert_eq!(event, Some(BusEvent::Targets(vec![broad("x")].into())));
        };
        let publishing = async {
            // Runs after the receiver has parked (join polls in order).
            publisher.deliver(&[broad("x")]);
        };
        block_on(futures_util::future::join(waiting, publishing));
    }

    #[test]
    fn dropped_receivers_are_forgotten() {
        let bus = MemoryBus::new();
        let a = bus.subscribe();
        let b = bus.subscribe();
        assert_eq!(bus.receiver_count(), 2);
        drop(a);
        assert_eq!(bus.receiver_count(), 1);
        drop(b);
        bus.deliver(&[broad("x")]);
        assert_eq!(bus.receiver_count(), 0);
    }

    #[test]
    fn works_behind_a_trait_object() {
        let bus: Arc<dyn InvalidationBus> = Arc::new(MemoryBus::new());
        let mut receiver = bus.subscribe();
        block_on(bus.publish(&[broad("x")])).unwrap();
        assert!(matches!(next(&mut receiver), Some(BusEvent::Targets(_))));
    }

    #[test]
    fn bus_messages_round_trip_and_refuse_garbage() {
        let targets = vec![
            broad("catalog"),
            Target::Context {
                context: "user".into(),
                params: json!({"user_id": 5}).as_object().cloned(),
            },
            Target::Function {
                context: "user".into(),
                function: "user_profile".into(),
                params: None,
            },
        ];
        let message = encode_targets(&targets);
        assert_eq!(
            message,
            r#"["catalog",{"context":"user","params":{"user_id":5}},{"context":"user","function":"user_profile"}]"#
        );
        assert_eq!(decode_targets(&message).unwrap(), targets);
        for garbage in [
            "",
            "{}",
            "[1]",
            r#"[{"context": 5}]"#,
            r#"[{"context": "a", "params": [1]}]"#,
        ] {
            assert!(
                matches!(decode_targets(garbage), Err(BusError::Malformed(_))),
                "{garbage}"
            );
        }
    }
}
