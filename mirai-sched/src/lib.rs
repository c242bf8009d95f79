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
//! [`TaskId`]s and [`DaemonId`]s to those.
//!
//! Rules it keeps (see `docs/architecture.md`):
//! - one FIFO queue; the head is dispatched first, and a later task never overtakes it;
//! - a task goes only to an idle daemon that has been sent its init bundle (dispatcher mode);
//!   of several idle daemons, the one idle longest gets it, which spreads work evenly;
//! - cancelling a queued task removes it; cancelling an executing one asks its daemon to
//!   interrupt it and the daemon stays busy until it answers;
//! - a busy daemon that disconnects fails its task with [`ErrorCode::ConnectionReset`] (19),
//!   unless the task was submitted with retries left ([`Scheduler::submit_with`]): then it goes
//!   back into the queue ahead of every task waiting there (see [`TaskSpec::retries`]);
//! - `everywhere` rounds reach each daemon at most once;
//! - a result marked `last` removes its daemon from the pool, which is acknowledged; so does a
//!   *leave notice*: a `last` result from a daemon that holds no task, which is how a daemon
//!   leaving on its idle time or wall time while idle asks to go (see [`Scheduler::result`]);
//! - queued payload bytes are accounted against an optional budget;
//! - with [`Config::pipeline`] on (dispatcher mode), when no daemon is idle the head may go to
//!   a daemon that is evaluating exactly one task, if its recent tasks were short: the daemon
//!   queues it and starts it as soon as the first is done, so it does not wait a host round
//!   trip between tasks. Never deeper than two, never an `everywhere` task. A pipelined task
//!   that has not started is taken back ([`Action::Withdraw`]) when another daemon is idle and
//!   the queue is empty; it returns to the head of the queue only once its daemon confirms it
//!   never started it ([`Scheduler::withdrawn`]), so a task is never evaluated twice.
//!
//! Every operation costs O(1) amortised, or O(log n) where a deadline is involved; only
//! [`Scheduler::reset`] and [`Scheduler::exit_all`] walk everything.
//!
//! ```
//! use mirai_sched::{Action, Config, Scheduler, TaskKind};
//! let mut s: Scheduler<&str> = Scheduler::new(Config::default());
//! s.submit(1, "work", 4, TaskKind::Normal, None);
//! s.connected(10);
//! s.hello(10);
//! assert!(matches!(s.poll_action(), Some(Action::Init { daemon: 10, ordinal: 1 })));
//! assert!(matches!(s.poll_action(), Some(Action::Dispatch { daemon: 10, task: 1, payload: "work" })));
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A daemon, named by the caller (the host uses transport peer ids).
pub type DaemonId = u64;
/// A task, named by the caller; ids are unique for the scheduler's life.
pub type TaskId = u64;

/// How tasks reach daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// FIFO queue, dispatch to idle daemons only, cancellation, memory budget.
    #[default]
    Dispatcher,
    /// `dispatcher = FALSE`: each task is sent at submission to the next daemon round-robin,
    /// queueing at a busy daemon; tasks wait in the scheduler only while no daemon is connected.
    /// No cancellation and no budget.
    Direct,
}

/// Scheduler settings.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// See [`Mode`].
    pub mode: Mode,
    /// Budget on the bytes of queued tasks (dispatcher mode); `None` is unbounded. The caller
    /// maps R's "unbounded" spellings (`NULL`, 0, negative, `NA`, `Inf`) to `None`: `Some(0)`
    /// admits nothing. Ignored in direct mode.
    pub memory_limit: Option<u64>,
    /// Pipelining (dispatcher mode; ignored in direct mode): `Some(threshold)` lets a daemon
    /// that is evaluating one task be sent the next one when no daemon is idle, provided the
    /// tasks it evaluated recently took less than `threshold` each (an exponentially weighted
    /// moving average of the time from the moment it could start a task to its result, over
    /// at least [`PIPELINE_MIN_SAMPLES`] results) and its current task has not yet run that
    /// long. Timing uses the instants handed to [`Scheduler::set_time`] (and
    /// [`Scheduler::handle_timeout`]): a scheduler that is never told the time never
    /// pipelines. Only tasks submitted with [`Scheduler::submit_with`] are pipelined (taking
    /// one back needs a copy of its payload). `None` (the default): never.
    pub pipeline: Option<Duration>,
}

/// Results a daemon must have returned before it is pipelined to: until then its task times
/// are unknown, and its first task may be slow for reasons of its own (loading packages).
pub const PIPELINE_MIN_SAMPLES: u32 = 2;

/// What kind of task is submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// An ordinary task.
    Normal,
    /// One task of an `everywhere` round. A round is the run of `Everywhere` tasks submitted
    /// up to and including the one with `closes_round`. It is open from its first task's
    /// dispatch until the task with `closes_round` is dispatched (or, if that one was cancelled
    /// or timed out while queued, until no task of the round is left in the queue); while it
    /// is open no task of any kind goes to a daemon that already had one of the round.
    /// In direct mode this is the same as [`TaskKind::Normal`] (round-robin, best effort).
    Everywhere {
        /// True for the round's last task.
        closes_round: bool,
    },
}

/// Per-task settings of [`Scheduler::submit_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSpec {
    /// Ordinary task or part of an `everywhere` round.
    pub kind: TaskKind,
    /// After this instant the task fails with [`ErrorCode::TimedOut`].
    pub deadline: Option<Instant>,
    /// How many times the task may be sent again after the daemon evaluating it disconnected
    /// (0: never; it then fails with [`ErrorCode::ConnectionReset`] as with
    /// [`Scheduler::submit`]).
    ///
    /// A retried task goes back to the *head* of the queue, not its back: it was dispatched in
    /// FIFO order before every task still waiting, so putting it behind them would let later
    /// submissions overtake it. (Precisely, it is reinserted at its submission position, which
    /// is ahead of every waiting task; among several retried tasks, the older goes first.) It
    /// keeps its deadline, and its bytes count against the budget again while it waits.
    ///
    /// Only a disconnect counts: an error the evaluation itself returned is a result, not a
    /// loss. Cancelled or timed-out tasks are never retried, nor is anything after
    /// [`Scheduler::reset`]. `everywhere` tasks are never retried (a round must reach each
    /// daemon at most once, and its daemons are gone): this field is ignored for them.
    /// Keeping a task retryable costs one clone of its payload per dispatch, held until the
    /// daemon answers.
    pub retries: u32,
}

impl Default for TaskSpec {
    /// An ordinary task with no deadline and no retries: what [`Scheduler::submit`] does.
    fn default() -> Self {
        TaskSpec {
            kind: TaskKind::Normal,
            deadline: None,
            retries: 0,
        }
    }
}

