//! Why a render failed.

use std::process::ExitStatus;
use std::time::Duration;

/// Why [`SsrPool::render`](crate::SsrPool::render) or
/// [`SsrPoolBuilder::build`](crate::SsrPoolBuilder::build) failed.
///
/// Every variant is a reason to serve the client-rendered fallback page
/// ([`PageShell::render`](crate::PageShell::render) with no HTML); none of them leaves the pool
/// unusable, except [`SsrError::Closed`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SsrError {
    /// The worker took longer than the render timeout. It was killed and is being replaced, so
    /// its late reply can never reach another render.
    #[error("the SSR render took longer than {0:?}; its worker was replaced")]
    Timeout(Duration),
    /// The worker process exited (or closed its stdout or stdin) during the render; a replacement
    /// is started with backoff.
    #[error("the SSR worker exited during the render ({})", describe(.status))]
    Crashed {
        /// How the process ended, when it could be collected.
        status: Option<ExitStatus>,
    },
    /// The component threw, or is not registered, or the props were refused: the worker's error
    /// message. The worker stays in service.
    #[error("the component failed to render: {0}")]
    Render(String),
    /// The worker broke the protocol during the render: a reply line longer than the bound, or
    /// a reply to this render that is neither `html` nor `error`. The worker was replaced.
    #[error("the SSR worker broke the protocol: {0}")]
    Protocol(String),
    /// No worker could take the render: every worker was busy and the queue was full, or no
    /// worker took it within the queue timeout (all busy or restarting). Fails fast.
    #[error("the SSR pool is overloaded")]
    Overloaded,
    /// A worker could not be started: the program is missing, the worker script exited, or no
    /// ready handshake came within the ready timeout.
    #[error("an SSR worker failed to start: {message}")]
    Startup {
        /// What went wrong, with the tail of the worker's stderr when it wrote any.
        message: String,
        /// The error of spawning the process, when that is what failed.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The props could not be serialized to JSON.
    #[error("the SSR props are not serializable to JSON")]
    Props(#[source] serde_json::Error),
    /// The pool was shut down.
    #[error("the SSR pool is shut down")]
    Closed,
}

fn describe(status: &Option<ExitStatus>) -> String {
    match status {
        Some(status) => status.to_string(),
        None => "exit status unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause() {
        assert_eq!(
            SsrError::Render("boom".into()).to_string(),
            "the component failed to render: boom"
        );
        assert_eq!(
            SsrError::Crashed { status: None }.to_string(),
            "the SSR worker exited during the render (exit status unknown)"
        );
        let startup = SsrError::Startup {
            message: "cannot start `nodejs`".into(),
            source: Some(std::io::ErrorKind::NotFound.into()),
        };
        assert!(std::error::Error::source(&startup).is_some());
    }
}
