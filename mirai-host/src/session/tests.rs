//! The session's rules, one test each, driven with no sockets, threads or clocks: time is an
//! instant the test moves by hand.

use std::time::{Duration, Instant};

use mirai_proto::{encode, Frame, Hello, Init, Status, Task, TaskId, TaskResult, PROTOCOL_VERSION};
use mirai_sched::{Config as SchedConfig, ErrorCode, Mode, TaskKind, TaskSpec};
use mirai_transport::{DisconnectReason, PeerId};

use super::{Output, Session, SessionConfig};
use crate::Outcome;

const TIMEOUT: Duration = Duration::from_secs(10);
const STREAM: [i32; 7] = [10407, 1, 2, 3, 4, 5, 6];

type Out = Output<Vec<u8>>;

#[test]
fn session_config_builder_sets_each_field() {
    let c = SessionConfig::new(SchedConfig::new().with_mode(Mode::Direct));
    assert_eq!(c.sched.mode, Mode::Direct);
    assert_eq!(
        (c.max_frame, c.max_pending, c.hello_timeout),
        (
            mirai_proto::DEFAULT_MAX_FRAME,
            crate::DEFAULT_MAX_PENDING,
            crate::DEFAULT_HELLO_TIMEOUT
        )
    );
    assert_eq!((c.stream, c.serial.len()), (None, 0));
    let c = c
        .with_max_frame(64)
        .with_max_pending(2)
        .with_hello_timeout(TIMEOUT)
        .with_stream(Some(STREAM))
        .with_serial(b"s".to_vec());
    assert_eq!(
        (c.max_frame, c.max_pending, c.hello_timeout),
        (64, 2, TIMEOUT)
    );
    assert_eq!((c.stream, c.serial), (Some(STREAM), b"s".to_vec()));
}

fn config() -> SessionConfig {
    SessionConfig {
        sched: SchedConfig::new()
            .with_mode(Mode::Dispatcher)
            .with_memory_limit(None)
            .with_pipeline(None),
        max_frame: 1 << 16,
        max_pending: 4,
        hello_timeout: TIMEOUT,
        stream: Some(STREAM),
        serial: b"serial-config".to_vec(),
    }
}

fn session() -> Session<Vec<u8>> {
    Session::new(config())
}

fn outputs(s: &mut Session<Vec<u8>>) -> Vec<Out> {
    let out: Vec<Out> = std::iter::from_fn(|| s.poll_output()).collect();
    s.check_invariants();
    out
}

fn hello(pid: u32) -> Vec<u8> {
    encode(&Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        pid,
    }))
}

fn result(id: u64, last: bool, payload: &[u8]) -> Vec<u8> {
    encode(&Frame::Result(TaskResult {
        id: TaskId(id),
        status: Status::Ok,
        last,
        payload: payload.to_vec(),
    }))
}

/// The reason of the single output, which must be a drop of `peer`.
fn dropped(out: &[Out], peer: u64) -> String {
    match out {
        [Output::Drop { peer: p, reason }] if *p == PeerId(peer) => reason.clone(),
        other => panic!("expected one drop of peer {peer}, got {other:?}"),
    }
}

/// A session with daemon `peer` (pid 100 + peer) past its handshake.
fn joined(s: &mut Session<Vec<u8>>, peer: u64, now: Instant) {
    s.connected(PeerId(peer), now);
    s.message(PeerId(peer), &hello(100 + peer as u32), now);
    let out = outputs(s);
    assert!(
        matches!(out[..], [Output::Joined { .. }, Output::Init { .. }]),
        "{out:?}"
    );
}

fn submit(s: &mut Session<Vec<u8>>, id: u64, deadline: Option<Instant>) {
    let spec = TaskSpec::new()
        .with_kind(TaskKind::Normal)
        .with_deadline(deadline)
        .with_retries(0);
    s.sched_mut()
        .submit_with(TaskId(id), b"body".to_vec(), 4, spec);
}

