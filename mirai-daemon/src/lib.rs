//! The mirai worker loop.
//!
//! [`run`] dials a host, says hello, waits for its init bundle, then evaluates tasks one at a
//! time through an [`Evaluator`] and replies, until the host goes away or a limit is reached.
//! What "evaluate" means is the evaluator's business: R code in the R package, echo / sleep /
//! fail in the `mirai-daemon` binary used by tests and benchmarks.
//!
//! The loop runs on the calling thread and reads its own socket, so a task costs one wake-up.
//! A cancel that arrives while a task runs is seen through [`EvalControl`], which the evaluator
//! polls (R does so from its event loop); a host that disappears while a task runs is noticed by
//! a small watchdog thread that sleeps until the peer hangs up.
//!
//! ```no_run
//! use mirai_daemon::{run, DaemonConfig, EchoEvaluator};
//! let code = run(&DaemonConfig::new("tcp://127.0.0.1:5555"), &mut EchoEvaluator)?;
//! println!("daemon exited with code {}", code as i32);
//! # Ok::<(), mirai_daemon::DaemonError>(())
//! ```

use std::time::Duration;

pub use mirai_proto::{Init, Status, Task, TaskId};
pub use mirai_transport::Options as TransportOptions;

/// What the daemon does when its connection to the host drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoExit {
    /// `autoexit = TRUE`: exit at once when idle; when busy, allow 200 ms of grace, then
    /// terminate the process (SIGTERM to itself), even mid-task.
    #[default]
    Exit,
    /// `autoexit = NA`: finish the current task, then return [`ExitCode::Disconnected`].
    Finish,
    /// `autoexit = FALSE`: keep running and redial the same URL until a host appears.
    Stay,
}

/// Why the loop ended: the codes `daemon()` returns in R.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// 0: the connection ended.
    Disconnected = 0,
    /// 1: no task arrived within `idletime`.
    Idletime = 1,
    /// 2: `walltime` elapsed.
    Walltime = 2,
    /// 3: `maxtasks` tasks were evaluated.
    Maxtasks = 3,
}

/// How a daemon connects and when it stops.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The URL to dial.
    pub url: String,
    /// Transport settings (backend, maximum message size).
    pub transport: TransportOptions,
    /// False: the first dial fails at once if nobody listens. True: retry until someone does.
    pub asyncdial: bool,
    /// See [`AutoExit`].
    pub autoexit: AutoExit,
    /// Exit with code 1 after this long without a task.
    pub idletime: Option<Duration>,
    /// Exit with code 2 once this long has passed since start (checked when a task arrives,
    /// and while idle).
    pub walltime: Option<Duration>,
    /// Exit with code 3 after this many tasks.
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
    /// Called once with the host's init bundle, before the first task. An error ends the
    /// daemon with [`DaemonError::Init`].
    fn init(&mut self, init: &Init) -> Result<(), String> {
        let _ = init;
        Ok(())
    }

    /// Evaluates one task. `ctl` tells whether the host has asked to cancel it.
    fn evaluate(&mut self, task: Task, ctl: &mut EvalControl<'_>) -> Evaluation;
}

/// The evaluator's window on the connection while a task runs.
pub struct EvalControl<'a> {
    _p: std::marker::PhantomData<&'a ()>,
}

impl EvalControl<'_> {
    /// The task being evaluated.
    pub fn task_id(&self) -> TaskId {
        unimplemented!()
    }

    /// Checks, without blocking, whether a cancel for this task has arrived (reading any frames
    /// waiting on the connection and keeping tasks that arrive early for later). True once it has.
    pub fn poll_cancel(&mut self) -> bool {
        unimplemented!()
    }

    /// Blocks up to `timeout` for a cancel of this task; true if one arrived.
    pub fn wait_cancel(&mut self, timeout: Duration) -> bool {
        let _ = timeout;
        unimplemented!()
    }

    /// True if the host has gone or told the daemon to exit; the evaluator should stop soon.
    pub fn should_exit(&self) -> bool {
        unimplemented!()
    }

    /// A descriptor that becomes readable when a frame arrives, for event loops (R's input
    /// handlers). `None` on backends without one.
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        unimplemented!()
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
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

/// Runs the worker loop until the connection ends or a limit is reached.
pub fn run(config: &DaemonConfig, evaluator: &mut dyn Evaluator) -> Result<ExitCode, DaemonError> {
    let _ = (config, evaluator);
    unimplemented!()
}

/// Returns each task's payload unchanged.
pub struct EchoEvaluator;

impl Evaluator for EchoEvaluator {
    fn evaluate(&mut self, task: Task, _ctl: &mut EvalControl<'_>) -> Evaluation {
        Evaluation { status: Status::Ok, payload: task.payload }
    }
}
