//! Property tests: random event sequences against an independent model of every task and
//! daemon. After each event the actions are checked one by one (each legal in the state the
//! model is in), then for completeness (everything that had to happen did), then the counters.
//! Each case ends with a reset, after which every task must have ended exactly once.
//! Some tasks are submitted with a retry budget: when their daemon disconnects they must go
//! back to the queue (in submission order, ahead of everything waiting) until the budget is
//! spent, and still end exactly once.
//! With pipelining on, the model times every daemon's tasks as the scheduler must (the same
//! moving average, from the instants it is given) and checks that a task goes to a busy daemon
//! only when no daemon is idle, only as its second, only if its tasks were short; that a
//! pipelined task is asked back only while a daemon is idle and the queue is empty; and that
//! every pipelined task given back unstarted returns to the head and still ends exactly once.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use mirai_sched::{
    Action, Config, DaemonId as D, Delivery, ErrorCode, Mode, Scheduler, TaskId as T, TaskKind,
    TaskSpec,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Connect,
    Hello(usize),
    Disconnect(usize),
    Submit {
        bytes: u64,
        deadline: Option<u64>,
        retries: u32,
    },
    Everywhere {
        k: usize,
        deadline: Option<u64>,
    },
    Cancel(usize),
    Reply {
        pick: usize,
        pos: usize,
        last: bool,
    },
    Bogus {
        daemon: usize,
        task: usize,
        last: bool,
    },
    /// A daemon gives back a task it holds: pipelined (as an answer to a withdraw or cancel,
    /// or after its `last` result) or cancelled (not started while leaving).
    Withdrawn {
        pick: usize,
        pos: usize,
    },
    /// A give-back for a task the daemon does not hold.
    BogusWithdrawn {
        daemon: usize,
        task: usize,
    },
    Advance(u64),
    ExitAll,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let deadline = prop_oneof![3 => Just(None), 1 => (1u64..60).prop_map(Some)];
    // Weights: replies and submissions dominate; a reset is rare (about one per case).
    prop_oneof![
        20 => Just(Op::Connect),
        20 => any::<usize>().prop_map(Op::Hello),
        10 => any::<usize>().prop_map(Op::Disconnect),
        50 => (0u64..100, deadline.clone(), prop_oneof![2 => Just(0u32), 1 => 1u32..4])
            .prop_map(|(bytes, deadline, retries)| Op::Submit { bytes, deadline, retries }),
        10 => (1usize..5, deadline).prop_map(|(k, deadline)| Op::Everywhere { k, deadline }),
        20 => any::<usize>().prop_map(Op::Cancel),
        60 => (any::<usize>(), any::<usize>(), prop::bool::weighted(0.1))
            .prop_map(|(pick, pos, last)| Op::Reply { pick, pos, last }),
        5 => (any::<usize>(), any::<usize>(), any::<bool>()).prop_map(|(daemon, task, last)| Op::Bogus { daemon, task, last }),
        15 => (any::<usize>(), any::<usize>()).prop_map(|(pick, pos)| Op::Withdrawn { pick, pos }),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(daemon, task)| Op::BogusWithdrawn { daemon, task }),
        15 => (0u64..30).prop_map(Op::Advance),
        3 => Just(Op::ExitAll),
        1 => Just(Op::Reset),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TState {
    Queued,
    /// Held by this daemon (it will reply), whether or not the handle is resolved.
    Sent(u64),
    /// Neither queued nor held by a daemon.
    Gone,
}

struct MTask {
    bytes: u64,
    deadline: Option<u64>,
    round: Option<usize>,
    state: TState,
    /// Times its handle was resolved: delivered, failed, or cancelled successfully.
    ends: u32,
    cancel_sent: bool,
    /// Sends left after a lost daemon.
    retries_left: u32,
    /// Times it was dispatched.
    attempts: u32,
    /// Whether it was ever sent (direct-mode reset: 7 only for tasks never sent).
    sent_once: bool,
    /// Submitted with `submit_with` (only those may be pipelined).
    copyable: bool,
    /// Its current dispatch went to a busy daemon.
    piped: bool,
}

#[derive(Default)]
struct MDaemon {
    hello: bool,
    left: bool,
    /// Tasks it received and has not answered, in order.
    held: VecDeque<u64>,
    /// When it could start its current task (model ms).
    since: Option<u64>,
    /// Moving average of its task times (ns) over `samples` results.
    ewma_ns: u64,
    samples: u32,
    /// The task it was asked to give back, unanswered.
    withdraw: Option<u64>,
}

/// What the current event allows a `Fail` to be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Other,
    Submit(u64),
    Disconnect(u64),
    Advance(u64),
    Reset,
}

