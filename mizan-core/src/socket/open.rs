//! [`OpenSockets`]: the open sockets of one app, for the connection cap, the count of slow
//! readers and the shutdown signal. Runtime-free: each driver registers its waker here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;
use http::{HeaderValue, StatusCode};

use crate::error::ApiError;

/// The open sockets of one app: how many (the cap), how many lag behind, and the signal that
/// closes them all. Runtime-free: drivers register their wakers here.
#[derive(Default)]
pub(crate) struct OpenSockets {
    pub(crate) open: AtomicUsize,
    pub(crate) lagging: AtomicUsize,
    pub(crate) slow_closed: AtomicU64,
    pub(crate) closing: AtomicBool,
    wakers: Mutex<Wakers>,
}

#[derive(Default)]
struct Wakers {
    next_id: u64,
    /// The driver of each open socket, woken by [`OpenSockets::close_all`].
    drivers: HashMap<u64, Arc<AtomicWaker>>,
    /// Whoever waits for the last socket to close.
    idle: Vec<Waker>,
}

impl OpenSockets {
    fn wakers(&self) -> MutexGuard<'_, Wakers> {
        self.wakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// 503 when the app is closing its sockets or holds `max` of them already.
    pub(crate) fn has_room(&self, max: usize) -> Result<(), ApiError> {
        let unavailable = |message: &'static str, reason: &str| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                message,
            )
            .with_details(serde_json::json!({ "reason": reason }))
            .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("5"))
        };
        if self.closing.load(Ordering::SeqCst) {
            return Err(unavailable("the server is shutting down", "shutting_down"));
        }
        if self.open.load(Ordering::SeqCst) >= max {
            return Err(unavailable("too many open sockets", "max_sockets"));
        }
        Ok(())
    }

    /// Counts one more socket, unless `max` are open already.
    pub(crate) fn admit(&self, max: usize) -> Option<SocketGuard<'_>> {
        self.open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()?;
        let waker = Arc::new(AtomicWaker::new());
        let mut wakers = self.wakers();
        let id = wakers.next_id;
        wakers.next_id += 1;
        wakers.drivers.insert(id, Arc::clone(&waker));
        Some(SocketGuard {
            sockets: self,
            id,
            waker,
            lagging: false,
        })
    }

    pub(crate) fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for waker in self.wakers().drivers.values() {
            waker.wake();
        }
    }

    pub(crate) fn poll_none_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut wakers = self.wakers();
        if self.open.load(Ordering::SeqCst) == 0 {
            return Poll::Ready(());
        }
        wakers.idle.push(cx.waker().clone());
        Poll::Pending
    }
}

/// One open socket, counted while its driver runs; dropping it (the driver returned or was
/// dropped) releases its place.
pub(crate) struct SocketGuard<'a> {
    sockets: &'a OpenSockets,
    id: u64,
    /// Woken by [`OpenSockets::close_all`] (registered without taking the registry's lock).
    waker: Arc<AtomicWaker>,
    lagging: bool,
}

impl SocketGuard<'_> {
    /// Whether the app is closing its sockets; if not, the driver is woken when it does.
    pub(crate) fn poll_closing(&self, cx: &mut Context<'_>) -> bool {
        // Registered before the check: `close_all` sets the flag, then wakes.
        self.waker.register(cx.waker());
        self.sockets.closing.load(Ordering::SeqCst)
    }

    pub(crate) fn set_lagging(&mut self, lagging: bool) {
        if lagging != self.lagging {
            self.lagging = lagging;
            if lagging {
                self.sockets.lagging.fetch_add(1, Ordering::SeqCst);
            } else {
                self.sockets.lagging.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

impl Drop for SocketGuard<'_> {
    fn drop(&mut self) {
        self.set_lagging(false);
        let mut wakers = self.sockets.wakers();
        wakers.drivers.remove(&self.id);
        if self.sockets.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            for waker in wakers.idle.drain(..) {
                waker.wake();
            }
        }
    }
}