/// The error codes the scheduler resolves tasks with (R's integer error values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    /// 5: the task's deadline passed.
    TimedOut = 5,
    /// 7: the task was never sent and its profile closed.
    ObjectClosed = 7,
    /// 19: the daemon evaluating (or holding) the task went away, or the profile was reset.
    ConnectionReset = 19,
    /// 20: the task was cancelled.
    Canceled = 20,
}

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<P> {
    /// Send the init bundle to a daemon that said hello. `ordinal` counts hellos over the
    /// scheduler's life (1 for the first), which picks the daemon's RNG stream.
    Init {
        /// The daemon.
        daemon: DaemonId,
        /// 1-based cumulative count of daemons that completed the handshake.
        ordinal: u64,
    },
    /// Send this task to this daemon.
    Dispatch {
        /// The daemon.
        daemon: DaemonId,
        /// The task.
        task: TaskId,
        /// Its payload, as submitted.
        payload: P,
    },
    /// Ask the daemon to interrupt this task.
    Cancel {
        /// The daemon evaluating it.
        daemon: DaemonId,
        /// The task.
        task: TaskId,
    },
    /// Acknowledge the daemon's `last` result; it exits.
    Ack {
        /// The daemon.
        daemon: DaemonId,
    },
    /// Ask the daemon to give back this task, which was pipelined to it and may not have
    /// started yet (see [`Scheduler::withdrawn`]). If it has started, the daemon ignores the
    /// request and the task completes there.
    Withdraw {
        /// The daemon holding it.
        daemon: DaemonId,
        /// The task.
        task: TaskId,
    },
    /// Tell the daemon to terminate (`daemons(NULL)`).
    Exit {
        /// The daemon.
        daemon: DaemonId,
    },
    /// Resolve this task's handle with an error code; nothing more will come for it.
    Fail {
        /// The task.
        task: TaskId,
        /// Why.
        code: ErrorCode,
    },
}

/// What to do with a result that came back from a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Resolve the task's handle with it.
    Deliver,
    /// Drop it: the task was cancelled, timed out, or is unknown.
    Discard,
}

/// The counters behind `status()` and `info()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Daemons connected now. Dispatcher mode: those that completed the handshake (including
    /// ones that sent a `last` result, until their connection closes). Direct mode: every open
    /// connection (r-api §3.10).
    pub connections: u64,
    /// Daemons that ever completed the handshake.
    pub cumulative: u64,
    /// Tasks in the queue (everywhere tasks included), and tasks pipelined to a daemon that has
    /// not started them. Direct mode: tasks never sent yet.
    pub awaiting: u64,
    /// Tasks sent to a daemon and not yet answered, cancelled-but-unanswered ones included;
    /// a pipelined task counts here once its daemon has started it (at most one per daemon).
    pub executing: u64,
    /// Submitted minus awaiting minus executing.
    pub completed: u64,
}

/// Queued-bytes accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Bytes of queued tasks now.
    pub used: u64,
    /// Highest `used` seen.
    pub peak: u64,
    /// The budget, if any.
    pub limit: Option<u64>,
}

/// A task the scheduler still holds. Kept small: a host holds one per queued task (design.md,
/// memory per unresolved task), so settings few tasks have live behind `extra`, and the state
/// is flat fields rather than an enum with data (56 bytes for a 16-byte payload, where an
/// enum's tag and padding and a 64-bit size cost 16 more).
struct Task<P> {
    /// Submission order; also tells a live queue entry from a stale one.
    seq: u64,
    /// The payload's size in bytes, or `u32::MAX` if it is that or more: then the size is in
    /// `extra` (see [`Task::bytes`]).
    bytes: u32,
    /// Deadline, round and a size of 4 GiB or more, boxed only for tasks that have any.
    extra: Option<Box<TaskExtra>>,
    /// Times it was sent to a daemon.
    attempts: u32,
    /// Sends left after a lost daemon (see [`TaskSpec::retries`]).
    retries_left: u32,
    /// Submitted with [`Scheduler::submit_with`]: a copy of the payload may be kept while it
    /// runs ([`Scheduler::copy`]), so it may be retried or pipelined.
    keep: bool,
    /// Sent (this time) to a daemon that was busy: it may not have started.
    piped: bool,
    state: TaskState,
    /// Queued: the payload (always `Some`). Sent: a copy of it, for a task that will be
    /// retried if its daemon is lost, or that was pipelined (it may come back unstarted).
    payload: Option<P>,
    /// The daemon it was sent to; meaningful only once sent (see [`Task::sent_to`]).
    daemon: DaemonId,
}

/// The per-task settings that most tasks do not have.
struct TaskExtra {
    deadline: Option<Instant>,
    /// The `everywhere` round it belongs to (dispatcher mode).
    round: Option<u64>,
    /// The payload's size when it does not fit `Task::bytes`.
    bytes: u64,
}

