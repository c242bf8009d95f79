//! Output a peer's socket has not taken yet.
use super::stream::Stream;
use std::collections::VecDeque;
use std::io::{self, IoSlice};

/// iovecs gathered per flush.
const MAX_IOV: usize = 64;

/// Output waiting for a peer's socket to drain.
#[derive(Default)]
pub(super) struct OutQueue {
    pub(super) chunks: VecDeque<Vec<u8>>,
    /// Bytes of `chunks[0]` already written.
    pub(super) offset: usize,
    /// `disconnect` was called: refuse further sends.
    pub(super) closing: bool,
    /// A write failed: the poller will see the error and report the disconnect.
    pub(super) broken: bool,
    /// TLS: rustls holds output the socket has not taken, and EPOLLOUT is being watched.
    /// (Plain sockets watch EPOLLOUT exactly while `chunks` is non-empty.)
    pub(super) waiting_out: bool,
}

impl OutQueue {
    /// Queues the bytes of `rest` (what the socket did not take of a message), joined.
    pub(super) fn push_rest(&mut self, rest: &[IoSlice<'_>]) {
        let mut chunk = Vec::with_capacity(rest.iter().map(|s| s.len()).sum());
        for s in rest {
            chunk.extend_from_slice(s);
        }
        self.chunks.push_back(chunk);
    }

    /// Writes as much as the socket takes now. Ok(true) once empty.
    pub(super) fn flush(&mut self, stream: &Stream) -> io::Result<bool> {
        while !self.chunks.is_empty() {
            let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(self.chunks.len().min(MAX_IOV));
            for (i, c) in self.chunks.iter().take(MAX_IOV).enumerate() {
                iov.push(IoSlice::new(if i == 0 { &c[self.offset..] } else { c }));
            }
            let mut n = match stream.write_vectored(&iov, true) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            drop(iov);
            while n > 0 {
                let front_left = self.chunks[0].len() - self.offset;
                if n >= front_left {
                    n -= front_left;
                    self.chunks.pop_front();
                    self.offset = 0;
                } else {
                    self.offset += n;
                    n = 0;
                }
            }
        }
        Ok(true)
    }
}
