//! The `autoexit = TRUE` watchdog: terminates a busy daemon whose host has gone.
//!
//! The main thread may be deep inside an evaluation that never looks at the connection (in R,
//! arbitrary user code), so a separate thread has to notice the host hanging up. It sleeps in
//! `poll()` on the socket for `POLLRDHUP` only, so ordinary data never wakes it: it costs
//! nothing on the path of a task.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a busy daemon may go on after its host has gone.
pub(crate) const GRACE: Duration = Duration::from_millis(200);

/// While the host is gone but the daemon idle, how often to look whether an evaluation started
/// after all (a task that was already received when the host left).
const IDLE_CHECK: Duration = Duration::from_millis(50);

pub(crate) struct Watchdog {
    stop: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching `sock` (which must stay open until the watchdog is dropped). `busy` is
    /// true while a task is being evaluated.
    pub(crate) fn start(sock: RawFd, busy: Arc<AtomicBool>) -> io::Result<Watchdog> {
        // SAFETY: eventfd takes no pointers; the result is checked before use.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `efd` is a fresh descriptor that nothing else owns.
        let stop = unsafe { OwnedFd::from_raw_fd(efd) };
        let stop_fd = stop.as_raw_fd();
        let thread = std::thread::Builder::new()
            .name("mirai-daemon-watchdog".into())
            .spawn(move || watch(sock, stop_fd, &busy))?;
        Ok(Watchdog {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to the eventfd we own. It can only fail if the
        // counter would overflow, which one write per watchdog cannot cause.
        let _ = unsafe {
            libc::write(
                self.stop.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        if let Some(t) = self.thread.take() {
            // The thread wakes on the eventfd at once (or within one grace period); joining
            // guarantees it no longer touches either descriptor when they are closed.
            let _ = t.join();
        }
    }
}

/// Polls `fds`, retrying on EINTR. `timeout`: `None` = forever.
fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<()> {
    let ms = timeout.map_or(-1, |d| d.as_millis().min(i32::MAX as u128) as libc::c_int);
    loop {
        // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd for the whole call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Waits up to `timeout` for the stop signal; true if it came (or polling failed, in which
/// case the watchdog gives up rather than risk a wrong kill).
fn stopped_within(stop: RawFd, timeout: Duration) -> bool {
    let mut fds = [libc::pollfd {
        fd: stop,
        events: libc::POLLIN,
        revents: 0,
    }];
    match poll(&mut fds, Some(timeout)) {
        Ok(()) => fds[0].revents != 0,
        Err(_) => true,
    }
}

fn watch(sock: RawFd, stop: RawFd, busy: &AtomicBool) {
    let mut fds = [
        libc::pollfd {
            fd: sock,
            events: libc::POLLRDHUP,
            revents: 0,
        },
        libc::pollfd {
            fd: stop,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        fds[0].revents = 0;
        fds[1].revents = 0;
        if poll(&mut fds, None).is_err() || fds[1].revents != 0 {
            return;
        }
        let ev = fds[0].revents;
        if ev & libc::POLLNVAL != 0 {
            return;
        }
        if ev & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            break;
        }
    }
    // The host has gone. An idle daemon's own loop sees the end of the stream and returns; a
    // busy one gets the grace period to finish, then is terminated.
    loop {
        if busy.load(Ordering::SeqCst) {
            if stopped_within(stop, GRACE) {
                return;
            }
            if busy.load(Ordering::SeqCst) {
                log::warn!("mirai daemon: host gone while busy; terminating after grace period");
                // SAFETY: getpid and kill take no pointers; signalling our own process is the
                // documented behaviour of autoexit = TRUE.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGTERM);
                }
                return;
            }
        } else if stopped_within(stop, IDLE_CHECK) {
            return;
        }
    }
}
