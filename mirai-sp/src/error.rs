//! Error types: wire decode errors and socket errors carrying NNG's integer codes.

use crate::protocol::Protocol;

/// A connection header or frame that cannot be accepted. The connection is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The first four bytes are not the SP magic: the peer is not an SP endpoint.
    #[error("peer is not a Scalability Protocols endpoint (bad connection header)")]
    BadMagic,
    /// The reserved header bytes are not zero (an SP version this crate does not know).
    #[error("connection header has nonzero reserved bytes")]
    ReservedNonZero,
    /// The peer announced a protocol id this crate does not know.
    #[error("peer announced unknown protocol id {id:#06x}")]
    UnknownProtocol {
        /// The announced id.
        id: u16,
    },
    /// The peer speaks a protocol that cannot talk to ours (e.g. pub dialing req).
    #[error("peer protocol {peer} cannot talk to {ours} (expected {})", ours.peer())]
    IncompatiblePeer {
        /// Our protocol.
        ours: Protocol,
        /// The peer's protocol.
        peer: Protocol,
    },
    /// A frame announced a body above the configured `recv-size-max`.
    #[error("message of {len} bytes exceeds the receive limit of {max} bytes")]
    TooLarge {
        /// Announced body length.
        len: u64,
        /// Limit in force.
        max: u64,
    },
    /// An ipc frame with a message type other than 1.
    #[error("ipc frame has unknown message type {kind}")]
    BadIpcType {
        /// The type byte received.
        kind: u8,
    },
    /// A WebSocket upgrade or frame that breaks RFC 6455 or NNG's SP-over-WebSocket rules.
    #[error("WebSocket: {0}")]
    WebSocket(String),
}

/// A socket operation failure, mapped onto NNG's error codes (see [`Error::code`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operation did not complete before its timeout (NNG 5).
    #[error("timed out")]
    TimedOut,
    /// Non-blocking operation with nothing ready (NNG 8).
    #[error("try again")]
    TryAgain,
    /// The socket is closed (NNG 7).
    #[error("object closed")]
    Closed,
    /// The protocol does not support the operation, e.g. recv on push (NNG 9).
    #[error("operation not supported by this protocol")]
    NotSupported,
    /// The operation is not valid now, e.g. a reply with no request pending (NNG 11).
    #[error("incorrect state for this operation")]
    IncorrectState,
    /// No such pipe or endpoint (NNG 12).
    #[error("entry not found")]
    NotFound,
    /// A message larger than the limit (NNG 17).
    #[error("message too large")]
    MessageTooLarge,
    /// Nobody listens at the dialed address (NNG 6).
    #[error("connection refused")]
    ConnectionRefused,
    /// The listen address is taken (NNG 10).
    #[error("address in use")]
    AddressInUse,
    /// The URL cannot be parsed or resolved (NNG 15; 3 for a malformed URL).
    #[error("invalid address: {0}")]
    AddressInvalid(String),
    /// The URL is malformed: no `://`, a bad bracketed host, a non-numeric port (NNG 3).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A transport option cannot be used, e.g. a TLS listener without a server
    /// configuration (NNG 3).
    #[error("invalid transport option: {0}")]
    InvalidOption(String),
    /// TLS failed: a broken handshake, or a peer that does not speak TLS (NNG 26).
    #[error("TLS: {0}")]
    Crypto(String),
    /// A certificate was refused, by this side or by the peer (NNG 27).
    #[error("peer could not be authenticated: {0}")]
    PeerAuth(String),
    /// The URL scheme is not handled by this driver (NNG 9).
    #[error("transport scheme not supported: {0}")]
    UnsupportedScheme(String),
    /// The peer sent something the protocol refuses (NNG 13).
    #[error("protocol error: {0}")]
    Protocol(#[from] WireError),
    /// Any other operating-system error, with its `std::io` kind kept.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<crate::sm::SmError> for Error {
    fn from(e: crate::sm::SmError) -> Error {
        use crate::sm::SmError as S;
        match e {
            S::TryAgain => Error::TryAgain,
            S::NotSupported => Error::NotSupported,
            S::IncorrectState => Error::IncorrectState,
            S::NotFound => Error::NotFound,
        }
    }
}

impl Error {
    /// The NNG integer code for this error (as printed by `nng_error()`).
    pub fn code(&self) -> i32 {
        match self {
            Error::TimedOut => 5,
            Error::TryAgain => 8,
            Error::Closed => 7,
            Error::NotSupported => 9,
            Error::IncorrectState => 11,
            Error::NotFound => 12,
            Error::MessageTooLarge => 17,
            Error::ConnectionRefused => 6,
            Error::AddressInUse => 10,
            Error::AddressInvalid(_) => 15,
            Error::UnsupportedScheme(_) => 9,
            Error::InvalidUrl(_) | Error::InvalidOption(_) => 3,
            Error::Crypto(_) => 26,
            Error::PeerAuth(_) => 27,
            Error::Protocol(WireError::TooLarge { .. }) => 17,
            Error::Protocol(_) => 13,
            Error::Io(e) => io_code(e),
        }
    }
}

fn io_code(e: &std::io::Error) -> i32 {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => 6,
        K::AddrInUse => 10,
        K::AddrNotAvailable => 15,
        K::TimedOut | K::WouldBlock => 5,
        K::ConnectionReset => 19,
        K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => 18,
        K::PermissionDenied => 16,
        K::NotFound => 6,
        K::InvalidInput => 3,
        _ => 1000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_nng() {
        assert_eq!(Error::TimedOut.code(), 5);
        assert_eq!(Error::TryAgain.code(), 8);
        assert_eq!(Error::Closed.code(), 7);
        assert_eq!(Error::IncorrectState.code(), 11);
        assert_eq!(
            Error::Protocol(WireError::TooLarge { len: 9, max: 1 }).code(),
            17
        );
        assert_eq!(Error::Protocol(WireError::BadMagic).code(), 13);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(Error::from(refused).code(), 6);
    }

    #[test]
    fn messages_name_protocols_not_bytes() {
        let e = WireError::IncompatiblePeer {
            ours: Protocol::Req0,
            peer: Protocol::Pub0,
        };
        assert_eq!(
            e.to_string(),
            "peer protocol pub cannot talk to req (expected rep)"
        );
    }
}
