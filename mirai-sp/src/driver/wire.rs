//! Framed reads and writes on a blocking stream with few copies and syscalls: small frames
//! come out of one buffered read, a large body is read straight into its own buffer, and
//! writes put the prefix and the body (several queued frames at once) into one vectored write.

use std::io::{IoSlice, Read, Write};

use crate::error::{Error, WireError};
use crate::frame::{Framing, IPC_MSG};

/// Room for buffered reads.
const BUF: usize = 64 * 1024;
/// A body is allocated in steps of this much, so a peer's claimed length is never trusted.
const STEP: usize = 16 << 20;
/// Largest body accepted without a configured limit (as `frame::FrameDecoder`).
const ABSOLUTE_MAX: u64 = 1 << 48;

/// Reads framed messages from a stream.
pub(super) struct FrameReader {
    framing: Framing,
    max: u64,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl FrameReader {
    pub(super) fn new(framing: Framing, max: usize) -> FrameReader {
        FrameReader {
            framing,
            max: if max == 0 { ABSOLUTE_MAX } else { max as u64 },
            buf: vec![0u8; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more into the buffer (moving what is left to the front); `Closed` at EOF.
    fn fill(&mut self, s: &mut impl Read) -> Result<(), Error> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match s.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// The body length announced by a complete prefix at the front of the buffer.
    fn announced(&self) -> Result<Option<usize>, Error> {
        let b = self.buffered();
        let p = self.framing.prefix_len();
        if b.len() < p {
            return Ok(None);
        }
        let len_bytes = match self.framing {
            Framing::Tcp => &b[..8],
            Framing::Ipc => {
                if b[0] != IPC_MSG {
                    return Err(WireError::BadIpcType { kind: b[0] }.into());
                }
                &b[1..9]
            }
        };
        let mut be = [0u8; 8];
        be.copy_from_slice(len_bytes);
        let len = u64::from_be_bytes(be);
        if len > self.max {
            return Err(WireError::TooLarge { len, max: self.max }.into());
        }
        usize::try_from(len)
            .map(Some)
            .map_err(|_| WireError::TooLarge { len, max: self.max }.into())
    }

    /// Whether a whole frame is buffered (so the next [`FrameReader::next`] will not block).
    pub(super) fn has_frame(&self) -> bool {
        match self.announced() {
            Ok(Some(len)) => self.buffered().len() >= self.framing.prefix_len() + len,
            Ok(None) => false,
            // The error is reported by the next read.
            Err(_) => true,
        }
    }

    /// The next message (blocking).
    pub(super) fn next(&mut self, s: &mut impl Read) -> Result<Vec<u8>, Error> {
        let len = loop {
            if let Some(len) = self.announced()? {
                break len;
            }
            self.fill(s)?;
        };
        self.start += self.framing.prefix_len();
        let have = self.buffered().len().min(len);
        let mut body = Vec::with_capacity(len.min(STEP).max(have));
        body.extend_from_slice(&self.buf[self.start..self.start + have]);
        self.start += have;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        while body.len() < len {
            let left = len - body.len();
            if left < BUF / 2 {
                self.fill(s)?;
                let take = self.buffered().len().min(left);
                body.extend_from_slice(&self.buf[self.start..self.start + take]);
                self.start += take;
                continue;
            }
            // Large remainder: read straight into the body's spare room (no zeroing).
            let want = left.min(STEP);
            body.reserve(want);
            let n = match s.by_ref().take(want as u64).read_to_end(&mut body) {
                Ok(n) => n,
                Err(e) => return Err(Error::Io(e)),
            };
            if n < want {
                return Err(Error::Closed);
            }
        }
        Ok(body)
    }
}

/// Writes frames (prefix + message each) with vectored writes until all are out.
pub(super) fn write_frames(
    s: &mut impl Write,
    framing: Framing,
    msgs: &[Vec<u8>],
) -> std::io::Result<()> {
    let prefixes: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| {
            let mut p = Vec::with_capacity(9);
            framing.encode_prefix(m.len(), &mut p);
            p
        })
        .collect();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * msgs.len());
    for (p, m) in prefixes.iter().zip(msgs) {
        parts.push(p);
        if !m.is_empty() {
            parts.push(m);
        }
    }
    let mut i = 0;
    let mut off = 0;
    while i < parts.len() {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len() - i);
        slices.push(IoSlice::new(&parts[i][off..]));
        slices.extend(parts[i + 1..].iter().map(|p| IoSlice::new(p)));
        let mut n = match s.write_vectored(&slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while n > 0 && i < parts.len() {
            let left = parts[i].len() - off;
            if n >= left {
                n -= left;
                i += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader handing out at most `chunk` bytes per read.
    struct Chunks<'a>(&'a [u8], usize);

    impl Read for Chunks<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn frames_round_trip_in_any_chunking() {
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let msgs = vec![b"a".to_vec(), Vec::new(), big.clone(), b"tail".to_vec()];
        for framing in [Framing::Tcp, Framing::Ipc] {
            let mut wire = Vec::new();
            write_frames(&mut wire, framing, &msgs).unwrap();
            let mut expect = Vec::new();
            for m in &msgs {
                expect.extend_from_slice(&framing.encode(&[], m));
            }
            assert_eq!(wire, expect);
            for chunk in [1, 7, 4096, 1 << 20] {
                let mut r = FrameReader::new(framing, 0);
                let mut src = Chunks(&wire, chunk);
                for m in &msgs {
                    assert_eq!(&r.next(&mut src).unwrap(), m);
                }
                assert_eq!(r.next(&mut src).unwrap_err().code(), 7);
            }
        }
    }

    #[test]
    fn limits_and_bad_types_are_refused() {
        let wire = Framing::Tcp.encode(&[], &[0u8; 100]);
        let mut r = FrameReader::new(Framing::Tcp, 10);
        assert_eq!(r.next(&mut Chunks(&wire, 1000)).unwrap_err().code(), 17);
        let mut r = FrameReader::new(Framing::Ipc, 0);
        let bad = [2u8, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(r.next(&mut Chunks(&bad, 10)).unwrap_err().code(), 13);
    }
}
