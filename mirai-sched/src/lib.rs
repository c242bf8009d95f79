//! The mirai dispatcher as a deterministic state machine, in the style of `quinn-proto`.
//!
//! [`Scheduler`] holds the FIFO queue of tasks and the state of every daemon. Its methods take
//! events (a daemon connected or said hello, a task was submitted or cancelled, a result came
//! back, time passed) and queue [`Action`]s that the caller drains with
//! [`Scheduler::poll_action`] and carries out (send a frame, resolve a handle).
//!
//! It does no I/O, starts no threads and never reads a clock: time is whatever `Instant` the
//! caller hands in. Payloads are an opaque type parameter `P` that it only moves around. So it
//! can be driven by any transport, and tested exhaustively with random event sequences. It is
//! not a transport, does not encode frames and does not own task handles: the caller maps
//! [`TaskId`]s and [`DaemonId`]s to those. (The R package maps its pool set-up, task
//! submission, broadcast and status calls onto [`Scheduler::hello`], [`Scheduler::submit`],
//! [`TaskKind::Everywhere`] rounds and [`Scheduler::counters`].)
//!
//! Rules it keeps (see `docs/architecture.md`):
//! - one FIFO queue; the head is dispatched first, and a later task never overtakes it;
//! - a task goes only to an idle daemon that has been sent its init bundle (dispatcher mode);
//!   of several idle daemons, the one idle longest gets it, which spreads work evenly;
//! - cancelling a queued task removes it; cancelling an executing one asks its daemon to
//!   interrupt it and the daemon stays busy until it answers;
//! - a busy daemon that disconnects fails its task with [`ErrorCode::CONNECTION_RESET`] (19),
//!   unless the task was submitted with retries left ([`Scheduler::submit_with`]): then it goes
//!   back into the queue ahead of every task waiting there (see [`TaskSpec::retries`]);
//! - everywhere rounds ([`TaskKind::Everywhere`]) reach each daemon at most once;
//! - a result marked `last` removes its daemon from the pool, which is acknowledged; so does a
//!   *leave notice*: a `last` result from a daemon that holds no task, which is how a daemon
//!   leaving on its idle time or wall time while idle asks to go (see [`Scheduler::result`]);
//! - queued payload bytes are accounted against an optional budget;
//! - with [`Config::pipeline`] on (dispatcher mode), when no daemon is idle the head may go to
//!   a daemon that is evaluating exactly one task, if its recent tasks were short: the daemon
//!   queues it and starts it as soon as the first is done, so it does not wait a host round
//!   trip between tasks. Never deeper than two, never an everywhere task. A pipelined task
//!   that has not started is taken back ([`Action::Withdraw`]) when another daemon is idle and
//!   the queue is empty; it returns to the head of the queue only once its daemon confirms it
//!   never started it ([`Scheduler::withdrawn`]), so a task is never evaluated twice.
//!
//! - units ([`Scheduler::submit_unit`]: the elements of a `mirai_map` chunk, one task each
//!   over a shared payload) may go to an idle daemon several at once, consecutive ones of one
//!   chunk in one [`Action::Batch`], as many as take about the pipelining threshold at the
//!   daemon's measured pace (one at a time until it is measured, or without pipelining);
//!   those behind the first count as awaiting until the daemon answers the one before (it
//!   evaluates them in order), go back to the queue unstarted if the daemon is lost, and are
//!   taken back (half of them) when another daemon is idle with nothing queued.
//!
//! Every operation costs O(1) amortised, or O(log n) where a deadline is involved; only
//! [`Scheduler::reset`] and [`Scheduler::exit_all`] walk everything.
//!
//! # Layout
//!
//! One concern a module; the [`Scheduler`] struct below holds the state, and each module adds
//! the `impl` block for its concern (plus a sub-struct where the state is its own):
//!
//! | module | concern |
//! |---|---|
//! | `config` | [`Config`], [`Mode`], per-task [`TaskSpec`] and [`TaskKind`] |
//! | `action` | what comes out: [`Action`], [`ErrorCode`], [`Delivery`] |
//! | `status` | read-only views: [`Counters`], [`Memory`], and the queries behind them |
//! | `task` | the task record, submission, cancellation, settling and loss of a task |
//! | `daemon` | the daemon record, connection, handshake and disconnection |
//! | `queue` | the FIFO queue and its byte budget |
//! | `dispatch` | matching the queue's head to a daemon, and results in dispatcher mode |
//! | `direct` | direct mode: the round-robin ring and its results |
//! | `rounds` | everywhere rounds |
//! | `pipeline` | pipelining and take-back |
//! | `units` | batches of units: their size, their dispatch, their take-back |
//! | `timeout` | deadlines and the time |
//! | `shutdown` | [`Scheduler::exit_all`] and [`Scheduler::reset`] |
//! | `lazy` | the lazily compacted deque every ordering above is kept in |
//!
//! ```
//! use mirai_sched::{Action, Config, DaemonId, Scheduler, TaskId, TaskKind};
//! let mut s: Scheduler<&str> = Scheduler::new(Config::default());
//! let (d, t) = (DaemonId(10), TaskId(1));
//! s.submit(t, "work", 4, TaskKind::Normal, None);
//! s.connected(d);
//! s.hello(d);
//! assert_eq!(s.poll_action(), Some(Action::Init { daemon: d, ordinal: 1 }));
//! assert_eq!(s.poll_action(), Some(Action::Dispatch { daemon: d, task: t, payload: "work" }));
//! ```

