//! Protocol identities: the 16-bit ids carried in the SP connection header.
//!
//! An id is `major * 16 + minor`: the major number names the pattern (pair 1, pub/sub 2,
//! req/rep 3, pipeline 5, survey 6, bus 7) and the minor the role. These match what NNG sends
//! (checked on the wire by `tests/wire.rs`).

use std::fmt;

/// One SP protocol role, as announced in the connection header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// pair v0: one peer, no header.
    Pair0,
    /// pair v1: one peer (or many in poly mode), 4-byte hop-count header.
    Pair1,
    /// pub v0: broadcasts to subscribers.
    Pub0,
    /// sub v0: receives from publishers, filtered by topic prefix.
    Sub0,
    /// req v0: requester with a 4-byte request id.
    Req0,
    /// rep v0: replier that returns the backtrace of the request.
    Rep0,
    /// push v0: round robin to pullers.
    Push0,
    /// pull v0: receives from pushers.
    Pull0,
    /// surveyor v0: asks every respondent, collects answers until a deadline.
    Surveyor0,
    /// respondent v0: answers surveys.
    Respondent0,
    /// bus v0: mesh, a message goes to every directly connected peer.
    Bus0,
}

impl Protocol {
    /// Every protocol, for iteration in tests and lookups.
    pub const ALL: [Protocol; 11] = [
        Protocol::Pair0,
        Protocol::Pair1,
        Protocol::Pub0,
        Protocol::Sub0,
        Protocol::Req0,
        Protocol::Rep0,
        Protocol::Push0,
        Protocol::Pull0,
        Protocol::Surveyor0,
        Protocol::Respondent0,
        Protocol::Bus0,
    ];

    /// The 16-bit id sent in the connection header.
    pub const fn id(self) -> u16 {
        match self {
            Protocol::Pair0 => 0x10,
            Protocol::Pair1 => 0x11,
            Protocol::Pub0 => 0x20,
            Protocol::Sub0 => 0x21,
            Protocol::Req0 => 0x30,
            Protocol::Rep0 => 0x31,
            Protocol::Push0 => 0x50,
            Protocol::Pull0 => 0x51,
            Protocol::Surveyor0 => 0x62,
            Protocol::Respondent0 => 0x63,
            Protocol::Bus0 => 0x70,
        }
    }

    /// The protocol for a header id, if known.
    pub fn from_id(id: u16) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.id() == id)
    }

    /// The protocol a peer must speak to talk to this one.
    pub const fn peer(self) -> Protocol {
        match self {
            Protocol::Pair0 => Protocol::Pair0,
            Protocol::Pair1 => Protocol::Pair1,
            Protocol::Pub0 => Protocol::Sub0,
            Protocol::Sub0 => Protocol::Pub0,
            Protocol::Req0 => Protocol::Rep0,
            Protocol::Rep0 => Protocol::Req0,
            Protocol::Push0 => Protocol::Pull0,
            Protocol::Pull0 => Protocol::Push0,
            Protocol::Surveyor0 => Protocol::Respondent0,
            Protocol::Respondent0 => Protocol::Surveyor0,
            Protocol::Bus0 => Protocol::Bus0,
        }
    }

    /// NNG's name for the protocol (`"pair1"`, `"surveyor"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Pair0 => "pair",
            Protocol::Pair1 => "pair1",
            Protocol::Pub0 => "pub",
            Protocol::Sub0 => "sub",
            Protocol::Req0 => "req",
            Protocol::Rep0 => "rep",
            Protocol::Push0 => "push",
            Protocol::Pull0 => "pull",
            Protocol::Surveyor0 => "surveyor",
            Protocol::Respondent0 => "respondent",
            Protocol::Bus0 => "bus",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_peers_are_symmetric() {
        for p in Protocol::ALL {
            assert_eq!(Protocol::from_id(p.id()), Some(p));
            assert_eq!(p.peer().peer(), p);
        }
        assert_eq!(Protocol::from_id(0x99), None);
    }

    #[test]
    fn ids_are_major_times_sixteen_plus_minor() {
        assert_eq!(Protocol::Req0.id() >> 4, 3);
        assert_eq!(Protocol::Surveyor0.id() & 0xf, 2);
        assert_eq!(Protocol::Bus0.to_string(), "bus");
    }
}
