//! Submitting tasks to a [`Host`] (one by one, as a map, or as an `everywhere` round) and
//! cancelling them: tasks are encoded outside the state lock, then handed to the scheduler
//! under it, and a task for an idle daemon is sent from the submitting thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mirai_proto::flags;
use mirai_sched::{ErrorCode, TaskId, TaskKind, TaskSpec};
use mirai_trace::{Span, TraceParent};

use crate::body::TaskBody;
use crate::deferred::{Deferred, HostTrace};
use crate::handle::{Outcome, Slot, TaskHandle};
use crate::state::Notes;
#[cfg(doc)]
use crate::HostConfig;
use crate::{Host, HostError, SubmitOptions};

/// Process-wide task ids: unique and increasing across every host of the process.
pub(crate) static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

impl Host {
    /// written to it from this thread.
    pub fn submit(&self, payload: Vec<u8>, opts: SubmitOptions) -> Result<TaskHandle, HostError> {
        let deadline = opts.timeout.and_then(|t| Instant::now().checked_add(t));
        let retries = opts.retries.unwrap_or(self.shared().retries);
        let task = match &self.shared().trace {
            Some(t) if opts.trace.is_none() => traced_task(t, payload, opts.parent),
            _ => encode_task(payload, 0, opts.trace),
        };
        let mut handles =
            self.submit_encoded(vec![task], deadline, retries, |_| TaskKind::Normal)?;
        Ok(handles.remove(0))
    }

    /// Submits one task per payload, in order, under one lock: the `mirai_map` path. Tasks get
    /// the profile's default retry budget ([`HostConfig::retries`]).
    ///
    /// When tracing, the submission is a `mirai_map` span, the parent of the tasks' `mirai`
    /// spans.
    pub fn map(
        &self,
        payloads: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<Vec<TaskHandle>, HostError> {
        let Some(t) = &self.shared().trace else {
            let tasks: Vec<EncodedTask> = payloads
                .into_iter()
                .map(|p| encode_task(p, 0, None))
                .collect();
            return self.submit_encoded(tasks, None, self.shared().retries, |_| TaskKind::Normal);
        };
        let mut span = mirai_trace::mirai_map(None, t.set);
        let parent = span.context();
        let tasks: Vec<EncodedTask> = payloads
            .into_iter()
            .map(|p| traced_task(t, p, parent))
            .collect();
        span.set_attribute("mirai.tasks", tasks.len() as i64);
        let r = self.submit_encoded(tasks, None, self.shared().retries, |_| TaskKind::Normal);
        if let Err(e) = &r {
            span.set_error(e.to_string());
        }
        r
    }

    /// Submits the `n` elements of a `mirai_map` chunk, whose `payload` holds them all, as `n`
    /// tasks with consecutive ids (units, [`mirai_sched::Scheduler::submit_unit`]): one
    /// handle per element, in order, each resolved by its own element's result. The
    /// scheduler sends consecutive elements to a daemon together when they are quick, one at
    /// a time when they are slow (see `mirai_sched`'s units), and each is counted, cancelled,
    /// lost and retried ([`HostConfig::retries`] unless `opts.retries`) as a task of its own.
    /// `opts.timeout` applies to each element. Tracing: each element gets its `mirai` span
    /// (child of `opts.parent`); the frame carries the first one's traceparent.
    pub fn submit_units(
        &self,
        payload: Vec<u8>,
        n: u32,
        opts: SubmitOptions,
    ) -> Result<Vec<TaskHandle>, HostError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let deadline = opts.timeout.and_then(|t| Instant::now().checked_add(t));
        let retries = opts.retries.unwrap_or(self.shared().retries);
        let first = NEXT_TASK_ID.fetch_add(u64::from(n), Ordering::Relaxed);
        let mut spans: Vec<Span> = match &self.shared().trace {
            Some(t) if opts.trace.is_none() => (0..u64::from(n))
                .map(|i| mirai_trace::mirai(first + i, opts.parent, t.set))
                .collect(),
            _ => Vec::new(),
        };
        let trace = match spans.first() {
            Some(s) => s.context().map(|c| c.to_string()),
            None => opts.trace,
        };
        let body = TaskBody::new(0, trace.as_deref(), &payload);
        // Each element's share of the bytes, for the memory budget.
        let len = payload.len() as u64;
        drop(payload);
        let share = |i: u64| len / u64::from(n) + u64::from(i < len % u64::from(n));
        let shared = self.shared();
        let mut handles = Vec::with_capacity(n as usize);
        let mut d = Deferred::default();
        {
            let mut st = shared.state();
            if st.closed {
                drop(st);
                for mut span in spans {
                    span.set_error(HostError::Closed.to_string());
                }
                return Err(HostError::Closed);
            }
            if st.session.timed() {
                st.session.set_time(Instant::now());
            }
            spans.reverse();
            for i in 0..n {
                let id = TaskId(first + u64::from(i));
                let slot = Slot::new(spans.pop().unwrap_or_else(Span::none));
                st.slots.insert(id, slot.clone());
                let spec = TaskSpec::new()
                    .with_deadline(deadline)
                    .with_retries(retries);
                st.session
                    .sched_mut()
                    .submit_unit(id, body.clone(), share(u64::from(i)), spec, i);
                handles.push(TaskHandle {
                    id,
                    slot,
                    host: Arc::downgrade(&self.inner.shared),
                });
            }
            let mut notes = Notes::default();
            shared.carry_out(&mut st, &mut d, &mut notes, None);
            shared.notify(&st, &notes);
        }
        d.run(shared);
        if deadline.is_some() {
            if let Some(l) = shared.state().listener.clone() {
                l.wake();
            }
        }
        Ok(handles)
    }

