use std::io;

/// What went wrong with a URL, a listener or a connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL could not be parsed or is of an unsupported form.
    #[error("invalid URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Binding a listener failed (address in use, no permission, ...).
    #[error("cannot listen at '{url}': {source}")]
    Bind {
        /// The URL as given.
        url: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Dialing failed (nobody listening, unreachable, ...).
    #[error("cannot connect to '{url}': {source}")]
    Connect {
        /// The URL dialed.
        url: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The peer or listener has gone, or this end was closed.
    #[error("connection closed")]
    Closed,
    /// A message was larger than [`crate::Options::max_message`].
    #[error("message of {len} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer id names no connected peer.
    #[error("no connected peer with id {0}")]
    UnknownPeer(u64),
    /// This build was made without the backend asked for.
    #[error("the {0} backend is not built into this library")]
    BackendUnavailable(&'static str),
    /// A scheme that is parsed but not served by this backend (for example `tls+tcp://` before
    /// TLS is configured).
    #[error("scheme '{0}' is not supported by this backend")]
    UnsupportedScheme(String),
    /// Any other I/O failure.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// An error reported by NNG.
    #[error("NNG error: {0}")]
    Nng(String),
}

impl Error {
    /// True for failures that a later attempt may not repeat (nobody listening yet, ...).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::Nng(_))
    }

    /// The NNG-style error code and text that mirai's R API reports for this error
    /// (for example `6`, `"Connection refused"`), as `"<code> | <text>"` is built from them.
    pub fn code(&self) -> (i32, &'static str) {
        match self {
            Error::Connect { source, .. } => match source.kind() {
                io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => (6, "Connection refused"),
                io::ErrorKind::TimedOut => (5, "Timed out"),
                io::ErrorKind::PermissionDenied => (13, "Permission denied"),
                _ => (6, "Connection refused"),
            },
            Error::Closed => (7, "Object closed"),
            Error::InvalidUrl { .. } => (3, "Invalid argument"),
            Error::Bind { source, .. } if source.kind() == io::ErrorKind::AddrInUse => (10, "Address in use"),
            Error::Bind { .. } => (15, "Address invalid"),
            Error::MessageTooLarge { .. } => (24, "Message too large"),
            Error::UnknownPeer(_) => (7, "Object closed"),
            Error::BackendUnavailable(_) | Error::UnsupportedScheme(_) => (9, "Not supported"),
            Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset => (19, "Connection reset"),
            Error::Io(_) | Error::Nng(_) => (19, "Connection reset"),
        }
    }
}
