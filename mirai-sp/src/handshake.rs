//! The 8-byte SP connection header both sides send first on tcp and ipc.
//!
//! Layout: `0x00 'S' 'P' 0x00`, the sender's protocol id (16-bit big-endian), then two
//! reserved zero bytes.

use crate::error::WireError;
use crate::protocol::Protocol;

/// Length of the connection header.
pub const HEADER_LEN: usize = 8;

const MAGIC: [u8; 4] = [0x00, b'S', b'P', 0x00];

/// The header announcing `proto`.
pub fn encode(proto: Protocol) -> [u8; HEADER_LEN] {
    let id = proto.id().to_be_bytes();
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], id[0], id[1], 0, 0]
}

/// Checks a received header against our protocol `ours`; returns the peer's protocol.
///
/// Refuses anything that is not an SP header, a nonzero reserved field, an unknown protocol
/// and a protocol that cannot talk to `ours`.
pub fn validate(ours: Protocol, header: &[u8; HEADER_LEN]) -> Result<Protocol, WireError> {
    if header[..4] != MAGIC {
        return Err(WireError::BadMagic);
    }
    if header[6..] != [0, 0] {
        return Err(WireError::ReservedNonZero);
    }
    let id = u16::from_be_bytes([header[4], header[5]]);
    let peer = Protocol::from_id(id).ok_or(WireError::UnknownProtocol { id })?;
    if peer != ours.peer() {
        return Err(WireError::IncompatiblePeer { ours, peer });
    }
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_req_header() {
        assert_eq!(encode(Protocol::Req0), [0, b'S', b'P', 0, 0x00, 0x30, 0, 0]);
    }

    #[test]
    fn accepts_matching_peer() {
        let h = encode(Protocol::Rep0);
        assert_eq!(validate(Protocol::Req0, &h), Ok(Protocol::Rep0));
    }

    #[test]
    fn refuses_incompatible_peer() {
        let h = encode(Protocol::Pub0);
        assert_eq!(
            validate(Protocol::Req0, &h),
            Err(WireError::IncompatiblePeer {
                ours: Protocol::Req0,
                peer: Protocol::Pub0
            })
        );
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(
            validate(Protocol::Bus0, b"GET / HT"),
            Err(WireError::BadMagic)
        );
        let mut h = encode(Protocol::Bus0);
        h[7] = 1;
        assert_eq!(
            validate(Protocol::Bus0, &h),
            Err(WireError::ReservedNonZero)
        );
        let h = [0, b'S', b'P', 0, 0x12, 0x34, 0, 0];
        assert_eq!(
            validate(Protocol::Bus0, &h),
            Err(WireError::UnknownProtocol { id: 0x1234 })
        );
    }
}
