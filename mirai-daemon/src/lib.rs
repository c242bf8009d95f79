//! The mirai worker loop.
//!
//! [`run`] dials a host, says hello, waits for its init bundle, then evaluates tasks one at a
//! time through an [`Evaluator`] and replies, until the host goes away or a limit is reached.
//! What "evaluate" means is the evaluator's business: R code in the R package, echo / sleep /
//! fail in the `mirai-daemon` binary used by tests and benchmarks ([`BuiltinEvaluator`],
//! [`cli_main`]).
//!
//! The loop runs on the calling thread and reads its own socket, so a task costs one wake-up.
//! A cancel that arrives while a task runs is seen through [`EvalControl`], which the evaluator
//! polls (R does so from its event loop); a host that disappears while a task runs is noticed by
//! a small watchdog thread that sleeps until the peer hangs up.
//!
//! This crate does not schedule, queue fairly or retry tasks: the host (`mirai-sched`,
//! `mirai-host`) does. It never looks inside a payload.
//!
//! ```no_run
//! use mirai_daemon::{run, DaemonConfig, EchoEvaluator};
//! let code = run(&DaemonConfig::new("tcp://127.0.0.1:5555"), &mut EchoEvaluator)?;
//! println!("daemon exited with code {}", code as i32);
//! # Ok::<(), mirai_daemon::DaemonError>(())
//! ```

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use mirai_transport::Connection;

mod builtin;
pub mod cli;
mod held;
pub mod session;
mod watchdog;
mod worker;

use session::{Session, Step};

pub use builtin::BuiltinEvaluator;
pub use cli::cli_main;
pub use mirai_proto::daemon_args::{AutoExit, DaemonArgs, ExitCode, FailureStatus};
pub use mirai_proto::{ErrorCode, Init, Status, Task, TaskId};
pub use mirai_transport::Options as TransportOptions;
pub use session::Unit;

/// How a daemon connects and when it stops.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DaemonConfig {
    /// The URL to dial.
    pub url: String,
    /// Transport settings (backend, maximum message size).
    pub transport: TransportOptions,
    /// False: the first dial fails at once if nobody listens. True: retry until someone does.
    pub asyncdial: bool,
    /// See [`AutoExit`].
    pub autoexit: AutoExit,
    /// Exit with code 1 after this long without a task. The daemon asks the host to let it go
    /// (a leave notice, see [`session`]) and answers any task that crosses the notice, so
    /// that no task is lost to the exit.
    pub idletime: Option<Duration>,
    /// Exit with code 2 once this long has passed since start: checked when a task finishes
    /// (its result is then marked `last`, and the host sends nothing more) and while idle
    /// (with a leave notice, as for `idletime`). A task is never interrupted by it.
    pub walltime: Option<Duration>,
    /// Exit with code 3 after this many tasks (the last one's result is marked `last`).
    pub maxtasks: Option<u64>,
}

impl DaemonConfig {
    /// Defaults for dialing `url`: synchronous dial, `autoexit = TRUE`, no limits.
    pub fn new(url: impl Into<String>) -> Self {
        DaemonConfig {
            url: url.into(),
            transport: TransportOptions::default(),
            asyncdial: false,
            autoexit: AutoExit::Exit,
            idletime: None,
            walltime: None,
            maxtasks: None,
        }
    }

    /// The configuration a command line asks for ([`DaemonArgs`], as the `mirai-daemon`
    /// binary reads it); what it leaves unset keeps the defaults of [`DaemonConfig::new`].
    pub fn from_args(args: &DaemonArgs) -> Self {
        use mirai_proto::daemon_args::Backend;
        let mut c = DaemonConfig::new(args.url.clone());
        if let Some(b) = args.backend {
            c.transport.backend = match b {
                Backend::Native => mirai_transport::Backend::Native,
                Backend::Nng => mirai_transport::Backend::Nng,
            };
        }
        c.asyncdial = args.asyncdial;
        c.autoexit = args.autoexit.unwrap_or_default();
        c.idletime = args.idletime;
        c.walltime = args.walltime;
        c.maxtasks = args.maxtasks;
        c
    }
}

/// The result of evaluating one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// How it ended.
    pub status: Status,
    /// The bytes to send back.
    pub payload: Vec<u8>,
}

