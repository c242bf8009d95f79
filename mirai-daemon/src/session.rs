//! The daemon's side of the protocol as a pure state machine: bytes from the host in, what to
//! do about them out. No sockets, threads or clocks, so that the worker loop's handling of
//! every frame the host could send (or garble) can be driven directly by tests and by the
//! fuzzer (`mirai-daemon/fuzz`, target `session`).
//!
//! The worker loop ([`crate::run`]) feeds each message it receives to [`Session::on_frame`]
//! and acts on the [`Step`]; it tells the session when it starts and finishes evaluating
//! ([`Session::next_pending`], [`Session::finish`]). What the session keeps:
//! - tasks that arrive while another one is evaluated (a host may queue several at a daemon,
//!   or pipeline one), served in arrival order;
//! - whether the current task was cancelled, or an exit was asked for.
//!
//! An early task never starts once the host asked for it back: a [`Frame::Withdraw`] or a
//! [`Frame::Cancel`] of a task still waiting removes it, and the session answers
//! [`Frame::Withdrawn`] ([`Step::Reply`]), which tells the host it was never evaluated. A
//! withdraw of the task being evaluated is ignored (its result follows). After a `last` result
//! nothing more starts: the tasks still waiting are dropped and reported by
//! [`Session::finish`], and each task that arrives afterwards is answered `Withdrawn` at once,
//! so the host can send them elsewhere.
//!
//! A [`Frame::Batch`] (consecutive elements of a `mirai_map` chunk) becomes one task per
//! element, under the element's own id and with an empty payload, queued in order like early
//! tasks: so each element starts, is cancelled, withdrawn or dropped at a `last` result like a
//! task of its own. The chunk's payload is kept once, in the session, until its last element
//! is done; the worker evaluates an element with [`Session::unit`] (its payload and index).
//! A batch sent with [`mirai_proto::flags::COALESCE`] lets the worker hold its elements'
//! results and send them together ([`Session::coalesced`]); the session itself is the same.
//!
//! Leaving on an idle limit (idletime, or walltime while idle) is a handshake too: the daemon
//! sends a *leave notice*, a result marked `last` with task id [`LEAVE_NOTICE_ID`] and no
//! payload, then serves every task that arrives until the host's ack ([`Phase::Leaving`]). A
//! task the host sent just before it saw the notice is thus answered instead of being lost
//! with the connection.
//!
//! Error texts never quote the host's bytes (a task payload must not end up in a log): a
//! [`mirai_proto::DecodeError`] carries none, so it is logged as it is.

use std::collections::VecDeque;
use std::sync::Arc;

use mirai_proto::{Batch, Frame, Init, Task, TaskId};

/// The task id of a leave notice (defined with the frames, in `mirai-proto`).
pub use mirai_proto::LEAVE_NOTICE_ID;

/// Where the daemon is in its conversation with the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Hello sent; the init bundle is expected.
    Handshake,
    /// Waiting for a task.
    Idle,
    /// Evaluating this task.
    Evaluating(TaskId),
    /// The last result (before exiting on a limit) was sent; waiting for the host's ack.
    AwaitingAck,
    /// The leave notice was sent; serving the tasks that still arrive until the host's ack.
    Leaving,
}

/// What a frame from the host asks of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// The handshake is complete: hand this bundle to the evaluator. The phase is now `Idle`.
    Init(Init),
    /// Evaluate this task now (it arrived while idle). The phase is now `Evaluating`.
    Start(Task),
    /// Nothing to do now: the frame was kept for later (an early task), applied to the
    /// session's flags (see [`Session::cancelled`]), or harmless and ignored.
    Continue,
    /// Send this frame to the host now (a [`Frame::Withdrawn`]); nothing else to do.
    Reply(Frame),
    /// Send these frames to the host now, in order (the elements of a batch that arrived
    /// after the last result, each given back).
    Replies(Vec<Frame>),
    /// The host told the daemon to exit.
    Exit,
    /// The host acknowledged the last result: the daemon may exit.
    Acked,
    /// The connection cannot be trusted any more (an undecodable frame): treat the host as
    /// gone. The text says why, for the log.
    Lost(String),
    /// The host broke the protocol where one particular frame was required (the handshake):
    /// the daemon cannot go on. The text says why.
    Fatal(String),
}

/// The state of one connection to a host. See the module docs.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    max_frame: usize,
    /// Tasks received during an evaluation, served next, in order.
    pending: VecDeque<Task>,
    /// The current evaluation was asked to stop.
    cancelled: bool,
    exit_requested: bool,
    /// The leave notice was sent: evaluations return to `Leaving`, not `Idle`.
    leaving: bool,
    /// The host acknowledged the leave notice (possibly during an evaluation).
    acked: bool,
    /// Tasks arriving while idle wait in `pending` instead of starting (see [`Session::hold`]).
    held: bool,
    /// The payloads of the batches whose elements are not all done yet.
    chunks: Vec<Chunk>,
    /// Batches received so far (names each chunk for [`Unit::chunk`]).
    batches: u64,
}