    /// Opens a `mirai_map` span, for a caller that submits a map's elements one by one: give
    /// its [`Span::context`](mirai_trace::Span::context) as [`SubmitOptions::parent`] of each
    /// element, and drop the span (or call `end`) once they are submitted. `parent` is the
    /// span's own parent, if any. The empty span when tracing is off. ([`Host::map`] does all
    /// of this itself.)
    pub fn map_span(&self, parent: Option<TraceParent>) -> mirai_trace::Span {
        match &self.shared().trace {
            Some(t) => mirai_trace::mirai_map(parent, t.set),
            None => Span::none(),
        }
    }

    /// Submits an `everywhere` round: `max(min, connections)` copies of `payload`, each to a
    /// distinct daemon, the round blocking later tasks until all are dispatched. With no
    /// daemon connected and `min = 0` the round is empty.
    pub fn everywhere(&self, payload: Vec<u8>, min: usize) -> Result<Vec<TaskHandle>, HostError> {
        let connections = self.shared().state().session.sched().counters().connections;
        let k = (min as u64).max(connections) as usize;
        if k == 0 {
            return Ok(Vec::new());
        }
        // One body for every copy (the frames differ only in their ids). Ids are taken in
        // order, so the round's last task has the highest id.
        let body = TaskBody::new(flags::EVERYWHERE, None, &payload);
        let payload_len = payload.len() as u64;
        drop(payload);
        let tasks: Vec<EncodedTask> = (0..k)
            .map(|_| EncodedTask {
                id: TaskId(NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed)),
                frame: body.clone(),
                payload_len,
                span: Span::none(),
            })
            .collect();
        self.submit_encoded(tasks, None, 0, |i| TaskKind::Everywhere {
            closes_round: i + 1 == k,
        })
    }

    /// Hands encoded tasks to the scheduler in order, under one lock, and carries out what it
    /// asks (sending to idle daemons from this thread).
    pub(crate) fn submit_encoded(
        &self,
        tasks: Vec<EncodedTask>,
        deadline: Option<Instant>,
        retries: u32,
        kind: impl Fn(usize) -> TaskKind,
    ) -> Result<Vec<TaskHandle>, HostError> {
        let shared = self.shared();
        let mut handles = Vec::with_capacity(tasks.len());
        let mut d = Deferred::default();
        let wake = {
            let mut st = shared.state();
            if st.closed {
                drop(st);
                for t in tasks {
                    let mut span = t.span;
                    span.set_error(HostError::Closed.to_string());
                }
                return Err(HostError::Closed);
            }
            if st.session.timed() {
                // Dates the dispatches (task times, for pipelining).
                st.session.set_time(Instant::now());
            }
            for (i, t) in tasks.into_iter().enumerate() {
                let slot = Slot::new(t.span);
                st.slots.insert(t.id, slot.clone());
                let spec = TaskSpec::new()
                    .with_kind(kind(i))
                    .with_deadline(deadline)
                    .with_retries(retries);
                st.session
                    .sched_mut()
                    .submit_with(t.id, t.frame, t.payload_len, spec);
                handles.push(TaskHandle {
                    id: t.id,
                    slot,
                    host: Arc::downgrade(&self.inner.shared),
                });
            }
            let mut notes = Notes::default();
            shared.carry_out(&mut st, &mut d, &mut notes, None);
            shared.notify(&st, &notes);
            // The dispatcher must recompute its timer for the new deadline.
            deadline.and_then(|_| st.listener.clone())
        };
        d.run(shared);
        if let Some(l) = wake {
            l.wake();
        }
        Ok(handles)
    }

    /// Cancels a task: its handle resolves with 20 at once unless already resolved. Returns
    /// what the scheduler returned (true if it still held the task). A handle of another host
    /// is left alone (false).
    pub fn cancel(&self, handle: &TaskHandle) -> bool {
        let shared = self.shared();
        let mut d = Deferred::default();
        let held = {
            let mut st = shared.state();
            let mine = st
                .slots
                .get(&handle.id)
                .is_some_and(|s| Arc::ptr_eq(s, &handle.slot));
            if !mine {
                return false;
            }
            let held = st.session.sched_mut().cancel(handle.id);
            let mut notes = Notes {
                admit: held,
                ..Notes::default()
            };
            shared.carry_out(&mut st, &mut d, &mut notes, None);
            shared.resolve(
                &mut st,
                handle.id,
                Outcome::Error(ErrorCode::CANCELED),
                &mut d,
                &mut notes,
            );
            shared.notify(&st, &notes);
            held
        };
        d.run(shared);
        held
    }
}

