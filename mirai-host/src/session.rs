//! The host's side of the protocol as a pure state machine: what happens on the listener
//! (connections opening and closing, messages arriving) and the time in, what to do about it
//! out. No sockets, threads or clocks, so that the handling of everything a peer could send (or
//! garble) can be driven directly by tests and by the fuzzer (`mirai-host/fuzz`, target
//! `session`). The daemon's counterpart is `mirai_daemon::session`.
//!
//! The session owns the [`Scheduler`] and speaks the protocol around it:
//! - admission: a new connection must say hello within [`SessionConfig::hello_timeout`], and
//!   at most [`SessionConfig::max_pending`] may be waiting to, so that half-open connections
//!   cannot pile up; a hello must speak this [`PROTOCOL_VERSION`] and come once;
//! - frames are decoded within [`SessionConfig::max_frame`] bytes, and only those a daemon
//!   may send (hello, then results and give-backs) are accepted: anything else drops the peer,
//!   with a reason that names frames by kind and size and never quotes the peer's bytes;
//! - valid frames become scheduler events (hello, result, withdrawn), and the scheduler's
//!   actions become frames to send ([`Output`]), the init bundle with the daemon's RNG stream.
//!
//! The runtime feeds it ([`Session::connected`], [`Session::message`],
//! [`Session::disconnected`], [`Session::tick`] when [`Session::next_timer`] is due), submits
//! and cancels through [`Session::sched_mut`], and after each call carries out every
//! [`Session::poll_output`]. The times given never go backwards. Outputs come out in the order they arose, so a daemon gets its
//! frames in the order the scheduler produced them (an init before its tasks, a task before
//! its cancel). A task's body `B` goes from submission to [`Output::Task`] by move: the session
//! neither copies nor looks at it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use mirai_proto::{Frame, Init, RngStream, TaskResult, PROTOCOL_VERSION};
use mirai_sched::{Action, Config as SchedConfig, DaemonId, Delivery, Scheduler, TaskId};
use mirai_transport::{DisconnectReason, PeerId};

use crate::{rng, Outcome};

/// A hello timeout beyond this may not be addable to an instant (see
/// [`Session::check_invariants`]).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How a session is set up. A [`crate::Host`] derives it from its [`crate::HostConfig`]
/// ([`crate::HostConfig::session_config`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The scheduler's configuration.
    pub sched: SchedConfig,
    /// The largest frame decoded; longer messages drop their peer.
    pub max_frame: usize,
    /// At most this many connections may be waiting to say hello at once; newer ones are
    /// dropped at once.
    pub max_pending: usize,
    /// A connection that has not said hello within this time is dropped.
    pub hello_timeout: Duration,
    /// Base RNG stream: the k-th daemon to complete its handshake gets `nextRNGStream` applied
    /// k times. `None`: init bundles carry no stream.
    pub stream: Option<RngStream>,
    /// Opaque serialization config, sent in every init bundle.
    pub serial: Vec<u8>,
}

impl SessionConfig {
    /// A session over a scheduler set up by `sched`: frames up to
    /// [`mirai_proto::DEFAULT_MAX_FRAME`], the host's default hello timeout and cap on
    /// pending connections, no RNG stream, an empty serialization config.
    pub fn new(sched: SchedConfig) -> Self {
        SessionConfig {
            sched,
            max_frame: mirai_proto::DEFAULT_MAX_FRAME,
            max_pending: crate::DEFAULT_MAX_PENDING,
            hello_timeout: crate::DEFAULT_HELLO_TIMEOUT,
            stream: None,
            serial: Vec::new(),
        }
    }

    setters! {
        /// Sets [`SessionConfig::max_frame`].
        with_max_frame(max_frame: usize);
        /// Sets [`SessionConfig::max_pending`].
        with_max_pending(max_pending: usize);
        /// Sets [`SessionConfig::hello_timeout`].
        with_hello_timeout(hello_timeout: Duration);
        /// Sets [`SessionConfig::stream`] (`None`: no stream).
        with_stream(stream: Option<RngStream>);
        /// Sets [`SessionConfig::serial`].
        with_serial(serial: Vec<u8>);
    }
}

