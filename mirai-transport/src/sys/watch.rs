//! Waiting for a peer's hangup and ending the process: the daemon watchdog's part of the seam.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{poll, timeout_ms, EventFd};

/// How a [`HangupWatch::wait_hangup`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEnd {
    /// The peer hung up (or the socket failed): nothing more will arrive.
    Hangup,
    /// [`HangupWatch::stop`] was called.
    Stopped,
    /// The descriptor watched is not open.
    NotOpen,
}

/// Lets a thread sleep until the peer of a connection hangs up, without ever being woken by
/// data arriving (the connection's owner keeps reading it), and lets another thread stop the
/// wait at once. For a daemon's watchdog, which must notice a vanished host while the main
/// thread is busy in code that never looks at the connection.
///
/// Shared between the threads (it is `Sync`); [`HangupWatch::stop`] is permanent.
pub struct HangupWatch {
    stop: EventFd,
}

impl HangupWatch {
    /// A watch, not stopped.
    pub fn new() -> io::Result<HangupWatch> {
        Ok(HangupWatch {
            stop: EventFd::new()?,
        })
    }

    /// Ends every wait, now and later.
    pub fn stop(&self) {
        self.stop.notify();
    }

    /// Blocks until the peer of the connected socket `sock` hangs up, or [`HangupWatch::stop`]
    /// is called (`Stopped` wins when both happened). `sock` is only polled, never read, so it
    /// may be any descriptor (`Connection::raw_fd`); one closed meanwhile reads `NotOpen`.
    pub fn wait_hangup(&self, sock: RawFd) -> io::Result<WatchEnd> {
        let mut fds = [
            libc::pollfd {
                fd: sock,
                events: libc::POLLRDHUP,
                revents: 0,
            },
            libc::pollfd {
                fd: self.stop.raw(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        loop {
            fds[0].revents = 0;
            fds[1].revents = 0;
            // An EINTR comes back as 0 ready: poll again.
            poll(&mut fds, -1)?;
            if fds[1].revents != 0 {
                return Ok(WatchEnd::Stopped);
            }
            let ev = fds[0].revents;
            if ev & libc::POLLNVAL != 0 {
                return Ok(WatchEnd::NotOpen);
            }
            if ev & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
                return Ok(WatchEnd::Hangup);
            }
        }
    }

    /// Blocks up to `timeout` for [`HangupWatch::stop`]; true if it was (or had been) called.
    /// Signals do not cut the wait short.
    pub fn wait_stopped(&self, timeout: Duration) -> io::Result<bool> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            let mut fds = [libc::pollfd {
                fd: self.stop.raw(),
                events: libc::POLLIN,
                revents: 0,
            }];
            poll(&mut fds, timeout_ms(left))?;
            if fds[0].revents != 0 {
                return Ok(true);
            }
            // Not yet stopped: the wait ran out, or a signal cut it short.
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(false);
            }
        }
    }
}

/// Sends SIGTERM to this process: how a daemon with `autoexit = TRUE` ends itself when its
/// host has gone while it is busy (R's own handler, if any, then runs).
pub fn terminate_self() {
    // SAFETY: getpid and kill take no pointers; signalling our own process has no memory
    // effects here (whatever handler is installed runs as for any other SIGTERM).
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
}

#[cfg(test)]
mod hangup_tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_hangup_ends_the_wait_and_data_does_not() {
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let watch = Arc::new(HangupWatch::new().unwrap());
        let w = Arc::clone(&watch);
        let fd = mine.as_raw_fd();
        let t = std::thread::spawn(move || w.wait_hangup(fd));
        theirs.write_all(b"data").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished(), "woken by data");
        drop(theirs);
        assert_eq!(t.join().unwrap().unwrap(), WatchEnd::Hangup);
        drop(mine);
    }

    #[test]
    fn stop_ends_every_wait_for_good() {
        let (mine, _theirs) = UnixStream::pair().unwrap();
        let watch = Arc::new(HangupWatch::new().unwrap());
        assert!(!watch.wait_stopped(Duration::from_millis(20)).unwrap());
        let w = Arc::clone(&watch);
        let fd = mine.as_raw_fd();
        let t = std::thread::spawn(move || w.wait_hangup(fd));
        std::thread::sleep(Duration::from_millis(20));
        watch.stop();
        assert_eq!(t.join().unwrap().unwrap(), WatchEnd::Stopped);
        let start = Instant::now();
        assert!(watch.wait_stopped(Duration::from_secs(10)).unwrap());
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(watch.wait_hangup(fd).unwrap(), WatchEnd::Stopped);
    }

    #[test]
    fn a_descriptor_that_is_not_open_is_reported() {
        let watch = HangupWatch::new().unwrap();
        // Far above any descriptor this process has open.
        assert_eq!(watch.wait_hangup(1 << 20).unwrap(), WatchEnd::NotOpen);
    }
}