/// A task made ready outside the lock.
pub(crate) struct EncodedTask {
    pub(crate) id: TaskId,
    pub(crate) frame: TaskBody,
    pub(crate) payload_len: u64,
    /// Its `mirai` span (empty when not tracing).
    pub(crate) span: Span,
}

pub(crate) fn encode_task(payload: Vec<u8>, flags: u8, trace: Option<String>) -> EncodedTask {
    let id = NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed);
    encode_task_with(TaskId(id), payload, flags, trace, Span::none())
}

/// A task with its `mirai` span, whose traceparent goes in the frame.
pub(crate) fn traced_task(
    t: &HostTrace,
    payload: Vec<u8>,
    parent: Option<TraceParent>,
) -> EncodedTask {
    let id = NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed);
    let span = mirai_trace::mirai(id, parent, t.set);
    let trace = span.context().map(|c| c.to_string());
    encode_task_with(TaskId(id), payload, 0, trace, span)
}

pub(crate) fn encode_task_with(
    id: TaskId,
    payload: Vec<u8>,
    flags: u8,
    trace: Option<String>,
    span: Span,
) -> EncodedTask {
    let payload_len = payload.len() as u64;
    let frame = TaskBody::new(flags, trace.as_deref(), &payload);
    EncodedTask {
        id,
        frame,
        payload_len,
        span,
    }
}
