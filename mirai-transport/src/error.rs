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
    /// A TLS connection failed: its handshake (including certificate checks on either side),
    /// or the TLS layer of an established connection. The reason names the cause (unknown CA,
    /// expired certificate, missing client certificate, not a TLS peer, ...).
    #[error("TLS with '{url}' failed: {reason}")]
    Tls {
        /// The URL dialed or listened on.
        url: String,
        /// What went wrong, as a sentence.
        reason: String,
        /// The class of failure (decides [`Error::code`]).
        kind: crate::tls::TlsErrorKind,
    },
    /// TLS credentials or settings are unusable: bad or missing PEM, wrong password for an
    /// encrypted key, a key that does not match its certificate, or no
    /// [`crate::Options::tls`] (of the right side) for a `tls+tcp://` URL.
    /// The payload's [`crate::tls::TlsConfigError::cause`] says which; it derefs to the
    /// message text, as the `String` this variant held before did.
    #[error("TLS configuration: {0}")]
    TlsConfig(crate::tls::TlsConfigError),
    /// Any other I/O failure.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// An error reported by NNG.
    #[error("NNG error: {0}")]
    Nng(String),
}

impl Error {
    /// True for failures that a later attempt may not repeat (nobody listening yet, a TLS
    /// handshake that timed out, ...). A refused certificate is not retryable.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Nng(_)
                | Error::Tls {
                    kind: crate::tls::TlsErrorKind::Timeout,
                    ..
                }
        )
    }

    /// The NNG-style error code and text that mirai's R API reports for this error
    /// (for example `6`, `"Connection refused"`), as `"<code> | <text>"` is built from them.
    ///
    /// TLS failures use NNG's own codes: a refused certificate (either side) is
    /// `27 | Peer could not be authenticated` (NNG_EPEERAUTH), any other TLS failure
    /// `26 | Cryptographic error` (NNG_ECRYPTO), a handshake timeout `5 | Timed out`, and
    /// unusable credentials `3 | Invalid argument`.
    pub fn code(&self) -> (i32, &'static str) {
        use crate::tls::TlsErrorKind;
        match self {
            Error::Tls {
                kind: TlsErrorKind::PeerAuth,
                ..
            } => (27, "Peer could not be authenticated"),
            Error::Tls {
                kind: TlsErrorKind::Protocol,
                ..
            } => (26, "Cryptographic error"),
            Error::Tls {
                kind: TlsErrorKind::Timeout,
                ..
            } => (5, "Timed out"),
            Error::TlsConfig(_) => (3, "Invalid argument"),
            Error::Connect { source, .. } => match source.kind() {
                io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => {
                    (6, "Connection refused")
                }
                io::ErrorKind::TimedOut => (5, "Timed out"),
                io::ErrorKind::PermissionDenied => (16, "Permission denied"),
                _ => (6, "Connection refused"),
            },
            Error::Closed => (7, "Object closed"),
            Error::InvalidUrl { .. } => (3, "Invalid argument"),
            Error::Bind { source, .. } if source.kind() == io::ErrorKind::AddrInUse => {
                (10, "Address in use")
            }
            Error::Bind { .. } => (15, "Address invalid"),
            Error::MessageTooLarge { .. } => (17, "Message too large"),
            Error::UnknownPeer(_) => (7, "Object closed"),
            Error::BackendUnavailable(_) | Error::UnsupportedScheme(_) => (9, "Not supported"),
            Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset => (19, "Connection reset"),
            Error::Io(_) | Error::Nng(_) => (19, "Connection reset"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NNG's `nng_strerror` texts by code (nng.h `nng_errno_enum`, 1-based), as mirai's R
    /// package prints them.
    const NNG_TEXT: [&str; 31] = [
        "Interrupted",
        "Out of memory",
        "Invalid argument",
        "Resource busy",
        "Timed out",
        "Connection refused",
        "Object closed",
        "Try again",
        "Not supported",
        "Address in use",
        "Incorrect state",
        "Entry not found",
        "Protocol error",
        "Destination unreachable",
        "Address invalid",
        "Permission denied",
        "Message too large",
        "Connection aborted",
        "Connection reset",
        "Operation canceled",
        "Out of files",
        "Out of space",
        "Resource already exists",
        "Read only resource",
        "Write only resource",
        "Cryptographic error",
        "Peer could not be authenticated",
        "Option requires argument",
        "Ambiguous option",
        "Incorrect type",
        "Connection shutdown",
    ];

    #[test]
    fn codes_match_nng_texts() {
        use crate::tls::TlsErrorKind;
        let io = |k: io::ErrorKind| io::Error::new(k, "x");
        let all = [
            Error::Connect {
                url: "u".into(),
                source: io(io::ErrorKind::ConnectionRefused),
            },
            Error::Connect {
                url: "u".into(),
                source: io(io::ErrorKind::TimedOut),
            },
            Error::Connect {
                url: "u".into(),
                source: io(io::ErrorKind::PermissionDenied),
            },
            Error::Closed,
            Error::InvalidUrl {
                url: "u".into(),
                reason: "r".into(),
            },
            Error::Bind {
                url: "u".into(),
                source: io(io::ErrorKind::AddrInUse),
            },
            Error::Bind {
                url: "u".into(),
                source: io(io::ErrorKind::Other),
            },
            Error::MessageTooLarge { len: 2, max: 1 },
            Error::UnknownPeer(1),
            Error::BackendUnavailable("nng"),
            Error::UnsupportedScheme("tls+tcp".into()),
            Error::Io(io(io::ErrorKind::ConnectionReset)),
            Error::Nng("x".into()),
            Error::Tls {
                url: "u".into(),
                reason: "r".into(),
                kind: TlsErrorKind::PeerAuth,
            },
            Error::Tls {
                url: "u".into(),
                reason: "r".into(),
                kind: TlsErrorKind::Protocol,
            },
            Error::Tls {
                url: "u".into(),
                reason: "r".into(),
                kind: TlsErrorKind::Timeout,
            },
            Error::TlsConfig("x".into()),
        ];
        for e in all {
            let (code, text) = e.code();
            assert_eq!(NNG_TEXT[(code - 1) as usize], text, "{e:?}");
        }
    }
}
