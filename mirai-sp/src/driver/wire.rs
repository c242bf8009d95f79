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

/// The frame prefix of a message of `len` bytes.
fn prefix(framing: Framing, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(9);
    framing.encode_prefix(len, &mut p);
    p
}

/// Frame parts (prefix, then message unless empty) in write order.
fn parts<'a, M: AsRef<[u8]>>(prefixes: &'a [Vec<u8>], msgs: &'a [M]) -> Vec<&'a [u8]> {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * msgs.len());
    for (p, m) in prefixes.iter().zip(msgs) {
        parts.push(p);
        if !m.as_ref().is_empty() {
            parts.push(m.as_ref());
        }
    }
    parts
}

/// Moves the write position (`part`, `offset` in it) `n` bytes on.
fn advance(parts: &[&[u8]], pos: &mut (usize, usize), mut n: usize) {
    while n > 0 && pos.0 < parts.len() {
        let left = parts[pos.0].len() - pos.1;
        if n >= left {
            n -= left;
            *pos = (pos.0 + 1, 0);
        } else {
            pos.1 += n;
            n = 0;
        }
    }
}

/// Writes one frame into socket `fd` as far as it fits now, never waiting; the bytes
/// written (prefix included). For an idle pipe, so that a small message leaves from the
/// sender's thread instead of waking the pipe's writer.
pub(super) fn write_now(
    fd: std::os::fd::BorrowedFd<'_>,
    framing: Framing,
    msg: &[u8],
) -> std::io::Result<usize> {
    let p = prefix(framing, msg.len());
    match mirai_transport::send_now(fd, &[IoSlice::new(&p), IoSlice::new(msg)]) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
        r => r,
    }
}

/// Writes frames (prefix + message each) with vectored writes until all are out; the first
/// `skip` bytes of the first frame were already written.
pub(super) fn write_frames<M: AsRef<[u8]>>(
    s: &mut impl Write,
    framing: Framing,
    msgs: &[M],
    skip: usize,
) -> std::io::Result<()> {
    let prefixes: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| prefix(framing, m.as_ref().len()))
        .collect();
    let parts = parts(&prefixes, msgs);
    let mut pos = (0, 0);
    advance(&parts, &mut pos, skip);
    while pos.0 < parts.len() {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len() - pos.0);
        slices.push(IoSlice::new(&parts[pos.0][pos.1..]));
        slices.extend(parts[pos.0 + 1..].iter().map(|p| IoSlice::new(p)));
        let n = match s.write_vectored(&slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        advance(&parts, &mut pos, n);
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
            write_frames(&mut wire, framing, &msgs, 0).unwrap();
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
    fn a_frame_started_inline_is_finished_from_where_it_stopped() {
        let msgs = vec![vec![9u8; 1000], b"next".to_vec()];
        for framing in [Framing::Tcp, Framing::Ipc] {
            let mut whole = Vec::new();
            write_frames(&mut whole, framing, &msgs, 0).unwrap();
            for skip in [1, framing.prefix_len(), framing.prefix_len() + 500] {
                let mut rest = Vec::new();
                write_frames(&mut rest, framing, &msgs, skip).unwrap();
                assert_eq!(rest, whole[skip..]);
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
