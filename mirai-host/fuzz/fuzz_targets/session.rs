//! The host's protocol session ([`mirai_host::session::Session`]) driven by arbitrary
//! sequences of listener events (connections, messages, disconnections), the passing of time,
//! and the runtime's own calls (submit, cancel, exit): it must never panic, keep its
//! invariants, drop exactly the peers that break the protocol (with reasons that never quote
//! their bytes), send tasks and init bundles only to daemons that said hello, and resolve each
//! task at most once, with a value only from the daemon it was sent to.
//!
//! Input: a configuration byte, then a sequence of operations, each an opcode byte and its
//! arguments. Raw messages are arbitrary bytes; structured ones are valid frames built from a
//! few bytes, so that the fuzzer reaches the stateful paths (handshakes, results, give-backs)
//! that random bytes rarely decode to.
#![no_main]
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mirai_host::session::{Output, Session, SessionConfig};
use mirai_host::Outcome;
use mirai_proto::{encode, Frame, Hello, Init, Status, Task, TaskId, TaskResult, PROTOCOL_VERSION};
use mirai_sched::{Config as SchedConfig, Mode, TaskKind, TaskSpec};
use mirai_transport::{DisconnectReason, PeerId};

const MAX_FRAME: usize = 1 << 12;
const MAX_PENDING: usize = 3;
const HELLO_TIMEOUT: Duration = Duration::from_millis(500);

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// A frame a daemon (or a confused peer) might send, from two bytes.
fn structured(kind: u8, arg: u8, tasks: u64) -> Frame {
    // Ids mostly of submitted tasks, sometimes unknown ones.
    let id = TaskId(match tasks {
        0 => u64::from(arg),
        n => 1 + u64::from(arg) % (n + 1),
    });
    match kind % 8 {
        0 | 1 => Frame::Hello(Hello {
            protocol: if arg % 5 == 4 {
                PROTOCOL_VERSION.wrapping_add(1)
            } else {
                PROTOCOL_VERSION
            },
            pid: u32::from(arg),
        }),
        2 | 3 => Frame::Result(TaskResult {
            id,
            status: if arg & 0x40 != 0 {
                Status::Error
            } else {
                Status::Ok
            },
            last: arg & 0x80 != 0,
            payload: vec![arg; usize::from(arg % 4)],
        }),
        4 => Frame::Withdrawn { id },
        5 => Frame::Task(Task {
            id,
            flags: 0,
            payload: vec![],
            trace: None,
        }),
        6 => match arg % 4 {
            0 => Frame::Cancel { id },
            1 => Frame::Withdraw { id },
            2 => Frame::Ack,
            _ => Frame::Exit,
        },
        _ => Frame::Init(Init {
            stream: None,
            serial: vec![arg],
        }),
    }
}

