//! Frames queued under the state lock and sent once it is released.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use mirai_proto::TaskId;
use mirai_transport::{Listener, PeerId};

use crate::body::TaskBody;
use crate::state::State;
use crate::sync::lock;

/// Frames queued under the state lock and sent after it is released, so that a thread
/// submitting tasks is not kept waiting on the lock while another makes system calls.
#[derive(Default)]
pub(crate) struct Outbox {
    queue: Mutex<VecDeque<(Arc<Listener>, PeerId, Outgoing)>>,
    /// Held by the one thread sending: frames go out in queue order, so a daemon always sees
    /// its frames in the order the scheduler produced them (an init before its tasks, a task
    /// before its cancel).
    sending: Mutex<()>,
}

/// A frame waiting in the [`Outbox`].
pub(crate) enum Outgoing {
    /// Task `.0`, whose body is shared with the scheduler (which may keep it for a retry).
    Task(TaskId, TaskBody),
    /// Units `.0 ..` (`.2` of them, from element `.1`) of the chunk in `.4`, coalesced if `.3`.
    Batch(TaskId, u32, u32, bool, TaskBody),
    /// Any other frame, encoded.
    Frame(Vec<u8>),
}

impl Outgoing {
    /// Sends, never blocking. A failure means the peer has gone: its disconnect event follows
    /// and the scheduler deals with whatever it held.
    fn send(&self, listener: &Listener, peer: PeerId) -> Result<(), mirai_transport::Error> {
        match self {
            Outgoing::Task(id, body) => body.send(listener, peer, *id),
            Outgoing::Batch(id, offset, count, coalesce, body) => {
                body.send_batch(listener, peer, *id, *offset, *count, *coalesce)
            }
            Outgoing::Frame(v) => listener.send(peer, v),
        }
    }
}

impl Outbox {
    /// Queues a frame for `peer`, to be sent by [`Outbox::flush`] once the state lock is
    /// released. Nothing is queued once the listener is closed.
    pub(crate) fn post(&self, st: &State, peer: PeerId, frame: Outgoing) {
        if let Some(l) = &st.listener {
            lock(&self.queue).push_back((Arc::clone(l), peer, frame));
        }
    }

    /// Sends the queued frames, in order. Called without the state lock, after every section
    /// that may have queued some. If another thread is sending, it returns at once: that
    /// thread looks at the queue again before it stops, so nothing is left behind.
    pub(crate) fn flush(&self) {
        loop {
            let guard = match self.sending.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            };
            loop {
                let batch = std::mem::take(&mut *lock(&self.queue));
                if batch.is_empty() {
                    break;
                }
                for (listener, peer, frame) in batch {
                    if let Err(e) = frame.send(&listener, peer) {
                        log::debug!("mirai host: send to daemon {peer} failed: {e}");
                    }
                }
            }
            drop(guard);
            if lock(&self.queue).is_empty() {
                return;
            }
        }
    }
}