impl<P> Task<P> {
    /// The payload's size in bytes, as submitted.
    fn bytes(&self) -> u64 {
        match (self.bytes, &self.extra) {
            (u32::MAX, Some(x)) => x.bytes,
            (b, _) => u64::from(b),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.extra.as_ref().and_then(|x| x.deadline)
    }

    fn round(&self) -> Option<u64> {
        self.extra.as_ref().and_then(|x| x.round)
    }

    /// The daemon holding it, once sent (running or abandoned).
    fn sent_to(&self) -> Option<DaemonId> {
        (self.state != TaskState::Queued).then_some(self.daemon)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskState {
    /// In the queue (direct mode: never sent).
    Queued,
    /// Sent to `Task::daemon`, unanswered.
    Running,
    /// Sent to `Task::daemon`, unanswered, and cancelled or timed out: its handle is already
    /// resolved and the reply will be discarded.
    Abandoned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DaemonState {
    /// Connected, no hello yet.
    Connected,
    /// In the pool. Dispatcher mode: no task. Direct mode: in the round-robin ring.
    Idle,
    /// Dispatcher mode: evaluating this task (or about to: a pipelined task whose predecessor
    /// was answered).
    Busy(TaskId),
    /// Sent its `last` result: out of the pool until its connection closes. It may still hold
    /// its pipelined task (`Daemon::piped`) until it answers it.
    Left,
}

struct Daemon {
    /// Connection order, unique for the scheduler's life: tells a live entry of the idle list
    /// from a stale one even if the caller reuses a daemon id.
    gen: u64,
    state: DaemonState,
    /// Direct mode: tasks sent to it in order; answered ones are pruned lazily.
    sent: VecDeque<(TaskId, u64)>,
    /// Direct mode: tasks sent to it and unanswered.
    outstanding: u64,
    /// Dispatcher mode: the task sent behind the one it is evaluating (pipelining).
    piped: Option<TaskId>,
    /// The task it was asked to give back ([`Action::Withdraw`]), until answered.
    withdraw: Option<TaskId>,
    /// When it could start its current task: dispatch to it while idle, or the answer to its
    /// previous task. `None` when idle or when the time was never given.
    since: Option<Instant>,
    /// Moving average of its task times, in nanoseconds, over `samples` results.
    ewma_ns: u64,
    samples: u32,
}

/// An `everywhere` round's tasks not yet dispatched or removed.
struct Round {
    pending: u64,
    closer_submitted: bool,
}

struct OpenRound {
    id: u64,
    received: HashSet<DaemonId>,
}

/// The dispatcher state machine. See the crate docs.
///
/// Method arguments are trusted caller input (the host's own bookkeeping, not bytes off a
/// socket): events that do not fit the current state (a hello from an unknown or already
/// hello'd daemon, a result for a task the daemon is not evaluating, ...) are ignored rather
/// than trusted.
pub struct Scheduler<P> {
    mode: Mode,
    limit: Option<u64>,
    /// Set by [`Scheduler::reset`]; nothing is scheduled afterwards.
    closed: bool,
    actions: VecDeque<Action<P>>,
    tasks: HashMap<TaskId, Task<P>>,
    /// `(task, seq)` in submission order: dispatcher queue, or direct-mode tasks never sent.
    /// Entries whose task left the queue out of line stay as tombstones, skipped at the head
    /// and compacted when they outnumber the live ones.
    queue: VecDeque<(TaskId, u64)>,
    /// Live entries of `queue`.
    queued: u64,
    deadlines: BTreeMap<(Instant, u64), TaskId>,
    daemons: HashMap<DaemonId, Daemon>,
    next_gen: u64,
    next_seq: u64,
    /// Dispatcher mode: idle daemons, longest idle first. Direct mode: the round-robin ring.
    /// Entries are `(daemon, gen)` and may be stale (daemon gone), skipped lazily.
    idle: VecDeque<(DaemonId, u64)>,
    /// Daemons in state `Idle`, for compacting `idle`.
    n_idle: u64,
    /// Idle daemons that already had a task of the open round, in the order they left `idle`.
    parked: Vec<(DaemonId, u64)>,
    rounds: HashMap<u64, Round>,
    /// The round the next `Everywhere` submission joins.
    submitting_round: u64,
    open_round: Option<OpenRound>,
    submitted: u64,
    executing: u64,
    /// Open connections.
    connected: u64,
    /// Open connections that completed the handshake.
    hello_connected: u64,
    cumulative: u64,
    used: u64,
    peak: u64,
    /// [`Config::pipeline`] (dispatcher mode only).
    pipeline: Option<Duration>,
    /// The latest time handed in.
    now: Option<Instant>,
    /// Daemons that may be able to take a pipelined task, as `(daemon, gen)`, in the order they
    /// started their current task; validated when taken, may be stale.
    pipe_ready: VecDeque<(DaemonId, u64)>,
    /// Pipelined tasks in the order they were sent, `(daemon, gen, task)`: candidates for a
    /// take-back; may be stale.
    piped_list: VecDeque<(DaemonId, u64, TaskId)>,
    /// Withdraw requests not yet answered.
    withdrawing: u64,
    /// How to copy a payload to keep while its task runs: set by the first
    /// [`Scheduler::submit_with`] (a function pointer so that only `submit_with` needs
    /// `P: Clone`); used for tasks submitted that way (`Task::keep`).
    copy: Option<fn(&P) -> P>,
}

/// Stale entries tolerated in a lazily cleaned list before it is compacted; keeps compaction
/// amortised O(1) without churning small lists.
const SLACK: usize = 64;

impl<P> Scheduler<P> {
    /// A scheduler with no daemons and no tasks.
    pub fn new(config: Config) -> Self {
        Scheduler {
            pipeline: match config.mode {
                Mode::Dispatcher => config.pipeline,
                Mode::Direct => None,
            },
            now: None,
            pipe_ready: VecDeque::new(),
            piped_list: VecDeque::new(),
            withdrawing: 0,
            copy: None,
            mode: config.mode,
            limit: match config.mode {
                Mode::Dispatcher => config.memory_limit,
                Mode::Direct => None,
            },
            closed: false,
            actions: VecDeque::new(),
            tasks: HashMap::new(),
            queue: VecDeque::new(),
            queued: 0,
            deadlines: BTreeMap::new(),
            daemons: HashMap::new(),
            next_gen: 0,
            next_seq: 0,
            idle: VecDeque::new(),
            n_idle: 0,
            parked: Vec::new(),
            rounds: HashMap::new(),
            submitting_round: 0,
            open_round: None,
            submitted: 0,
            executing: 0,
            connected: 0,
            hello_connected: 0,
            cumulative: 0,
            used: 0,
            peak: 0,
        }
    }

    /// A transport connection opened. The daemon takes no task until [`Scheduler::hello`].
    /// A repeated call for a connected daemon is ignored.
    pub fn connected(&mut self, daemon: DaemonId) {
        if self.daemons.contains_key(&daemon) {
            return;
        }
        self.insert_daemon(daemon);
    }

    /// The daemon completed the handshake: queues [`Action::Init`], makes it eligible, and
    /// dispatches queued work to it. A daemon not yet [`Scheduler::connected`] is taken as
    /// connected; a repeated hello, or a hello after [`Scheduler::reset`], is ignored.
    pub fn hello(&mut self, daemon: DaemonId) {
        if self.closed {
            return;
        }
        if !self.daemons.contains_key(&daemon) {
            self.insert_daemon(daemon);
        }
        let Some(d) = self.daemons.get_mut(&daemon) else {
            return;
        };
        if d.state != DaemonState::Connected {
            return;
        }
        d.state = DaemonState::Idle;
        let gen = d.gen;
        self.n_idle += 1;
        self.hello_connected += 1;
        self.cumulative += 1;
        self.actions.push_back(Action::Init {
            daemon,
            ordinal: self.cumulative,
        });
        self.idle.push_back((daemon, gen));
        self.drain();
    }

    /// The daemon's connection closed. Its task, if any (all of them in direct mode, in the
    /// order they were sent), fails with [`ErrorCode::ConnectionReset`] unless already
    /// cancelled or timed out, or unless it has retries left ([`TaskSpec::retries`]): then it
    /// is queued again, ahead of every waiting task, and dispatched to the next free daemon.
    /// Queued tasks wait for other daemons.
    pub fn disconnected(&mut self, daemon: DaemonId) {
        let Some(d) = self.daemons.remove(&daemon) else {
            return;
        };
        self.connected -= 1;
        let mut requeued = false;
        if d.withdraw.is_some() {
            self.withdrawing -= 1;
        }
        match d.state {
            DaemonState::Connected => return,
            DaemonState::Idle => self.n_idle -= 1,
            DaemonState::Busy(task) => {
                self.executing -= 1;
                requeued |= self.lose(task);
            }
            DaemonState::Left => {}
        }
        // A pipelined task may or may not have started: it is lost like the first (sent
        // after it, so failed after it).
        if let Some(task) = d.piped {
            self.executing -= 1;
            requeued |= self.lose(task);
        }
        self.hello_connected -= 1;
        for (task, seq) in d.sent {
            let mine = self
                .tasks
                .get(&task)
                .is_some_and(|t| t.seq == seq && t.sent_to() == Some(daemon));
            if mine {
                self.executing -= 1;
                requeued |= self.lose(task);
            }
        }
        self.compact_idle();
        if requeued {
            self.drain();
            self.peak = self.peak.max(self.used);
        } else {
            // A withdraw request may have gone with it.
            self.take_back();
        }
    }

    /// A result for `task` came from `daemon`. If the daemon was evaluating that task, the
    /// daemon becomes idle (or, if `last`, leaves the pool and is sent [`Action::Ack`]) and
    /// queued work is dispatched; the result is delivered unless the task was cancelled or
    /// timed out. A result for any other task (unknown, or not the one this daemon holds) is
    /// discarded and changes nothing, with one exception:
    ///
    /// A `last` result from a daemon in the pool that holds no task (dispatcher mode: idle;
    /// direct mode: any daemon in the ring) is a *leave notice*. A daemon that reaches its
    /// idle time or wall time while idle cannot just hang up: a task may be on its way to it,
    /// and would be lost (error 19). So it sends the notice and keeps serving until
    /// acknowledged. The daemon leaves the pool at once and is sent [`Action::Ack`]; every
    /// task already sent to it arrives before the ack, and is answered. A notice from a busy
    /// daemon (it crossed the task on its way) is discarded: that daemon marks the task's
    /// result `last` instead, and leaves then. The notice's task id is not looked at.
    ///
    /// Pipelining: a result for a daemon's current task promotes its pipelined task, if any,
    /// to current. A daemon that leaves (`last`) while holding a pipelined task keeps it until
    /// it answers it: with its result (a daemon leaving on an idle limit serves what it was
    /// sent before the ack) or with [`Scheduler::withdrawn`] (a daemon at its task or time
    /// limit starts nothing more), which puts the task back at the head of the queue.
    /// The result's time (see [`Scheduler::set_time`]) feeds the daemon's task-time average.
    pub fn result(&mut self, daemon: DaemonId, task: TaskId, last: bool) -> Delivery {
        match self.mode {
            Mode::Dispatcher => self.result_dispatcher(daemon, task, last),
            Mode::Direct => self.result_direct(daemon, task, last),
        }
    }

    /// Adds a task at the back of the queue, with `bytes` counted against the budget while it
    /// waits, and an optional deadline after which it fails with [`ErrorCode::TimedOut`].
    ///
    /// A task that can go to a daemon at once (empty queue and an eligible daemon) is
    /// dispatched straight away and its bytes are never counted. After [`Scheduler::reset`] the
    /// task fails at once with [`ErrorCode::ObjectClosed`]. Task ids must be unique: a
    /// submission reusing the id of a task still held is a caller bug and is ignored (it
    /// panics in debug builds).
    pub fn submit(
        &mut self,
        task: TaskId,
        payload: P,
        bytes: u64,
        kind: TaskKind,
        deadline: Option<Instant>,
    ) {
        self.submit_inner(task, payload, bytes, kind, deadline, 0, false);
    }

    /// Tells the scheduler the time now, for pipelining: tasks are timed from the last time
    /// given before their dispatch to the last time given before their result. Call it before
    /// the events it dates (a result, a submission); a time earlier than one already given is
    /// ignored.
    pub fn set_time(&mut self, now: Instant) {
        if self.now.map_or(true, |t| now > t) {
            self.now = Some(now);
        }
    }

    /// The daemon gave `task` back unevaluated: it had not started it when it received an
    /// [`Action::Withdraw`] or [`Action::Cancel`] for it, or it sent a `last` result before
    /// starting it. The task returns to the head of the queue (its attempt is not counted and
    /// no retry is spent) and is dispatched again, unless it was cancelled or timed out: then
    /// it is dropped. The daemon is free of it (idle if it was its only task). True if the
    /// scheduler took it back; false (and nothing changes) if the daemon did not hold it as a
    /// task, in direct mode, or after [`Scheduler::reset`]. (Only a pipelined task can come
    /// back unstarted and be dispatched again; any other task a daemon gives back is one it
    /// was told to cancel while leaving, or is failed with [`ErrorCode::ConnectionReset`]:
    /// it was not kept.)
    pub fn withdrawn(&mut self, daemon: DaemonId, task: TaskId) -> bool {
        if self.mode == Mode::Direct || self.closed {
            return false;
        }
        let held = self
            .tasks
            .get(&task)
            .is_some_and(|t| t.sent_to() == Some(daemon));
        let Some(d) = self.daemons.get_mut(&daemon) else {
            return false;
        };
        let second = d.piped == Some(task);
        let current = d.state == DaemonState::Busy(task);
        if !held || !(second || current) {
            return false;
        }
        if d.withdraw == Some(task) {
            d.withdraw = None;
            self.withdrawing -= 1;
        }
        let mut offer = false;
        if second {
            d.piped = None;
            offer = matches!(d.state, DaemonState::Busy(_));
        } else if let Some(next) = d.piped.take() {
            d.state = DaemonState::Busy(next);
            d.since = self.now;
            offer = true;
        } else {
            d.state = DaemonState::Idle;
            d.since = None;
            self.n_idle += 1;
            self.idle.push_back((daemon, d.gen));
        }
        if offer {
            self.offer_pipeline(daemon);
        }
        self.executing -= 1;
        self.give_back(task);
        self.drain();
        self.peak = self.peak.max(self.used);
        true
    }

    /// The number of times `task` has been sent to a daemon so far (more than one only for a
    /// retried task), while the scheduler holds it; `None` once it has left (answered, failed,
    /// cancelled while queued) or if unknown.
    pub fn attempts(&self, task: TaskId) -> Option<u32> {
        self.tasks.get(&task).map(|t| t.attempts)
    }

    #[allow(clippy::too_many_arguments)]
    fn submit_inner(
        &mut self,
        task: TaskId,
        payload: P,
        bytes: u64,
        kind: TaskKind,
        deadline: Option<Instant>,
        retries: u32,
        keep: bool,
    ) {
        if self.tasks.contains_key(&task) {
            debug_assert!(false, "task id {task} submitted while still held");
            return;
        }
        self.submitted += 1;
        if self.closed {
            self.actions.push_back(Action::Fail {
                task,
                code: ErrorCode::ObjectClosed,
            });
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let round = match (self.mode, kind) {
            (Mode::Dispatcher, TaskKind::Everywhere { closes_round }) => {
                let id = self.submitting_round;
                let r = self.rounds.entry(id).or_insert(Round {
                    pending: 0,
                    closer_submitted: false,
                });
                r.pending += 1;
                if closes_round {
                    r.closer_submitted = true;
                    self.submitting_round += 1;
                }
                Some(id)
            }
            _ => None,
        };
        if let Some(at) = deadline {
            self.deadlines.insert((at, seq), task);
        }
        let small = u32::try_from(bytes).ok().filter(|&b| b < u32::MAX);
        self.tasks.insert(
            task,
            Task {
                seq,
                bytes: small.unwrap_or(u32::MAX),
                extra: (deadline.is_some() || round.is_some() || small.is_none()).then(|| {
                    Box::new(TaskExtra {
                        deadline,
                        round,
                        bytes,
                    })
                }),
                attempts: 0,
                retries_left: retries,
                keep,
                piped: false,
                state: TaskState::Queued,
                payload: Some(payload),
                daemon: 0,
            },
        );
        if self.queued == 0 {
            let target = match self.mode {
                Mode::Dispatcher => self.take_idle().map(|d| (d, false)),
                Mode::Direct => self.next_in_ring().map(|d| (d, false)),
            };
            let target = target.or_else(|| self.pipeline_target(task).map(|d| (d, true)));
            if let Some((d, piped)) = target {
                self.start(d, task, false, piped);
                return;
            }
        }
        self.queue.push_back((task, seq));
        self.queued += 1;
        if self.mode == Mode::Dispatcher {
            self.used += bytes;
            self.peak = self.peak.max(self.used);
        }
    }

    /// Cancels a task. True if the scheduler still held it (queued: removed and its bytes
    /// released; executing: its daemon is asked to interrupt it with [`Action::Cancel`] and
    /// stays busy until it answers); false if it had completed, was already cancelled or
    /// timed out, or is unknown, and then nothing is queued. The caller resolves the handle
    /// (with 20); no `Fail` is queued for it. Direct mode, or after reset: always false.
    pub fn cancel(&mut self, task: TaskId) -> bool {
        if self.mode == Mode::Direct || self.closed {
            return false;
        }
        let Some(t) = self.tasks.get_mut(&task) else {
            return false;
        };
        match t.state {
            TaskState::Queued => {
                self.remove_queued(task);
                self.drain();
                true
            }
            TaskState::Abandoned => false,
            TaskState::Running => {
                t.state = TaskState::Abandoned;
                let daemon = t.daemon;
                if let Some(at) = t.deadline() {
                    self.deadlines.remove(&(at, t.seq));
                }
                self.actions.push_back(Action::Cancel { daemon, task });
                true
            }
        }
    }

    /// True if a new task would be admitted under the budget (used < limit, or no limit).
    /// Always true in direct mode.
    pub fn admit(&self) -> bool {
        self.limit.map_or(true, |l| self.used < l)
    }

    /// Fails every task whose deadline is at or before `now` with [`ErrorCode::TimedOut`], in
    /// deadline order. A queued task is removed (in direct mode too: it is never sent). An
    /// executing one is, in dispatcher mode, also cancelled as [`Scheduler::cancel`] would
    /// (`Fail` then `Cancel`); in direct mode only its reply is discarded later.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.set_time(now);
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let task = entry.remove();
            let Some(t) = self.tasks.get_mut(&task) else {
                continue;
            };
            match t.state {
                TaskState::Queued => {
                    self.remove_queued(task);
                    self.actions.push_back(Action::Fail {
                        task,
                        code: ErrorCode::TimedOut,
                    });
                }
                TaskState::Abandoned => continue,
                TaskState::Running => {
                    t.state = TaskState::Abandoned;
                    let daemon = t.daemon;
                    self.actions.push_back(Action::Fail {
                        task,
                        code: ErrorCode::TimedOut,
                    });
                    if self.mode == Mode::Dispatcher {
                        self.actions.push_back(Action::Cancel { daemon, task });
                    }
                }
            }
        }
        self.drain();
    }

    /// The earliest pending deadline, for the caller's timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.keys().next().map(|k| k.0)
    }

    /// Queues [`Action::Exit`] for every connected daemon (hello'd or not), in connection
    /// order. State is unchanged: each daemon's [`Scheduler::disconnected`] follows as it goes.
    pub fn exit_all(&mut self) {
        let mut all: Vec<(u64, DaemonId)> =
            self.daemons.iter().map(|(&id, d)| (d.gen, id)).collect();
        all.sort_unstable();
        self.actions
            .extend(all.into_iter().map(|(_, daemon)| Action::Exit { daemon }));
    }

    /// Closes the scheduler: every task still held fails, in submission order
    /// ([`ErrorCode::ConnectionReset`]; [`ErrorCode::ObjectClosed`] in direct mode for tasks
    /// never sent), and the queue empties. Tasks already cancelled or timed out get nothing
    /// more. Afterwards submissions fail at once with `ObjectClosed`, results are discarded,
    /// cancel returns false and nothing is dispatched; connections are still tracked so
    /// [`Scheduler::exit_all`] works. A second reset does nothing.
    pub fn reset(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let mut held: Vec<(u64, TaskId, ErrorCode)> = Vec::new();
        for (id, t) in self.tasks.drain() {
            let code = match t.state {
                // "Never sent": a retried task waiting again was sent, and lost.
                TaskState::Queued if self.mode == Mode::Direct && t.attempts == 0 => {
                    ErrorCode::ObjectClosed
                }
                TaskState::Queued | TaskState::Running => ErrorCode::ConnectionReset,
                TaskState::Abandoned => continue,
            };
            held.push((t.seq, id, code));
        }
        held.sort_unstable_by_key(|h| h.0);
        self.actions.extend(
            held.into_iter()
                .map(|(_, task, code)| Action::Fail { task, code }),
        );
        self.queue = VecDeque::new();
        self.queued = 0;
        self.used = 0;
        self.executing = 0;
        self.deadlines.clear();
        self.rounds.clear();
        self.open_round = None;
        self.parked.clear();
        self.idle.clear();
        self.pipe_ready.clear();
        self.piped_list.clear();
        self.withdrawing = 0;
        for d in self.daemons.values_mut() {
            if let DaemonState::Busy(_) = d.state {
                d.state = DaemonState::Idle;
                self.n_idle += 1;
            }
            d.sent = VecDeque::new();
            d.outstanding = 0;
            d.piped = None;
            d.withdraw = None;
            d.since = None;
        }
    }

    /// The next action to carry out, in the order they arose.
    pub fn poll_action(&mut self) -> Option<Action<P>> {
        self.actions.pop_front()
    }

    /// Current counters.
    pub fn counters(&self) -> Counters {
        // A pipelined task that has not started counts as awaiting, not executing: it may yet
        // be given back, and so `executing` never exceeds the daemons, as without pipelining.
        let piped = self.pipelined();
        Counters {
            connections: match self.mode {
                Mode::Dispatcher => self.hello_connected,
                Mode::Direct => self.connected,
            },
            cumulative: self.cumulative,
            awaiting: self.queued + piped,
            executing: self.executing - piped,
            completed: self.submitted - self.queued - self.executing,
        }
    }

    /// Tasks pipelined to a daemon behind the one it runs, not started yet (counted in
    /// [`Counters::awaiting`]). One walk over the daemons when pipelining is on, 0 otherwise.
    pub fn pipelined(&self) -> u64 {
        match (self.mode, self.pipeline) {
            (Mode::Dispatcher, Some(_)) => {
                self.daemons.values().filter(|d| d.piped.is_some()).count() as u64
            }
            _ => 0,
        }
    }

    /// Daemons connected now that completed the handshake, in either mode. (In direct mode
    /// [`Counters::connections`] counts open connections; a daemon takes tasks only after its
    /// handshake, which is what a caller waiting for ready daemons needs.)
    pub fn ready_daemons(&self) -> u64 {
        self.hello_connected
    }

    /// Current queued-bytes accounting (all zero and no limit in direct mode).
    pub fn memory(&self) -> Memory {
        Memory {
            used: self.used,
            peak: self.peak,
            limit: self.limit,
        }
    }

    /// The configured mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn insert_daemon(&mut self, daemon: DaemonId) {
        let gen = self.next_gen;
        self.next_gen += 1;
        self.connected += 1;
        self.daemons.insert(
            daemon,
            Daemon {
                gen,
                state: DaemonState::Connected,
                sent: VecDeque::new(),
                outstanding: 0,
                piped: None,
                withdraw: None,
                since: None,
                ewma_ns: 0,
                samples: 0,
            },
        );
    }

    fn result_dispatcher(&mut self, daemon: DaemonId, task: TaskId, last: bool) -> Delivery {
        let Some(d) = self.daemons.get_mut(&daemon) else {
            return Delivery::Discard;
        };
        if last && d.state == DaemonState::Idle {
            // A leave notice (see `result`).
            d.state = DaemonState::Left;
            self.n_idle -= 1;
            self.actions.push_back(Action::Ack { daemon });
            self.compact_idle();
            return Delivery::Discard;
        }
        if d.state == DaemonState::Left && d.piped == Some(task) {
            // The pipelined task of a daemon that has left, served before it goes.
            d.piped = None;
            if d.withdraw == Some(task) {
                d.withdraw = None;
                self.withdrawing -= 1;
            }
            self.executing -= 1;
            let delivery = self.finish(task);
            self.drain();
            return delivery;
        }
        if d.state != DaemonState::Busy(task) {
            return Delivery::Discard;
        }
        if let (Some(now), Some(since)) = (self.now, d.since) {
            let ns =
                u64::try_from(now.saturating_duration_since(since).as_nanos()).unwrap_or(u64::MAX);
            d.ewma_ns = ewma(d.ewma_ns, d.samples, ns);
            d.samples = d.samples.saturating_add(1);
        }
        if d.withdraw == Some(task) {
            d.withdraw = None;
            self.withdrawing -= 1;
        }
        let gen = d.gen;
        if last {
            d.state = DaemonState::Left;
            d.since = None;
            self.actions.push_back(Action::Ack { daemon });
        } else if let Some(next) = d.piped.take() {
            d.state = DaemonState::Busy(next);
            d.since = self.now;
            self.offer_pipeline(daemon);
        } else {
            d.state = DaemonState::Idle;
            d.since = None;
            self.n_idle += 1;
            self.idle.push_back((daemon, gen));
        }
        self.executing -= 1;
        let delivery = self.finish(task);
        self.drain();
        delivery
    }

    fn result_direct(&mut self, daemon: DaemonId, task: TaskId, last: bool) -> Delivery {
        let held_here = self
            .tasks
            .get(&task)
            .is_some_and(|t| t.sent_to() == Some(daemon));
        if !held_here {
            if let Some(d) = self.daemons.get_mut(&daemon) {
                if last && d.state == DaemonState::Idle {
                    // A leave notice (see `result`): out of the ring; tasks already sent to
                    // it are still answered.
                    d.state = DaemonState::Left;
                    self.n_idle -= 1;
                    self.actions.push_back(Action::Ack { daemon });
                }
            }
            return Delivery::Discard;
        }
        self.executing -= 1;
        let delivery = self.finish(task);
        let tasks = &self.tasks;
        if let Some(d) = self.daemons.get_mut(&daemon) {
            d.outstanding -= 1;
            // Replies normally come in send order, so pruning the front keeps `sent` short;
            // the full compaction covers out-of-order replies.
            while d
                .sent
                .front()
                .is_some_and(|&(t, seq)| !sent_to(tasks, t, seq, daemon))
            {
                d.sent.pop_front();
            }
            if d.sent.len() > 2 * d.outstanding as usize + SLACK {
                d.sent.retain(|&(t, seq)| sent_to(tasks, t, seq, daemon));
            }
            if last && d.state == DaemonState::Idle {
                d.state = DaemonState::Left;
                self.n_idle -= 1;
                self.actions.push_back(Action::Ack { daemon });
            }
        }
        delivery
    }

    /// Removes an answered task: deliver its result unless its handle was already resolved.
    fn finish(&mut self, task: TaskId) -> Delivery {
        match self.tasks.remove(&task) {
            Some(t) if t.state == TaskState::Running => {
                if let Some(at) = t.deadline() {
                    self.deadlines.remove(&(at, t.seq));
                }
                Delivery::Deliver
            }
            _ => Delivery::Discard,
        }
    }

    /// Removes a task whose daemon went away, failing it with 19 unless already resolved.
    /// Or, if it may be retried, puts it back in the queue at its submission position (ahead
    /// of every waiting task) and returns true; the caller then drains the queue.
    fn lose(&mut self, task: TaskId) -> bool {
        let closed = self.closed;
        let Some(t) = self.tasks.get_mut(&task) else {
            return false;
        };
        // The kept copy, if any, becomes the queued payload again.
        if t.state == TaskState::Running && t.retries_left > 0 && !closed && t.payload.is_some() {
            t.retries_left -= 1;
            t.state = TaskState::Queued;
            let (seq, bytes) = (t.seq, t.bytes());
            // The queue is in submission order (tombstones included): a lost task was
            // dispatched before everything queued, so this lands at the head.
            let at = self.queue.partition_point(|&(_, s)| s < seq);
            self.queue.insert(at, (task, seq));
            self.queued += 1;
            if self.mode == Mode::Dispatcher {
                // The peak is updated by the caller once the queue is drained, so that a
                // task sent straight on to a free daemon leaves no trace.
                self.used += bytes;
            }
            return true;
        }
        if let Some(t) = self.tasks.remove(&task) {
            if t.state == TaskState::Running {
                if let Some(at) = t.deadline() {
                    self.deadlines.remove(&(at, t.seq));
                }
                self.actions.push_back(Action::Fail {
                    task,
                    code: ErrorCode::ConnectionReset,
                });
            }
        }
        false
    }

    /// Puts a task its daemon gave back unstarted at its submission position (the head), or
    /// drops it if its handle is already resolved.
    fn give_back(&mut self, task: TaskId) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        if t.state != TaskState::Running {
            self.tasks.remove(&task);
            return;
        }
        if t.payload.is_none() {
            // Not pipelined and not kept (see `withdrawn`): never lose a handle silently.
            if let Some(t) = self.tasks.remove(&task) {
                if let Some(at) = t.deadline() {
                    self.deadlines.remove(&(at, t.seq));
                }
            }
            self.actions.push_back(Action::Fail {
                task,
                code: ErrorCode::ConnectionReset,
            });
            return;
        }
        // The kept copy becomes the queued payload again.
        t.state = TaskState::Queued;
        t.attempts = t.attempts.saturating_sub(1);
        t.piped = false;
        let (seq, bytes) = (t.seq, t.bytes());
        let at = self.queue.partition_point(|&(_, s)| s < seq);
        self.queue.insert(at, (task, seq));
        self.queued += 1;
        self.used += bytes;
    }