#[test]
fn a_hello_is_accepted_and_answered_with_the_init_bundle() {
    let mut s = session();
    let now = Instant::now();
    s.connected(PeerId(1), now);
    assert_eq!(s.pending_hellos(), 1);
    assert!(outputs(&mut s).is_empty());
    s.message(PeerId(1), &hello(4242), now);
    let out = outputs(&mut s);
    assert_eq!(
        out[0],
        Output::Joined {
            peer: PeerId(1),
            pid: 4242
        }
    );
    let Output::Init {
        peer: PeerId(1),
        frame,
    } = &out[1]
    else {
        panic!("expected an init, got {out:?}");
    };
    // The first daemon gets the base stream advanced once, and the serial config.
    assert_eq!(
        mirai_proto::decode(frame, usize::MAX).unwrap(),
        Frame::Init(Init {
            stream: Some(crate::rng::advance(STREAM, 1)),
            serial: b"serial-config".to_vec(),
        })
    );
    assert_eq!(out.len(), 2);
    assert_eq!(s.pending_hellos(), 0);
    assert_eq!(s.sched().ready_daemons(), 1);
    assert_eq!(s.daemon_pids().collect::<Vec<_>>(), [4242]);
    // The second daemon's stream is the next one.
    s.connected(PeerId(2), now);
    s.message(PeerId(2), &hello(7), now);
    let out = outputs(&mut s);
    let Output::Init { frame, .. } = &out[1] else {
        panic!("expected an init, got {out:?}");
    };
    let Ok(Frame::Init(init)) = mirai_proto::decode(frame, usize::MAX) else {
        panic!("init frame decodes");
    };
    assert_eq!(init.stream, Some(crate::rng::advance(STREAM, 2)));
}

#[test]
fn a_hello_of_another_protocol_version_is_refused() {
    let mut s = session();
    let now = Instant::now();
    s.connected(PeerId(1), now);
    let bad = encode(&Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION.wrapping_add(1),
        pid: 1,
    }));
    s.message(PeerId(1), &bad, now);
    let why = dropped(&outputs(&mut s), 1);
    assert!(why.contains("protocol version"), "{why}");
    assert!(why.contains("before saying hello"), "{why}");
    assert_eq!(s.pending_hellos(), 0, "a dropped peer no longer counts");
    assert_eq!(s.sched().ready_daemons(), 0);
}

#[test]
fn a_frame_of_another_version_byte_is_refused() {
    let mut s = session();
    let now = Instant::now();
    s.connected(PeerId(1), now);
    let mut b = hello(1);
    b[mirai_proto::MAGIC.len()] = PROTOCOL_VERSION.wrapping_add(1);
    s.message(PeerId(1), &b, now);
    let why = dropped(&outputs(&mut s), 1);
    assert!(why.contains("unsupported protocol version"), "{why}");
}

#[test]
fn an_oversized_frame_drops_its_peer() {
    let mut s = Session::<Vec<u8>>::new(SessionConfig {
        max_frame: 64,
        ..config()
    });
    let now = Instant::now();
    joined(&mut s, 1, now);
    s.message(PeerId(1), &result(1, false, &[7u8; 100]), now);
    let why = dropped(&outputs(&mut s), 1);
    assert!(why.contains("exceeds the maximum of 64 bytes"), "{why}");
    assert!(why.starts_with("daemon 1 sent"), "{why}");
}

#[test]
fn garbage_drops_its_peer_without_quoting_it() {
    let now = Instant::now();
    // A frame whose body holds a text string where a number belongs: CBOR error messages
    // quote such values.
    let mut quoted = mirai_proto::MAGIC.to_vec();
    quoted.push(PROTOCOL_VERSION);
    quoted.extend_from_slice(&[0xa1, 0x66]);
    quoted.extend_from_slice(b"Result");
    quoted.extend_from_slice(&[0xa1, 0x62]);
    quoted.extend_from_slice(b"id");
    quoted.push(0x6e);
    quoted.extend_from_slice(b"secret-payload");
    for bytes in [
        b"GET / HTTP/1.1 secret-payload".to_vec(),
        quoted,
        vec![0u8; 2],
        {
            let mut b = result(1, false, b"x");
            b.extend_from_slice(b"secret-payload");
            b
        },
    ] {
        for before_hello in [true, false] {
            let mut s = session();
            if before_hello {
                s.connected(PeerId(1), now);
            } else {
                joined(&mut s, 1, now);
            }
            s.message(PeerId(1), &bytes, now);
            let why = dropped(&outputs(&mut s), 1);
            assert!(!why.contains("secret"), "{why}");
            assert!(!why.contains("HTTP"), "{why}");
            if before_hello {
                assert!(
                    why.contains(&format!("a message of {} bytes", bytes.len())),
                    "{why}"
                );
            }
        }
    }
}

