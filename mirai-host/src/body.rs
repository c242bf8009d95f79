//! The bytes a task's frame needs, kept from submission to sending.

use std::sync::Arc;

use mirai_proto::TaskId;
use mirai_transport::{Listener, PeerId};

/// A task as the host keeps it until sent: what its frame needs beyond the task id, in one
/// allocation of exactly its length, shared so that a retryable or pipelined task is kept for
/// a possible resend without copying its payload. The frame's CBOR keys and tags (about 40
/// bytes a task) are not kept: they are made at send time (`mirai_proto::task_frame_parts`)
/// and written with the payload in one vectored write.
///
/// Layout: `flags`, then `0` (no traceparent) or `1` and the traceparent's length (8 bytes,
/// little-endian) and bytes, then the payload to the end.
#[derive(Clone)]
pub(crate) struct TaskBody(pub(crate) Arc<[u8]>);

impl TaskBody {
    pub(crate) fn new(flags: u8, trace: Option<&str>, payload: &[u8]) -> TaskBody {
        let head = match trace {
            Some(t) => 2 + 8 + t.len(),
            None => 2,
        };
        // An exact-size iterator collects into one allocation of exactly this length; the
        // zeros are then overwritten (cheaper than the payload copy, and safe code).
        let mut body: Arc<[u8]> = std::iter::repeat_n(0u8, head + payload.len()).collect();
        let buf = Arc::get_mut(&mut body).expect("a freshly built Arc has no other owner");
        buf[0] = flags;
        if let Some(t) = trace {
            buf[1] = 1;
            buf[2..10].copy_from_slice(&(t.len() as u64).to_le_bytes());
            buf[10..head].copy_from_slice(t.as_bytes());
        }
        buf[head..].copy_from_slice(payload);
        TaskBody(body)
    }

    /// Where the payload starts.
    pub(crate) fn head(&self) -> usize {
        match self.0[1] {
            0 => 2,
            _ => 10 + self.trace_len(),
        }
    }

    pub(crate) fn trace_len(&self) -> usize {
        let mut n = [0u8; 8];
        n.copy_from_slice(&self.0[2..10]);
        // Written from a `str` length in `new`: it fits.
        u64::from_le_bytes(n) as usize
    }

    pub(crate) fn flags(&self) -> u8 {
        self.0[0]
    }

    pub(crate) fn trace(&self) -> Option<&str> {
        if self.0[1] == 0 {
            return None;
        }
        // Written from a `str` in `new`: valid UTF-8 (checked again rather than trusted).
        std::str::from_utf8(&self.0[10..10 + self.trace_len()]).ok()
    }

    pub(crate) fn payload(&self) -> &[u8] {
        &self.0[self.head()..]
    }

    /// Sends task `id`'s frame to `peer`: the same bytes as `mirai_proto::encode` of the
    /// task, written without assembling them.
    pub(crate) fn send(
        &self,
        listener: &Listener,
        peer: PeerId,
        id: TaskId,
    ) -> Result<(), mirai_transport::Error> {
        let payload = self.payload();
        let parts = mirai_proto::task_frame_parts(id, self.flags(), payload.len(), self.trace());
        listener.send_parts(peer, &parts.slices(payload))
    }

    /// Sends a batch frame of units `id ..` (`count` of them, from element `offset` of this
    /// chunk) to `peer`, written the same way; `coalesce` sets [`mirai_proto::flags::COALESCE`].
    pub(crate) fn send_batch(
        &self,
        listener: &Listener,
        peer: PeerId,
        id: TaskId,
        offset: u32,
        count: u32,
        coalesce: bool,
    ) -> Result<(), mirai_transport::Error> {
        let payload = self.payload();
        let coalesce = if coalesce {
            mirai_proto::flags::COALESCE
        } else {
            0
        };
        let parts = mirai_proto::batch_frame_parts(
            id,
            self.flags() | coalesce,
            offset,
            count,
            payload.len(),
            self.trace(),
        );
        listener.send_parts(peer, &parts.slices(payload))
    }
}