    /// Takes a queued task out of line (cancel, timeout), releasing everything it held.
    fn remove_queued(&mut self, task: TaskId) {
        let Some(t) = self.tasks.remove(&task) else {
            return;
        };
        self.queued -= 1;
        if self.mode == Mode::Dispatcher {
            self.used -= t.bytes();
        }
        if let Some(at) = t.deadline() {
            self.deadlines.remove(&(at, t.seq));
        }
        if let Some(r) = t.round() {
            self.round_left_queue(r);
        }
        if self.queue.len() > 2 * self.queued as usize + SLACK {
            let tasks = &self.tasks;
            self.queue.retain(|&(t, seq)| is_queued(tasks, t, seq));
        }
    }

    /// The live head of the queue, dropping tombstones in front of it.
    fn head(&mut self) -> Option<TaskId> {
        while let Some(&(t, seq)) = self.queue.front() {
            if is_queued(&self.tasks, t, seq) {
                return Some(t);
            }
            self.queue.pop_front();
        }
        None
    }

    /// Sends queued work wherever it can go now, strictly from the head.
    fn drain(&mut self) {
        if self.closed {
            return;
        }
        while let Some(task) = self.head() {
            let target = match self.mode {
                Mode::Dispatcher => self.take_idle().map(|d| (d, false)),
                Mode::Direct => self.next_in_ring().map(|d| (d, false)),
            };
            let target = target.or_else(|| self.pipeline_target(task).map(|d| (d, true)));
            let Some((d, piped)) = target else { break };
            self.queue.pop_front();
            self.start(d, task, true, piped);
        }
        self.take_back();
    }