/// Something the runtime must do, in this order ([`Session::poll_output`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<B> {
    /// Send this encoded init frame to a daemon that just said hello.
    Init {
        /// The daemon.
        peer: PeerId,
        /// The frame.
        frame: Vec<u8>,
    },
    /// Send task `task` to a daemon: its frame is made from `body`, as submitted.
    Task {
        /// The daemon.
        peer: PeerId,
        /// The task's id.
        task: TaskId,
        /// The task, as handed to the scheduler.
        body: B,
        /// Dispatches of the task so far, this one included, when the scheduler keeps count
        /// (tasks it may send again); `None`: one more than before.
        attempts: Option<u32>,
    },
    /// Send units `task ..= task + count - 1` (elements `offset ..` of the payload in `body`)
    /// to a daemon in one batch frame ([`mirai_proto::Batch`]). Each unit's dispatch count
    /// is the scheduler's ([`mirai_sched::Scheduler::attempts`]).
    Batch {
        /// The daemon.
        peer: PeerId,
        /// The first unit.
        task: TaskId,
        /// Its element's index in the payload.
        offset: u32,
        /// Units sent.
        count: u32,
        /// The units are tiny: the daemon may send their results together
        /// ([`mirai_proto::flags::COALESCE`]).
        coalesce: bool,
        /// The chunk, as handed to the scheduler.
        body: B,
    },
    /// Send this encoded control frame (a cancel, withdraw or ack) to a daemon.
    Send {
        /// The daemon.
        peer: PeerId,
        /// The frame.
        frame: Vec<u8>,
    },
    /// Send an exit frame to a daemon (apart from [`Output::Send`] so that the runtime may
    /// space a round of them out).
    Exit {
        /// The daemon.
        peer: PeerId,
    },
    /// Resolve this task's handle: nothing more will come for it.
    Resolve {
        /// The task.
        task: TaskId,
        /// The daemon's answer, or the error code saying why none will come.
        outcome: Outcome,
    },
    /// Disconnect this peer: it broke the protocol or never spoke it. Whatever else it sends
    /// is ignored until its disconnection.
    Drop {
        /// The peer.
        peer: PeerId,
        /// Why, for the log: frames by kind and size, never the peer's bytes.
        reason: String,
    },
    /// A daemon completed its handshake.
    Joined {
        /// The daemon.
        peer: PeerId,
        /// Its process id, from its hello.
        pid: u32,
    },
    /// A connection ended.
    Left {
        /// The peer.
        peer: PeerId,
        /// Its process id if it had said hello.
        pid: Option<u32>,
    },
}

/// What the session knows of a connected peer beyond the scheduler's view.
#[derive(Debug, Default)]
struct Peer {
    /// The daemon's pid once it said hello.
    hello: Option<u32>,
    /// The peer broke the protocol and is being disconnected: ignore what else it sends.
    bad: bool,
}

/// The protocol state of a host's listener. See the module docs.
#[derive(Debug)]
pub struct Session<B> {
    sched: Scheduler<B>,
    max_frame: usize,
    max_pending: usize,
    hello_timeout: Duration,
    stream: Option<RngStream>,
    serial: Vec<u8>,
    /// Pipelining is on: the scheduler is told the time of submissions and results.
    timed: bool,
    peers: HashMap<PeerId, Peer>,
    /// Peers connected, not yet said hello and not being dropped.
    pending: usize,
    /// `(deadline, peer)` for the hello of each connection, in connection order (so in
    /// deadline order). Entries of peers that said hello or left are skipped when reached.
    hello_deadlines: VecDeque<(Instant, PeerId)>,
    /// Outputs that did not come from the scheduler's queue, served before it.
    out: VecDeque<Output<B>>,
}

/// Describes why a connection ended, for the log. The transport's texts give lengths and
/// counts, never the bytes received.
pub fn describe_disconnect(r: &DisconnectReason) -> String {
    match r {
        DisconnectReason::Closed => "closed by the peer".to_string(),
        DisconnectReason::Local => "closed by the host".to_string(),
        DisconnectReason::Protocol(why) => format!("broken framing ({why})"),
        DisconnectReason::Io(why) => format!("I/O error ({why})"),
    }
}