struct Model {
    mode: Mode,
    limit: Option<u64>,
    closed: bool,
    now: u64,
    next_daemon: u64,
    next_task: u64,
    daemons: BTreeMap<u64, MDaemon>,
    tasks: BTreeMap<u64, MTask>,
    /// Task ids of each everywhere round, and the daemons it reached.
    rounds: Vec<(Vec<u64>, HashSet<u64>)>,
    ring: VecDeque<u64>,
    cumulative: u64,
    submitted: u64,
    peak: u64,
    /// Tasks of the daemon just disconnected that were not retried: they must fail with 19.
    lost: Vec<u64>,
    /// Retries that happened, for the summary.
    retried: u64,
    /// Pipelining threshold (ms), if on.
    pipeline: Option<u64>,
    /// Pipelined dispatches and give-backs, for the summary.
    pipelined: u64,
    withdrawn: u64,
}

impl Model {
    fn new(mode: Mode, limit: Option<u64>, pipeline: Option<u64>) -> Self {
        Model {
            pipeline: if mode == Mode::Dispatcher {
                pipeline
            } else {
                None
            },
            pipelined: 0,
            withdrawn: 0,
            mode,
            limit: if mode == Mode::Dispatcher {
                limit
            } else {
                None
            },
            closed: false,
            now: 0,
            next_daemon: 100,
            next_task: 1,
            daemons: BTreeMap::new(),
            tasks: BTreeMap::new(),
            rounds: Vec::new(),
            ring: VecDeque::new(),
            cumulative: 0,
            submitted: 0,
            peak: 0,
            lost: Vec::new(),
            retried: 0,
        }
    }

    fn used(&self) -> u64 {
        if self.mode == Mode::Direct {
            return 0;
        }
        self.tasks
            .values()
            .filter(|t| t.state == TState::Queued)
            .map(|t| t.bytes)
            .sum()
    }

    fn head(&self) -> Option<u64> {
        self.tasks
            .iter()
            .find(|(_, t)| t.state == TState::Queued)
            .map(|(&id, _)| id)
    }

    /// The round open now: it reached some daemon and still has queued tasks.
    fn open_round(&self) -> Option<usize> {
        self.rounds.iter().position(|(ids, received)| {
            !received.is_empty() && ids.iter().any(|id| self.tasks[id].state == TState::Queued)
        })
    }

    fn eligible(&self, d: u64) -> bool {
        let m = &self.daemons[&d];
        let in_round = self
            .open_round()
            .is_some_and(|r| self.rounds[r].1.contains(&d));
        m.hello && !m.left && m.held.is_empty() && !in_round
    }

    /// Whether `task` may be sent to busy daemon `d` as its second (pipelining).
    fn pipe_ok(&self, d: u64, task: u64) -> bool {
        let Some(thr) = self.pipeline else {
            return false;
        };
        let m = &self.daemons[&d];
        let t = &self.tasks[&task];
        m.hello
            && !m.left
            && m.held.len() == 1
            && m.withdraw.is_none()
            && m.samples >= mirai_sched::PIPELINE_MIN_SAMPLES
            && m.ewma_ns < thr * 1_000_000
            && m.since.is_some_and(|s| self.now - s < thr)
            && self.open_round().is_none()
            && t.round.is_none()
            && t.copyable
            && self.tasks[&m.held[0]].round.is_none()
    }

    fn any_idle(&self) -> bool {
        self.daemons.keys().any(|&d| self.eligible(d))
    }

    /// A result (or give-back) of `t` by `d`: `t` leaves the daemon; the next one, if any,
    /// becomes current.
    fn unhold(&mut self, d: u64, t: u64, sample: bool) {
        let now = self.now;
        let m = self.daemons.get_mut(&d).expect("holder");
        let front = m.held.front() == Some(&t);
        if sample && front && !m.left {
            let ns = (now - m.since.expect("timed")) * 1_000_000;
            m.ewma_ns = if m.samples == 0 {
                ns
            } else {
                m.ewma_ns - m.ewma_ns / 4 + ns / 4
            };
            m.samples += 1;
        }
        let pos = m.held.iter().position(|&x| x == t).expect("held");
        m.held.remove(pos);
        if m.withdraw == Some(t) {
            m.withdraw = None;
        }
        if front {
            m.since = if m.held.is_empty() { None } else { Some(now) };
        }
    }

    fn end(&mut self, t: u64) {
        let task = self.tasks.get_mut(&t).expect("known task");
        task.ends += 1;
        assert_eq!(task.ends, 1, "task {t} ended twice");
    }
}

struct Harness {
    s: Scheduler<u64>,
    m: Model,
    t0: Instant,
}

impl Harness {
    fn new(mode: Mode, limit: Option<u64>) -> Self {
        Self::with_pipeline(mode, limit, None)
    }

    fn with_pipeline(mode: Mode, limit: Option<u64>, pipeline: Option<u64>) -> Self {
        Harness {
            s: Scheduler::new(
                Config::new()
                    .with_mode(mode)
                    .with_memory_limit(limit)
                    .with_pipeline(pipeline.map(Duration::from_millis)),
            ),
            m: Model::new(mode, limit, pipeline),
            t0: Instant::now(),
        }
    }