#[test]
fn a_silent_connection_is_dropped_when_its_hello_is_overdue() {
    let mut s = session();
    let t0 = Instant::now();
    s.connected(PeerId(1), t0);
    s.connected(PeerId(2), t0 + Duration::from_secs(1));
    assert_eq!(s.next_timer(), Some(t0 + TIMEOUT));
    s.tick(t0 + TIMEOUT - Duration::from_millis(1));
    assert!(outputs(&mut s).is_empty(), "not overdue yet");
    // Peer 2 says hello in time; peer 1 does not.
    s.message(PeerId(2), &hello(2), t0 + Duration::from_secs(2));
    outputs(&mut s);
    s.tick(t0 + TIMEOUT);
    let why = dropped(&outputs(&mut s), 1);
    assert_eq!(
        why,
        format!("dropping connection 1: no hello within {TIMEOUT:?}")
    );
    assert_eq!(s.pending_hellos(), 0);
    // Peer 2's deadline passes without effect: it said hello.
    s.tick(t0 + TIMEOUT + Duration::from_secs(1));
    assert!(outputs(&mut s).is_empty());
    assert_eq!(s.next_timer(), None);
    // The dropped peer's disconnection is quiet: no daemon left.
    s.disconnected(PeerId(1), &DisconnectReason::Local, t0 + TIMEOUT);
    assert_eq!(
        outputs(&mut s),
        [Output::Left {
            peer: PeerId(1),
            pid: None
        }]
    );
}

#[test]
fn connections_beyond_the_pending_cap_are_dropped_at_once() {
    let mut s = session();
    let now = Instant::now();
    for p in 1..=4 {
        s.connected(PeerId(p), now);
    }
    assert!(outputs(&mut s).is_empty());
    s.connected(PeerId(5), now);
    let why = dropped(&outputs(&mut s), 5);
    assert!(why.contains("4 connections are already waiting"), "{why}");
    assert_eq!(s.pending_hellos(), 4);
    // What the dropped peer sends is ignored; a hello frees a place.
    s.message(PeerId(5), &hello(5), now);
    assert!(outputs(&mut s).is_empty());
    s.message(PeerId(1), &hello(1), now);
    assert_eq!(outputs(&mut s).len(), 2);
    s.connected(PeerId(6), now);
    assert!(outputs(&mut s).is_empty(), "admitted: a place was free");
    assert_eq!(s.pending_hellos(), 4);
    // So does a disconnection before hello.
    s.disconnected(PeerId(2), &DisconnectReason::Closed, now);
    assert_eq!(
        outputs(&mut s),
        [Output::Left {
            peer: PeerId(2),
            pid: None
        }]
    );
    assert_eq!(s.pending_hellos(), 3);
}

#[test]
fn a_second_hello_drops_the_daemon() {
    let mut s = session();
    let now = Instant::now();
    joined(&mut s, 1, now);
    s.message(PeerId(1), &hello(101), now);
    let why = dropped(&outputs(&mut s), 1);
    assert_eq!(why, "daemon 1 sent a second hello; disconnecting it");
    // Nothing more from it counts, and its disconnection still reports the daemon gone.
    s.message(PeerId(1), &hello(101), now);
    s.message(PeerId(1), b"garbage", now);
    assert!(outputs(&mut s).is_empty());
    s.disconnected(PeerId(1), &DisconnectReason::Local, now);
    assert_eq!(
        outputs(&mut s),
        [Output::Left {
            peer: PeerId(1),
            pid: Some(101)
        }]
    );
}

#[test]
fn results_and_give_backs_before_hello_are_refused() {
    for frame in [
        result(1, false, b""),
        encode(&Frame::Withdrawn { id: TaskId(1) }),
    ] {
        let mut s = session();
        let now = Instant::now();
        s.connected(PeerId(1), now);
        s.message(PeerId(1), &frame, now);
        let why = dropped(&outputs(&mut s), 1);
        assert!(why.ends_with("before saying hello"), "{why}");
    }
}