impl<B> Session<B> {
    /// A session with no peer and an empty scheduler.
    pub fn new(config: SessionConfig) -> Session<B> {
        let timed =
            config.sched.mode == mirai_sched::Mode::Dispatcher && config.sched.pipeline.is_some();
        Session {
            sched: Scheduler::new(config.sched),
            max_frame: config.max_frame,
            max_pending: config.max_pending,
            hello_timeout: config.hello_timeout,
            stream: config.stream,
            serial: config.serial,
            timed,
            peers: HashMap::new(),
            pending: 0,
            hello_deadlines: VecDeque::new(),
            out: VecDeque::new(),
        }
    }

    /// The scheduler, for its counters.
    pub fn sched(&self) -> &Scheduler<B> {
        &self.sched
    }

    /// The scheduler, to submit, cancel, exit or reset; its actions come out of
    /// [`Session::poll_output`]. (Peer events go through the session instead.)
    pub fn sched_mut(&mut self) -> &mut Scheduler<B> {
        &mut self.sched
    }

    /// True if the scheduler times tasks (pipelining): then the runtime dates submissions
    /// with [`Session::set_time`]. Events that carry a time date themselves.
    pub fn timed(&self) -> bool {
        self.timed
    }

    /// Tells the scheduler the time, if it times tasks.
    pub fn set_time(&mut self, now: Instant) {
        if self.timed {
            self.sched.set_time(now);
        }
    }

    /// Connections waiting to say hello (and not being dropped).
    pub fn pending_hellos(&self) -> usize {
        self.pending
    }