/// Evaluates tasks. Implemented by the R bridge and by the test evaluators here.
pub trait Evaluator {
    /// Called with the host's init bundle before the first task (and again after each redial
    /// of an `autoexit = FALSE` daemon). An error ends the daemon with [`DaemonError::Init`].
    fn init(&mut self, init: &Init) -> Result<(), String> {
        let _ = init;
        Ok(())
    }

    /// Evaluates one task. `ctl` tells whether the host has asked to cancel it.
    fn evaluate(&mut self, task: Task, ctl: &mut EvalControl<'_>) -> Evaluation;

    /// Evaluates one element of a batch ([`mirai_proto::Batch`], a `mirai_map` chunk):
    /// element `unit.index` of the chunk `unit.payload`, as the task `task` (its id, flags
    /// and traceparent; its own payload is empty). Elements of one batch come one after the
    /// other, in order, with the same `unit.chunk`, so an evaluator may decode the chunk once.
    /// The default evaluates the whole chunk as the task's payload.
    fn evaluate_unit(&mut self, task: Task, unit: &Unit, ctl: &mut EvalControl<'_>) -> Evaluation {
        let task = Task {
            payload: unit.payload.to_vec(),
            ..task
        };
        self.evaluate(task, ctl)
    }
}

/// The evaluator's window on the connection while a task runs.
///
/// Reading frames here is the only way the daemon hears from the host during an evaluation, so
/// frames other than cancels are kept: tasks that arrive early (a host may queue several at a
/// daemon) are served after this one, in order.
pub struct EvalControl<'a> {
    conn: &'a Connection,
    task_id: TaskId,
    autoexit: AutoExit,
    /// What the host has said so far: early tasks, cancels, exit (see [`session`]).
    session: &'a mut Session,
    host_gone: bool,
}

impl<'a> EvalControl<'a> {
    pub(crate) fn new(
        conn: &'a Connection,
        task_id: TaskId,
        autoexit: AutoExit,
        session: &'a mut Session,
    ) -> Self {
        EvalControl {
            conn,
            task_id,
            autoexit,
            session,
            host_gone: false,
        }
    }

    pub(crate) fn exit_requested(&self) -> bool {
        self.session.exit_requested()
    }

    pub(crate) fn host_gone(&self) -> bool {
        self.host_gone
    }

    /// Whether the evaluation should be interrupted: a cancel for it, an exit instruction, or
    /// (with `autoexit = TRUE`) a host that went away, since nobody can receive the result and
    /// the daemon is about to terminate anyway.
    fn interrupt_wanted(&self) -> bool {
        self.session.cancelled()
            || self.session.exit_requested()
            || (self.host_gone && self.autoexit == AutoExit::Exit)
    }

    fn handle(&mut self, bytes: &[u8]) {
        match self.session.on_frame(bytes) {
            Step::Lost(why) | Step::Fatal(why) => {
                // Without a trustworthy frame stream the connection is useless: treat it as
                // gone (the loop then follows `autoexit`).
                log::warn!("mirai daemon: {why}; dropping connection");
                self.host_gone = true;
            }
            // An early task given back unstarted (withdrawn or cancelled): the host is told
            // at once, so that it can send it elsewhere.
            Step::Reply(frame) => {
                if let Err(e) = self.conn.send(&mirai_proto::encode(&frame)) {
                    self.note_recv_error(e);
                }
            }
            Step::Replies(frames) => {
                for frame in frames {
                    if let Err(e) = self.conn.send(&mirai_proto::encode(&frame)) {
                        self.note_recv_error(e);
                        break;
                    }
                }
            }
            // Cancel and exit are flags of the session; early tasks wait in it.
            _ => {}
        }
    }

    fn note_recv_error(&mut self, e: mirai_transport::Error) {
        if !matches!(e, mirai_transport::Error::Closed) {
            log::warn!(
                "mirai daemon: connection failed during task {}: {e}",
                self.task_id
            );
        }
        self.host_gone = true;
    }

    /// The task being evaluated.
    pub fn task_id(&self) -> TaskId {
        self.task_id
    }