    /// A daemon (one of the model's or an unknown one) and a task id (known or not) that the
    /// daemon does not hold, for a reply that must be ignored; `None` if it holds it.
    fn bogus(&self, daemon: usize, task: usize) -> Option<(u64, u64)> {
        let mut ids: Vec<u64> = self.m.daemons.keys().copied().collect();
        ids.push(99);
        let d = ids[daemon % ids.len()];
        let t = (task % (self.m.next_task as usize + 2)) as u64;
        let held = self.m.daemons.get(&d).is_some_and(|m| m.held.contains(&t));
        (!held).then_some((d, t))
    }

    fn pick<T: Copy>(v: &[T], i: usize) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[i % v.len()])
        }
    }

    fn run(&mut self, op: &Op) {
        let mut ctx = Ctx::Other;
        let mut expect_init: Option<u64> = None;
        let mut expect_ack: Option<u64> = None;
        let mut expect_exit: Option<Vec<u64>> = None;
        let mut expect_cancel: Option<(u64, u64)> = None;
        self.s.set_time(self.t0 + Duration::from_millis(self.m.now));
        match *op {
            Op::Connect => {
                let d = self.m.next_daemon;
                self.m.next_daemon += 1;
                self.m.daemons.insert(d, MDaemon::default());
                self.s.connected(D(d));
            }
            Op::Hello(i) => {
                let fresh: Vec<u64> = self
                    .m
                    .daemons
                    .iter()
                    .filter(|(_, m)| !m.hello)
                    .map(|(&d, _)| d)
                    .collect();
                let Some(d) = Self::pick(&fresh, i) else {
                    return;
                };
                if !self.m.closed {
                    let m = self.m.daemons.get_mut(&d).expect("connected");
                    m.hello = true;
                    self.m.cumulative += 1;
                    self.m.ring.push_back(d);
                    expect_init = Some(d);
                }
                self.s.hello(D(d));
            }
            Op::Disconnect(i) => {
                let all: Vec<u64> = self.m.daemons.keys().copied().collect();
                let Some(d) = Self::pick(&all, i) else { return };
                ctx = Ctx::Disconnect(d);
                // The daemon leaves the model first: its retried tasks may be dispatched
                // again (to other daemons) by the same event.
                let m = self.m.daemons.remove(&d).expect("connected");
                self.m.lost.clear();
                for t in m.held {
                    let closed = self.m.closed;
                    let task = self.m.tasks.get_mut(&t).expect("known");
                    if task.ends == 0 && task.retries_left > 0 && !closed {
                        task.retries_left -= 1;
                        task.state = TState::Queued;
                        self.m.retried += 1;
                    } else {
                        self.m.lost.push(t);
                    }
                }
                self.s.disconnected(D(d));
            }
            Op::Submit {
                bytes,
                deadline,
                retries,
            } => {
                let t = self.new_task(bytes, deadline, None);
                let copyable = !(retries == 0 && t % 2 == 0);
                let mt = self.m.tasks.get_mut(&t).expect("new");
                mt.retries_left = retries;
                mt.copyable = copyable;
                ctx = Ctx::Submit(t);
                let at = deadline.map(|d| self.t0 + Duration::from_millis(self.m.now + d));
                if retries == 0 && t % 2 == 0 {
                    self.s.submit(T(t), t, bytes, TaskKind::Normal, at);
                } else {
                    let spec = TaskSpec::new().with_deadline(at).with_retries(retries);
                    self.s.submit_with(T(t), t, bytes, spec);
                }
            }
            Op::Everywhere { k, deadline } => {
                let round = if self.m.mode == Mode::Dispatcher && !self.m.closed {
                    self.m.rounds.push((Vec::new(), HashSet::new()));
                    Some(self.m.rounds.len() - 1)
                } else {
                    None
                };
                for i in 0..k {
                    let t = self.new_task(7, deadline, round);
                    if let Some(r) = round {
                        self.m.rounds[r].0.push(t);
                    }
                    ctx = Ctx::Submit(t);
                    let at = deadline.map(|d| self.t0 + Duration::from_millis(self.m.now + d));
                    self.s.submit(
                        T(t),
                        t,
                        7,
                        TaskKind::Everywhere {
                            closes_round: i + 1 == k,
                        },
                        at,
                    );
                    // Actions are checked per submission so `Ctx::Submit` names the right task.
                    self.check_actions(ctx, None, None, None, None);
                }
                self.check_after(ctx);
                return;
            }
            Op::Cancel(i) => {
                let t = (i % (self.m.next_task as usize + 2)) as u64;
                let expected = match self.m.tasks.get(&t) {
                    Some(task) if self.m.mode == Mode::Dispatcher && !self.m.closed => {
                        match task.state {
                            TState::Queued => true,
                            TState::Sent(_) => task.ends == 0,
                            TState::Gone => false,
                        }
                    }
                    _ => false,
                };
                let got = self.s.cancel(T(t));
                assert_eq!(got, expected, "cancel({t})");
                if got {
                    self.m.end(t);
                    let task = self.m.tasks.get_mut(&t).expect("known");
                    match task.state {
                        TState::Queued => task.state = TState::Gone,
                        TState::Sent(d) => expect_cancel = Some((d, t)),
                        TState::Gone => unreachable!(),
                    }
                }
            }
            Op::Reply { pick, pos, last } => {
                let busy: Vec<u64> = self
                    .m
                    .daemons
                    .iter()
                    .filter(|(_, m)| !m.held.is_empty())
                    .map(|(&d, _)| d)
                    .collect();
                let Some(d) = Self::pick(&busy, pick) else {
                    return;
                };
                let held = &self.m.daemons[&d].held;
                // Direct-mode daemons answer in order; other positions exercise the pruning.
                let pos = if self.m.mode == Mode::Direct && pos % 4 == 0 {
                    pos % held.len()
                } else {
                    0
                };
                let t = held[pos];
                self.m.unhold(d, t, self.m.mode == Mode::Dispatcher);
                let task = &self.m.tasks[&t];
                let expected = if task.ends == 0 && !self.m.closed {
                    Delivery::Deliver
                } else {
                    Delivery::Discard
                };
                let got = self.s.result(D(d), T(t), last);
                assert_eq!(got, expected, "result({d}, {t})");
                if got == Delivery::Deliver {
                    self.m.end(t);
                }
                self.m.tasks.get_mut(&t).expect("known").state = TState::Gone;
                let m = self.m.daemons.get_mut(&d).expect("busy");
                if last && !m.left {
                    m.left = true;
                    expect_ack = Some(d);
                }
            }
            Op::Bogus { daemon, task, last } => {
                let Some((d, t)) = self.bogus(daemon, task) else {
                    return;
                };
                let before = (self.s.counters(), self.s.memory());
                // A `last` result from a daemon in the pool holding no task is a leave notice.
                let notice = last
                    && self.m.daemons.get(&d).is_some_and(|m| {
                        m.hello && !m.left && (self.m.mode == Mode::Direct || m.held.is_empty())
                    });
                assert_eq!(
                    self.s.result(D(d), T(t), last),
                    Delivery::Discard,
                    "bogus result({d}, {t})"
                );
                assert_eq!((self.s.counters(), self.s.memory()), before);
                if notice {
                    self.m.daemons.get_mut(&d).expect("known").left = true;
                    expect_ack = Some(d);
                }
            }
            Op::Withdrawn { pick, pos } => {
                let holders: Vec<u64> = self
                    .m
                    .daemons
                    .iter()
                    .filter(|(_, m)| {
                        m.held
                            .iter()
                            .any(|t| self.m.tasks[t].piped || self.m.tasks[t].ends > 0)
                    })
                    .map(|(&d, _)| d)
                    .collect();
                let Some(d) = Self::pick(&holders, pick) else {
                    return;
                };
                let piped: Vec<u64> = self.m.daemons[&d]
                    .held
                    .iter()
                    .copied()
                    .filter(|t| self.m.tasks[t].piped || self.m.tasks[t].ends > 0)
                    .collect();
                let t = piped[pos % piped.len()];
                let expected = !self.m.closed && self.m.mode == Mode::Dispatcher;
                assert_eq!(
                    self.s.withdrawn(D(d), T(t)),
                    expected,
                    "withdrawn({d}, {t})"
                );
                if expected {
                    self.m.unhold(d, t, false);
                    self.m.withdrawn += 1;
                    let task = self.m.tasks.get_mut(&t).expect("known");
                    task.piped = false;
                    if task.ends == 0 {
                        task.state = TState::Queued;
                        task.attempts -= 1;
                    } else {
                        task.state = TState::Gone;
                    }
                }
            }
            Op::BogusWithdrawn { daemon, task } => {
                let Some((d, t)) = self.bogus(daemon, task) else {
                    return;
                };
                let before = (self.s.counters(), self.s.memory());
                assert!(!self.s.withdrawn(D(d), T(t)), "bogus withdrawn({d}, {t})");
                assert_eq!((self.s.counters(), self.s.memory()), before);
            }
            Op::Advance(ms) => {
                self.m.now += ms;
                ctx = Ctx::Advance(self.m.now);
                self.s
                    .handle_timeout(self.t0 + Duration::from_millis(self.m.now));
            }
            Op::ExitAll => {
                expect_exit = Some(self.m.daemons.keys().copied().collect());
                self.s.exit_all();
            }
            Op::Reset => {
                ctx = Ctx::Reset;
                self.s.reset();
            }
        }
        self.check_actions(ctx, expect_init, expect_ack, expect_exit, expect_cancel);
        self.check_after(ctx);
    }

    fn new_task(&mut self, bytes: u64, deadline: Option<u64>, round: Option<usize>) -> u64 {
        let t = self.m.next_task;
        self.m.next_task += 1;
        self.m.submitted += 1;
        self.m.tasks.insert(
            t,
            MTask {
                bytes,
                deadline: deadline.map(|d| self.m.now + d),
                round,
                state: TState::Queued,
                ends: 0,
                cancel_sent: false,
                retries_left: 0,
                attempts: 0,
                sent_once: false,
                copyable: false,
                piped: false,
            },
        );
        t
    }

    /// Every action must be legal in the model's state; applies it to the model.
    fn check_actions(
        &mut self,
        ctx: Ctx,
        mut expect_init: Option<u64>,
        mut expect_ack: Option<u64>,
        expect_exit: Option<Vec<u64>>,
        mut expect_cancel: Option<(u64, u64)>,
    ) {
        let mut exits = Vec::new();
        let mut last_fail: Option<(u64, u64)> = None;
        while let Some(a) = self.s.poll_action() {
            match a {
                Action::Init { daemon, ordinal } => {
                    let daemon = daemon.get();
                    assert_eq!(expect_init.take(), Some(daemon), "unexpected init");
                    assert_eq!(ordinal, self.m.cumulative);
                }
                Action::Dispatch {
                    daemon,
                    task,
                    payload,
                } => {
                    let (daemon, task) = (daemon.get(), task.get());
                    assert_eq!(payload, task);
                    assert!(expect_init.is_none(), "dispatch before init");
                    assert!(!self.m.closed, "dispatch after reset");
                    let t = &self.m.tasks[&task];
                    assert_eq!(
                        t.state,
                        TState::Queued,
                        "task {task} dispatched twice or after removal"
                    );
                    assert_eq!(t.ends, 0);
                    // FIFO, strict head-of-line: always the oldest queued task.
                    assert_eq!(self.m.head(), Some(task), "dispatch out of FIFO order");
                    let m = &self.m.daemons[&daemon];
                    assert!(m.hello && !m.left, "dispatch to a daemon outside the pool");
                    let mut piped = false;
                    match self.m.mode {
                        Mode::Dispatcher if !self.m.eligible(daemon) => {
                            assert!(
                                !self.m.any_idle() && self.m.pipe_ok(daemon, task),
                                "dispatch to busy or round-excluded daemon {daemon}"
                            );
                            piped = true;
                            self.m.pipelined += 1;
                        }
                        Mode::Dispatcher => {
                            if let Some(r) = t.round {
                                assert!(
                                    self.m.rounds[r].1.insert(daemon),
                                    "round sent twice to daemon {daemon}"
                                );
                            }
                        }
                        Mode::Direct => {
                            // Round-robin: the ring's next live daemon, which goes to the back.
                            while let Some(&d) = self.m.ring.front() {
                                if self.m.daemons.get(&d).is_some_and(|m| !m.left) {
                                    break;
                                }
                                self.m.ring.pop_front();
                            }
                            assert_eq!(self.m.ring.pop_front(), Some(daemon), "not round-robin");
                            self.m.ring.push_back(daemon);
                        }
                        _ => unreachable!("a mode or action the model does not know"),
                    }
                    let mt = self.m.tasks.get_mut(&task).expect("known");
                    mt.state = TState::Sent(daemon);
                    mt.attempts += 1;
                    mt.sent_once = true;
                    mt.piped = piped;
                    if !piped {
                        self.m.daemons.get_mut(&daemon).expect("known").since = Some(self.m.now);
                    }
                    assert_eq!(
                        self.s.attempts(T(task)),
                        Some(mt.attempts),
                        "attempts of {task}"
                    );
                    self.m
                        .daemons
                        .get_mut(&daemon)
                        .expect("known")
                        .held
                        .push_back(task);
                }
                Action::Cancel { daemon, task } => {
                    let (daemon, task) = (daemon.get(), task.get());
                    let t = self.m.tasks.get_mut(&task).expect("known");
                    assert_eq!(self.m.mode, Mode::Dispatcher);
                    assert_eq!(
                        t.state,
                        TState::Sent(daemon),
                        "cancel sent to a daemon not holding the task"
                    );
                    assert_eq!(t.ends, 1, "cancel for a task whose handle is not resolved");
                    assert!(!t.cancel_sent, "second cancel for task {task}");
                    t.cancel_sent = true;
                    if expect_cancel == Some((daemon, task)) {
                        expect_cancel = None;
                    } else {
                        assert!(matches!(ctx, Ctx::Advance(_)), "unexpected cancel");
                    }
                }
                Action::Withdraw { daemon, task } => {
                    let (daemon, task) = (daemon.get(), task.get());
                    assert!(self.m.pipeline.is_some(), "withdraw without pipelining");
                    let m = &self.m.daemons[&daemon];
                    let t = &self.m.tasks[&task];
                    assert!(
                        !m.left && m.held.len() == 2 && m.held[1] == task && t.piped,
                        "withdraw of task {task} that is not pipelined at daemon {daemon}"
                    );
                    assert!(m.withdraw.is_none(), "second withdraw at daemon {daemon}");
                    assert_eq!(t.ends, 0, "withdraw of a resolved task {task}");
                    assert!(self.m.head().is_none(), "withdraw while tasks are queued");
                    self.m.daemons.get_mut(&daemon).expect("known").withdraw = Some(task);
                }
                Action::Ack { daemon } => {
                    let daemon = daemon.get();
                    assert_eq!(expect_ack.take(), Some(daemon), "unexpected ack")
                }
                Action::Exit { daemon } => exits.push(daemon.get()),
                Action::Fail { task, code } => {
                    let task = task.get();
                    let t = &self.m.tasks[&task];
                    assert_eq!(t.ends, 0, "fail for resolved task {task}");
                    let ok = match (code, ctx) {
                        (ErrorCode::TIMED_OUT, Ctx::Advance(now)) => {
                            t.deadline.is_some_and(|d| d <= now) && t.state != TState::Gone
                        }
                        (ErrorCode::CONNECTION_RESET, Ctx::Disconnect(d)) => {
                            t.state == TState::Sent(d) && self.m.lost.contains(&task)
                        }
                        (ErrorCode::CONNECTION_RESET, Ctx::Reset) => match t.state {
                            TState::Sent(_) => true,
                            TState::Queued => self.m.mode == Mode::Dispatcher || t.sent_once,
                            TState::Gone => false,
                        },
                        (ErrorCode::OBJECT_CLOSED, Ctx::Reset) => {
                            self.m.mode == Mode::Direct && t.state == TState::Queued && !t.sent_once
                        }
                        (ErrorCode::OBJECT_CLOSED, Ctx::Submit(s)) => self.m.closed && s == task,
                        _ => false,
                    };
                    assert!(ok, "fail {task} with {code:?} not allowed here");
                    // Order: by id (submission / send order), or by deadline for timeouts.
                    // A disconnect fails its daemon's tasks in send order, which a retried
                    // task (sent again later) can make differ from id order.
                    let key = match ctx {
                        Ctx::Advance(_) => (t.deadline.unwrap_or(0), task),
                        Ctx::Disconnect(_) => {
                            let pos = self.m.lost.iter().position(|&x| x == task);
                            (pos.unwrap_or(0) as u64, task)
                        }
                        _ => (0, task),
                    };
                    if let Some(prev) = last_fail {
                        assert!(prev < key, "fails out of order");
                    }
                    last_fail = Some(key);
                    if !(code == ErrorCode::TIMED_OUT && matches!(t.state, TState::Sent(_))) {
                        self.m.tasks.get_mut(&task).expect("known").state = TState::Gone;
                    }
                    self.m.end(task);
                }
                _ => unreachable!("a mode or action the model does not know"),
            }
        }
        assert_eq!(expect_init, None, "missing init");
        assert_eq!(expect_ack, None, "missing ack");
        assert_eq!(expect_cancel, None, "missing cancel");
        if let Some(e) = expect_exit {
            assert_eq!(exits, e, "exit_all");
        } else {
            assert!(exits.is_empty());
        }
    }

    /// Completeness, liveness and counters.
    fn check_after(&mut self, ctx: Ctx) {
        match ctx {
            Ctx::Disconnect(_) => {
                for t in std::mem::take(&mut self.m.lost) {
                    let task = self.m.tasks.get_mut(&t).expect("known");
                    assert_eq!(task.ends, 1, "task {t} of a lost daemon not resolved");
                    task.state = TState::Gone;
                }
            }
            Ctx::Advance(now) => {
                for (id, t) in &self.m.tasks {
                    if t.deadline.is_some_and(|d| d <= now) && t.state != TState::Gone {
                        assert_eq!(t.ends, 1, "task {id} past its deadline not resolved");
                        if self.m.mode == Mode::Dispatcher {
                            assert!(
                                t.cancel_sent,
                                "timed-out task {id} not cancelled at its daemon"
                            );
                        }
                    }
                }
            }
            Ctx::Reset => {
                self.m.closed = true;
                for (id, t) in self.m.tasks.iter_mut() {
                    assert_eq!(t.ends, 1, "task {id} not resolved by reset");
                    t.state = TState::Gone;
                }
                for m in self.m.daemons.values_mut() {
                    m.held.clear();
                    m.withdraw = None;
                    m.since = None;
                }
            }
            Ctx::Submit(_) | Ctx::Other => {}
        }
        // Work-conserving: nothing queued while a daemon could take the head.
        if !self.m.closed && self.m.head().is_some() {
            match self.m.mode {
                Mode::Dispatcher => {
                    let free: Vec<u64> = self
                        .m
                        .daemons
                        .keys()
                        .copied()
                        .filter(|&d| self.m.eligible(d))
                        .collect();
                    assert!(
                        free.is_empty(),
                        "head waits while daemons {free:?} could take it"
                    );
                    let head = self.m.head().expect("queued");
                    let pipe: Vec<u64> = self
                        .m
                        .daemons
                        .keys()
                        .copied()
                        .filter(|&d| self.m.pipe_ok(d, head))
                        .collect();
                    assert!(
                        pipe.is_empty(),
                        "head waits while daemons {pipe:?} could take it pipelined"
                    );
                }
                Mode::Direct => {
                    assert!(
                        !self.m.daemons.values().any(|m| m.hello && !m.left),
                        "direct-mode task waits while a daemon is in the ring"
                    );
                }
                _ => unreachable!("a mode or action the model does not know"),
            }
        }
        // Take-back: no daemon idle for want of a pipelined task that could be asked back.
        if self.m.pipeline.is_some()
            && !self.m.closed
            && self.m.head().is_none()
            && self.m.open_round().is_none()
        {
            let idle = self
                .m
                .daemons
                .keys()
                .filter(|&&d| self.m.eligible(d))
                .count();
            let asked = self
                .m
                .daemons
                .values()
                .filter(|m| m.withdraw.is_some())
                .count();
            let candidates: Vec<u64> = self
                .m
                .daemons
                .values()
                .filter(|m| !m.left && m.held.len() == 2 && m.withdraw.is_none())
                .map(|m| m.held[1])
                .filter(|t| self.m.tasks[t].piped && self.m.tasks[t].ends == 0)
                .collect();
            assert!(
                idle <= asked || candidates.is_empty(),
                "{idle} idle daemons, {asked} withdraws asked, while {candidates:?} could be asked back"
            );
        }
        // Counters against the model.
        let c = self.s.counters();
        let queued = self
            .m
            .tasks
            .values()
            .filter(|t| t.state == TState::Queued)
            .count() as u64;
        // Dispatcher mode: a daemon runs at most its first held task (none once it has left);
        // a task held behind it (pipelined, not started) counts as awaiting.
        let running = |m: &MDaemon| match self.m.mode {
            Mode::Dispatcher if m.left => 0,
            Mode::Dispatcher => m.held.len().min(1) as u64,
            Mode::Direct => m.held.len() as u64,
            _ => unreachable!("a mode or action the model does not know"),
        };
        let held: u64 = self.m.daemons.values().map(|m| m.held.len() as u64).sum();
        let executing: u64 = self.m.daemons.values().map(running).sum();
        let awaiting = queued + held - executing;
        let connections = match self.m.mode {
            Mode::Dispatcher => self.m.daemons.values().filter(|m| m.hello).count() as u64,
            Mode::Direct => self.m.daemons.len() as u64,
            _ => unreachable!("a mode or action the model does not know"),
        };
        assert_eq!(c.connections, connections, "connections");
        assert_eq!(c.cumulative, self.m.cumulative, "cumulative");
        assert_eq!(c.awaiting, awaiting, "awaiting");
        assert_eq!(c.executing, executing, "executing");
        assert_eq!(
            c.completed,
            self.m.submitted - awaiting - executing,
            "completed"
        );
        if self.m.mode == Mode::Dispatcher {
            assert!(
                c.executing <= c.connections,
                "executing beyond the daemons: {c:?}"
            );
        }
        let mem = self.s.memory();
        let used = self.m.used();
        self.m.peak = self.m.peak.max(used);
        assert_eq!(mem.used, used, "memory used");
        assert_eq!(mem.peak, self.m.peak, "memory peak");
        assert_eq!(mem.limit, self.m.limit);
        assert_eq!(
            self.s.admit(),
            self.m.limit.is_none_or(|l| used < l),
            "admit"
        );
        // The timer matches the earliest deadline of a task whose handle is still pending.
        let earliest = self
            .m
            .tasks
            .values()
            .filter(|t| t.ends == 0 && t.state != TState::Gone)
            .filter_map(|t| t.deadline)
            .min();
        assert_eq!(
            self.s.poll_timeout(),
            earliest.map(|d| self.t0 + Duration::from_millis(d)),
            "poll_timeout"
        );
    }

    fn finish(&mut self) {
        if !self.m.closed {
            self.run(&Op::Reset);
        }
        for (id, t) in &self.m.tasks {
            assert_eq!(t.ends, 1, "task {id} ended {} times", t.ends);
        }
    }
}

