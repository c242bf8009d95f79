//! What comes out of the scheduler: the [`Action`]s the caller carries out, the
//! [`ErrorCode`]s tasks fail with (`mirai_proto`'s, so one table serves every layer:
//! [`ErrorCode::TIMED_OUT`], [`ErrorCode::OBJECT_CLOSED`], [`ErrorCode::CONNECTION_RESET`],
//! [`ErrorCode::CANCELED`]), and the [`Delivery`] verdict on a result.

use crate::{DaemonId, ErrorCode, TaskId};

#[cfg(doc)]
use crate::Scheduler;

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action<P> {
    /// Send the init bundle to a daemon that said hello. `ordinal` counts hellos over the
    /// scheduler's life (1 for the first), which picks the daemon's RNG stream.
    Init {
        /// The daemon.
        daemon: DaemonId,
        /// 1-based cumulative count of daemons that completed the handshake.
        ordinal: u64,
    },
    /// Send this task to this daemon.
    Dispatch {
        /// The daemon.
        daemon: DaemonId,
        /// The task.
        task: TaskId,
        /// Its payload, as submitted.
        payload: P,
    },
    /// Send these units ([`Scheduler::submit_unit`]) to this daemon in one frame: `count`
    /// consecutive elements of the payload from element `offset`, the first being `task`
    /// and the others the next ids in order. The daemon answers each as a task of its own.
    Batch {
        /// The daemon.
        daemon: DaemonId,
        /// The first unit sent.
        task: TaskId,
        /// Its index among the payload's elements.
        offset: u32,
        /// Units sent (at least 1).
        count: u32,
        /// The units are tiny (sized from a fast measured pace): the daemon may send their
        /// results together, so every unit of the batch without a result counts as started
        /// if the daemon is lost.
        coalesce: bool,
        /// The payload, as submitted (the first unit's).
        payload: P,
    },
    /// Ask the daemon to interrupt this task.
    Cancel {
        /// The daemon evaluating it.
        daemon: DaemonId,
        /// The task.
        task: TaskId,
    },
    /// Acknowledge the daemon's `last` result; it exits.
    Ack {
        /// The daemon.
        daemon: DaemonId,
    },
    /// Ask the daemon to give back this task, which was pipelined to it and may not have
    /// started yet (see [`Scheduler::withdrawn`]). If it has started, the daemon ignores the
    /// request and the task completes there.
    Withdraw {
        /// The daemon holding it.
        daemon: DaemonId,
        /// The task.
        task: TaskId,
    },
    /// Tell the daemon to terminate (the pool is shutting down: [`Scheduler::exit_all`]).
    Exit {
        /// The daemon.
        daemon: DaemonId,
    },
    /// Resolve this task's handle with an error code; nothing more will come for it.
    Fail {
        /// The task.
        task: TaskId,
        /// Why.
        code: ErrorCode,
    },
}

/// What to do with a result that came back from a daemon.
///
/// Exhaustive on purpose: a yes-or-no verdict, which the caller must act on either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Resolve the task's handle with it.
    Deliver,
    /// Drop it: the task was cancelled, timed out, or is unknown.
    Discard,
}