    /// Checks, without blocking, whether a cancel for this task has arrived (reading any frames
    /// waiting on the connection and keeping tasks that arrive early for later). True once it has.
    ///
    /// An exit instruction counts as a cancel, and so does the host going away when
    /// `autoexit = TRUE` (the result could not be delivered).
    pub fn poll_cancel(&mut self) -> bool {
        while !self.host_gone && !self.interrupt_wanted() {
            match self.conn.try_recv() {
                Ok(Some(bytes)) => self.handle(&bytes),
                Ok(None) => break,
                Err(e) => self.note_recv_error(e),
            }
        }
        self.interrupt_wanted()
    }

    /// Blocks up to `timeout` for a cancel of this task; true if one arrived (or had already
    /// arrived). Counts exit instructions and lost hosts as [`EvalControl::poll_cancel`] does;
    /// otherwise, once the host is gone, it simply sleeps out the timeout.
    pub fn wait_cancel(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if self.interrupt_wanted() {
                return true;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if self.host_gone {
                // Nothing more can arrive; the evaluation just takes the time it asked for.
                match left {
                    Some(l) => std::thread::sleep(l),
                    None => loop {
                        std::thread::sleep(Duration::from_secs(3600))
                    },
                }
                return false;
            }
            if left == Some(Duration::ZERO) {
                return self.poll_cancel();
            }
            match self.conn.recv(left) {
                Ok(Some(bytes)) => self.handle(&bytes),
                Ok(None) => return self.poll_cancel(),
                Err(e) => self.note_recv_error(e),
            }
        }
    }

    /// True if the host has gone or told the daemon to exit; the evaluator should stop soon.
    /// A lost host counts only with `autoexit = TRUE`: with `NA` the task is finished first,
    /// and with `FALSE` the daemon redials after it.
    pub fn should_exit(&self) -> bool {
        self.session.exit_requested() || (self.host_gone && self.autoexit == AutoExit::Exit)
    }

    /// A descriptor that becomes readable when a frame arrives, for event loops (R's input
    /// handlers). `None` on backends without one.
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.conn.raw_fd()
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The synchronous first dial failed.
    #[error("{code} | {text}")]
    Dial {
        /// NNG-style error code, e.g. 6.
        code: i32,
        /// Its text, e.g. "Connection refused".
        text: &'static str,
        /// The transport error, naming the URL.
        #[source]
        source: mirai_transport::Error,
    },
    /// The host sent something that is not a valid frame at a point where one was required.
    #[error("protocol error from host: {0}")]
    Protocol(String),
    /// The evaluator refused the init bundle.
    #[error("daemon initialisation failed: {0}")]
    Init(String),
    /// The connection failed in a way the loop cannot recover from.
    #[error(transparent)]
    Transport(#[from] mirai_transport::Error),
}

impl DaemonError {
    pub(crate) fn dial(source: mirai_transport::Error) -> Self {
        let (code, text) = source.code();
        DaemonError::Dial { code, text, source }
    }

    /// The NNG-style code of a failed dial ([`DaemonError::Dial`]); `None` for the others.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            DaemonError::Dial { code, .. } => Some(ErrorCode::from_code(*code)),
            _ => None,
        }
    }
}

/// Runs the worker loop until the connection ends or a limit is reached.
///
/// Blocks the calling thread throughout (in R, the main thread). See the crate docs and
/// [`DaemonConfig`] for when it returns which [`ExitCode`].
///
/// With OpenTelemetry tracing on (see `mirai_trace`: the `OTEL_*` environment, decided here
/// once per process), each evaluation is a `daemon eval` span, child of the task's `mirai`
/// span through the traceparent in its frame, with an error status when the evaluation ended
/// in an error or interrupt; the spans are exported before this returns.
pub fn run(config: &DaemonConfig, evaluator: &mut dyn Evaluator) -> Result<ExitCode, DaemonError> {
    let tracing = mirai_trace::enabled();
    let r = worker::Worker::new(config, tracing).run(evaluator);
    if tracing {
        mirai_trace::flush();
    }
    r
}

/// Returns each task's payload unchanged.
pub struct EchoEvaluator;

impl Evaluator for EchoEvaluator {
    fn evaluate(&mut self, task: Task, _ctl: &mut EvalControl<'_>) -> Evaluation {
        Evaluation {
            status: Status::Ok,
            payload: task.payload,
        }
    }
}