#![forbid(unsafe_code)]

mod action;
mod config;
mod daemon;
mod direct;
mod dispatch;
mod lazy;
mod pipeline;
mod queue;
mod rounds;
mod shutdown;
mod status;
mod task;
mod timeout;
mod units;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

pub use action::{Action, Delivery};
pub use config::{Config, Mode, TaskKind, TaskSpec, PIPELINE_MIN_SAMPLES};
pub use mirai_proto::ErrorCode;
pub use status::{Counters, Memory};
pub use units::{COALESCE_MIN_BATCH, MAX_BATCH};

use daemon::Daemon;
use lazy::LazyDeque;
use pipeline::Pipeline;
use queue::Queue;
use rounds::Rounds;
use task::Task;
use timeout::Deadlines;
use units::Units;

/// A daemon, named by the caller (the host uses transport peer ids); and a task, named by the
/// caller, unique for the scheduler's life. `mirai_proto`'s newtypes, so that one cannot be
/// passed for the other.
pub use mirai_proto::ids::{DaemonId, TaskId};

/// The dispatcher state machine. See the crate docs.
///
/// Method arguments are trusted caller input (the host's own bookkeeping, not bytes off a
/// socket): events that do not fit the current state (a hello from an unknown or already
/// hello'd daemon, a result for a task the daemon is not evaluating, ...) are ignored rather
/// than trusted.
pub struct Scheduler<P> {
    mode: Mode,
    /// Set by [`Scheduler::reset`]; nothing is scheduled afterwards.
    closed: bool,
    actions: VecDeque<Action<P>>,
    tasks: HashMap<TaskId, Task<P>>,
    /// Dispatcher queue, or direct-mode tasks never sent; and the byte budget.
    queue: Queue,
    deadlines: Deadlines,
    /// The latest time handed in.
    now: Option<Instant>,
    daemons: HashMap<DaemonId, Daemon>,
    /// The next daemon's connection number (`Daemon::gen`).
    next_gen: u64,
    /// The next task's submission number (`Task::seq`).
    next_seq: u64,
    /// Dispatcher mode: idle daemons, longest idle first. Direct mode: the round-robin ring.
    /// Entries are `(daemon, gen)`; one is stale once its daemon is gone or no longer idle.
    idle: LazyDeque<(DaemonId, u64)>,
    /// Daemons in state `Idle` (a bound on the live entries of `idle`, for compacting it).
    n_idle: u64,
    rounds: Rounds,
    pipeline: Pipeline,
    units: Units,
    submitted: u64,
    executing: u64,
    /// Open connections.
    connected: u64,
    /// Open connections that completed the handshake.
    hello_connected: u64,
    cumulative: u64,
    /// How to copy a payload to keep while its task runs: set by the first
    /// [`Scheduler::submit_with`] (a function pointer so that only `submit_with` needs
    /// `P: Clone`); used for tasks submitted that way (`Task::keep`).
    copy: Option<fn(&P) -> P>,
}

impl<P> Scheduler<P> {
    /// A scheduler with no daemons and no tasks.
    pub fn new(config: Config) -> Self {
        let dispatcher = config.mode == Mode::Dispatcher;
        Scheduler {
            mode: config.mode,
            closed: false,
            actions: VecDeque::new(),
            tasks: HashMap::new(),
            queue: Queue::new(config.memory_limit.filter(|_| dispatcher), dispatcher),
            deadlines: Deadlines::new(),
            now: None,
            daemons: HashMap::new(),
            next_gen: 0,
            next_seq: 0,
            idle: LazyDeque::new(),
            n_idle: 0,
            rounds: Rounds::new(),
            pipeline: Pipeline::new(config.pipeline.filter(|_| dispatcher)),
            units: Units::new(),
            submitted: 0,
            executing: 0,
            connected: 0,
            hello_connected: 0,
            cumulative: 0,
            copy: None,
        }
    }

    /// The next action to carry out, in the order they arose.
    pub fn poll_action(&mut self) -> Option<Action<P>> {
        self.actions.pop_front()
    }
}
