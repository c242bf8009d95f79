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
//! use mirai_proto::{decode, encode, Frame, Task, DEFAULT_MAX_FRAME};
//! let frame = Frame::Task(Task { id: 7, flags: 0, payload: b"hello".to_vec(), trace: None });
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

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks. Peers of another version are refused.
pub const PROTOCOL_VERSION: u8 = 1;

/// The magic bytes that open every encoded frame.
pub const MAGIC: [u8; 3] = *b"MRI";

/// Length of the header before the CBOR body.
pub const HEADER_LEN: usize = 4;

/// Default largest frame accepted by [`decode`]: 16 GiB, so that multi-gigabyte payloads work.
pub const DEFAULT_MAX_FRAME: usize = 16 << 30;

/// Identifies a task for its whole life, host and daemon side.
pub type TaskId = u64;

/// The task id of a *leave notice* (see the crate docs): a `last` result for no task, sent by
/// a daemon leaving on an idle limit. Real task ids start at 1.
pub const LEAVE_NOTICE_ID: TaskId = 0;

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

/// Why bytes could not be decoded into a [`Frame`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header.
    #[error("truncated frame: {len} bytes is shorter than the {HEADER_LEN}-byte header")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// More bytes than the configured limit.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    Oversized {
        /// Bytes received.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The header is not `MRI`: the peer does not speak this protocol.
    #[error("not a mirai frame (bad magic bytes {0:02x?})")]
    BadMagic([u8; 3]),
    /// The peer speaks another protocol version.
    #[error("unsupported protocol version {got} (this build speaks version {PROTOCOL_VERSION})")]
    UnknownVersion {
        /// The version in the header.
        got: u8,
    },
    /// The body is not a valid CBOR frame (includes truncated bodies).
    #[error("malformed frame body: {0}")]
    Malformed(String),
    /// A complete frame was followed by more bytes.
    #[error("{0} trailing bytes after the frame")]
    TrailingBytes(usize),
}

/// Encodes a frame into a fresh buffer.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(frame, &mut out);
    out
}

/// Appends an encoded frame to `out`, reserving room for the payload up front so that a large
/// payload is copied once.
pub fn encode_into(frame: &Frame, out: &mut Vec<u8>) {
    let payload = match frame {
        Frame::Task(t) => t.payload.len(),
        Frame::Result(r) => r.payload.len(),
        Frame::Init(i) => i.serial.len(),
        _ => 0,
    };
    out.reserve(HEADER_LEN + payload + 64);
    out.extend_from_slice(&MAGIC);
    out.push(PROTOCOL_VERSION);
    // Writing into a Vec cannot fail, and every frame type serializes without error.
    ciborium::into_writer(frame, &mut *out).expect("encoding a frame into memory cannot fail");
}

/// Longest [`TaskFrameParts::prefix`]: the header, `{"Task": {` (map, key, map), the `id` key
/// and a 9-byte integer, the `flags` key and a 2-byte integer, the `payload` key and a 9-byte
/// byte-string head.
const TASK_PREFIX_MAX: usize = HEADER_LEN + 1 + 5 + 1 + 3 + 9 + 6 + 2 + 8 + 9;

/// Longest [`TaskFrameParts::suffix`]: the `trace` key and a 9-byte text-string head.
const TASK_SUFFIX_MAX: usize = 6 + 9;

