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
            Frame::Result(_) => "result",
            Frame::Cancel { .. } => "cancel",
            Frame::Ack => "ack",
            Frame::Withdraw { .. } => "withdraw",
            Frame::Withdrawn { .. } => "withdrawn",
            Frame::Exit => "exit",
        }
    }
}
