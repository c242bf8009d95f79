//! Results of the elements of a coalesced batch ([`mirai_proto::flags::COALESCE`]), held by
//! the worker to be sent in one [`mirai_proto::Frame::Results`] message: a send per result
//! (and the wake-up it causes at the host) costs more than a tiny element. The worker sends
//! them when the batch's next element is not its next task, and before it sends anything
//! else or waits for a frame.
//!
//! An element may turn out long (or never end, if the daemon dies in it), and the results
//! held before it must not wait for it. So a *flusher* thread, started with the first
//! coalesced batch on a connection, watches the elements: once the oldest held result, or the
//! element running, is [`HOLD_FOR`] old, it sends the held results, and for an element that
//! has run that long also a [`mirai_proto::Frame::Running`] notice, after which the host
//! knows the elements behind it have not started. It wakes about once per millisecond of
//! batch, never on an element's path, and sleeps while no coalesced batch runs.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mirai_proto::{Frame, TaskResult};
use mirai_transport::Connection;

use crate::worker::KEEP_BUFFER;
use crate::{Evaluation, TaskId};

/// The longest results are held, and how long an element runs before the host is told.
pub(crate) const HOLD_FOR: Duration = Duration::from_millis(1);

/// See the module docs; one per connection.
#[derive(Default)]
pub(crate) struct Held {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// The results, encoded as items of a `Results` frame.
    items: Vec<u8>,
    count: usize,
    /// When the first of them started.
    since: Option<Instant>,
    /// The element of a coalesced batch being evaluated, when it started, and whether the
    /// host was told.
    running: Option<(TaskId, Instant, bool)>,
    /// A coalesced batch is under way: the flusher watches.
    active: bool,
    /// The flusher waits with no deadline (nothing to do yet): a new deadline must wake it.
    parked: bool,
    /// A send failed (the flusher's): the worker's next send reports it.
    failed: bool,
    stop: bool,
}

impl Held {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Element `id` of a coalesced batch starts now, on `conn` (the flusher starts with the
    /// first).
    pub(crate) fn begin(&mut self, id: TaskId, conn: &Arc<Connection>) {
        if self.flusher.is_none() {
            let shared = Arc::clone(&self.shared);
            let conn = Arc::clone(conn);
            match std::thread::Builder::new()
                .name("mirai-daemon-flusher".into())
                .spawn(move || flusher(&shared, &conn))
            {
                Ok(t) => self.flusher = Some(t),
                // Without it results wait for the element after them: slower, never lost.
                Err(e) => log::warn!("mirai daemon: cannot start the result flusher: {e}"),
            }
        }
        let mut s = self.lock();
        s.running = Some((id, Instant::now(), false));
        s.active = true;
        if s.parked {
            self.shared.wake.notify_one();
        }
    }

    /// Holds the result of element `id`, which started at `began`; true once the held
    /// results have waited long enough to be sent.
    pub(crate) fn push(&mut self, id: TaskId, evaluation: Evaluation, began: Instant) -> bool {
        let result = TaskResult {
            id,
            status: evaluation.status,
            last: false,
            payload: evaluation.payload,
        };
        let mut s = self.lock();
        s.running = None;
        mirai_proto::encode_result_item(&result, &mut s.items);
        s.count += 1;
        let since = *s.since.get_or_insert(began);
        if s.parked {
            self.shared.wake.notify_one();
        }
        since.elapsed() >= HOLD_FOR
    }

    /// Sends the held results, if any, and ends the watch until the next [`Held::begin`];
    /// false if the connection failed (now or in the flusher).
    pub(crate) fn flush(&mut self, conn: &Connection) -> bool {
        let mut s = self.lock();
        s.active = false;
        s.running = None;
        let ok = s.send(conn);
        !std::mem::take(&mut s.failed) && ok
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
    }
}

impl State {
    /// Sends the held results in one message (a vectored write of the frame's head and the
    /// items); false if that failed. None is held afterwards either way (after a failure the
    /// host takes them as lost with the daemon).
    fn send(&mut self, conn: &Connection) -> bool {
        if self.count == 0 {
            return true;
        }
        let (prefix, len) = mirai_proto::results_frame_prefix(self.count);
        let res = conn.send_parts(&[&prefix[..len], &self.items]);
        self.items.clear();
        if self.items.capacity() > KEEP_BUFFER {
            self.items = Vec::new();
        }
        let n = std::mem::take(&mut self.count);
        self.since = None;
        match res {
            Ok(()) => true,
            Err(e) => {
                log::warn!("mirai daemon: cannot send the results of {n} tasks: {e}");
                false
            }
        }
    }

    /// When the flusher has something to do: the oldest held result's or the running
    /// element's [`HOLD_FOR`], whichever comes first.
    fn due_at(&self) -> Option<Instant> {
        let held = self.since.map(|s| s + HOLD_FOR);
        let running = match self.running {
            Some((_, began, false)) => Some(began + HOLD_FOR),
            _ => None,
        };
        match (held, running) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The flusher thread (see the module docs). It sends while holding the lock, so its sends
/// and the worker's never interleave.
fn flusher(shared: &Shared, conn: &Connection) {
    let mut s = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if s.stop {
            return;
        }
        // No deadline (no batch, or an element already announced with nothing held): sleep
        // until `begin` or `push` gives one, rather than tick through a long element.
        let wait = match (s.active, s.due_at()) {
            (false, _) | (true, None) => None,
            (true, Some(at)) => match at.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => {
                    if !s.send(conn) {
                        s.failed = true;
                    }
                    if let Some((id, began, false)) = s.running {
                        if began.elapsed() >= HOLD_FOR {
                            // Told once, even if the connection failed (the worker sees that).
                            s.running = Some((id, began, true));
                            if !s.failed
                                && conn
                                    .send(&mirai_proto::encode(&Frame::Running { id }))
                                    .is_err()
                            {
                                s.failed = true;
                            }
                        }
                    }
                    continue;
                }
            },
        };
        s = match wait {
            None => {
                s.parked = true;
                let mut woken = shared.wake.wait(s).unwrap_or_else(PoisonError::into_inner);
                woken.parked = false;
                woken
            }
            Some(d) => {
                let woken = shared.wake.wait_timeout(s, d);
                woken.unwrap_or_else(PoisonError::into_inner).0
            }
        };
    }
}