    /// Pipelining: a daemon evaluating one task that may be sent `task` as its second, if
    /// any (see [`Config::pipeline`]). Only asked when no daemon is idle.
    fn pipeline_target(&mut self, task: TaskId) -> Option<DaemonId> {
        let threshold = self.pipeline?;
        let now = self.now?;
        if self.open_round.is_some() {
            return None;
        }
        let t = self.tasks.get(&task)?;
        if t.round().is_some() || !t.keep {
            return None;
        }
        while let Some((id, gen)) = self.pipe_ready.pop_front() {
            let Some(d) = self.daemons.get(&id) else {
                continue;
            };
            let DaemonState::Busy(current) = d.state else {
                continue;
            };
            let short = d.samples >= PIPELINE_MIN_SAMPLES
                && d.ewma_ns < duration_ns(threshold)
                && d.since
                    .is_some_and(|s| now.saturating_duration_since(s) < threshold);
            // An `everywhere` task may be slow, and a round's daemons take nothing else.
            let plain = self
                .tasks
                .get(&current)
                .is_some_and(|c| c.round().is_none());
            if d.gen == gen && d.piped.is_none() && d.withdraw.is_none() && short && plain {
                return Some(id);
            }
            // Dropped: it is offered again when it next starts a task.
        }
        None
    }

