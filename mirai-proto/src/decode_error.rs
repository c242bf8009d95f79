//! Why bytes are not a frame: a precise cause that never carries the peer's bytes, so that it
//! can be logged as it is (a task payload must not reach a log).

use crate::{HEADER_LEN, PROTOCOL_VERSION};

/// Why bytes could not be decoded into a [`Frame`](crate::Frame).
///
/// Carries sizes, offsets and versions only, never bytes of the input: its `Display` text is
/// safe to log whatever the peer sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the header.
    #[error("truncated frame: {len} bytes is shorter than the {HEADER_LEN}-byte header")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// More bytes than the configured limit.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    Oversized {
        /// Bytes received.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The header is not `MRI`: the peer does not speak this protocol.
    #[error("not a mirai frame (bad magic bytes)")]
    BadMagic,
    /// The peer speaks another protocol version.
    #[error("unsupported protocol version {got} (this build speaks version {PROTOCOL_VERSION})")]
    UnknownVersion {
        /// The version in the header.
        got: u8,
    },
    /// The body is not a valid CBOR frame (includes truncated bodies).
    #[error("malformed frame body: {0}")]
    Malformed(BodyError),
    /// A complete frame was followed by more bytes.
    #[error("{0} trailing bytes after the frame")]
    TrailingBytes(usize),
}

/// What is wrong with the CBOR body of a frame whose header was fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body ends in the middle of a value (or a string claims more bytes than follow).
    #[error("truncated body")]
    Truncated,
    /// Not well-formed CBOR.
    #[error("invalid CBOR at byte {offset}")]
    Syntax {
        /// Offset of the offending byte from the start of the frame (header included).
        offset: usize,
    },
    /// Nested more deeply than any frame is.
    #[error("nested too deeply")]
    TooDeep,
    /// A frame kind this build does not know (the name of the kind is not kept).
    #[error("unknown frame kind")]
    UnknownFrameKind,
    /// An unknown variant of a field's enumeration (a result's status).
    #[error("unknown variant of a field")]
    UnknownVariant,
    /// A field that the frame kind does not have.
    #[error("unknown field")]
    UnknownField,
    /// A field of the frame kind is absent.
    #[error("missing field")]
    MissingField,
    /// A field given twice.
    #[error("duplicate field")]
    DuplicateField,
    /// A value of the wrong type (text where a number belongs, ...).
    #[error("value of the wrong type")]
    InvalidType,
    /// A value of the right type out of range (an integer too large for its field, ...).
    #[error("value out of range")]
    InvalidValue,
    /// An array or map of the wrong length (an RNG stream of other than 7 integers, ...).
    #[error("value of the wrong length")]
    InvalidLength,
    /// Any other way of not being a frame.
    #[error("not a valid frame")]
    Invalid,
}

impl BodyError {
    /// Classifies a ciborium error without keeping its message, which may quote the input.
    pub(crate) fn from_cbor<T>(e: &ciborium::de::Error<T>) -> BodyError {
        use ciborium::de::Error;
        match e {
            Error::Io(_) => BodyError::Truncated,
            Error::Syntax(at) => BodyError::Syntax {
                offset: at.saturating_add(HEADER_LEN),
            },
            Error::RecursionLimitExceeded => BodyError::TooDeep,
            Error::Semantic(_, msg) => BodyError::from_message(msg),
        }
    }

    /// Classifies a serde or ciborium semantic error message by its fixed opening words
    /// (serde's `invalid type: ...`, `unknown variant ...`, ...; ciborium's `integer too
    /// large`, ...). What follows those words may quote the input and is not looked at, except
    /// for serde's list of the expected variants, which comes last and is ours.
    fn from_message(msg: &str) -> BodyError {
        let starts = |p: &str| msg.starts_with(p);
        if starts("unknown variant") {
            let expected = msg.rfind(", expected").map_or("", |i| &msg[i..]);
            if expected.contains("`Hello`") {
                BodyError::UnknownFrameKind
            } else {
                BodyError::UnknownVariant
            }
        } else if starts("unknown field") {
            BodyError::UnknownField
        } else if starts("missing field") {
            BodyError::MissingField
        } else if starts("duplicate field") {
            BodyError::DuplicateField
        } else if starts("invalid type") || starts("expected ") {
            BodyError::InvalidType
        } else if starts("invalid value")
            || starts("integer too large")
            || starts("bigint too large")
            || starts("unexpected negative integer")
        {
            BodyError::InvalidValue
        } else if starts("invalid length") {
            BodyError::InvalidLength
        } else {
            BodyError::Invalid
        }
    }
}