/// The payload of a batch, shared by its elements (see [`Session::unit`]).
#[derive(Debug)]
struct Chunk {
    /// The batch's number in this session.
    serial: u64,
    first: TaskId,
    offset: u32,
    count: u32,
    /// Its elements not yet done (finished or dropped).
    left: u32,
    /// Sent with [`mirai_proto::flags::COALESCE`]: its results may be held and sent together.
    coalesce: bool,
    payload: Arc<Vec<u8>>,
}

/// An element of a batch, as the worker evaluates it ([`Session::unit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The element's task id.
    pub id: TaskId,
    /// Its index among the payload's elements.
    pub index: u32,
    /// Which batch it came in (a number that grows with each batch the daemon receives), so
    /// that an evaluator may decode a payload once for all its elements.
    pub chunk: u64,
    /// The chunk: every element (the payload of the batch), shared with the session.
    pub payload: Arc<Vec<u8>>,
}

impl Session {
    /// A session that has just sent its hello. `max_frame` bounds the frames it decodes.
    pub fn new(max_frame: usize) -> Session {
        Session {
            phase: Phase::Handshake,
            max_frame,
            pending: VecDeque::new(),
            cancelled: false,
            exit_requested: false,
            leaving: false,
            acked: false,
            held: false,
            chunks: Vec::new(),
            batches: 0,
        }
    }

    /// The element task `id` stands for, if it is one (see the module docs): its chunk's
    /// payload and its index there.
    pub fn unit(&self, id: TaskId) -> Option<Unit> {
        self.chunks.iter().find_map(|c| {
            let k = id.get().checked_sub(c.first.get())?;
            (k < u64::from(c.count)).then(|| Unit {
                id,
                index: c.offset + k as u32,
                chunk: c.serial,
                payload: Arc::clone(&c.payload),
            })
        })
    }

    /// The batch (its [`Unit::chunk`]) of element task `id` if that batch is coalesced
    /// ([`mirai_proto::flags::COALESCE`]): the worker may hold its result while the next task
    /// waiting is an element of the same batch ([`Session::next_unit_chunk`]).
    pub fn coalesced(&self, id: TaskId) -> Option<u64> {
        self.chunks.iter().find_map(|c| {
            let k = id.get().checked_sub(c.first.get())?;
            (c.coalesce && k < u64::from(c.count)).then_some(c.serial)
        })
    }

    /// The batch of the next task waiting, if it is an element of one.
    pub fn next_unit_chunk(&self) -> Option<u64> {
        let t = self.pending.front()?;
        self.unit(t.id).map(|u| u.chunk)
    }

    /// Element task `id` is done (finished or dropped): its chunk goes with its last one.
    fn unit_done(&mut self, id: TaskId) {
        let Some(i) = self.chunks.iter().position(|c| {
            id.get()
                .checked_sub(c.first.get())
                .is_some_and(|k| k < u64::from(c.count))
        }) else {
            return;
        };
        let c = &mut self.chunks[i];
        c.left -= 1;
        if c.left == 0 {
            self.chunks.swap_remove(i);
        }
    }

    /// A batch's elements as tasks (see the module docs), its payload kept for them. An empty
    /// or overflowing batch gives none.
    fn expand(&mut self, b: Batch) -> Vec<Task> {
        let count = if b.id.get().checked_add(u64::from(b.count)).is_some()
            && b.offset.checked_add(b.count).is_some()
        {
            b.count
        } else {
            0
        };
        let tasks: Vec<Task> = (0..u64::from(count))
            .map(|k| Task {
                id: TaskId(b.id.get() + k),
                flags: b.flags,
                payload: Vec::new(),
                trace: b.trace.clone(),
            })
            .collect();
        if count > 0 {
            self.batches += 1;
            self.chunks.push(Chunk {
                serial: self.batches,
                first: b.id,
                offset: b.offset,
                count,
                left: count,
                coalesce: b.flags & mirai_proto::flags::COALESCE != 0,
                payload: Arc::new(b.payload),
            });
        }
        tasks
    }

    /// Tasks (a batch's elements) that arrived while idle or evaluating: queued, and the
    /// first started at once when idle with nothing waiting.
    fn arrive(&mut self, tasks: Vec<Task>) -> Step {
        let start = self.phase == Phase::Idle && self.pending.is_empty() && !self.held;
        self.pending.extend(tasks);
        if start {
            if let Some(t) = self.pending.pop_front() {
                self.begin(t.id);
                return Step::Start(t);
            }
        }
        Step::Continue
    }