    /// The process ids of the connected daemons that said hello.
    pub fn daemon_pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.peers.values().filter_map(|p| p.hello)
    }

    /// The next instant [`Session::tick`] has work at: a task deadline or a hello deadline.
    pub fn next_timer(&self) -> Option<Instant> {
        let hello = self.hello_deadlines.front().map(|e| e.0);
        match (self.sched.poll_timeout(), hello) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A new connection: admitted as pending (it must say hello within the hello timeout), or
    /// dropped at once if too many are pending already.
    pub fn connected(&mut self, p: PeerId, now: Instant) {
        if self.pending >= self.max_pending {
            let reason = format!(
                "dropping connection {p}: {} connections are already waiting to say hello (the limit)",
                self.pending
            );
            self.peers.insert(
                p,
                Peer {
                    hello: None,
                    bad: true,
                },
            );
            self.out.push_back(Output::Drop { peer: p, reason });
            return;
        }
        log::debug!("mirai host: connection {p} opened");
        self.peers.insert(p, Peer::default());
        self.pending += 1;
        if let Some(at) = now.checked_add(self.hello_timeout) {
            self.hello_deadlines.push_back((at, p));
        }
        self.sched.connected(daemon_of(p));
    }

    /// A connection ended (after every message from it).
    pub fn disconnected(&mut self, p: PeerId, reason: &DisconnectReason, now: Instant) {
        self.set_time(now);
        let pid = match self.peers.remove(&p) {
            Some(peer) if peer.hello.is_none() && !peer.bad => {
                self.pending -= 1;
                // A connection that never said hello: a port scan, a stray client or
                // garbage. Say why it went (never quoting its bytes).
                match reason {
                    DisconnectReason::Closed => {
                        log::info!("mirai host: connection {p} closed before saying hello")
                    }
                    other => log::warn!(
                        "mirai host: connection {p} dropped before saying hello: {}",
                        describe_disconnect(other)
                    ),
                }
                None
            }
            Some(peer) => {
                log::debug!(
                    "mirai host: daemon {p} disconnected: {}",
                    describe_disconnect(reason)
                );
                peer.hello
            }
            None => None,
        };
        self.sched.disconnected(daemon_of(p));
        self.out.push_back(Output::Left { peer: p, pid });
    }

    /// A whole message from a peer.
    pub fn message(&mut self, p: PeerId, bytes: &[u8], now: Instant) {
        self.set_time(now);
        let Some(peer) = self.peers.get_mut(&p) else {
            self.out.push_back(Output::Drop {
                peer: p,
                reason: format!("message from unknown peer {p}; disconnecting it"),
            });
            return;
        };
        if peer.bad {
            return;
        }
        let violation = match mirai_proto::decode(bytes, self.max_frame) {
            Ok(Frame::Hello(_)) if peer.hello.is_some() => Some("a second hello".to_string()),
            Ok(Frame::Hello(h)) if h.protocol != PROTOCOL_VERSION => Some(format!(
                "a hello with protocol version {} (this host speaks {PROTOCOL_VERSION})",
                h.protocol
            )),
            Ok(Frame::Hello(h)) => {
                log::debug!("mirai host: daemon {p} (pid {}) said hello", h.pid);
                peer.hello = Some(h.pid);
                self.pending -= 1;
                self.sched.hello(daemon_of(p));
                self.out.push_back(Output::Joined {
                    peer: p,
                    pid: h.pid,
                });
                None
            }
            Ok(Frame::Result(_)) if peer.hello.is_none() => Some("a result frame".to_string()),
            Ok(Frame::Results(_)) if peer.hello.is_none() => Some("a results frame".to_string()),
            Ok(Frame::Running { .. }) if peer.hello.is_none() => {
                Some("a running frame".to_string())
            }
            Ok(Frame::Withdrawn { .. }) if peer.hello.is_none() => {
                Some("a withdrawn frame".to_string())
            }
            Ok(Frame::Withdrawn { id }) => {
                if self.sched.withdrawn(daemon_of(p), id) {
                    log::debug!("mirai host: daemon {p} gave back task {id} unstarted");
                } else {
                    log::debug!("mirai host: ignored give-back of task {id} from daemon {p}");
                }
                None
            }
            Ok(Frame::Result(r)) => {
                self.result(p, r);
                None
            }
            // A coalesced batch's results, in the order they ended.
            Ok(Frame::Results(rs)) => {
                for r in rs {
                    self.result(p, r);
                }
                None
            }
            Ok(Frame::Running { id }) => {
                self.sched.running(daemon_of(p), id);
                None
            }
            Ok(other) => Some(format!("an unexpected {} frame", other.kind())),
            // The error's text carries sizes and kinds, never the peer's bytes.
            Err(e) => Some(e.to_string()),
        };
        if let Some(reason) = violation {
            let reason = match self.peers.get(&p) {
                Some(x) if x.hello.is_none() => format!(
                    "it sent {reason} (a message of {} bytes) before saying hello",
                    bytes.len()
                ),
                _ => reason,
            };
            self.drop_peer(p, &reason);
        }
    }

    /// A result from daemon `p` (after its hello).
    fn result(&mut self, p: PeerId, r: TaskResult) {
        match self.sched.result(daemon_of(p), r.id, r.last) {
            Delivery::Deliver => {
                let outcome = Outcome::Value {
                    status: r.status,
                    payload: r.payload,
                };
                self.out.push_back(Output::Resolve {
                    task: r.id,
                    outcome,
                });
            }
            Delivery::Discard if r.last => {
                log::debug!("mirai host: daemon {p} is leaving (a limit was reached)")
            }
            Delivery::Discard => {
                log::debug!(
                    "mirai host: discarded result of task {} from daemon {p}",
                    r.id
                )
            }
        }
    }

    /// Handles what is due at `now`: task deadlines, then overdue hellos.
    pub fn tick(&mut self, now: Instant) {
        if self.sched.poll_timeout().is_some_and(|t| t <= now) {
            self.sched.handle_timeout(now);
        }
        while let Some(&(at, p)) = self.hello_deadlines.front() {
            if at > now {
                break;
            }
            self.hello_deadlines.pop_front();
            if self
                .peers
                .get(&p)
                .is_some_and(|x| x.hello.is_none() && !x.bad)
            {
                let reason = format!("no hello within {:?}", self.hello_timeout);
                self.drop_peer(p, &reason);
            }
        }
    }

    /// Marks a peer that broke the protocol (or never spoke it) for disconnection.
    fn drop_peer(&mut self, p: PeerId, reason: &str) {
        let Some(peer) = self.peers.get_mut(&p) else {
            return;
        };
        if peer.bad {
            return;
        }
        peer.bad = true;
        let reason = if peer.hello.is_none() {
            self.pending -= 1;
            format!("dropping connection {p}: {reason}")
        } else {
            format!("daemon {p} sent {reason}; disconnecting it")
        };
        self.out.push_back(Output::Drop { peer: p, reason });
    }

    /// The next thing to do, if any. Call it until `None` after each event and after every
    /// call of [`Session::sched_mut`] that may have queued actions.
    pub fn poll_output(&mut self) -> Option<Output<B>> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        loop {
            let action = self.sched.poll_action()?;
            return Some(match action {
                Action::Init { daemon, ordinal } => {
                    let init = Init {
                        stream: self.stream.map(|s| rng::advance(s, ordinal)),
                        serial: self.serial.clone(),
                    };
                    Output::Init {
                        peer: peer_of(daemon),
                        frame: mirai_proto::encode(&Frame::Init(init)),
                    }
                }
                Action::Dispatch {
                    daemon,
                    task,
                    payload,
                } => Output::Task {
                    peer: peer_of(daemon),
                    task,
                    body: payload,
                    // The scheduler's count: a pipelined task given back unstarted does not count
                    // an attempt.
                    attempts: self.sched.attempts(task),
                },
                Action::Batch {
                    daemon,
                    task,
                    offset,
                    count,
                    coalesce,
                    payload,
                } => Output::Batch {
                    peer: peer_of(daemon),
                    task,
                    offset,
                    count,
                    coalesce,
                    body: payload,
                },
                Action::Cancel { daemon, task } => Output::Send {
                    peer: peer_of(daemon),
                    frame: mirai_proto::encode(&Frame::Cancel { id: task }),
                },
                Action::Withdraw { daemon, task } => {
                    log::trace!("mirai host: asking daemon {daemon} to give back task {task}");
                    Output::Send {
                        peer: peer_of(daemon),
                        frame: mirai_proto::encode(&Frame::Withdraw { id: task }),
                    }
                }
                Action::Ack { daemon } => Output::Send {
                    peer: peer_of(daemon),
                    frame: mirai_proto::encode(&Frame::Ack),
                },
                Action::Exit { daemon } => Output::Exit {
                    peer: peer_of(daemon),
                },
                Action::Fail { task, code } => Output::Resolve {
                    task,
                    outcome: Outcome::Error(code),
                },
                // An action of a newer scheduler that this host does not carry out.
                _ => {
                    log::warn!("mirai host: ignoring an unknown scheduler action");
                    continue;
                }
            });
        }
    }

    /// Checks the session's own invariants; for tests and the fuzzer. Panics if one is broken.
    pub fn check_invariants(&self) {
        let waiting = self
            .peers
            .values()
            .filter(|p| p.hello.is_none() && !p.bad)
            .count();
        assert_eq!(self.pending, waiting, "pending count out of step");
        assert!(
            self.pending <= self.max_pending,
            "more connections pending than the cap"
        );
        assert!(
            self.hello_deadlines
                .iter()
                .zip(self.hello_deadlines.iter().skip(1))
                .all(|(a, b)| a.0 <= b.0),
            "hello deadlines out of order"
        );
        for (p, peer) in &self.peers {
            if peer.hello.is_none() && !peer.bad {
                // (A hello timeout too long to add to an instant sets no deadline.)
                assert!(
                    self.hello_deadlines.iter().any(|e| e.1 == *p) || self.hello_timeout > FOREVER,
                    "a pending peer without a hello deadline"
                );
            }
        }
    }
}

/// The scheduler knows a connected daemon by its listener peer id: one number, two types, so
/// that neither can be passed where the other is meant.
fn daemon_of(p: PeerId) -> DaemonId {
    DaemonId(p.get())
}

/// The listener peer of a scheduler daemon (see [`daemon_of`]).
fn peer_of(d: DaemonId) -> PeerId {
    PeerId(d.get())
}

#[cfg(test)]
mod tests;