/// What the fuzzer knows of a peer.
#[derive(Default)]
struct Model {
    /// Said hello (and was accepted).
    joined: bool,
    /// Dropped by the session: nothing it sends counts any more.
    dropped: bool,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let conf = input.byte();
    let mode = if conf & 1 == 0 {
        Mode::Dispatcher
    } else {
        Mode::Direct
    };
    let mut s: Session<u64> = Session::new(
        SessionConfig::new(
            SchedConfig::new()
                .with_mode(mode)
                .with_memory_limit((conf & 2 != 0).then_some(64))
                .with_pipeline((conf & 4 != 0).then_some(Duration::from_millis(1))),
        )
        .with_max_frame(MAX_FRAME)
        .with_max_pending(MAX_PENDING)
        .with_hello_timeout(HELLO_TIMEOUT)
        .with_stream((conf & 8 != 0).then_some([10407, 1, 2, 3, 4, 5, 6]))
        .with_serial(vec![conf]),
    );
    let t0 = Instant::now();
    let mut now = t0;
    let mut next_peer = 1u64;
    let mut peers: HashMap<PeerId, Model> = HashMap::new();
    let mut tasks = 0u64;
    let mut resolved: HashSet<TaskId> = HashSet::new();
    // Which daemon each task was last sent to.
    let mut sent: HashMap<TaskId, PeerId> = HashMap::new();
    while !input.0.is_empty() {
        let op = input.byte();
        let arg = input.byte();
        let live: Vec<PeerId> = {
            let mut v: Vec<PeerId> = peers.keys().copied().collect();
            v.sort_unstable();
            v
        };
        let pick = |a: u8| -> PeerId {
            if live.is_empty() || a == 255 {
                // A peer the session never saw.
                PeerId(1000 + u64::from(a))
            } else {
                live[usize::from(a) % live.len()]
            }
        };
        // The message sent this step, if any, and its peer.
        let mut message: Option<(PeerId, Vec<u8>)> = None;
        match op % 9 {
            0 => {
                let p = PeerId(next_peer);
                next_peer += 1;
                peers.insert(p, Model::default());
                s.connected(p, now);
            }
            1 => {
                let p = pick(arg);
                if peers.remove(&p).is_some() {
                    let reason = match arg % 4 {
                        0 => DisconnectReason::Closed,
                        1 => DisconnectReason::Local,
                        2 => DisconnectReason::Protocol("oversized length prefix".into()),
                        _ => DisconnectReason::Io("connection reset".into()),
                    };
                    s.disconnected(p, &reason, now);
                }
            }
            2 | 3 => {
                let p = pick(arg);
                let len = usize::from(input.byte());
                message = Some((p, input.bytes(len).to_vec()));
            }
            4 | 5 => {
                let p = pick(arg);
                let (k, a) = (input.byte(), input.byte());
                message = Some((p, encode(&structured(k, a, tasks))));
            }
            6 => {
                now += Duration::from_millis(u64::from(arg) * 10);
                s.tick(now);
            }
            7 => {
                tasks += 1;
                let spec = TaskSpec::new()
                    .with_kind(TaskKind::Normal)
                    .with_deadline(
                        (arg & 1 != 0).then(|| now + Duration::from_millis(u64::from(arg))),
                    )
                    .with_retries(u32::from(arg >> 6));
                s.set_time(now);
                s.sched_mut()
                    .submit_with(TaskId(tasks), tasks, u64::from(arg % 32), spec);
            }
            _ => match arg % 8 {
                0 => s.sched_mut().exit_all(),
                _ if tasks > 0 => {
                    let id = TaskId(1 + u64::from(arg) % tasks);
                    // The runtime resolves a task the scheduler let go of itself (and
                    // ignores a second resolution of one it did not).
                    if s.sched_mut().cancel(id) {
                        assert!(resolved.insert(id), "cancelled a resolved task");
                    }
                }
                _ => {}
            },
        }
        if let Some((p, bytes)) = &message {
            s.message(*p, bytes, now);
        }
        let decoded = message
            .as_ref()
            .map(|(_, b)| mirai_proto::decode(b, MAX_FRAME));
        let mut drops = Vec::new();
        let mut joins = Vec::new();
        while let Some(out) = s.poll_output() {
            match out {
                Output::Joined { peer, .. } => {
                    let m = peers.get_mut(&peer).expect("a join of a connected peer");
                    assert!(!m.joined && !m.dropped, "peer {peer} joined twice");
                    m.joined = true;
                    joins.push(peer);
                }
                Output::Init { peer, frame } => {
                    assert!(joins.contains(&peer), "init without a hello");
                    assert!(matches!(
                        mirai_proto::decode(&frame, usize::MAX),
                        Ok(Frame::Init(_))
                    ));
                }
                Output::Task {
                    peer, task, body, ..
                } => {
                    assert_eq!(task.get(), body, "the body travels with its task");
                    assert!(
                        !resolved.contains(&task),
                        "task {task} sent after resolving"
                    );
                    let m = peers.get(&peer).expect("a task to a connected peer");
                    assert!(m.joined, "a task to a peer that never said hello");
                    sent.insert(task, peer);
                }
                Output::Send { peer, frame } => {
                    assert!(peers.contains_key(&peer), "a frame to a peer gone");
                    assert!(matches!(
                        mirai_proto::decode(&frame, usize::MAX),
                        Ok(Frame::Cancel { .. } | Frame::Withdraw { .. } | Frame::Ack)
                    ));
                }
                Output::Exit { peer } => {
                    assert!(peers.contains_key(&peer), "an exit to a peer gone");
                }
                Output::Resolve { task, outcome } => {
                    assert!(
                        (1..=tasks).contains(&task.get()),
                        "resolved unknown task {task}"
                    );
                    assert!(resolved.insert(task), "task {task} resolved twice");
                    if let Outcome::Value { .. } = outcome {
                        let (p, _) = message.as_ref().expect("a value comes from a message");
                        assert_eq!(sent.get(&task), Some(p), "a value from another daemon");
                    }
                }
                Output::Drop { peer, reason } => {
                    if let Some(m) = peers.get_mut(&peer) {
                        assert!(!m.dropped, "peer {peer} dropped twice");
                        m.dropped = true;
                    }
                    if let Some((_, bytes)) = &message {
                        // Nothing of the peer's bytes may be quoted in the reason: no run of
                        // 16 letters of the input (longer than any word of the messages).
                        for w in bytes.windows(16) {
                            if w.iter().all(u8::is_ascii_alphabetic) {
                                let text = std::str::from_utf8(w).unwrap_or_default();
                                assert!(!reason.contains(text), "reason quotes the input");
                            }
                        }
                    }
                    drops.push(peer);
                }
                Output::Left { .. } => {}
                _ => {}
            }
        }
        // A broken message from a peer still in good standing drops it, and only it.
        if let (Some((p, _)), Some(Err(_))) = (&message, &decoded) {
            let good = peers
                .get(p)
                .is_some_and(|m| !m.dropped || drops.contains(p));
            if good {
                assert_eq!(drops, [*p], "an undecodable message must drop its peer");
            }
        }
        // A dropped peer's later messages change nothing.
        if let Some((p, _)) = &message {
            if peers.get(p).is_some_and(|m| m.dropped) && !drops.contains(p) {
                assert!(joins.is_empty());
            }
        }
        let waiting = peers.values().filter(|m| !m.joined && !m.dropped).count();
        assert_eq!(s.pending_hellos(), waiting);
        assert!(s.pending_hellos() <= MAX_PENDING);
        if let Some(t) = s.next_timer() {
            // A hello deadline or a task deadline: never before the start.
            assert!(t >= t0);
        }
        s.check_invariants();
    }
});
