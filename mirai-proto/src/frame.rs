//! The frames: what a host and a daemon say to each other (see the crate docs).

use serde::{Deserialize, Serialize};

use crate::TaskId;

/// A 7-integer L'Ecuyer-CMRG `.Random.seed` (kind code first), as R stores it.
pub type RngStream = [i32; 7];

/// Bit flags carried by a [`Task`].
pub mod flags {
    /// The task is part of an `everywhere()` round: whatever it leaves in the daemon's global
    /// environment, search path and options becomes the daemon's new cleanup baseline.
    pub const EVERYWHERE: u8 = 1;
    /// On a [`Batch`](super::Batch): its elements are tiny, so the daemon may hold their
    /// results and send them together in one [`Frame::Results`](super::Frame::Results) (at
    /// the batch's end, after about a millisecond, and before it waits for a frame). A host
    /// that loses the daemon must then take every element it has no result for as started.
    pub const COALESCE: u8 = 2;
}

/// A daemon's first frame after connecting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// The protocol version the daemon speaks.
    pub protocol: u8,
    /// The daemon's process id, for status and logs.
    pub pid: u32,
}

/// The host's answer to [`Hello`]: what a daemon needs before its first task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Init {
    /// The daemon's RNG stream, when the host manages one per daemon.
    pub stream: Option<RngStream>,
    /// Opaque serialization configuration (in R: the serialized `serial_config()`), or empty.
    #[serde(with = "serde_bytes")]
    pub serial: Vec<u8>,
}

/// A unit of work for a daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// The task's id; its result carries the same id.
    pub id: TaskId,
    /// See [`flags`].
    pub flags: u8,
    /// The work itself, opaque to the engine.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// W3C `traceparent` of the span that submitted the task, when tracing.
    pub trace: Option<String>,
}

/// Consecutive elements of one `mirai_map` chunk for a daemon: evaluate elements `offset ..
/// offset + count` of the payload, one after the other, each as a task of its own whose id is
/// `id + i` for the `i`-th; each gets its own [`TaskResult`] (sent before the next starts),
/// or a [`Frame::Withdrawn`] if it is dropped unstarted. So a host learns of every element
/// as it ends, and knows that an element it has no answer for when the daemon is lost had
/// not started unless it was the one after the last answered. Under [`flags::COALESCE`] the
/// results may come late and several at once (in order): every element without one may
/// have started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The id of the first element sent (element `offset` of the payload).
    pub id: TaskId,
    /// See [`flags`].
    pub flags: u8,
    /// The payload's index of the first element sent.
    pub offset: u32,
    /// How many consecutive elements are sent (at least 1).
    pub count: u32,
    /// The chunk, opaque to the engine (it holds every element, sent or not).
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// W3C `traceparent` of the first element's span, when tracing.
    pub trace: Option<String>,
}

impl Batch {
    /// The id of the element at `index` in the payload, if this frame sends it.
    pub fn unit_id(&self, index: u32) -> Option<TaskId> {
        let k = index.checked_sub(self.offset).filter(|&k| k < self.count)?;
        self.id.get().checked_add(u64::from(k)).map(TaskId)
    }
}

/// How an evaluation ended. The payload says the rest; this is for the engine's own use
/// (span status, logs, test evaluators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Status {
    /// Evaluated to a value.
    Ok,
    /// Evaluation signalled an error (in R, the payload is a `miraiError`).
    Error,
    /// Evaluation was interrupted (in R, the payload is a `miraiInterrupt`).
    Interrupted,
}

/// A daemon's answer to one [`Task`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskResult {
    /// The id of the task answered.
    pub id: TaskId,
    /// How the evaluation ended.
    pub status: Status,
    /// Set on the daemon's final result before it exits on a limit; the host answers
    /// [`Frame::Ack`] and sends it nothing more.
    pub last: bool,
    /// The result, opaque to the engine.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// Everything a host and a daemon say to each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub enum Frame {
    /// Daemon to host, first.
    Hello(Hello),
    /// Host to daemon, in answer to `Hello`.
    Init(Init),
    /// Host to daemon: evaluate this.
    Task(Task),
    /// Daemon to host: the answer to a task.
    Result(TaskResult),
    /// Host to daemon: evaluate these elements of a chunk (see [`Batch`]).
    Batch(Batch),
    /// Daemon to host: the answers to several elements of a [`flags::COALESCE`] batch, in
    /// the order they ended (none of them `last`).
    Results(Vec<TaskResult>),
    /// Daemon to host: element `id` of a [`flags::COALESCE`] batch has been running for a
    /// while and every element before it has been answered, so the host knows again that the
    /// elements behind it have not started (until its next result).
    Running {
        /// The element being evaluated.
        id: TaskId,
    },
    /// Host to daemon: interrupt this task if it is still being evaluated.
    Cancel {
        /// The task to interrupt.
        id: TaskId,
    },
    /// Host to daemon: your `last` result arrived; exit now.
    Ack,
    /// Host to daemon: give this task back if you have not started it (it was sent while
    /// another task ran). Answered by [`Frame::Withdrawn`] if it was dropped; ignored if it
    /// has started (its result follows as usual) or is unknown.
    Withdraw {
        /// The task asked back.
        id: TaskId,
    },
    /// Daemon to host: this task was dropped without being started, and never will be (the
    /// answer to a [`Frame::Withdraw`] or [`Frame::Cancel`] of a task that had not started, or
    /// for a task still held, or arriving, after a `last` result).
    Withdrawn {
        /// The task given back.
        id: TaskId,
    },
    /// Host to daemon: terminate at once, whatever you are doing.
    Exit,
}

impl Frame {
    /// A short name of the frame's kind, for logs (never the payload).
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Init(_) => "init",
            Frame::Task(_) => "task",
            Frame::Batch(_) => "batch",
            Frame::Result(_) => "result",
            Frame::Results(_) => "results",
            Frame::Running { .. } => "running",
            Frame::Cancel { .. } => "cancel",
            Frame::Ack => "ack",
            Frame::Withdraw { .. } => "withdraw",
            Frame::Withdrawn { .. } => "withdrawn",
            Frame::Exit => "exit",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_names_its_elements_by_position_and_no_others() {
        let b = Batch {
            id: TaskId(100),
            flags: 0,
            offset: 5,
            count: 3,
            payload: vec![],
            trace: None,
        };
        assert_eq!(b.unit_id(4), None);
        assert_eq!(b.unit_id(5), Some(TaskId(100)));
        assert_eq!(b.unit_id(7), Some(TaskId(102)));
        assert_eq!(b.unit_id(8), None);
        let top = Batch {
            id: TaskId(u64::MAX),
            count: 2,
            offset: 0,
            ..b
        };
        assert_eq!(top.unit_id(1), None, "ids that overflow are none");
    }
}