    /// Queues `daemon` as a pipelining candidate if it now evaluates exactly one task.
    fn offer_pipeline(&mut self, daemon: DaemonId) {
        if self.pipeline.is_none() {
            return;
        }
        let Some(d) = self.daemons.get(&daemon) else {
            return;
        };
        if matches!(d.state, DaemonState::Busy(_)) && d.piped.is_none() && d.withdraw.is_none() {
            self.pipe_ready.push_back((daemon, d.gen));
        }
        if self.pipe_ready.len() > 2 * self.daemons.len() + SLACK {
            // A daemon that takes task after task from idle is offered each time, so the list
            // holds repeats as well as stale entries: keep one live entry per daemon, which
            // leaves at most one per daemon and makes this O(1) amortised.
            let daemons = &self.daemons;
            let mut seen = HashSet::with_capacity(daemons.len());
            self.pipe_ready.retain(|&(id, gen)| {
                let live = daemons.get(&id).is_some_and(|d| {
                    d.gen == gen && matches!(d.state, DaemonState::Busy(_)) && d.piped.is_none()
                });
                live && seen.insert(id)
            });
        }
    }

    /// Take-back: while daemons are idle, the queue is empty and no round is open, asks for
    /// pipelined tasks (oldest first) that may not have started, one per idle daemon not
    /// already waiting for one.
    fn take_back(&mut self) {
        if self.pipeline.is_none() || self.closed || self.open_round.is_some() {
            return;
        }
        while self.n_idle > self.withdrawing {
            if self.head().is_some() {
                return;
            }
            let Some((id, gen, task)) = self.piped_list.pop_front() else {
                return;
            };
            let Some(d) = self.daemons.get_mut(&id) else {
                continue;
            };
            let live = d.gen == gen
                && d.piped == Some(task)
                && d.withdraw.is_none()
                && matches!(d.state, DaemonState::Busy(_));
            // A cancelled task is being dropped by its daemon already.
            let wanted = self
                .tasks
                .get(&task)
                .is_some_and(|t| t.state == TaskState::Running);
            if live && wanted {
                d.withdraw = Some(task);
                self.withdrawing += 1;
                self.actions
                    .push_back(Action::Withdraw { daemon: id, task });
            }
        }
    }