    /// While `true`, a task that arrives while idle waits in the session ([`Step::Continue`],
    /// then [`Session::next_pending`]) instead of starting ([`Step::Start`]). The worker holds
    /// the session while it reads what came in during an evaluation that did not read the
    /// connection, so that a withdraw or cancel right behind a task is seen before it starts.
    pub fn hold(&mut self, held: bool) {
        self.held = held;
    }

    /// Where the conversation stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once the current evaluation has been cancelled (its cancel arrived during it, or
    /// while it waited to start).
    pub fn cancelled(&self) -> bool {
        self.cancelled
    }

    /// True once the host has told the daemon to exit.
    pub fn exit_requested(&self) -> bool {
        self.exit_requested
    }

    /// True if the next task waiting is an element of a batch (see [`Session::unit`]).
    pub fn next_is_unit(&self) -> bool {
        self.pending
            .front()
            .is_some_and(|t| self.unit(t.id).is_some())
    }

    /// Tasks received early and not started yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// True once the host has acknowledged the leave notice: with no task pending, the daemon
    /// may exit.
    pub fn acked(&self) -> bool {
        self.acked
    }

    /// While idle, the daemon decides to leave (an idle limit): it sends the leave notice and
    /// calls this. The phase becomes `Leaving`. False (and nothing changes) if not idle.
    pub fn leave(&mut self) -> bool {
        if self.phase != Phase::Idle {
            return false;
        }
        self.phase = Phase::Leaving;
        self.leaving = true;
        true
    }

    /// Handles one message from the host.
    pub fn on_frame(&mut self, bytes: &[u8]) -> Step {
        let frame = match mirai_proto::decode(bytes, self.max_frame) {
            Ok(f) => f,
            Err(e) => {
                let why = format!(
                    "undecodable frame of {} bytes from the host ({})",
                    bytes.len(),
                    e
                );
                return match self.phase {
                    Phase::Handshake => {
                        Step::Fatal(format!("expected an init frame after hello: {why}"))
                    }
                    _ => Step::Lost(why),
                };
            }
        };
        match self.phase {
            Phase::Handshake => match frame {
                Frame::Init(init) => {
                    self.phase = Phase::Idle;
                    Step::Init(init)
                }
                Frame::Exit => {
                    self.exit_requested = true;
                    Step::Exit
                }
                other => Step::Fatal(format!(
                    "expected an init frame after hello, got a {} frame",
                    other.kind()
                )),
            },
            Phase::Idle => match frame {
                Frame::Task(t) => {
                    // Early tasks are served first: `next_pending` before waiting.
                    if self.pending.is_empty() && !self.held {
                        self.begin(t.id);
                        Step::Start(t)
                    } else {
                        self.pending.push_back(t);
                        Step::Continue
                    }
                }
                Frame::Batch(b) => {
                    let tasks = self.expand(b);
                    self.arrive(tasks)
                }
                Frame::Cancel { id } | Frame::Withdraw { id } => self.give_back(id),
                // A stray ack: nothing to do.
                Frame::Ack => Step::Continue,
                Frame::Exit => {
                    self.exit_requested = true;
                    Step::Exit
                }
                other => {
                    log::warn!("mirai daemon: ignoring unexpected {} frame", other.kind());
                    Step::Continue
                }
            },
            Phase::Evaluating(current) => match frame {
                Frame::Cancel { id } if id == current => {
                    self.cancelled = true;
                    Step::Continue
                }
                // Started: it runs to its result.
                Frame::Withdraw { id } if id == current => Step::Continue,
                Frame::Cancel { id } | Frame::Withdraw { id } => self.give_back(id),
                Frame::Task(t) => {
                    self.pending.push_back(t);
                    Step::Continue
                }
                Frame::Batch(b) => {
                    let tasks = self.expand(b);
                    self.arrive(tasks)
                }
                Frame::Exit => {
                    self.exit_requested = true;
                    Step::Exit
                }
                Frame::Ack => {
                    // The ack of a leave notice, after the tasks sent before it: remembered.
                    self.acked |= self.leaving;
                    Step::Continue
                }
                other => {
                    log::warn!(
                        "mirai daemon: ignoring unexpected {} frame during task {current}",
                        other.kind()
                    );
                    Step::Continue
                }
            },
            Phase::Leaving => match frame {
                // Sent before the host saw the notice: served (see `next_pending`).
                Frame::Task(t) => {
                    self.pending.push_back(t);
                    Step::Continue
                }
                Frame::Batch(b) => {
                    let tasks = self.expand(b);
                    self.arrive(tasks)
                }
                Frame::Cancel { id } | Frame::Withdraw { id } => self.give_back(id),
                Frame::Ack => {
                    self.acked = true;
                    Step::Acked
                }
                Frame::Exit => {
                    self.exit_requested = true;
                    Step::Exit
                }
                _ => Step::Continue,
            },
            Phase::AwaitingAck => match frame {
                Frame::Ack => Step::Acked,
                Frame::Exit => {
                    self.exit_requested = true;
                    Step::Exit
                }
                // Sent before the host saw the last result: given back, never evaluated.
                Frame::Task(t) => {
                    log::debug!(
                        "mirai daemon: task {} arrived after the last result; given back",
                        t.id
                    );
                    Step::Reply(Frame::Withdrawn { id: t.id })
                }
                Frame::Batch(b) => {
                    log::debug!(
                        "mirai daemon: {} elements from task {} arrived after the last result; given back",
                        b.count,
                        b.id
                    );
                    let ids = (0..u64::from(b.count)).filter_map(|k| b.id.get().checked_add(k));
                    Step::Replies(ids.map(|id| Frame::Withdrawn { id: TaskId(id) }).collect())
                }
                _ => Step::Continue,
            },
        }
    }

