//! The `autoexit = TRUE` watchdog: terminates a busy daemon whose host has gone.
//!
//! The main thread may be deep inside an evaluation that never looks at the connection (in R,
//! arbitrary user code), so a separate thread has to notice the host hanging up. It sleeps on
//! a [`HangupWatch`] of the socket, which ordinary data never wakes: it costs nothing on the
//! path of a task.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mirai_transport::{HangupWatch, WatchEnd};

/// How long a busy daemon may go on after its host has gone.
pub(crate) const GRACE: Duration = Duration::from_millis(200);

/// While the host is gone but the daemon idle, how often to look whether an evaluation started
/// after all (a task that was already received when the host left).
const IDLE_CHECK: Duration = Duration::from_millis(50);

pub(crate) struct Watchdog {
    watch: Arc<HangupWatch>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching `sock` (which must stay open until the watchdog is dropped). `busy` is
    /// true while a task is being evaluated.
    pub(crate) fn start(sock: RawFd, busy: Arc<AtomicBool>) -> io::Result<Watchdog> {
        let watch = Arc::new(HangupWatch::new()?);
        let w = Arc::clone(&watch);
        let thread = std::thread::Builder::new()
            .name("mirai-daemon-watchdog".into())
            .spawn(move || watch_host(sock, &w, &busy))?;
        Ok(Watchdog {
            watch,
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.watch.stop();
        if let Some(t) = self.thread.take() {
            // The thread wakes at once (or within one grace period); joining guarantees it no
            // longer polls the socket when that is closed.
            let _ = t.join();
        }
    }
}

/// Waits up to `timeout` for the stop signal; true if it came (or waiting failed, in which
/// case the watchdog gives up rather than risk a wrong kill).
fn stopped_within(watch: &HangupWatch, timeout: Duration) -> bool {
    watch.wait_stopped(timeout).unwrap_or(true)
}

fn watch_host(sock: RawFd, watch: &HangupWatch, busy: &AtomicBool) {
    match watch.wait_hangup(sock) {
        Ok(WatchEnd::Hangup) => {}
        // Stopped, a socket already closed, or polling failed: nothing to do.
        _ => return,
    }
    // The host has gone. An idle daemon's own loop sees the end of the stream and returns; a
    // busy one gets the grace period to finish, then is terminated.
    loop {
        if busy.load(Ordering::SeqCst) {
            if stopped_within(watch, GRACE) {
                return;
            }
            if busy.load(Ordering::SeqCst) {
                log::warn!("mirai daemon: host gone while busy; terminating after grace period");
                mirai_transport::terminate_self();
                return;
            }
        } else if stopped_within(watch, IDLE_CHECK) {
            return;
        }
    }
}
