//! The native wire format: each message is an 8-byte little-endian length followed by its
//! bytes. Encoding builds the prefix and the parts' iovecs without joining them; decoding
//! reassembles messages from any split of the byte stream, bounding what a length prefix
//! alone can make it reserve. Pure: no sockets here.
use std::io::IoSlice;

/// Length prefix size.
pub(super) const HEADER: usize = 8;
/// Smallest growth step of a message buffer: memory is reserved at most this far (or as far
/// again as has already arrived, whichever is more) beyond the bytes received, so a huge
/// length prefix alone costs at most this, and a buffer never holds more than twice what its
/// peer has actually sent (plus this). Doubling keeps large messages to a few reallocations.
pub(super) const GROW_MIN: usize = 64 * 1024;
/// A message body with at least this much still to come is read straight into its own buffer.
pub(super) const DIRECT_MIN: usize = 64 * 1024;
/// Parts of one message written by a single vectored write (`send_parts`); a message in more
/// parts is joined first (no caller in this workspace needs more than four).
pub(super) const MAX_PARTS: usize = 7;

/// Calls `f` with the iovecs of one message, length prefix first, built on the stack, so that
/// its parts are written without being joined; more than [`MAX_PARTS`] parts are joined first.
pub(super) fn with_message<R>(
    parts: &[&[u8]],
    f: impl FnOnce(&mut [IoSlice<'_>], usize) -> R,
) -> R {
    if parts.len() > MAX_PARTS {
        let joined = parts.concat();
        return with_message(&[&joined], f);
    }
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let header = (len as u64).to_le_bytes();
    let mut iov = [IoSlice::new(&[]); MAX_PARTS + 1];
    iov[0] = IoSlice::new(&header);
    for (slot, part) in iov[1..].iter_mut().zip(parts) {
        *slot = IoSlice::new(part);
    }
    f(&mut iov[..parts.len() + 1], HEADER + len)
}

/// Grows `body` so that `incoming` more bytes fit, never reserving beyond `target` in total
/// and never more than `max(incoming, GROW_MIN, len)` ahead of what has arrived.
pub(super) fn reserve_for(body: &mut Vec<u8>, target: usize, incoming: usize) {
    let len = body.len();
    if body.capacity() - len >= incoming {
        return;
    }
    let ahead = incoming.max(GROW_MIN).max(len);
    let new_cap = (len + ahead).min(target).max(len + incoming);
    body.reserve_exact(new_cap - len);
}

pub(super) fn too_large(len: u64, max: usize) -> String {
    format!("message length prefix of {len} bytes exceeds the maximum of {max} bytes")
}

pub(super) fn first_too_large(len: u64, max: usize) -> String {
    format!(
        "first message length prefix of {len} bytes exceeds the maximum of {max} bytes for a \
         connection's first message"
    )
}

/// Reassembly state of the frame currently arriving from one peer.
#[derive(Default)]
pub(super) struct Frame {
    pub(super) header: [u8; HEADER],
    pub(super) header_have: usize,
    /// `Some((bytes so far, total length))` once the header is complete.
    pub(super) body: Option<(Vec<u8>, usize)>,
    /// The bound on the first message ([`Options::max_first_message`]), until its length
    /// prefix has been read.
    pub(super) first_max: Option<usize>,
}

impl Frame {
    /// The state of a new connection whose first message is bounded by `first_max` (as well
    /// as by the limit given to [`Frame::feed`]).
    pub(super) fn new(first_max: Option<usize>) -> Frame {
        Frame {
            first_max,
            ..Frame::default()
        }
    }

    pub(super) fn mid_frame(&self) -> bool {
        self.header_have > 0 || self.body.is_some()
    }

    pub(super) fn describe_truncation(&self) -> String {
        match &self.body {
            Some((b, total)) => format!(
                "connection closed after {} of {} bytes of a message",
                b.len(),
                total
            ),
            None => format!(
                "connection closed after {} of {} bytes of a length prefix",
                self.header_have, HEADER
            ),
        }
    }

    /// Bytes still missing from the current body, if a body is being read.
    pub(super) fn body_remaining(&self) -> Option<usize> {
        self.body.as_ref().map(|(b, total)| total - b.len())
    }

    /// Consumes `data`, calling `emit` for each completed message. Errs (with the reason) when
    /// a length prefix exceeds `max`, or the first one exceeds the first message's bound.
    pub(super) fn feed(
        &mut self,
        mut data: &[u8],
        max: usize,
        mut emit: impl FnMut(Vec<u8>),
    ) -> Result<(), String> {
        while !data.is_empty() {
            match &mut self.body {
                None => {
                    let take = (HEADER - self.header_have).min(data.len());
                    self.header[self.header_have..self.header_have + take]
                        .copy_from_slice(&data[..take]);
                    self.header_have += take;
                    data = &data[take..];
                    if self.header_have < HEADER {
                        break;
                    }
                    self.header_have = 0;
                    let len64 = u64::from_le_bytes(self.header);
                    let limit = match self.first_max.take() {
                        Some(first) if first < max => Some(first),
                        _ => None,
                    };
                    let len = match usize::try_from(len64) {
                        Ok(len) if len <= limit.unwrap_or(max) => len,
                        _ => {
                            return Err(match limit {
                                Some(first) => first_too_large(len64, first),
                                None => too_large(len64, max),
                            })
                        }
                    };
                    if len <= data.len() {
                        // Whole message already here: one copy, exact size.
                        emit(data[..len].to_vec());
                        data = &data[len..];
                    } else {
                        let mut body = Vec::new();
                        reserve_for(&mut body, len, data.len());
                        body.extend_from_slice(data);
                        data = &[];
                        self.body = Some((body, len));
                    }
                }
                Some((body, total)) => {
                    let take = (*total - body.len()).min(data.len());
                    reserve_for(body, *total, take);
                    body.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if body.len() == *total {
                        let (done, _) = self.body.take().unwrap_or_default();
                        emit(done);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn frame_bytes(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u64).to_le_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    #[test]
    pub(super) fn feed_reassembles_across_any_split() {
        let wire = frame_bytes(&[b"hello", b"", b"world!", &[7u8; 300]]);
        for step in 1..wire.len() {
            let mut f = Frame::default();
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                f.feed(piece, 1 << 20, |m| got.push(m)).unwrap();
            }
            assert_eq!(
                got,
                vec![
                    b"hello".to_vec(),
                    Vec::new(),
                    b"world!".to_vec(),
                    vec![7u8; 300]
                ],
                "step {step}"
            );
            assert!(!f.mid_frame());
        }
    }

    #[test]
    pub(super) fn feed_rejects_oversized_prefix_without_allocating() {
        let mut f = Frame::default();
        let err = f
            .feed(&(4u64 << 30).to_le_bytes(), 1 << 20, |_| {
                panic!("no message")
            })
            .unwrap_err();
        assert!(err.contains("4294967296"), "{err}");
    }

    #[test]
    pub(super) fn huge_claim_reserves_little() {
        let mut f = Frame::default();
        let mut wire = (4u64 << 30).to_le_bytes().to_vec();
        wire.extend_from_slice(b"abc");
        f.feed(&wire, usize::MAX, |_| panic!("incomplete")).unwrap();
        let (body, total) = f.body.as_ref().unwrap();
        assert_eq!(*total, 4 << 30);
        assert_eq!(body.len(), 3);
        assert!(
            body.capacity() <= GROW_MIN + 3,
            "capacity {}",
            body.capacity()
        );
    }

    #[test]
    pub(super) fn first_message_has_its_own_bound_and_later_ones_the_usual() {
        // Over the first-message bound: refused at the prefix, naming both numbers.
        let mut f = Frame::new(Some(100));
        let err = f
            .feed(&101u64.to_le_bytes(), 1 << 20, |_| panic!("no message"))
            .unwrap_err();
        assert!(
            err.contains("first message") && err.contains("101") && err.contains("100"),
            "{err}"
        );

        // At the bound it passes; the next message may be as large as `max`, even when both
        // arrive in one read.
        let mut f = Frame::new(Some(100));
        let mut wire = frame_bytes(&[&[1u8; 100]]);
        wire.extend_from_slice(&frame_bytes(&[&[2u8; 5000]]));
        let mut got = Vec::new();
        f.feed(&wire, 1 << 20, |m| got.push(m.len())).unwrap();
        assert_eq!(got, vec![100, 5000]);
        let err = f
            .feed(&((1u64 << 20) + 1).to_le_bytes(), 1 << 20, |_| {
                panic!("no message")
            })
            .unwrap_err();
        assert!(
            !err.contains("first message") && err.contains("1048577"),
            "{err}"
        );

        // A first-message bound above `max` changes nothing.
        let mut f = Frame::new(Some(1 << 30));
        let err = f
            .feed(&5000u64.to_le_bytes(), 4096, |_| panic!("no message"))
            .unwrap_err();
        assert!(
            !err.contains("first message") && err.contains("4096"),
            "{err}"
        );
    }

    #[test]
    pub(super) fn first_message_bound_holds_when_the_prefix_trickles_in() {
        let mut f = Frame::new(Some(64 * 1024));
        let wire = (4u64 << 30).to_le_bytes();
        for b in &wire[..HEADER - 1] {
            f.feed(std::slice::from_ref(b), usize::MAX, |_| {
                panic!("no message")
            })
            .unwrap();
        }
        let err = f
            .feed(&wire[HEADER - 1..], usize::MAX, |_| panic!("no message"))
            .unwrap_err();
        assert!(err.contains("4294967296") && err.contains("65536"), "{err}");
        assert!(f.body.is_none(), "nothing reserved for a refused claim");
    }

    #[test]
    pub(super) fn reserve_grows_geometrically_but_bounded() {
        let mut v = Vec::new();
        let target = 1600 * GROW_MIN;
        let mut reallocs = 0;
        while v.len() < target {
            let cap = v.capacity();
            let n = (target - v.len()).min(super::super::SCRATCH);
            reserve_for(&mut v, target, n);
            if v.capacity() != cap {
                reallocs += 1;
            }
            assert!(
                v.capacity() <= (2 * v.len()).max(v.len() + GROW_MIN).max(v.len() + n),
                "too far ahead"
            );
            assert!(v.capacity() <= target);
            v.resize(v.len() + n, 0);
        }
        assert!(reallocs < 20, "{reallocs} reallocations");
    }
}