/// The bytes of an encoded [`Frame::Task`] around its payload, made without the payload: what
/// [`encode`] gives for the same task is `prefix ++ payload ++ suffix ++ trace` (see
/// [`TaskFrameParts::slices`]), byte for byte.
///
/// This lets a sender keep a queued task as its payload, flags and traceparent only, and
/// write the frame with one vectored write at send time instead of keeping its encoded
/// frame (whose CBOR keys and tags cost about 40 bytes per task). Built on the stack.
///
/// ```
/// use mirai_proto::{encode, task_frame_parts, Frame, Task};
/// let parts = task_frame_parts(7, 0, 5, Some("tp"));
/// let frame = Frame::Task(Task { id: 7, flags: 0, payload: b"hello".to_vec(), trace: Some("tp".into()) });
/// assert_eq!(parts.slices(b"hello").concat(), encode(&frame));
/// assert_eq!(parts.len(), encode(&frame).len());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TaskFrameParts<'a> {
    prefix: [u8; TASK_PREFIX_MAX],
    prefix_len: u8,
    suffix: [u8; TASK_SUFFIX_MAX],
    suffix_len: u8,
    payload_len: usize,
    trace: &'a [u8],
}

impl<'a> TaskFrameParts<'a> {
    /// The frame's bytes before the payload: header, frame tag, `id`, `flags` and the head of
    /// the payload's byte string.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix[..usize::from(self.prefix_len)]
    }

    /// The frame's bytes right after the payload: the `trace` key and either CBOR null (no
    /// traceparent) or the head of a text string whose bytes are [`TaskFrameParts::trace`].
    pub fn suffix(&self) -> &[u8] {
        &self.suffix[..usize::from(self.suffix_len)]
    }

    /// The traceparent's bytes, the frame's last (empty without one).
    pub fn trace(&self) -> &'a [u8] {
        self.trace
    }

    /// The whole frame in order: prefix, `payload`, suffix, trace. `payload` must be the
    /// `payload_len` bytes the parts were made for (checked in debug builds).
    pub fn slices<'b>(&'b self, payload: &'b [u8]) -> [&'b [u8]; 4] {
        debug_assert_eq!(
            payload.len(),
            self.payload_len,
            "payload length differs from the parts'"
        );
        [self.prefix(), payload, self.suffix(), self.trace]
    }

    /// The encoded frame's length, payload included.
    pub fn len(&self) -> usize {
        usize::from(self.prefix_len)
            + self.payload_len
            + usize::from(self.suffix_len)
            + self.trace.len()
    }

    /// Always false: a frame has at least its header (for clippy's `len` convention).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Appends a CBOR head (major type `major`, argument `n`, shortest form, as ciborium writes
/// it) at `buf[*at..]`.
fn cbor_head(buf: &mut [u8], at: &mut usize, major: u8, n: u64) {
    let (info, width) = match n {
        0..=23 => (n as u8, 0),
        24..=0xff => (24, 1),
        0x100..=0xffff => (25, 2),
        0x1_0000..=0xffff_ffff => (26, 4),
        _ => (27, 8),
    };
    buf[*at] = (major << 5) | info;
    buf[*at + 1..*at + 1 + width].copy_from_slice(&n.to_be_bytes()[8 - width..]);
    *at += 1 + width;
}

/// Appends `bytes` at `buf[*at..]`.
fn put(buf: &mut [u8], at: &mut usize, bytes: &[u8]) {
    buf[*at..*at + bytes.len()].copy_from_slice(bytes);
    *at += bytes.len();
}

