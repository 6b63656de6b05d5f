//! [`Clock`]: where time comes from, so every time-dependent rule is testable deterministically.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Where Mizan reads the time: cache TTLs use [`now`](Clock::now), token lifetimes
/// [`unix_seconds`](Clock::unix_seconds). Tests use
/// [`ManualClock`](crate::testing::ManualClock).
pub trait Clock: Send + Sync + 'static {
    /// The current monotonic instant.
    fn now(&self) -> Instant;

    /// The current time in seconds since the Unix epoch.
    fn unix_seconds(&self) -> u64;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_seconds(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    }
}

/// The app's clock, kept in the app state so that functions read the same time as the app
/// ([`Request::unix_time`](crate::Request::unix_time)).
#[derive(Clone)]
pub(crate) struct AppClock(pub(crate) Arc<dyn Clock>);