    /// Dispatcher mode: the longest-idle daemon that may take the head, if any. Daemons that
    /// had a task of the open round are parked until it closes.
    fn take_idle(&mut self) -> Option<DaemonId> {
        while let Some((id, gen)) = self.idle.pop_front() {
            let live = self
                .daemons
                .get(&id)
                .is_some_and(|d| d.gen == gen && d.state == DaemonState::Idle);
            if !live {
                continue;
            }
            if self
                .open_round
                .as_ref()
                .is_some_and(|o| o.received.contains(&id))
            {
                self.parked.push((id, gen));
                continue;
            }
            return Some(id);
        }
        None
    }

    /// Direct mode: the next daemon of the ring, which moves to the back.
    fn next_in_ring(&mut self) -> Option<DaemonId> {
        while let Some((id, gen)) = self.idle.pop_front() {
            if self
                .daemons
                .get(&id)
                .is_some_and(|d| d.gen == gen && d.state == DaemonState::Idle)
            {
                self.idle.push_back((id, gen));
                return Some(id);
            }
        }
        None
    }

    fn compact_idle(&mut self) {
        if self.idle.len() > 2 * self.n_idle as usize + SLACK {
            let daemons = &self.daemons;
            self.idle.retain(|(id, gen)| {
                daemons
                    .get(id)
                    .is_some_and(|d| d.gen == *gen && d.state == DaemonState::Idle)
            });
        }
    }

    /// Sends a queued task to `daemon`, chosen by `take_idle`, `next_in_ring` or (`piped`)
    /// `pipeline_target`.
    fn start(&mut self, daemon: DaemonId, task: TaskId, from_queue: bool, piped: bool) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        debug_assert_eq!(t.state, TaskState::Queued, "only queued tasks are started");
        let Some(payload) = t.payload.take() else {
            unreachable!("a queued task holds its payload");
        };
        t.state = TaskState::Running;
        t.daemon = daemon;
        t.attempts = t.attempts.saturating_add(1);
        t.piped = piped;
        if let (true, Some(copy)) = ((t.retries_left > 0 || piped) && t.keep, self.copy) {
            t.payload = Some(copy(&payload));
        }
        let (bytes, seq, round) = (t.bytes(), t.seq, t.round());
        self.executing += 1;
        if from_queue {
            self.queued -= 1;
            if self.mode == Mode::Dispatcher {
                self.used -= bytes;
            }
        }
        let mut offer = false;
        if let Some(d) = self.daemons.get_mut(&daemon) {
            match self.mode {
                Mode::Dispatcher if piped => {
                    d.piped = Some(task);
                    self.piped_list.push_back((daemon, d.gen, task));
                }
                Mode::Dispatcher => {
                    d.state = DaemonState::Busy(task);
                    d.since = self.now;
                    self.n_idle -= 1;
                    offer = true;
                }
                Mode::Direct => {
                    d.sent.push_back((task, seq));
                    d.outstanding += 1;
                }
            }
        }
        if offer {
            self.offer_pipeline(daemon);
        }
        if piped && self.piped_list.len() > 2 * self.daemons.len() + SLACK {
            let daemons = &self.daemons;
            self.piped_list.retain(|(id, gen, t)| {
                daemons
                    .get(id)
                    .is_some_and(|d| d.gen == *gen && d.piped == Some(*t))
            });
        }
        self.actions.push_back(Action::Dispatch {
            daemon,
            task,
            payload,
        });
        if let Some(r) = round {
            if self.open_round.as_ref().map_or(true, |o| o.id != r) {
                self.close_round();
                self.open_round = Some(OpenRound {
                    id: r,
                    received: HashSet::new(),
                });
            }
            if let Some(o) = self.open_round.as_mut() {
                o.received.insert(daemon);
            }
            self.round_left_queue(r);
        }
    }

    /// A task of round `r` was dispatched or removed; the round closes once its closing task
    /// was submitted and none of its tasks is left waiting.
    fn round_left_queue(&mut self, r: u64) {
        let Some(round) = self.rounds.get_mut(&r) else {
            return;
        };
        round.pending -= 1;
        if round.pending == 0 && round.closer_submitted {
            self.rounds.remove(&r);
            if self.open_round.as_ref().is_some_and(|o| o.id == r) {
                self.close_round();
            }
        }
    }

    fn close_round(&mut self) {
        if self.open_round.take().is_some() {
            // Parked daemons left the front of `idle` before the ones still in it became
            // idle, so they go back in front, in order.
            for p in self.parked.drain(..).rev() {
                self.idle.push_front(p);
            }
        }
    }
}

