use std::io;

use mirai_proto::ErrorCode;

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
    UnknownPeer(crate::PeerId),
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

    /// The NNG-style error code that mirai's R API reports for this error (for example
    /// [`ErrorCode::CONNECTION_REFUSED`], printed `6 | Connection refused`).
    ///
    /// TLS failures use NNG's own codes: a refused certificate (either side) is
    /// `27 | Peer could not be authenticated` (NNG_EPEERAUTH), any other TLS failure
    /// `26 | Cryptographic error` (NNG_ECRYPTO), a handshake timeout `5 | Timed out`, and
    /// unusable credentials `3 | Invalid argument`.
    pub fn error_code(&self) -> ErrorCode {
        use crate::tls::TlsErrorKind;
        match self {
            Error::Tls {
                kind: TlsErrorKind::PeerAuth,
                ..
            } => ErrorCode::PEER_AUTH,
            Error::Tls {
                kind: TlsErrorKind::Protocol,
                ..
            } => ErrorCode::CRYPTO,
            Error::Tls {
                kind: TlsErrorKind::Timeout,
                ..
            } => ErrorCode::TIMED_OUT,
            Error::TlsConfig(_) => ErrorCode::INVALID_ARGUMENT,
            Error::Connect { source, .. } => match source.kind() {
                io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => {
                    ErrorCode::CONNECTION_REFUSED
                }
                io::ErrorKind::TimedOut => ErrorCode::TIMED_OUT,
                io::ErrorKind::PermissionDenied => ErrorCode::PERMISSION_DENIED,
                _ => ErrorCode::CONNECTION_REFUSED,
            },
            Error::Closed => ErrorCode::OBJECT_CLOSED,
            Error::InvalidUrl { .. } => ErrorCode::INVALID_ARGUMENT,
            Error::Bind { source, .. } if source.kind() == io::ErrorKind::AddrInUse => {
                ErrorCode::ADDRESS_IN_USE
            }
            Error::Bind { .. } => ErrorCode::ADDRESS_INVALID,
            Error::MessageTooLarge { .. } => ErrorCode::MESSAGE_TOO_LARGE,
            Error::UnknownPeer(_) => ErrorCode::OBJECT_CLOSED,
            Error::BackendUnavailable(_) | Error::UnsupportedScheme(_) => ErrorCode::NOT_SUPPORTED,
            Error::Io(_) | Error::Nng(_) => ErrorCode::CONNECTION_RESET,
        }
    }

    /// [`Error::error_code`] as the integer and its text (for example `6`,
    /// `"Connection refused"`), from which `"<code> | <text>"` is built.
    pub fn code(&self) -> (i32, &'static str) {
        let code = self.error_code();
        // Every code above is a named one, so the fallback is never used.
        (code.code(), code.known_text().unwrap_or("Unknown error"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Error::UnknownPeer(crate::PeerId(1)),
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
        let want = [6, 5, 16, 7, 3, 10, 15, 17, 7, 9, 9, 19, 19, 27, 26, 5, 3];
        assert_eq!(all.len(), want.len());
        for (e, want) in all.iter().zip(want) {
            let (code, text) = e.code();
            assert_eq!(code, want, "{e:?}");
            assert_eq!(e.error_code(), ErrorCode::from_code(want), "{e:?}");
            assert_eq!(ErrorCode::from_code(code).known_text(), Some(text), "{e:?}");
        }
    }
}