#[test]
fn frames_only_a_host_sends_drop_the_daemon() {
    let frames = [
        Frame::Task(Task {
            id: TaskId(1),
            flags: 0,
            payload: vec![],
            trace: None,
        }),
        Frame::Cancel { id: TaskId(1) },
        Frame::Withdraw { id: TaskId(1) },
        Frame::Ack,
        Frame::Exit,
        Frame::Init(Init {
            stream: None,
            serial: vec![],
        }),
    ];
    for f in frames {
        let mut s = session();
        let now = Instant::now();
        joined(&mut s, 1, now);
        s.message(PeerId(1), &encode(&f), now);
        let why = dropped(&outputs(&mut s), 1);
        assert_eq!(
            why,
            format!(
                "daemon 1 sent an unexpected {} frame; disconnecting it",
                f.kind()
            )
        );
    }
}

#[test]
fn a_message_from_an_unknown_peer_drops_it() {
    let mut s = session();
    s.message(PeerId(9), &hello(9), Instant::now());
    let why = dropped(&outputs(&mut s), 9);
    assert!(why.contains("unknown peer 9"), "{why}");
}

#[test]
fn a_task_goes_to_an_idle_daemon_and_its_result_resolves_it() {
    let mut s = session();
    let now = Instant::now();
    joined(&mut s, 1, now);
    submit(&mut s, 7, None);
    assert_eq!(
        outputs(&mut s),
        [Output::Task {
            peer: PeerId(1),
            task: TaskId(7),
            body: b"body".to_vec(),
            attempts: Some(1)
        }]
    );
    s.message(PeerId(1), &result(7, false, b"answer"), now);
    assert_eq!(
        outputs(&mut s),
        [Output::Resolve {
            task: TaskId(7),
            outcome: Outcome::Value {
                status: Status::Ok,
                payload: b"answer".to_vec()
            }
        }]
    );
}

#[test]
fn a_result_for_an_unknown_task_is_discarded() {
    let mut s = session();
    let now = Instant::now();
    joined(&mut s, 1, now);
    s.message(PeerId(1), &result(12345, false, b"stray"), now);
    assert!(outputs(&mut s).is_empty(), "neither resolved nor dropped");
    // The daemon is still served.
    submit(&mut s, 1, None);
    assert!(matches!(
        outputs(&mut s)[..],
        [Output::Task {
            task: TaskId(1),
            ..
        }]
    ));
}

