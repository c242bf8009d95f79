//! [`TaskFrameParts`]: the bytes of a task frame around its payload, built without it.

use crate::{TaskId, HEADER_LEN, MAGIC, PROTOCOL_VERSION};

/// Longest [`TaskFrameParts::prefix`]: the header, `{"Batch": {` (map, key, map), the `id` key
/// and a 9-byte integer, the `flags` key and a 2-byte integer, the `offset` and `count` keys
/// and 5-byte integers (a batch only), the `payload` key and a 9-byte byte-string head.
const TASK_PREFIX_MAX: usize = HEADER_LEN + 1 + 6 + 1 + 3 + 9 + 6 + 2 + 7 + 5 + 6 + 5 + 8 + 9;

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
/// use mirai_proto::{encode, task_frame_parts, Frame, Task, TaskId};
/// let parts = task_frame_parts(TaskId(7), 0, 5, Some("tp"));
/// let frame = Frame::Task(Task { id: TaskId(7), flags: 0, payload: b"hello".to_vec(), trace: Some("tp".into()) });
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
    frame_parts(id, flags, None, payload_len, trace)
}

/// [`task_frame_parts`] for a [`Frame::Batch`](crate::Frame::Batch) `{id, flags, offset,
/// count, payload of payload_len bytes, trace}`: what [`encode`] gives for that batch is
/// `prefix ++ payload ++ suffix ++ trace`.
///
/// ```
/// use mirai_proto::{batch_frame_parts, encode, Batch, Frame, TaskId};
/// let parts = batch_frame_parts(TaskId(9), 0, 2, 3, 5, None);
/// let frame = Frame::Batch(Batch { id: TaskId(9), flags: 0, offset: 2, count: 3, payload: b"chunk".to_vec(), trace: None });
/// assert_eq!(parts.slices(b"chunk").concat(), encode(&frame));
/// ```
pub fn batch_frame_parts(
    id: TaskId,
    flags: u8,
    offset: u32,
    count: u32,
    payload_len: usize,
    trace: Option<&str>,
) -> TaskFrameParts<'_> {
    frame_parts(id, flags, Some((offset, count)), payload_len, trace)
}

/// The bytes before `n` results in a [`Frame::Results`](crate::Frame::Results) message:
/// the header, then the variant and its array head. What [`encode`] gives for
/// `Frame::Results(rs)` is this followed by [`crate::encode_result_item`] of each of `rs`,
/// so a daemon can encode results as they end and send them at once as parts.
///
/// ```
/// use mirai_proto::{encode, encode_result_item, results_frame_prefix, Frame, Status, TaskId, TaskResult};
/// let rs = vec![TaskResult { id: TaskId(1), status: Status::Ok, last: false, payload: vec![7] }; 2];
/// let (prefix, len) = results_frame_prefix(2);
/// let mut bytes = prefix[..len].to_vec();
/// rs.iter().for_each(|r| encode_result_item(r, &mut bytes));
/// assert_eq!(bytes, encode(&Frame::Results(rs)));
/// ```
pub fn results_frame_prefix(n: usize) -> ([u8; RESULTS_PREFIX_MAX], usize) {
    const TEXT: u8 = 3;
    const ARRAY: u8 = 4;
    const MAP: u8 = 5;
    let mut prefix = [0u8; RESULTS_PREFIX_MAX];
    let mut at = 0;
    put(&mut prefix, &mut at, &MAGIC);
    put(&mut prefix, &mut at, &[PROTOCOL_VERSION]);
    cbor_head(&mut prefix, &mut at, MAP, 1);
    cbor_head(&mut prefix, &mut at, TEXT, 7);
    put(&mut prefix, &mut at, b"Results");
    cbor_head(&mut prefix, &mut at, ARRAY, n as u64);
    (prefix, at)
}

/// Longest [`results_frame_prefix`]: the header, a one-entry map, `"Results"` and a 9-byte
/// array head.
pub const RESULTS_PREFIX_MAX: usize = 4 + 1 + 8 + 9;

fn frame_parts(
    id: TaskId,
    flags: u8,
    units: Option<(u32, u32)>,
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
    let (tag, fields): (&[u8], u64) = match units {
        Some(_) => (b"Batch", 6),
        None => (b"Task", 4),
    };
    cbor_head(&mut prefix, &mut at, TEXT, tag.len() as u64);
    put(&mut prefix, &mut at, tag);
    cbor_head(&mut prefix, &mut at, MAP, fields);
    cbor_head(&mut prefix, &mut at, TEXT, 2);
    put(&mut prefix, &mut at, b"id");
    cbor_head(&mut prefix, &mut at, UINT, id.get());
    cbor_head(&mut prefix, &mut at, TEXT, 5);
    put(&mut prefix, &mut at, b"flags");
    cbor_head(&mut prefix, &mut at, UINT, u64::from(flags));
    if let Some((offset, count)) = units {
        cbor_head(&mut prefix, &mut at, TEXT, 6);
        put(&mut prefix, &mut at, b"offset");
        cbor_head(&mut prefix, &mut at, UINT, u64::from(offset));
        cbor_head(&mut prefix, &mut at, TEXT, 5);
        put(&mut prefix, &mut at, b"count");
        cbor_head(&mut prefix, &mut at, UINT, u64::from(count));
    }
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
        // Both bounded by their array lengths (72 and 15).
        prefix_len: at as u8,
        suffix,
        suffix_len: end as u8,
        payload_len,
        trace: trace.map_or(&[][..], str::as_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode, Frame, Task};

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
                let id = TaskId(id);
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
    fn batch_frame_parts_are_the_encoded_frame_around_the_payload() {
        let traces = [
            None,
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ];
        let units = [
            (0, 1),
            (23, 24),
            (255, 256),
            (65_535, 65_536),
            (u32::MAX, u32::MAX),
        ];
        for n in [0, 1, 24, 65_536] {
            let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
            for (k, &(offset, count)) in units.iter().enumerate() {
                let id = TaskId([1, 24, 65_536, u64::from(u32::MAX) + 1, u64::MAX][k]);
                for trace in traces {
                    let frame = Frame::Batch(crate::Batch {
                        id,
                        flags: k as u8,
                        offset,
                        count,
                        payload: payload.clone(),
                        trace: trace.map(String::from),
                    });
                    let parts = batch_frame_parts(id, k as u8, offset, count, n, trace);
                    let want = encode(&frame);
                    assert_eq!(parts.slices(&payload).concat(), want, "{offset}/{count}");
                    assert_eq!(parts.len(), want.len());
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
}
