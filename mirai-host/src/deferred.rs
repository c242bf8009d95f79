//! Work collected under the state lock and done once it is released: wakers, completion
//! callbacks and the completion notifier, and (when tracing) spans.

use std::sync::Arc;
use std::task::Waker;
use std::time::SystemTime;

use mirai_trace::{Span, TraceParent};

use crate::handle::{run_callback, Outcome};
use crate::state::Shared;

/// Wakers and callbacks collected while locked, run after unlocking; with tracing, also the
/// spans to end or record, so that no span work happens under a lock.
#[derive(Default)]
pub(crate) struct Deferred {
    pub(crate) wakers: Vec<Waker>,
    pub(crate) callbacks: Vec<Box<dyn FnOnce() + Send>>,
    /// `mirai` spans of resolved tasks.
    pub(crate) spans: Vec<Span>,
    /// Daemons that connected or disconnected.
    pub(crate) peers: Vec<PeerEvent>,
    /// The parent of the disconnect spans (the `daemons reset` span during a reset).
    pub(crate) parent: Option<TraceParent>,
    /// Tasks resolved, for the completion notifier.
    pub(crate) completed: u32,
}

/// A daemon's handshake or disconnection, recorded as a span once the lock is released.
pub(crate) struct PeerEvent {
    pub(crate) connect: bool,
    pub(crate) pid: u32,
    pub(crate) at: SystemTime,
    pub(crate) trace: Arc<HostTrace>,
}

impl Deferred {
    /// Runs what waited for the state lock to be released: the host's queued frames first
    /// (so daemons get their work soonest), then wakers, the completion notifier, callbacks
    /// and spans.
    pub(crate) fn run(self, shared: &Shared) {
        shared.outbox.flush();
        for w in self.wakers {
            w.wake();
        }
        if let Some(n) = shared.on_complete.as_ref().filter(|_| self.completed > 0) {
            n.notify(self.completed);
        }
        for f in self.callbacks {
            run_callback(f);
        }
        drop(self.spans);
        for e in self.peers {
            let t = &e.trace;
            let span = if e.connect {
                mirai_trace::daemon_connect(&t.url, e.pid, t.set, e.at)
            } else {
                mirai_trace::daemon_disconnect(&t.url, e.pid, self.parent, t.set, e.at)
            };
            span.end();
        }
    }
}

/// What a tracing host needs to make its spans (see "Tracing" in the crate docs).
pub(crate) struct HostTrace {
    pub(crate) url: String,
    pub(crate) compute: String,
    pub(crate) dispatcher: bool,
    /// The `daemons set` span, which the profile's other spans link to.
    pub(crate) set: Option<TraceParent>,
}

impl HostTrace {
    pub(crate) fn event(self: &Arc<Self>, connect: bool, pid: u32) -> PeerEvent {
        PeerEvent {
            connect,
            pid,
            at: SystemTime::now(),
            trace: self.clone(),
        }
    }
}

/// A `mirai` span's status from its task's outcome: `miraiError` / `miraiInterrupt` for
/// evaluations that failed, the error value for tasks no daemon answered.
pub(crate) fn set_span_outcome(span: &mut Span, outcome: &Outcome) {
    match outcome {
        Outcome::Value { status, .. } => span.set_outcome(*status),
        Outcome::Error(code) => span.set_error_code(*code),
    }
}
