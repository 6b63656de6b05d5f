//! Redis `CacheBackend` for Mizan (work in progress).
