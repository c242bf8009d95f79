//! Listeners (an accept thread per listener, a thread per accepted connection) and dialers
//! (a thread that runs its connection and reconnects after it ends).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::pipe;
use super::stream::{self, Addr, Bound, Target};
use super::Shared;

/// A running listener's stop switch.
#[derive(Debug)]
pub(super) struct ListenerHandle {
    pub(super) stop: Arc<AtomicBool>,
    pub(super) local: Addr,
    /// Disconnects once the accept thread has ended and closed the listening socket.
    pub(super) done: mpsc::Receiver<()>,
}

/// Bound on waiting for an accept thread to let go of its socket.
const STOP_WAIT: Duration = Duration::from_secs(2);

impl ListenerHandle {
    /// Stops accepting: sets the flag, wakes the blocked accept, removes an ipc file or
    /// frees an inproc name, and waits (boundedly) until the listening socket is closed, so
    /// that the address can be listened on again at once, as with NNG.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop only notices the flag after an accept returns.
        stream::release(&self.local);
        let _ended = self.done.recv_timeout(STOP_WAIT);
    }
}

pub(super) fn spawn_listener(
    shared: &Arc<Shared>,
    bound: Bound,
    stop: Arc<AtomicBool>,
    framing: crate::frame::Framing,
) -> std::io::Result<mpsc::Receiver<()>> {
    let sh = Arc::clone(shared);
    let (done_tx, done) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sp-accept".into())
        .spawn(move || loop {
            let conn = bound.accept();
            if stop.load(Ordering::SeqCst) {
                drop(bound);
                drop(done_tx);
                return;
            }
            let Ok(stream) = conn else {
                // Transient accept errors (e.g. out of files): back off briefly.
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            let sh2 = Arc::clone(&sh);
            let spawned = std::thread::Builder::new()
                .name("sp-pipe".into())
                .spawn(move || drop(pipe::run(&sh2, stream, framing)));
            if spawned.is_err() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })?;
    Ok(done)
}

/// Runs a dialer: `first` is an already connected stream (synchronous dial) or `None`.
pub(super) fn spawn_dialer(
    shared: &Arc<Shared>,
    target: Target,
    first: Option<stream::Stream>,
) -> std::io::Result<()> {
    let sh = Arc::clone(shared);
    std::thread::Builder::new()
        .name("sp-dial".into())
        .spawn(move || {
            let framing = target.framing();
            let mut next = first;
            loop {
                if sh.lock().closed {
                    return;
                }
                let stream = match next.take() {
                    Some(s) => Some(s),
                    None => target.connect().ok(),
                };
                if let Some(s) = stream {
                    drop(pipe::run(&sh, s, framing));
                }
                // Wait out the reconnect interval, waking early if the socket closes.
                let mut g = sh.lock();
                let until = std::time::Instant::now() + g.reconnect;
                loop {
                    if g.closed {
                        return;
                    }
                    let now = std::time::Instant::now();
                    if now >= until {
                        break;
                    }
                    g = sh.wait(g, Some(until - now));
                }
            }
        })?;
    Ok(())
}
