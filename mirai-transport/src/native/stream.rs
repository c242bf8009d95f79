//! A connected socket, plain or with TLS, and blocking writes to a raw descriptor.
use super::tls_stream::TlsStream;
use super::SCRATCH;
use crate::sys;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// A connected socket: plain, or with a TLS layer.
pub(super) enum Stream {
    /// Plain TCP or Unix stream socket.
    Plain(OwnedFd),
    /// TLS over a TCP socket.
    Tls(Box<TlsStream>),
}

impl Stream {
    pub(super) fn fd(&self) -> RawFd {
        match self {
            Stream::Plain(fd) => fd.as_raw_fd(),
            Stream::Tls(t) => t.fd.as_raw_fd(),
        }
    }

    /// Plain: one `read(2)`. TLS (dialer): blocks until plaintext is available.
    pub(super) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(fd) => sys::read(fd.as_raw_fd(), buf),
            Stream::Tls(t) => t.read_blocking(buf),
        }
    }

    pub(super) fn read_spare(&self, v: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        match self {
            Stream::Plain(fd) => sys::read_spare(fd.as_raw_fd(), v, max),
            Stream::Tls(t) => {
                // rustls hands out initialized bytes only: zero a bounded window, read, trim.
                let old = v.len();
                let want = (v.capacity() - old).min(max).min(SCRATCH);
                if want == 0 {
                    return Ok(0);
                }
                v.resize(old + want, 0);
                let res = t.read_blocking(&mut v[old..]);
                v.truncate(old + *res.as_ref().unwrap_or(&0));
                res
            }
        }
    }

    /// Plain sockets only: TLS output goes through rustls (see [`TlsStream`]).
    pub(super) fn write_vectored(
        &self,
        bufs: &[IoSlice<'_>],
        nonblocking: bool,
    ) -> io::Result<usize> {
        match self {
            // At most IOV_MAX (1024) iovecs per call: callers loop until all is written.
            Stream::Plain(fd) => {
                sys::send_vectored(fd.as_raw_fd(), &bufs[..bufs.len().min(1024)], nonblocking)
            }
            Stream::Tls(_) => Err(io::Error::other("plain write on a TLS stream")),
        }
    }

    pub(super) fn shutdown(&self) {
        sys::shutdown(self.fd());
    }
}

/// `io::Write` over a socket with `sendmsg`, for rustls' `write_tls`.
pub(super) struct FdWriter {
    pub(super) fd: RawFd,
    pub(super) nonblocking: bool,
}

impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send_vectored(self.fd, &[IoSlice::new(buf)], self.nonblocking)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sys::send_vectored(self.fd, bufs, self.nonblocking)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes all of `data` to a blocking socket.
pub(super) fn write_all_fd(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match sys::send_vectored(fd, &[IoSlice::new(data)], false) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
