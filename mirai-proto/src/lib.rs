//! Wire frames exchanged between a mirai host and its daemons, and their encoding.
//!
//! This crate is pure: it turns [`Frame`] values into bytes and bytes back into frames, and does
//! no I/O. Message boundaries are the transport's business (`mirai-transport`); task payloads
//! are opaque bytes that this crate never looks inside (in R they are R serializations).
//!
//! An encoded frame is a 4-byte header (`b"MRI"` and the protocol version) followed by exactly
//! one CBOR value. Decoding is strict and total: a frame that is too large, truncated, of another
//! protocol version, followed by trailing bytes, or not a valid frame is a [`DecodeError`], never
//! a panic.
//!
//! ```
//! use mirai_proto::{decode, encode, Frame, Task, TaskId, DEFAULT_MAX_FRAME};
//! let frame = Frame::Task(Task { id: TaskId(7), flags: 0, payload: b"hello".to_vec(), trace: None });
//! let bytes = encode(&frame);
//! assert_eq!(decode(&bytes, DEFAULT_MAX_FRAME).unwrap(), frame);
//! ```
//!
//! What happens between peers (the contract that `mirai-sched`, `mirai-daemon` and `mirai-host`
//! follow): a daemon dials and sends [`Hello`]; the host answers [`Init`]; then the host sends
//! [`Task`]s and [`Frame::Cancel`]s and the daemon answers each task with one [`TaskResult`].
//! A daemon leaving on a limit marks its final result `last` and waits for [`Frame::Ack`]. A
//! daemon that leaves while idle (idletime, or walltime reached between tasks) sends a *leave
//! notice*, a `last` [`TaskResult`] with task id [`LEAVE_NOTICE_ID`] (ids of real tasks start
//! at 1), answers any task that crossed it on the wire, and exits on the `Ack`: so no task is
//! lost to the race.
//! [`Frame::Exit`] tells a daemon to terminate at once.
//!
//! A host may send a daemon a second task before the first is answered (*pipelining*; the
//! daemon queues it and starts it when the first is done). Such a task that has not started can
//! be asked back with [`Frame::Withdraw`]; the daemon then either drops it and answers
//! [`Frame::Withdrawn`], or, if it had already started it, ignores the request and answers it
//! with its [`TaskResult`] as usual. A [`Frame::Cancel`] of a task that has not started is
//! answered the same way: the task is dropped unevaluated and [`Frame::Withdrawn`] says so.
//! A daemon that sends a `last` result drops the tasks it still holds unstarted, and every task
//! that reaches it afterwards, and answers each with [`Frame::Withdrawn`] (after the `last`
//! result). So every task sent to a daemon gets exactly one answer: a result, or `Withdrawn`,
//! which guarantees it was never evaluated there. The two `Withdraw*` frames were added in
//! place, without a version change: a daemon that predates them cannot decode a `Withdraw`,
//! so a host must not pipeline to such daemons.
//!
//! A `mirai_map` chunk travels as a [`Batch`]: consecutive elements of one payload, each
//! answered by its own result under its own id (the batch's id plus its position), in order,
//! so that each element is a task of its own to the host (its status, its loss, its retry).
//! A cancel or withdraw names one element; an element dropped unstarted is answered
//! [`Frame::Withdrawn`]. Added in place like the `Withdraw*` frames: a host sends batches only
//! to daemons of this build. A batch of tiny elements is flagged [`flags::COALESCE`]: the
//! daemon may then answer several of its elements in one [`Frame::Results`] (encoded item by
//! item with [`results_frame_prefix`] and [`encode_result_item`]), and says with
//! [`Frame::Running`] which element it has been running for a while.
//!
//! Besides the frames, this crate holds the other contracts the layers share, each defined
//! once: the NNG-style error codes ([`ErrorCode`]), the daemon's command line and exit codes
//! ([`daemon_args`]) and typed identifiers ([`ids`]).

#![forbid(unsafe_code)]

mod codec;
pub mod daemon_args;
mod decode_error;
mod error_code;
mod frame;
pub mod ids;
mod task_parts;

pub use codec::{decode, encode, encode_into, encode_result_item};
pub use decode_error::{BodyError, DecodeError};
pub use error_code::ErrorCode;
pub use frame::{flags, Batch, Frame, Hello, Init, RngStream, Status, Task, TaskResult};
pub use task_parts::{
    batch_frame_parts, results_frame_prefix, task_frame_parts, TaskFrameParts, RESULTS_PREFIX_MAX,
};

/// The protocol version this crate speaks. Peers of another version are refused.
pub const PROTOCOL_VERSION: u8 = 1;

/// The magic bytes that open every encoded frame.
pub const MAGIC: [u8; 3] = *b"MRI";

/// Length of the header before the CBOR body.
pub const HEADER_LEN: usize = 4;

/// Default largest frame accepted by [`decode`]: 16 GiB, so that multi-gigabyte payloads work.
pub const DEFAULT_MAX_FRAME: usize = 16 << 30;

/// Identifies a task for its whole life, host and daemon side: the frames carry this newtype,
/// which encodes as its integer.
pub use ids::TaskId;

/// The task id of a *leave notice* (see the crate docs): a `last` result for no task, sent by
/// a daemon leaving on an idle limit. Real task ids start at 1.
pub const LEAVE_NOTICE_ID: TaskId = TaskId::LEAVE_NOTICE;