#[test]
fn a_last_result_is_acknowledged() {
    let mut s = session();
    let now = Instant::now();
    joined(&mut s, 1, now);
    submit(&mut s, 1, None);
    outputs(&mut s);
    s.message(PeerId(1), &result(1, true, b"v"), now);
    let out = outputs(&mut s);
    assert!(
        matches!(
            out[0],
            Output::Resolve {
                task: TaskId(1),
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(
        out[1],
        Output::Send {
            peer: PeerId(1),
            frame: encode(&Frame::Ack)
        }
    );
}

#[test]
fn a_lost_daemon_fails_its_task_with_19() {
    let mut s = session();
    let now = Instant::now();
    joined(&mut s, 1, now);
    submit(&mut s, 1, None);
    outputs(&mut s);
    s.disconnected(PeerId(1), &DisconnectReason::Closed, now);
    assert_eq!(
        outputs(&mut s),
        [
            Output::Left {
                peer: PeerId(1),
                pid: Some(101)
            },
            Output::Resolve {
                task: TaskId(1),
                outcome: Outcome::Error(ErrorCode::CONNECTION_RESET)
            }
        ]
    );
    assert_eq!(s.daemon_pids().count(), 0);
}

#[test]
fn a_task_deadline_is_a_timer_and_times_the_task_out() {
    let mut s = session();
    let t0 = Instant::now();
    joined(&mut s, 1, t0);
    let deadline = t0 + Duration::from_secs(1);
    submit(&mut s, 1, Some(deadline));
    outputs(&mut s);
    // The hello deadline passed without effect; the task's is the next timer.
    assert_eq!(s.next_timer(), Some(deadline));
    s.tick(deadline);
    let out = outputs(&mut s);
    assert!(
        out.contains(&Output::Resolve {
            task: TaskId(1),
            outcome: Outcome::Error(ErrorCode::TIMED_OUT)
        }),
        "{out:?}"
    );
    assert!(
        out.contains(&Output::Send {
            peer: PeerId(1),
            frame: encode(&Frame::Cancel { id: TaskId(1) })
        }),
        "the daemon is asked to stop: {out:?}"
    );
}

#[test]
fn exit_all_asks_each_daemon_to_exit() {
    let mut s = session();
    let now = Instant::now();
    joined(&mut s, 1, now);
    joined(&mut s, 2, now);
    s.sched_mut().exit_all();
    let mut peers: Vec<u64> = outputs(&mut s)
        .into_iter()
        .map(|o| match o {
            Output::Exit { peer } => peer.get(),
            other => panic!("expected exits, got {other:?}"),
        })
        .collect();
    peers.sort_unstable();
    assert_eq!(peers, [1, 2]);
}

#[test]
fn a_give_back_of_a_task_not_held_is_ignored() {
    let mut s = session();
    let now = Instant::now();
    joined(&mut s, 1, now);
    s.message(PeerId(1), &encode(&Frame::Withdrawn { id: TaskId(3) }), now);
    assert!(outputs(&mut s).is_empty());
}

/// A session that times tasks (pipelining at 1 ms), so that units go in batches.
fn timed_session() -> Session<Vec<u8>> {
    let mut c = config();
    c.sched = c.sched.with_pipeline(Some(Duration::from_millis(1)));
    Session::new(c)
}

fn units(s: &mut Session<Vec<u8>>, first: u64, n: u32, retries: u32) {
    for i in 0..n {
        let spec = TaskSpec::new().with_retries(retries);
        s.sched_mut()
            .submit_unit(TaskId(first + u64::from(i)), b"chunk".to_vec(), 1, spec, i);
    }
}

/// The batches among `out`: `(peer, first, offset, count)`.
fn batch_outputs(out: &[Out]) -> Vec<(u64, u64, u32, u32)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Batch {
                peer,
                task,
                offset,
                count,
                body,
                ..
            } => {
                assert_eq!(body, b"chunk");
                Some((peer.get(), task.get(), *offset, *count))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn units_go_out_as_batches_and_each_result_resolves_its_own_element() {
    let mut s = timed_session();
    let mut now = Instant::now();
    s.set_time(now);
    joined(&mut s, 1, now);
    units(&mut s, 1, 50, 0);
    let mut sent = batch_outputs(&outputs(&mut s));
    assert_eq!(sent, vec![(1, 1, 0, 1)], "one at a time until measured");
    let mut resolved = Vec::new();
    let mut batched = false;
    while !sent.is_empty() {
        let (_, first, _, count) = sent.remove(0);
        batched |= count > 1;
        for id in first..first + u64::from(count) {
            now += Duration::from_micros(20);
            s.message(PeerId(1), &result(id, false, b"v"), now);
            for o in outputs(&mut s) {
                match o {
                    Output::Resolve { task, outcome } => {
                        assert!(matches!(outcome, Outcome::Value { .. }));
                        resolved.push(task.get());
                    }
                    Output::Batch { .. } => sent.extend(batch_outputs(&[o])),
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(s.sched().counters().executing <= 1);
        }
    }
    assert!(batched, "measured quick units travel together");
    assert_eq!(resolved, (1..=50).collect::<Vec<u64>>());
}

#[test]
fn a_lost_daemon_fails_its_running_unit_and_its_unstarted_units_go_to_another() {
    let mut s = timed_session();
    let mut now = Instant::now();
    s.set_time(now);
    joined(&mut s, 1, now);
    units(&mut s, 1, 30, 0);
    // Measured at 200 us a unit: batches of a few, not coalesced (tinier units are, and
    // then every unit of the batch without a result would fail, see mirai-sched's tests).
    for id in 1..=2 {
        outputs(&mut s);
        now += Duration::from_micros(200);
        s.message(PeerId(1), &result(id, false, b"v"), now);
    }
    let out = outputs(&mut s);
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Batch {
                coalesce: false,
                ..
            }
        )),
        "{out:?}"
    );
    let b = batch_outputs(&out);
    assert_eq!(b.len(), 1);
    let (_, first, _, count) = b[0];
    assert!(count > 2);
    // The first of the batch is answered, the second is running when the daemon dies.
    s.message(PeerId(1), &result(first, false, b"v"), now);
    outputs(&mut s);
    s.disconnected(PeerId(1), &DisconnectReason::Closed, now);
    let out = outputs(&mut s);
    assert!(
        out.contains(&Output::Resolve {
            task: TaskId(first + 1),
            outcome: Outcome::Error(ErrorCode::CONNECTION_RESET)
        }),
        "{out:?}"
    );
    let fails = out
        .iter()
        .filter(|o| matches!(o, Output::Resolve { .. }))
        .count();
    assert_eq!(fails, 1, "only the unit it ran fails: {out:?}");
    s.connected(PeerId(2), now);
    s.message(PeerId(2), &hello(102), now);
    let out = outputs(&mut s);
    assert_eq!(batch_outputs(&out), vec![(2, first + 2, 4, 1)], "{out:?}");
    assert_eq!(s.sched().attempts(TaskId(first + 2)), Some(1));
}

#[test]
fn a_units_give_back_and_its_cancel_are_frames_of_that_unit() {
    let mut s = timed_session();
    let mut now = Instant::now();
    s.set_time(now);
    joined(&mut s, 1, now);
    units(&mut s, 1, 30, 0);
    for id in 1..=2 {
        outputs(&mut s);
        now += Duration::from_micros(20);
        s.message(PeerId(1), &result(id, false, b"v"), now);
    }
    let (_, first, _, count) = batch_outputs(&outputs(&mut s))[0];
    let last = first + u64::from(count) - 1;
    assert!(s.sched_mut().cancel(TaskId(last)));
    assert_eq!(
        outputs(&mut s),
        vec![Output::Send {
            peer: PeerId(1),
            frame: encode(&Frame::Cancel { id: TaskId(last) })
        }]
    );
    // The daemon drops it unstarted: nothing resolves (its handle was resolved by the cancel)
    // and it is not sent again.
    s.message(
        PeerId(1),
        &encode(&Frame::Withdrawn { id: TaskId(last) }),
        now,
    );
    assert!(outputs(&mut s).is_empty());
    assert_eq!(s.sched().attempts(TaskId(last)), None);
}

#[test]
fn a_coalesced_batch_goes_out_flagged_and_its_results_frame_resolves_each_in_order() {
    let mut s = timed_session();
    let mut now = Instant::now();
    s.set_time(now);
    joined(&mut s, 1, now);
    units(&mut s, 1, 50, 0);
    // Measured quick (20 us a unit), the third batch is several units, coalesced.
    for id in 1..=2 {
        outputs(&mut s);
        now += Duration::from_micros(20);
        s.message(PeerId(1), &result(id, false, b"v"), now);
    }
    let out = outputs(&mut s);
    let (first, count, coalesce) = match &out[..] {
        [Output::Resolve { .. }, Output::Batch {
            task,
            count,
            coalesce,
            ..
        }] => (task.get(), *count, *coalesce),
        other => panic!("expected a resolve and a batch, got {other:?}"),
    };
    assert!(count > 1 && coalesce, "{count} units, coalesced {coalesce}");
    let rs: Vec<TaskResult> = (first..first + u64::from(count))
        .map(|id| TaskResult {
            id: TaskId(id),
            status: Status::Ok,
            last: false,
            payload: id.to_be_bytes().to_vec(),
        })
        .collect();
    now += Duration::from_micros(20 * u64::from(count));
    s.message(PeerId(1), &encode(&Frame::Results(rs)), now);
    let resolved: Vec<u64> = outputs(&mut s)
        .into_iter()
        .filter_map(|o| match o {
            Output::Resolve {
                task,
                outcome: Outcome::Value { payload, .. },
            } => {
                assert_eq!(payload, task.get().to_be_bytes().to_vec());
                Some(task.get())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        resolved,
        (first..first + u64::from(count)).collect::<Vec<u64>>()
    );
    assert!(s.sched().counters().executing <= 1);
}

#[test]
fn a_results_frame_before_hello_drops_the_daemon() {
    let mut s = session();
    let now = Instant::now();
    s.connected(PeerId(1), now);
    s.message(PeerId(1), &encode(&Frame::Results(vec![])), now);
    let reason = dropped(&outputs(&mut s), 1);
    assert!(reason.contains("a results frame"), "{reason}");
}
