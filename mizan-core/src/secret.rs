//! [`Secret`]: key material that never reaches logs, errors or `Debug` output.

use std::fmt;

/// Key material (the cache HMAC secret, later the JWT and MWT secrets).
///
/// Its `Debug` output is redacted; it has no `Display`.
///
/// ```
/// let secret = mizan_core::Secret::new("correct horse battery staple");
/// assert_eq!(format!("{secret:?}"), "Secret(<redacted, 28 bytes>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// The shortest secret accepted when an app is built (256 bits, as HS256 and HMAC-SHA256 want).
    pub const MIN_LEN: usize = 32;

    /// Wraps key material.
    pub fn new(bytes: impl AsRef<[u8]>) -> Self {
        Self(bytes.as_ref().into())
    }

    /// The key material, for the code that signs with it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted, {} bytes>)", self.0.len())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<Vec<u8>> for Secret {
    fn from(value: Vec<u8>) -> Self {
        Self(value.into_boxed_slice())
    }
}
