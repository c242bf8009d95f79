//! The loop behind [`crate::run`]: limits and the task/reply cycle; the connection's
//! lifecycle is in [`connect`].

mod connect;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mirai_proto::{Frame, TaskResult};

use crate::held::Held;
use crate::session::{Session, Step, LEAVE_NOTICE_ID};
use crate::{
    AutoExit, DaemonConfig, DaemonError, EvalControl, Evaluation, Evaluator, ExitCode, Status,
    Task, TaskId,
};
use connect::Link;

/// Result buffers that grew beyond this are released after sending, so that one huge result
/// does not pin its memory for the daemon's lifetime.
pub(crate) const KEEP_BUFFER: usize = 4 << 20;

/// After an evaluation at least this long, frames that arrived meanwhile are read before the
/// next task starts (see the loop in `Worker::run`).
const CATCH_UP_AFTER: Duration = Duration::from_millis(1);

/// How long a daemon leaving on an idle limit waits for the host to acknowledge its notice.
const LEAVE_ACK_WAIT: Duration = Duration::from_secs(10);

/// What waiting on the connection produced.
enum Next {
    Task(Task),
    Done(ExitCode),
    Lost,
}

/// Clears the busy flag however the evaluation ends (including by panic).
struct BusyGuard<'a>(&'a AtomicBool);

impl<'a> BusyGuard<'a> {
    fn set(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::SeqCst);
        BusyGuard(flag)
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

pub(crate) struct Worker<'c> {
    cfg: &'c DaemonConfig,
    start: Instant,
    /// When the daemon last became idle (handshake done or result sent).
    idle_since: Instant,
    tasks: u64,
    /// The protocol state of the current connection: early tasks, cancels, exit requests.
    session: Session,
    /// True while the evaluator runs; read by the watchdog.
    busy: Arc<AtomicBool>,
    out: Vec<u8>,
    /// Record a `daemon eval` span per task (the process traces; decided once in `run`).
    tracing: bool,
    /// The last evaluation was long: read what arrived before starting another task.
    catch_up: bool,
    /// Results of a coalesced batch not sent yet.
    held: Held,
}

impl<'c> Worker<'c> {
    pub(crate) fn new(cfg: &'c DaemonConfig, tracing: bool) -> Self {
        let now = Instant::now();
        Worker {
            cfg,
            start: now,
            idle_since: now,
            tasks: 0,
            session: Session::new(cfg.transport.max_message),
            busy: Arc::new(AtomicBool::new(false)),
            out: Vec::new(),
            tracing,
            catch_up: false,
            held: Held::default(),
        }
    }

    fn max_frame(&self) -> usize {
        self.cfg.transport.max_message
    }

    fn walltime_elapsed(&self) -> bool {
        self.cfg.walltime.is_some_and(|w| self.start.elapsed() >= w)
    }