    /// A cancel or withdraw of a task that is not being evaluated: if it waits in `pending`
    /// it is dropped unevaluated and the host is told; a task already answered (or unknown)
    /// is ignored.
    fn give_back(&mut self, id: TaskId) -> Step {
        match self.pending.iter().position(|t| t.id == id) {
            Some(i) => {
                self.pending.remove(i);
                self.unit_done(id);
                Step::Reply(Frame::Withdrawn { id })
            }
            None => Step::Continue,
        }
    }

    fn begin(&mut self, id: TaskId) {
        self.phase = Phase::Evaluating(id);
        self.cancelled = false;
    }

    /// While idle or leaving: the next task that arrived early, which starts now (the phase
    /// becomes `Evaluating`). `None` if there is none or the daemon is not idle or leaving.
    pub fn next_pending(&mut self) -> Option<Task> {
        if !matches!(self.phase, Phase::Idle | Phase::Leaving) {
            return None;
        }
        let t = self.pending.pop_front()?;
        self.begin(t.id);
        Some(t)
    }

    /// The current evaluation is over and its result is about to be sent (or not: the host is
    /// gone). `last`: it is the last result before a limit exit, so the daemon now waits for
    /// the ack. Returns the ids of the early tasks dropped unevaluated when leaving: the
    /// worker answers each with [`Frame::Withdrawn`] after the `last` result. After a leave
    /// notice the phase returns to `Leaving` (and `last` is ignored: every task that arrives
    /// before the ack is still served).
    pub fn finish(&mut self, last: bool) -> Vec<TaskId> {
        self.cancelled = false;
        if let Phase::Evaluating(id) = self.phase {
            self.unit_done(id);
        }
        if self.leaving {
            self.phase = Phase::Leaving;
            Vec::new()
        } else if last {
            self.phase = Phase::AwaitingAck;
            let ids: Vec<TaskId> = self.pending.drain(..).map(|t| t.id).collect();
            self.chunks.clear();
            ids
        } else {
            self.phase = Phase::Idle;
            Vec::new()
        }
    }

    /// Checks the session's own invariants; for tests and the fuzzer. Panics if one is broken.
    pub fn check_invariants(&self) {
        match self.phase {
            Phase::Handshake => assert!(self.pending.is_empty() && !self.cancelled),
            Phase::Idle | Phase::AwaitingAck => assert!(!self.cancelled && !self.leaving),
            Phase::Leaving => assert!(!self.cancelled && self.leaving),
            Phase::Evaluating(_) => {}
        }
        assert!(
            !self.acked || self.leaving,
            "an ack counted without a leave notice"
        );
        if self.phase == Phase::AwaitingAck {
            assert!(self.pending.is_empty());
        }
        // Every kept chunk has an element waiting or being evaluated, and no more.
        for c in &self.chunks {
            let waiting = self
                .pending
                .iter()
                .filter(|t| self.unit(t.id).is_some_and(|u| u.chunk == c.serial))
                .count();
            let current = match self.phase {
                Phase::Evaluating(id) => self.unit(id).is_some_and(|u| u.chunk == c.serial),
                _ => false,
            };
            assert!(c.left > 0, "a chunk kept with no element left");
            assert_eq!(
                c.left as usize,
                waiting + usize::from(current),
                "chunk elements out of step"
            );
        }
    }
}

#[cfg(test)]
mod tests;
