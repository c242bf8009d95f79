//! Direct mode ([`Mode::Direct`]): no dispatcher queue in front of the daemons. Each task is
//! sent at submission to the next daemon of a round-robin ring, where it waits behind
//! whatever that daemon already holds; the scheduler queues tasks only while no daemon is in
//! the ring. Every daemon keeps the `(task, seq)` list of what it was sent, in order, so that
//! a disconnect can fail them in that order.

use std::collections::HashMap;

use crate::daemon::{is_idle, DaemonState};
use crate::task::Task;
use crate::{Action, DaemonId, Delivery, Scheduler, TaskId};

#[cfg(doc)]
use crate::Mode;

/// True if the sent-list entry `(task, seq)` of `daemon` is live: that task, still held by it.
fn sent_to<P>(
    tasks: &HashMap<TaskId, Task<P>>,
    (task, seq): (TaskId, u64),
    daemon: DaemonId,
) -> bool {
    tasks
        .get(&task)
        .is_some_and(|t| t.seq == seq && t.sent_to() == Some(daemon))
}

impl<P> Scheduler<P> {
    /// The next daemon of the ring, which moves to the back.
    pub(crate) fn next_in_ring(&mut self) -> Option<DaemonId> {
        let entry = self.idle.pop(|&e| is_idle(&self.daemons, e))?;
        self.idle.push_back(entry);
        Some(entry.0)
    }

    pub(crate) fn result_direct(&mut self, daemon: DaemonId, task: TaskId, last: bool) -> Delivery {
        let held_here = self
            .tasks
            .get(&task)
            .is_some_and(|t| t.sent_to() == Some(daemon));
        if !held_here {
            if let Some(d) = self.daemons.get_mut(&daemon) {
                if last && d.state == DaemonState::Idle {
                    // A leave notice (see `result`): out of the ring; tasks already sent to
                    // it are still answered.
                    d.state = DaemonState::Left;
                    self.n_idle -= 1;
                    self.actions.push_back(Action::Ack { daemon });
                }
            }
            return Delivery::Discard;
        }
        self.executing -= 1;
        let delivery = self.finish(task);
        let tasks = &self.tasks;
        if let Some(d) = self.daemons.get_mut(&daemon) {
            d.outstanding -= 1;
            // Replies normally come in send order, so dropping answered entries at the front
            // keeps `sent` short; compaction covers out-of-order replies.
            let live = |&e: &(TaskId, u64)| sent_to(tasks, e, daemon);
            d.sent.front(live);
            d.sent.compact(d.outstanding as usize, live);
            if last && d.state == DaemonState::Idle {
                d.state = DaemonState::Left;
                self.n_idle -= 1;
                self.actions.push_back(Action::Ack { daemon });
            }
        }
        delivery
    }
}