impl<P: Clone> Scheduler<P> {
    /// [`Scheduler::submit`] with every per-task setting, including a retry budget
    /// ([`TaskSpec::retries`]; why a retried task goes to the head of the queue is explained
    /// there). With `TaskSpec::default()` it is exactly `submit`. Needs `P: Clone` because a
    /// retryable task's payload is copied at each dispatch and kept until its daemon answers.
    pub fn submit_with(&mut self, task: TaskId, payload: P, bytes: u64, spec: TaskSpec) {
        let retries = match spec.kind {
            TaskKind::Normal => spec.retries,
            TaskKind::Everywhere { .. } => 0,
        };
        // Also kept for tasks without retries: a pipelined task may come back unstarted.
        self.copy = Some(P::clone);
        self.submit_inner(
            task,
            payload,
            bytes,
            spec.kind,
            spec.deadline,
            retries,
            true,
        );
    }
}

/// A summary (mode, counters, memory, closed), not the queue's contents: `P` need not be
/// `Debug`.
impl<P> std::fmt::Debug for Scheduler<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("mode", &self.mode)
            .field("closed", &self.closed)
            .field("counters", &self.counters())
            .field("memory", &self.memory())
            .finish_non_exhaustive()
    }
}

/// One step of the moving average of task times: the first sample is taken as is, then each
/// new one weighs a quarter.
fn ewma(avg: u64, samples: u32, sample: u64) -> u64 {
    if samples == 0 {
        sample
    } else {
        avg - avg / 4 + sample / 4
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn is_queued<P>(tasks: &HashMap<TaskId, Task<P>>, task: TaskId, seq: u64) -> bool {
    tasks
        .get(&task)
        .is_some_and(|t| t.seq == seq && t.state == TaskState::Queued)
}

fn sent_to<P>(tasks: &HashMap<TaskId, Task<P>>, task: TaskId, seq: u64, daemon: DaemonId) -> bool {
    tasks
        .get(&task)
        .is_some_and(|t| t.seq == seq && t.sent_to() == Some(daemon))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A host holds one task record per queued task (design.md, memory per unresolved task):
    /// with a 16-byte payload handle (`Arc<[u8]>`, what mirai-host uses) it stays 56 bytes.
    #[test]
    fn task_record_is_56_bytes_with_a_shared_payload() {
        assert!(std::mem::size_of::<Task<std::sync::Arc<[u8]>>>() <= 56);
        assert!(std::mem::size_of::<Task<Vec<u8>>>() <= 64);
    }

    /// Sizes of 4 GiB and more are kept whole (in the task's extras) and released exactly.
    #[test]
    fn payload_sizes_past_32_bits_are_counted_exactly() {
        let mut s: Scheduler<&str> = Scheduler::new(Config::default());
        let sizes = [
            0,
            1,
            u64::from(u32::MAX) - 1,
            u64::from(u32::MAX),
            5 << 32,
            u64::MAX / 4,
        ];
        for (i, &b) in sizes.iter().enumerate() {
            s.submit(i as u64 + 1, "p", b, TaskKind::Normal, None);
        }
        assert_eq!(s.memory().used, sizes.iter().sum::<u64>());
        for (i, &b) in sizes.iter().enumerate() {
            let before = s.memory().used;
            assert!(s.cancel(i as u64 + 1));
            assert_eq!(before - s.memory().used, b, "size {b}");
        }
        assert_eq!(s.memory().used, 0);
    }

    /// The internal candidate lists stay bounded by the daemons, however many tasks pass: a
    /// daemon offered for pipelining at every task it takes while idle once made
    /// `offer_pipeline` walk an ever longer list (quadratic time, seen as 11 us -> 50 us round
    /// trips).
    #[test]
    fn candidate_lists_stay_bounded_over_many_tasks() {
        let mut s: Scheduler<u8> = Scheduler::new(Config {
            pipeline: Some(Duration::from_millis(1)),
            ..Config::default()
        });
        let t0 = Instant::now();
        s.set_time(t0);
        s.connected(1);
        s.hello(1);
        let spec = TaskSpec {
            kind: TaskKind::Normal,
            deadline: None,
            retries: 0,
        };
        for i in 0..10_000u64 {
            if i == 5_000 {
                s.connected(2);
                s.hello(2);
            }
            s.set_time(t0 + Duration::from_micros(10 * i));
            // One at a time on one daemon, then two at a time now and then on two daemons
            // (pipelining and take-back).
            s.submit_with(2 * i + 1, 0, 1, spec);
            if i >= 5_000 && i % 7 == 0 {
                s.submit_with(2 * i + 2, 0, 1, spec);
            }
            let mut sent = Vec::new();
            while let Some(a) = s.poll_action() {
                if let Action::Dispatch { daemon, task, .. } = a {
                    sent.push((daemon, task));
                }
            }
            for (daemon, task) in sent {
                s.set_time(t0 + Duration::from_micros(10 * i + 5));
                s.result(daemon, task, false);
                while let Some(a) = s.poll_action() {
                    if let Action::Withdraw { daemon, task } = a {
                        s.withdrawn(daemon, task);
                    }
                }
            }
            let bound = 2 * s.daemons.len() + SLACK + 1;
            assert!(
                s.pipe_ready.len() <= bound,
                "pipe_ready {} at task {i}",
                s.pipe_ready.len()
            );
            assert!(
                s.piped_list.len() <= bound,
                "piped_list {} at task {i}",
                s.piped_list.len()
            );
            assert!(
                s.idle.len() <= 2 * s.n_idle as usize + SLACK + 1,
                "idle {} at task {i}",
                s.idle.len()
            );
        }
    }
}