/// The prefix and suffix of [`Frame::Task`] `{id, flags, payload of payload_len bytes, trace}`
/// (see [`TaskFrameParts`]). Pure and allocation-free; the result equals what [`encode`]
/// writes around the payload (checked by unit and property tests).
pub fn task_frame_parts(
    id: TaskId,
    flags: u8,
    payload_len: usize,
    trace: Option<&str>,
) -> TaskFrameParts<'_> {
    /// CBOR major types used by a task frame.
    const UINT: u8 = 0;
    const BYTES: u8 = 2;
    const TEXT: u8 = 3;
    const MAP: u8 = 5;
    const NULL: u8 = 0xf6;
    let mut prefix = [0u8; TASK_PREFIX_MAX];
    let mut at = 0;
    put(&mut prefix, &mut at, &MAGIC);
    put(&mut prefix, &mut at, &[PROTOCOL_VERSION]);
    // An externally tagged variant is a one-entry map from its name to its fields, and a
    // struct a map from field names to values, in declaration order.
    cbor_head(&mut prefix, &mut at, MAP, 1);
    cbor_head(&mut prefix, &mut at, TEXT, 4);
    put(&mut prefix, &mut at, b"Task");
    cbor_head(&mut prefix, &mut at, MAP, 4);
    cbor_head(&mut prefix, &mut at, TEXT, 2);
    put(&mut prefix, &mut at, b"id");
    cbor_head(&mut prefix, &mut at, UINT, id);
    cbor_head(&mut prefix, &mut at, TEXT, 5);
    put(&mut prefix, &mut at, b"flags");
    cbor_head(&mut prefix, &mut at, UINT, u64::from(flags));
    cbor_head(&mut prefix, &mut at, TEXT, 7);
    put(&mut prefix, &mut at, b"payload");
    cbor_head(&mut prefix, &mut at, BYTES, payload_len as u64);
    let mut suffix = [0u8; TASK_SUFFIX_MAX];
    let mut end = 0;
    cbor_head(&mut suffix, &mut end, TEXT, 5);
    put(&mut suffix, &mut end, b"trace");
    match trace {
        Some(t) => cbor_head(&mut suffix, &mut end, TEXT, t.len() as u64),
        None => put(&mut suffix, &mut end, &[NULL]),
    }
    TaskFrameParts {
        prefix,
        // Both bounded by their array lengths (48 and 15).
        prefix_len: at as u8,
        suffix,
        suffix_len: end as u8,
        payload_len,
        trace: trace.map_or(&[][..], str::as_bytes),
    }
}

