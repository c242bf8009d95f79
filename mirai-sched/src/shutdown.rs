//! Shutting down: telling every daemon to exit ([`Scheduler::exit_all`]) and closing the
//! scheduler ([`Scheduler::reset`]). The only operations that walk every task or daemon.

use crate::daemon::DaemonState;
use crate::task::TaskState;
use crate::{Action, DaemonId, ErrorCode, Mode, Scheduler, TaskId};

impl<P> Scheduler<P> {
    /// Queues [`Action::Exit`] for every connected daemon (hello'd or not), in connection
    /// order. State is unchanged: each daemon's [`Scheduler::disconnected`] follows as it goes.
    pub fn exit_all(&mut self) {
        let mut all: Vec<(u64, DaemonId)> =
            self.daemons.iter().map(|(&id, d)| (d.gen, id)).collect();
        all.sort_unstable();
        self.actions
            .extend(all.into_iter().map(|(_, daemon)| Action::Exit { daemon }));
    }

    /// Closes the scheduler: every task still held fails, in submission order
    /// ([`ErrorCode::CONNECTION_RESET`]; [`ErrorCode::OBJECT_CLOSED`] in direct mode for tasks
    /// never sent), and the queue empties. Tasks already cancelled or timed out get nothing
    /// more. Afterwards submissions fail at once with `ObjectClosed`, results are discarded,
    /// cancel returns false and nothing is dispatched; connections are still tracked so
    /// [`Scheduler::exit_all`] works. A second reset does nothing.
    pub fn reset(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let mut held: Vec<(u64, TaskId, ErrorCode)> = Vec::new();
        for (id, t) in self.tasks.drain() {
            let code = match t.state {
                // "Never sent": a retried task waiting again was sent, and lost.
                TaskState::Queued if self.mode == Mode::Direct && t.attempts == 0 => {
                    ErrorCode::OBJECT_CLOSED
                }
                TaskState::Queued | TaskState::Running => ErrorCode::CONNECTION_RESET,
                TaskState::Abandoned => continue,
            };
            held.push((t.seq, id, code));
        }
        held.sort_unstable_by_key(|h| h.0);
        self.actions.extend(
            held.into_iter()
                .map(|(_, task, code)| Action::Fail { task, code }),
        );
        self.queue.release();
        self.executing = 0;
        self.deadlines.clear();
        self.rounds.clear();
        self.idle.clear();
        self.pipeline.clear();
        self.units.clear();
        for d in self.daemons.values_mut() {
            if let DaemonState::Busy(_) = d.state {
                d.state = DaemonState::Idle;
                self.n_idle += 1;
            }
            d.sent.release();
            d.outstanding = 0;
            d.piped = None;
            d.units.clear();
            d.units_back = false;
            d.withdraw = None;
            d.since = None;
        }
    }
}