    /// The earlier of the idle and wall deadlines, if any.
    fn deadline(&self) -> Option<Instant> {
        let idle = self
            .cfg
            .idletime
            .and_then(|d| self.idle_since.checked_add(d));
        let wall = self.cfg.walltime.and_then(|d| self.start.checked_add(d));
        match (idle, wall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The limit that has been reached while idle, if any (walltime first: it is the one that
    /// can never be reset).
    fn idle_limit(&self) -> Option<ExitCode> {
        if self.walltime_elapsed() {
            Some(ExitCode::Walltime)
        } else if self
            .cfg
            .idletime
            .is_some_and(|d| self.idle_since.elapsed() >= d)
        {
            Some(ExitCode::Idletime)
        } else {
            None
        }
    }

    pub(crate) fn run(mut self, ev: &mut dyn Evaluator) -> Result<ExitCode, DaemonError> {
        let mut link = match self.connect(true, ev)? {
            Ok(link) => link,
            Err(code) => return Ok(code),
        };
        self.idle_since = Instant::now();
        loop {
            // The elements of a batch follow one another without this read: a batch is sized
            // to about a millisecond of work, and a long element sets `catch_up` anyway.
            let early = self.session.pending() > 0 && !self.session.next_is_unit();
            if early || self.catch_up {
                // A withdraw or cancel of the next task may be waiting on the socket behind it
                // (an evaluator that never polls reads nothing while it runs): honour it
                // before starting that task. Skipped after a short evaluation with nothing
                // waiting: the host only asks back tasks queued behind long ones, and a
                // request that comes too late is harmless (the task completes here).
                self.catch_up = false;
                self.session.hold(true);
                let read = self.read_ready(&link);
                self.session.hold(false);
                match read {
                    Ok(()) => {}
                    Err(Next::Done(code)) => return Ok(code),
                    Err(_) => match self.reconnect(&mut link, ev)? {
                        Some(code) => return Ok(code),
                        None => continue,
                    },
                }
            }
            let task = match self.session.next_pending() {
                Some(t) => t,
                None => match self.next_task(&link) {
                    Next::Task(t) => t,
                    Next::Done(code @ (ExitCode::Idletime | ExitCode::Walltime)) => {
                        return Ok(self.leave(&link, ev, code))
                    }
                    Next::Done(code) => return Ok(code),
                    Next::Lost => match self.reconnect(&mut link, ev)? {
                        Some(code) => return Ok(code),
                        None => continue,
                    },
                },
            };

            self.tasks += 1;
            let id = task.id;
            let coalesced = self.session.coalesced(id);
            if coalesced.is_some() {
                self.held.begin(id, &link.conn);
            }
            let began = Instant::now();
            let (evaluation, exit_requested, host_gone) = self.evaluate(&link, ev, task);
            self.catch_up = began.elapsed() >= CATCH_UP_AFTER;
            // Limits are checked once the task is done, so that its result carries `last` and
            // the host sends nothing more: checking walltime before the evaluation would let
            // it expire during the task, and the daemon then leave while the host dispatches.
            let last = if self.cfg.maxtasks.is_some_and(|m| self.tasks >= m) {
                Some(ExitCode::Maxtasks)
            } else if self.walltime_elapsed() {
                Some(ExitCode::Walltime)
            } else {
                None
            };
            let unevaluated = self.session.finish(last.is_some());
            if !unevaluated.is_empty() {
                log::debug!(
                    "mirai daemon: leaving with {} queued task(s) not evaluated; giving them back",
                    unevaluated.len()
                );
            }

            // Idle time counts from the end of the last evaluation, answered or not.
            self.idle_since = Instant::now();
            if exit_requested {
                log::debug!("mirai daemon: exit instruction received during task {id}");
                return Ok(ExitCode::Disconnected);
            }
            let sent = !host_gone
                && match coalesced {
                    Some(chunk) if last.is_none() => {
                        let due = self.held.push(id, evaluation, began);
                        // The batch goes on with its next element, or its results go now.
                        let next = self.session.next_unit_chunk() == Some(chunk);
                        (next && !due) || self.flush_held(&link)
                    }
                    _ => {
                        self.flush_held(&link)
                            && self.send_result(&link, id, evaluation, last.is_some())
                    }
                };
            if !sent {
                // The host cannot receive this result. A daemon at its limit leaves now rather
                // than redial only to exit.
                if let (Some(code), AutoExit::Stay) = (last, self.cfg.autoexit) {
                    return Ok(code);
                }
                match self.reconnect(&mut link, ev)? {
                    Some(code) => return Ok(code),
                    None => continue,
                }
            }
            if let Some(code) = last {
                // After the `last` result, so that a host that does not know these frames
                // has its result first.
                for id in unevaluated {
                    if !self.send_frame(&link, &Frame::Withdrawn { id }) {
                        break;
                    }
                }
                self.await_ack(&link);
                return Ok(code);
            }
        }
    }

    /// Evaluates one task; returns the evaluation, and whether an exit instruction came or
    /// the host went away meanwhile.
    fn evaluate(
        &mut self,
        link: &Link,
        ev: &mut dyn Evaluator,
        task: Task,
    ) -> (Evaluation, bool, bool) {
        let mut span = if self.tracing {
            mirai_trace::daemon_eval(task.id.get(), task.trace.as_deref())
        } else {
            mirai_trace::Span::none()
        };
        let _busy = BusyGuard::set(&self.busy);
        let unit = self.session.unit(task.id);
        let mut ctl = EvalControl::new(&link.conn, task.id, self.cfg.autoexit, &mut self.session);
        let evaluation = match unit {
            Some(unit) => ev.evaluate_unit(task, &unit, &mut ctl),
            None => ev.evaluate(task, &mut ctl),
        };
        // Ended before the result is sent: the span is the evaluation, not the reply.
        if span.is_recording() {
            span.set_outcome(evaluation.status);
            span.end();
        }
        (evaluation, ctl.exit_requested(), ctl.host_gone())
    }

    /// Sends a result; false if the connection failed.
    fn send_result(&mut self, link: &Link, id: TaskId, evaluation: Evaluation, last: bool) -> bool {
        self.out.clear();
        let frame = Frame::Result(TaskResult {
            id,
            status: evaluation.status,
            last,
            payload: evaluation.payload,
        });
        mirai_proto::encode_into(&frame, &mut self.out);
        drop(frame);
        let res = link.conn.send(&self.out);
        if self.out.capacity() > KEEP_BUFFER {
            self.out = Vec::new();
        }
        match res {
            Ok(()) => true,
            Err(e) => {
                log::warn!("mirai daemon: cannot send the result of task {id}: {e}");
                false
            }
        }
    }

    /// Sends the held results, if any; false if the connection failed.
    fn flush_held(&mut self, link: &Link) -> bool {
        self.held.flush(&link.conn)
    }

    /// Sends a small frame (a `Withdrawn`), after the held results; false if the connection
    /// failed.
    fn send_frame(&mut self, link: &Link, frame: &Frame) -> bool {
        if !self.flush_held(link) {
            return false;
        }
        match link.conn.send(&mirai_proto::encode(frame)) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("mirai daemon: cannot send a {} frame: {e}", frame.kind());
                false
            }
        }
    }

    /// Reads, without waiting, every frame already on the connection (between two tasks).
    /// `Err(Next::Done)`: told to exit; `Err(Next::Lost)`: the connection failed.
    fn read_ready(&mut self, link: &Link) -> Result<(), Next> {
        loop {
            match link.conn.try_recv() {
                Ok(Some(bytes)) => match self.session.on_frame(&bytes) {
                    Step::Reply(frame) => {
                        if !self.send_frame(link, &frame) {
                            return Err(Next::Lost);
                        }
                    }
                    Step::Replies(frames) => {
                        if !frames.iter().all(|f| self.send_frame(link, f)) {
                            return Err(Next::Lost);
                        }
                    }
                    Step::Exit => return Err(Next::Done(ExitCode::Disconnected)),
                    Step::Lost(why) | Step::Fatal(why) => {
                        log::warn!("mirai daemon: {why}; dropping connection");
                        return Err(Next::Lost);
                    }
                    Step::Continue | Step::Acked | Step::Init(_) | Step::Start(_) => {}
                },
                Ok(None) => return Ok(()),
                Err(e) => {
                    if !matches!(e, mirai_transport::Error::Closed) {
                        log::warn!("mirai daemon: connection failed: {e}");
                    }
                    return Err(Next::Lost);
                }
            }
        }
    }

    /// Leaves on an idle limit without losing a task that may already be on its way: sends
    /// the leave notice, then evaluates and answers whatever arrives until the host's ack
    /// (see [`crate::session`]). Gives up waiting after [`LEAVE_ACK_WAIT`] (a host that does
    /// not know the notice never acks it).
    fn leave(&mut self, link: &Link, ev: &mut dyn Evaluator, code: ExitCode) -> ExitCode {
        log::debug!("mirai daemon: idle limit reached ({code:?}); asking the host to leave");
        self.session.leave();
        let notice = Evaluation {
            status: Status::Ok,
            payload: Vec::new(),
        };
        if !self.send_result(link, LEAVE_NOTICE_ID, notice, true) {
            return code;
        }
        let give_up = Instant::now() + LEAVE_ACK_WAIT;
        loop {
            if let Some(task) = self.session.next_pending() {
                self.tasks += 1;
                let id = task.id;
                let (evaluation, exit_requested, host_gone) = self.evaluate(link, ev, task);
                self.session.finish(true);
                if exit_requested {
                    return ExitCode::Disconnected;
                }
                if host_gone || !self.send_result(link, id, evaluation, true) {
                    return code;
                }
                continue;
            }
            if self.session.acked() || self.session.exit_requested() {
                return code;
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!("mirai daemon: the host did not acknowledge the leave notice within {LEAVE_ACK_WAIT:?}; leaving");
                return code;
            }
            match link.conn.recv(Some(left)) {
                Ok(Some(bytes)) => match self.session.on_frame(&bytes) {
                    Step::Lost(why) | Step::Fatal(why) => {
                        log::warn!("mirai daemon: {why} while leaving");
                        return code;
                    }
                    Step::Reply(frame) if !self.send_frame(link, &frame) => return code,
                    Step::Replies(frames) if !frames.iter().all(|f| self.send_frame(link, f)) => {
                        return code
                    }
                    _ => {}
                },
                Ok(None) => {}
                Err(_) => return code,
            }
        }
    }

    /// Waits for the next task while idle, up to the idle/wall deadline.
    fn next_task(&mut self, link: &Link) -> Next {
        // Nothing is held while the daemon waits (the rest of a batch may have been cancelled).
        if !self.flush_held(link) {
            return Next::Lost;
        }
        loop {
            let timeout = self
                .deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            match link.conn.recv(timeout) {
                Ok(Some(bytes)) => match self.session.on_frame(&bytes) {
                    Step::Start(t) => return Next::Task(t),
                    Step::Exit => return Next::Done(ExitCode::Disconnected),
                    Step::Lost(why) | Step::Fatal(why) => {
                        log::warn!("mirai daemon: {why}; dropping connection");
                        return Next::Lost;
                    }
                    // A cancel for a task already answered, a stray ack, an unexpected kind.
                    Step::Reply(frame) => {
                        if !self.send_frame(link, &frame) {
                            return Next::Lost;
                        }
                    }
                    Step::Replies(frames) => {
                        if !frames.iter().all(|f| self.send_frame(link, f)) {
                            return Next::Lost;
                        }
                    }
                    Step::Continue | Step::Acked | Step::Init(_) => {}
                },
                Ok(None) => {
                    if let Some(code) = self.idle_limit() {
                        return Next::Done(code);
                    }
                }
                Err(e) => {
                    if !matches!(e, mirai_transport::Error::Closed) {
                        log::warn!("mirai daemon: connection failed: {e}");
                    }
                    return Next::Lost;
                }
            }
        }
    }

    /// After the last result: wait until the host acknowledges it or closes the connection, so
    /// that the result is known to be delivered and no further task is handed to this daemon.
    fn await_ack(&mut self, link: &Link) {
        loop {
            match link.conn.recv(None) {
                Ok(Some(bytes)) => match self.session.on_frame(&bytes) {
                    Step::Acked | Step::Exit => return,
                    Step::Lost(why) | Step::Fatal(why) => {
                        log::warn!("mirai daemon: {why} while awaiting ack");
                        return;
                    }
                    // A task that crossed the last result, given back.
                    Step::Reply(frame) => {
                        if !self.send_frame(link, &frame) {
                            return;
                        }
                    }
                    Step::Replies(frames) => {
                        if !frames.iter().all(|f| self.send_frame(link, f)) {
                            return;
                        }
                    }
                    Step::Continue | Step::Start(_) | Step::Init(_) => {}
                },
                Ok(None) => {}
                Err(_) => return,
            }
        }
    }
}