/// Decodes one frame of at most `max` bytes.
///
/// Total: any input gives a frame or an error, never a panic, and no allocation larger than the
/// input itself.
pub fn decode(bytes: &[u8], max: usize) -> Result<Frame, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::Oversized {
            len: bytes.len(),
            max,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { len: bytes.len() });
    }
    let magic = [bytes[0], bytes[1], bytes[2]];
    if magic != MAGIC {
        return Err(DecodeError::BadMagic(magic));
    }
    if bytes[3] != PROTOCOL_VERSION {
        return Err(DecodeError::UnknownVersion { got: bytes[3] });
    }
    let mut body = &bytes[HEADER_LEN..];
    let frame: Frame =
        ciborium::from_reader(&mut body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !body.is_empty() {
        return Err(DecodeError::TrailingBytes(body.len()));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Frame> {
        vec![
            Frame::Hello(Hello {
                protocol: PROTOCOL_VERSION,
                pid: 42,
            }),
            Frame::Init(Init {
                stream: Some([10407, 1, -2, 3, -4, 5, 6]),
                serial: vec![1, 2],
            }),
            Frame::Init(Init {
                stream: None,
                serial: vec![],
            }),
            Frame::Task(Task {
                id: 1,
                flags: flags::EVERYWHERE,
                payload: vec![0; 16],
                trace: None,
            }),
            Frame::Result(TaskResult {
                id: u64::MAX,
                status: Status::Error,
                last: true,
                payload: vec![9; 3],
            }),
            Frame::Cancel { id: 3 },
            Frame::Withdraw { id: 4 },
            Frame::Withdrawn { id: u64::MAX },
            Frame::Ack,
            Frame::Exit,
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for f in samples() {
            assert_eq!(decode(&encode(&f), DEFAULT_MAX_FRAME).unwrap(), f);
        }
    }

    #[test]
    fn task_frame_parts_are_the_encoded_frame_around_the_payload() {
        let long: String = "x".repeat(70_000);
        let traces = [
            None,
            Some(""),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            Some(&long[..300]),
            Some(&long[..]),
        ];
        let ids = [
            0,
            1,
            23,
            24,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ];
        for n in [0, 1, 23, 24, 255, 256, 65_535, 65_536] {
            let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
            for (k, &id) in ids.iter().enumerate() {
                let flags = [0u8, 1, 23, 24, 255][k % 5];
                for trace in traces {
                    let frame = Frame::Task(Task {
                        id,
                        flags,
                        payload: payload.clone(),
                        trace: trace.map(String::from),
                    });
                    let parts = task_frame_parts(id, flags, n, trace);
                    let want = encode(&frame);
                    assert_eq!(
                        parts.slices(&payload).concat(),
                        want,
                        "id {id} flags {flags} payload {n}"
                    );
                    assert_eq!(parts.len(), want.len());
                    assert_eq!(
                        parts.prefix().len() + n + parts.suffix().len() + parts.trace().len(),
                        want.len()
                    );
                }
            }
        }
    }

    #[test]
    fn cbor_heads_match_ciborium_for_every_width() {
        // A byte string's head is an unsigned integer's with another major type: checking
        // integers covers payload lengths too large to encode in a test (4 GiB and more).
        for n in [
            0,
            23,
            24,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ] {
            let mut want = Vec::new();
            ciborium::into_writer(&n, &mut want).unwrap();
            let mut buf = [0u8; 9];
            let mut at = 0;
            cbor_head(&mut buf, &mut at, 0, n);
            assert_eq!(&buf[..at], &want[..], "{n}");
            let mut at = 0;
            cbor_head(&mut buf, &mut at, 2, n);
            assert_eq!(buf[0] >> 5, 2);
            assert_eq!(&buf[1..at], &want[1..]);
        }
    }

    #[test]
    fn header_errors_are_named() {
        assert_eq!(decode(b"MR", 100), Err(DecodeError::Truncated { len: 2 }));
        assert_eq!(decode(b"XYZ\x01", 100), Err(DecodeError::BadMagic(*b"XYZ")));
        assert_eq!(
            decode(b"MRI\x09\xf6", 100),
            Err(DecodeError::UnknownVersion { got: 9 })
        );
        let big = encode(&Frame::Task(Task {
            id: 1,
            flags: 0,
            payload: vec![0; 100],
            trace: None,
        }));
        assert!(matches!(
            decode(&big, 50),
            Err(DecodeError::Oversized { max: 50, .. })
        ));
    }

    #[test]
    fn trailing_and_truncated_bodies_are_errors() {
        let mut b = encode(&Frame::Ack);
        b.push(0);
        assert_eq!(decode(&b, 100), Err(DecodeError::TrailingBytes(1)));
        let t = encode(&Frame::Task(Task {
            id: 1,
            flags: 0,
            payload: vec![7; 40],
            trace: None,
        }));
        for cut in HEADER_LEN..t.len() {
            assert!(decode(&t[..cut], 1000).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_byte_string_claiming_gigabytes_is_an_error_not_an_allocation() {
        // Header, then CBOR {"Task": {..., "payload": bstr of length 2^32 - 1}} with no bytes.
        let mut b = MAGIC.to_vec();
        b.push(PROTOCOL_VERSION);
        b.extend_from_slice(&[0xa1, 0x64]);
        b.extend_from_slice(b"Task");
        b.extend_from_slice(&[0xa2, 0x62]);
        b.extend_from_slice(b"id");
        b.push(0x01);
        b.extend_from_slice(&[0x67]);
        b.extend_from_slice(b"payload");
        b.extend_from_slice(&[0x5a, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            decode(&b, DEFAULT_MAX_FRAME),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_fields_are_refused() {
        #[derive(Serialize)]
        enum Evil {
            Cancel { id: u64, extra: u8 },
        }
        let mut b = MAGIC.to_vec();
        b.push(PROTOCOL_VERSION);
        ciborium::into_writer(&Evil::Cancel { id: 1, extra: 2 }, &mut b).unwrap();
        assert!(matches!(decode(&b, 100), Err(DecodeError::Malformed(_))));
    }
}