fn check(mode: Mode, limit: Option<u64>, ops: &[Op]) {
    check_piped(mode, limit, None, ops);
}

fn check_piped(mode: Mode, limit: Option<u64>, pipeline: Option<u64>, ops: &[Op]) {
    let mut h = Harness::with_pipeline(mode, limit, pipeline);
    for op in ops {
        h.run(op);
    }
    h.finish();
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dispatcher_mode_keeps_every_rule(limit in prop::option::of(0u64..400), ops in ops()) {
        check(Mode::Dispatcher, limit, &ops);
    }

    #[test]
    fn direct_mode_keeps_every_rule(ops in ops()) {
        check(Mode::Direct, None, &ops);
    }

    /// Many daemons and few resets: long-lived queues, rounds and timeouts interleaved.
    #[test]
    fn dispatcher_mode_busy_pool(
        ops in prop::collection::vec(
            op().prop_filter("no reset", |o| !matches!(o, Op::Reset)),
            100..400,
        )
    ) {
        let mut all = vec![Op::Connect; 6];
        all.extend((0..6).map(Op::Hello));
        all.extend(ops);
        check(Mode::Dispatcher, None, &all);
    }
}

/// Pipelining on: with short task times (answers come within a few model milliseconds of
/// each other) daemons are pipelined to, tasks are asked back and given back, daemons leave
/// and are lost holding two tasks; every rule still holds and every task ends exactly once.
/// The run must actually exercise pipelining, take-backs and give-backs.
#[test]
fn pipelining_keeps_every_rule() {
    let quick = prop_oneof![
        6 => Just(Op::Connect),
        8 => any::<usize>().prop_map(Op::Hello),
        3 => any::<usize>().prop_map(Op::Disconnect),
        30 => (0u64..50, prop::option::of(1u64..40), prop_oneof![3 => Just(1u32), 1 => 0u32..3])
            .prop_map(|(bytes, deadline, retries)| Op::Submit { bytes, deadline, retries }),
        6 => any::<usize>().prop_map(Op::Cancel),
        30 => (any::<usize>(), any::<usize>(), prop::bool::weighted(0.05))
            .prop_map(|(pick, pos, last)| Op::Reply { pick, pos, last }),
        8 => (any::<usize>(), any::<usize>()).prop_map(|(pick, pos)| Op::Withdrawn { pick, pos }),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(daemon, task)| Op::BogusWithdrawn { daemon, task }),
        2 => (any::<usize>(), any::<usize>(), any::<bool>()).prop_map(|(daemon, task, last)| Op::Bogus { daemon, task, last }),
        10 => (0u64..4).prop_map(Op::Advance),
        1 => (1usize..4, Just(None)).prop_map(|(k, deadline)| Op::Everywhere { k, deadline }),
        1 => Just(Op::ExitAll),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 384,
        ..ProptestConfig::default()
    });
    let totals = std::cell::Cell::new((0u64, 0u64, 0u64));
    let strategy = (
        prop::option::of(0u64..300),
        1u64..8,
        prop::collection::vec(quick, 50..400),
    );
    runner
        .run(&strategy, |(limit, threshold, ops)| {
            let mut h = Harness::with_pipeline(Mode::Dispatcher, limit, Some(threshold));
            for op in &ops {
                h.run(op);
            }
            let (p, w, r) = totals.get();
            totals.set((p + h.m.pipelined, w + h.m.withdrawn, r + h.m.retried));
            h.finish();
            Ok(())
        })
        .unwrap();
    let (pipelined, withdrawn, retried) = totals.get();
    assert!(pipelined > 500, "only {pipelined} pipelined dispatches");
    assert!(withdrawn > 100, "only {withdrawn} give-backs");
    assert!(retried > 50, "only {retried} retries");
}

/// Daemons come and go all the time and most tasks may be retried: every retried task is
/// queued again in order, dispatched again, and still ends exactly once.
#[test]
fn retries_under_churn_end_every_task_once() {
    let churn = prop_oneof![
        8 => Just(Op::Connect),
        8 => any::<usize>().prop_map(Op::Hello),
        6 => any::<usize>().prop_map(Op::Disconnect),
        12 => (0u64..50, prop::option::of(1u64..200), 0u32..3)
            .prop_map(|(bytes, deadline, retries)| Op::Submit { bytes, deadline, retries }),
        4 => any::<usize>().prop_map(Op::Cancel),
        10 => (any::<usize>(), any::<usize>(), prop::bool::weighted(0.05))
            .prop_map(|(pick, pos, last)| Op::Reply { pick, pos, last }),
        3 => (0u64..20).prop_map(Op::Advance),
        1 => (1usize..4, Just(None)).prop_map(|(k, deadline)| Op::Everywhere { k, deadline }),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    });
    let retried = std::cell::Cell::new(0u64);
    let strategy = (prop::bool::ANY, prop::collection::vec(churn, 50..300));
    runner
        .run(&strategy, |(direct, ops)| {
            let mode = if direct {
                Mode::Direct
            } else {
                Mode::Dispatcher
            };
            let mut h = Harness::new(mode, None);
            for op in &ops {
                h.run(op);
            }
            retried.set(retried.get() + h.m.retried);
            h.finish();
            Ok(())
        })
        .unwrap();
    // The property is vacuous unless retries actually happened.
    assert!(
        retried.get() > 100,
        "only {} retries exercised",
        retried.get()
    );
}
