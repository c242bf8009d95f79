//! The worker loop against a fake host, in-process.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use mirai_daemon::{
    AutoExit, BuiltinEvaluator, DaemonConfig, DaemonError, EchoEvaluator, EvalControl, Evaluation,
    Evaluator, ExitCode, Init, Status, Task,
};
use mirai_proto::{Frame, TaskId};

fn config(url: &str) -> DaemonConfig {
    DaemonConfig::new(url)
}

#[test]
fn echo_round_trip() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), EchoEvaluator);
    let hello = host.handshake();
    assert_eq!(hello.pid, std::process::id());
    for (id, payload) in [
        (1u64, b"hello".to_vec()),
        (2, vec![]),
        (3, vec![0xff; 100_000]),
    ] {
        host.task(id, &payload);
        let r = host.result();
        assert_eq!((r.id.get(), r.status, r.last), (id, Status::Ok, false));
        assert_eq!(r.payload, payload);
    }
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

/// Records the init bundles it receives.
struct Recorder(Arc<Mutex<Vec<Init>>>);

impl Evaluator for Recorder {
    fn init(&mut self, init: &Init) -> Result<(), String> {
        self.0.lock().unwrap().push(init.clone());
        Ok(())
    }
    fn evaluate(&mut self, task: Task, _ctl: &mut EvalControl<'_>) -> Evaluation {
        // Proves init ran before the first task.
        let n = self.0.lock().unwrap().len();
        Evaluation {
            status: Status::Ok,
            payload: format!("{n}:{}", task.id).into_bytes(),
        }
    }
}

#[test]
fn init_bundle_reaches_the_evaluator_before_the_first_task() {
    let mut host = FakeHost::bind(&abstract_url("init"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let d = spawn_daemon(config(&host.url()), Recorder(seen.clone()));
    let init = Init {
        stream: Some([10407, 1, -2, 3, -4, 5, 6]),
        serial: vec![9, 8, 7],
    };
    host.handshake_with(init.clone());
    host.task(5, b"x");
    assert_eq!(host.result().payload, b"1:5");
    assert_eq!(*seen.lock().unwrap(), vec![init]);
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

struct Refuser;

impl Evaluator for Refuser {
    fn init(&mut self, _init: &Init) -> Result<(), String> {
        Err("serial config does not unserialize".into())
    }
    fn evaluate(&mut self, _task: Task, _ctl: &mut EvalControl<'_>) -> Evaluation {
        unreachable!("no task may run after a failed init")
    }
}

#[test]
fn a_refused_init_is_an_init_error() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), Refuser);
    host.handshake();
    match join(d) {
        Err(DaemonError::Init(msg)) => assert!(msg.contains("does not unserialize")),
        other => panic!("expected an init error, got {other:?}"),
    }
    host.expect_disconnect();
}

#[test]
fn builtin_actions() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    let cases: [(&[u8], Status, &[u8]); 7] = [
        (b"block:1", Status::Ok, b"blocked"),
        (b"echo:abc:d", Status::Ok, b"abc:d"),
        (b"fail:it broke", Status::Error, b"it broke"),
        (b"sleep:1", Status::Ok, b"slept"),
        (b"spin:2", Status::Ok, b"spun"),
        (
            b"sleep:soon",
            Status::Error,
            b"expected a whole number of milliseconds, got 'soon'",
        ),
        (b"0123456789abcdef", Status::Ok, b"0123456789abcdef"),
    ];
    for (i, (payload, status, reply)) in cases.iter().enumerate() {
        host.task(i as u64, payload);
        let r = host.result();
        assert_eq!(
            (r.id.get(), r.status),
            (i as u64, *status),
            "payload {:?}",
            payload
        );
        assert_eq!(r.payload, *reply);
    }
    host.task(99, b"pid:");
    assert_eq!(
        host.result().payload,
        std::process::id().to_string().into_bytes()
    );
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn cancel_interrupts_a_sleeping_task_and_the_daemon_keeps_serving() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    host.task(1, b"sleep:60000");
    host.cancel(1);
    let r = host.result();
    assert_eq!(
        (r.id.get(), r.status, r.payload.as_slice()),
        (1, Status::Interrupted, &b"interrupted"[..])
    );
    host.task(2, b"echo:still here");
    let r = host.result();
    assert_eq!(
        (r.id.get(), r.status, r.payload.as_slice()),
        (2, Status::Ok, &b"still here"[..])
    );
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn cancel_interrupts_a_cpu_bound_task() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    host.task(1, b"spin:60000");
    host.cancel(1);
    let r = host.result();
    assert_eq!((r.id.get(), r.status), (1, Status::Interrupted));
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn a_cancel_for_another_task_does_not_interrupt() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    host.task(1, b"sleep:200");
    host.cancel(7);
    host.cancel(0);
    let r = host.result();
    assert_eq!(
        (r.id.get(), r.status, r.payload.as_slice()),
        (1, Status::Ok, &b"slept"[..])
    );
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn cancel_after_the_result_is_ignored() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    host.task(1, b"echo:a");
    assert_eq!(host.result().status, Status::Ok);
    host.cancel(1);
    // The next task must not see the stale cancel.
    host.task(2, b"sleep:50");
    let r = host.result();
    assert_eq!(
        (r.id.get(), r.status, r.payload.as_slice()),
        (2, Status::Ok, &b"slept"[..])
    );
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn a_thousand_cancels_never_kill_the_daemon() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    // While busy: a burst for the running task.
    host.task(1, b"sleep:60000");
    for _ in 0..1000 {
        host.cancel(1);
    }
    assert_eq!(host.result().status, Status::Interrupted);
    // While idle, for answered and unknown tasks.
    for i in 0..1000 {
        host.cancel(i);
    }
    // Interleaved with work. A task can reach the daemon while the one before it is still
    // being answered, so it waits there and its cancel drops it unstarted (`Withdrawn`);
    // otherwise the cancel interrupts it. Either way each task gets exactly one answer, in order.
    for i in 10..60u64 {
        host.task(i, b"sleep:60000");
        for _ in 0..20 {
            host.cancel(i);
        }
    }
    for i in 10..60u64 {
        match host.recv() {
            Frame::Result(r) => assert_eq!((r.id.get(), r.status), (i, Status::Interrupted)),
            Frame::Withdrawn { id } => assert_eq!(id.get(), i),
            other => panic!("expected an answer for task {i}, got {other:?}"),
        }
    }
    host.task(100, b"echo:alive");
    let r = host.result();
    assert_eq!((r.id.get(), r.payload.as_slice()), (100, &b"alive"[..]));
    assert!(!d.is_finished());
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn tasks_sent_back_to_back_are_all_answered_in_order() {
    let mut host = FakeHost::bind(&abstract_url("queue"));
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    // The first task keeps the daemon busy so the others queue up behind it and are read by
    // the evaluation's cancel polling.
    host.task(0, b"sleep:100");
    for i in 1..200u64 {
        host.task(i, format!("echo:{i}").as_bytes());
    }
    assert_eq!(host.result().id, TaskId(0));
    for i in 1..200u64 {
        let r = host.result();
        assert_eq!((r.id.get(), r.status), (i, Status::Ok));
        assert_eq!(r.payload, i.to_string().into_bytes());
    }
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn a_cancel_for_a_queued_task_drops_it_unstarted_and_says_so() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    host.task(1, b"sleep:300");
    host.task(2, b"echo:two");
    host.task(3, b"echo:three");
    host.cancel(2);
    // Read while task 1 sleeps (the evaluator polls): given back at once.
    assert_eq!(host.recv(), Frame::Withdrawn { id: TaskId(2) });
    let r = host.result();
    assert_eq!((r.id.get(), r.status), (1, Status::Ok));
    let r = host.result();
    assert_eq!(
        (r.id.get(), r.status, r.payload.as_slice()),
        (3, Status::Ok, &b"three"[..])
    );
    assert!(
        host.try_recv(Duration::from_millis(200)).is_none(),
        "task 2 was evaluated after all"
    );
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn a_withdrawn_pipelined_task_is_given_back_and_a_started_one_completes() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    // A polling evaluation: the withdraw is answered while it runs.
    host.task(1, b"sleep:300");
    host.task(2, b"echo:two");
    host.send(&Frame::Withdraw { id: TaskId(2) });
    assert_eq!(host.recv(), Frame::Withdrawn { id: TaskId(2) });
    assert_eq!(host.result().id, TaskId(1));
    // A withdraw of the task being evaluated is ignored: it completes.
    host.task(3, b"sleep:500");
    // Sent once the task has surely started (a withdraw read before it starts gives it back).
    std::thread::sleep(Duration::from_millis(150));
    host.send(&Frame::Withdraw { id: TaskId(3) });
    let r = host.result();
    assert_eq!(
        (r.id.get(), r.status, r.payload.as_slice()),
        (3, Status::Ok, &b"slept"[..])
    );
    // An evaluation that never reads the connection: the withdraw is read before the next
    // task starts, so that task is still given back. (If all three frames arrive before task 4
    // starts, the give-back comes first: either order keeps the contract.)
    host.task(4, b"block:300");
    host.task(5, b"echo:five");
    host.send(&Frame::Withdraw { id: TaskId(5) });
    let (mut result, mut withdrawn) = (None, false);
    for _ in 0..2 {
        match host.recv() {
            Frame::Result(r) => result = Some(r),
            Frame::Withdrawn { id: TaskId(5) } => withdrawn = true,
            other => panic!("expected task 4's result or task 5 given back, got {other:?}"),
        }
    }
    let r = result.expect("task 4 answered");
    assert_eq!(
        (r.id.get(), r.payload.as_slice(), withdrawn),
        (4, &b"blocked"[..], true)
    );
    assert!(
        host.try_recv(Duration::from_millis(200)).is_none(),
        "a withdrawn task was evaluated"
    );
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn after_its_last_result_a_daemon_gives_back_what_it_holds_and_what_crosses() {
    let mut host = FakeHost::tcp();
    let mut cfg = config(&host.url());
    cfg.maxtasks = Some(1);
    let d = spawn_daemon(cfg, BuiltinEvaluator);
    host.handshake();
    host.task(1, b"sleep:200");
    host.task(2, b"echo:two");
    let r = host.result();
    assert_eq!((r.id.get(), r.last), (1, true));
    assert_eq!(host.recv(), Frame::Withdrawn { id: TaskId(2) });
    // Sent before the host saw the last result.
    host.task(3, b"echo:three");
    assert_eq!(host.recv(), Frame::Withdrawn { id: TaskId(3) });
    host.send(&Frame::Ack);
    assert_eq!(join(d).unwrap(), ExitCode::Maxtasks);
}

#[test]
fn maxtasks_marks_the_last_result_and_waits_for_ack() {
    let mut host = FakeHost::tcp();
    let mut cfg = config(&host.url());
    cfg.maxtasks = Some(2);
    let d = spawn_daemon(cfg, BuiltinEvaluator);
    host.handshake();
    host.task(1, b"echo:1");
    assert!(!host.result().last);
    host.task(2, b"echo:2");
    let r = host.result();
    assert_eq!((r.id.get(), r.last), (2, true));
    // Without an ack the daemon stays.
    assert!(host.try_recv(Duration::from_millis(300)).is_none());
    assert!(
        !d.is_finished(),
        "daemon left before its last result was acknowledged"
    );
    host.send(&Frame::Ack);
    assert_eq!(join(d).unwrap(), ExitCode::Maxtasks);
    host.expect_disconnect();
}

#[test]
fn maxtasks_last_result_ends_on_close_too() {
    let mut host = FakeHost::tcp();
    let mut cfg = config(&host.url());
    cfg.maxtasks = Some(1);
    cfg.autoexit = AutoExit::Stay; // a close while awaiting the ack still ends it
    let d = spawn_daemon(cfg, BuiltinEvaluator);
    host.handshake();
    host.task(1, b"echo:1");
    assert!(host.result().last);
    drop(host);
    assert_eq!(join(d).unwrap(), ExitCode::Maxtasks);
}

#[test]
fn walltime_while_idle_returns_2() {
    let mut host = FakeHost::tcp();
    let mut cfg = config(&host.url());
    cfg.walltime = Some(Duration::from_millis(300));
    cfg.idletime = Some(Duration::from_secs(60));
    let d = spawn_daemon(cfg, BuiltinEvaluator);
    host.handshake();
    // An idle daemon does not just hang up: it asks to leave and waits for the ack.
    host.expect_leave_notice();
    host.send(&Frame::Ack);
    assert_eq!(join(d).unwrap(), ExitCode::Walltime);
    host.expect_disconnect();
}

#[test]
fn a_task_finishing_after_walltime_is_the_last() {
    let mut host = FakeHost::tcp();
    let mut cfg = config(&host.url());
    cfg.walltime = Some(Duration::from_millis(1000));
    let d = spawn_daemon(cfg, BuiltinEvaluator);
    host.handshake();
    host.task(1, b"echo:early");
    assert!(!host.result().last);
    // Walltime passes during this task: its result is the last, so that the host sends
    // nothing more (rather than the daemon leaving while the host dispatches).
    host.task(2, b"sleep:1500");
    let r = host.result();
    assert_eq!((r.id.get(), r.last), (2, true));
    host.send(&Frame::Ack);
    assert_eq!(join(d).unwrap(), ExitCode::Walltime);
}

#[test]
fn a_task_crossing_the_leave_notice_is_served() {
    let mut host = FakeHost::tcp();
    let mut cfg = config(&host.url());
    cfg.idletime = Some(Duration::from_millis(300));
    let d = spawn_daemon(cfg, BuiltinEvaluator);
    host.handshake();
    host.expect_leave_notice();
    // The host had dispatched before it saw the notice: the task is answered, not lost.
    host.task(7, b"echo:crossed");
    host.task(8, b"echo:too");
    let r = host.result();
    assert_eq!(
        (r.id.get(), r.last, r.payload.as_slice()),
        (7, true, &b"crossed"[..])
    );
    let r = host.result();
    assert_eq!(
        (r.id.get(), r.last, r.payload.as_slice()),
        (8, true, &b"too"[..])
    );
    host.send(&Frame::Ack);
    assert_eq!(join(d).unwrap(), ExitCode::Idletime);
    host.expect_disconnect();
}

#[test]
fn maxtasks_wins_over_walltime() {
    let mut host = FakeHost::tcp();
    let mut cfg = config(&host.url());
    cfg.walltime = Some(Duration::from_millis(1000));
    cfg.maxtasks = Some(2);
    let d = spawn_daemon(cfg, BuiltinEvaluator);
    host.handshake();
    host.task(1, b"echo:x");
    assert!(!host.result().last);
    host.task(2, b"sleep:1500");
    assert!(host.result().last);
    host.send(&Frame::Ack);
    assert_eq!(join(d).unwrap(), ExitCode::Maxtasks);
}

#[test]
fn idletime_returns_1_and_tasks_reset_it() {
    let mut host = FakeHost::tcp();
    let mut cfg = config(&host.url());
    cfg.idletime = Some(Duration::from_millis(1000));
    let d = spawn_daemon(cfg, BuiltinEvaluator);
    host.handshake();
    // A task longer than the idle time does not count as idle.
    host.task(1, b"sleep:1500");
    assert_eq!(host.result().status, Status::Ok);
    host.task(2, b"echo:x");
    assert_eq!(host.result().status, Status::Ok);
    host.expect_leave_notice();
    host.send(&Frame::Ack);
    assert_eq!(join(d).unwrap(), ExitCode::Idletime);
    host.expect_disconnect();
}

#[test]
fn host_gone_while_idle_returns_0() {
    for autoexit in [AutoExit::Exit, AutoExit::Finish] {
        let mut host = FakeHost::tcp();
        let mut cfg = config(&host.url());
        cfg.autoexit = autoexit;
        let d = spawn_daemon(cfg, BuiltinEvaluator);
        host.handshake();
        host.task(1, b"echo:x");
        host.result();
        drop(host);
        assert_eq!(join(d).unwrap(), ExitCode::Disconnected, "{autoexit:?}");
    }
}

#[test]
fn autoexit_na_finishes_the_task_when_the_host_goes() {
    let mut host = FakeHost::bind(&abstract_url("finish"));
    let mut cfg = config(&host.url());
    cfg.autoexit = AutoExit::Finish;
    let finished = Arc::new(Mutex::new(false));
    struct Slow(Arc<Mutex<bool>>);
    impl Evaluator for Slow {
        fn evaluate(&mut self, _task: Task, ctl: &mut EvalControl<'_>) -> Evaluation {
            let cancelled = ctl.wait_cancel(Duration::from_millis(500));
            // With autoexit = NA a lost host is no reason to stop.
            *self.0.lock().unwrap() = !cancelled && !ctl.should_exit();
            Evaluation {
                status: Status::Ok,
                payload: vec![],
            }
        }
    }
    let d = spawn_daemon(cfg, Slow(finished.clone()));
    host.handshake();
    host.task(1, b"");
    std::thread::sleep(Duration::from_millis(50));
    drop(host);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
    assert!(
        *finished.lock().unwrap(),
        "the task was interrupted instead of finished"
    );
}

#[test]
fn autoexit_false_redials_the_same_url() {
    let url = abstract_url("stay");
    let mut host = FakeHost::bind(&url);
    let mut cfg = config(&url);
    cfg.autoexit = AutoExit::Stay;
    let inits = Arc::new(Mutex::new(Vec::new()));
    struct Counting(Arc<Mutex<Vec<Init>>>);
    impl Evaluator for Counting {
        fn init(&mut self, init: &Init) -> Result<(), String> {
            self.0.lock().unwrap().push(init.clone());
            Ok(())
        }
        fn evaluate(&mut self, task: Task, _ctl: &mut EvalControl<'_>) -> Evaluation {
            Evaluation {
                status: Status::Ok,
                payload: task.payload,
            }
        }
    }
    let d = spawn_daemon(cfg, Counting(inits.clone()));
    host.handshake_with(Init {
        stream: Some([1; 7]),
        serial: vec![],
    });
    host.task(1, b"first");
    assert_eq!(host.result().payload, b"first");
    drop(host);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !d.is_finished(),
        "an autoexit = FALSE daemon left when its host went away"
    );

    let mut host = FakeHost::bind(&url);
    host.handshake_with(Init {
        stream: Some([2; 7]),
        serial: vec![1],
    });
    host.task(1, b"second");
    let r = host.result();
    assert_eq!((r.id.get(), r.payload.as_slice()), (1, &b"second"[..]));
    assert_eq!(
        *inits.lock().unwrap(),
        vec![
            Init {
                stream: Some([1; 7]),
                serial: vec![]
            },
            Init {
                stream: Some([2; 7]),
                serial: vec![1]
            }
        ]
    );
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn autoexit_false_still_honours_idletime_while_redialling() {
    let url = abstract_url("stay-idle");
    let mut host = FakeHost::bind(&url);
    let mut cfg = config(&url);
    cfg.autoexit = AutoExit::Stay;
    cfg.idletime = Some(Duration::from_millis(500));
    let d = spawn_daemon(cfg, BuiltinEvaluator);
    host.handshake();
    drop(host);
    assert_eq!(join(d).unwrap(), ExitCode::Idletime);
}

#[test]
fn sync_dial_to_nothing_is_a_dial_error_with_code_6() {
    // A port that was just listening and is now closed, and a socket path that does not exist.
    let tcp = FakeHost::tcp().url();
    let ipc = format!(
        "ipc:///tmp/mirai-daemon-test-missing-{}",
        std::process::id()
    );
    for url in [tcp, ipc] {
        match mirai_daemon::run(&config(&url), &mut EchoEvaluator) {
            Err(e @ DaemonError::Dial { .. }) => {
                assert_eq!(e.to_string(), "6 | Connection refused");
                let DaemonError::Dial { code, text, source } = e else {
                    unreachable!()
                };
                assert_eq!((code, text), (6, "Connection refused"));
                assert!(
                    source.to_string().contains(&url),
                    "{source} does not name {url}"
                );
            }
            other => panic!("expected a dial error for {url}, got {other:?}"),
        }
    }
}

#[test]
fn async_dial_waits_for_the_host() {
    let url = abstract_url("async");
    let mut cfg = config(&url);
    cfg.asyncdial = true;
    let d = spawn_daemon(cfg, BuiltinEvaluator);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!d.is_finished());
    let mut host = FakeHost::bind(&url);
    host.handshake();
    host.task(1, b"echo:late host");
    assert_eq!(host.result().payload, b"late host");
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn exit_frame_returns_0_at_once() {
    // While idle.
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
    host.expect_disconnect();

    // Instead of init.
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.accept();
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);

    // During a task: no reply.
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    host.task(1, b"sleep:60000");
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
    host.expect_disconnect();
}

#[test]
fn a_wrong_first_frame_is_a_protocol_error() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.accept();
    host.send(&Frame::Ack);
    assert!(matches!(join(d), Err(DaemonError::Protocol(_))));

    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.accept();
    host.send_raw(b"definitely not a frame");
    assert!(matches!(join(d), Err(DaemonError::Protocol(_))));
}

#[test]
fn garbage_after_init_breaks_the_connection() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), BuiltinEvaluator);
    host.handshake();
    host.send_raw(b"MRI\x01garbage");
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
    host.expect_disconnect();
}

#[test]
fn eval_control_reports_task_id_and_descriptor() {
    struct Probe;
    impl Evaluator for Probe {
        fn evaluate(&mut self, task: Task, ctl: &mut EvalControl<'_>) -> Evaluation {
            assert_eq!(ctl.task_id(), task.id);
            assert!(!ctl.should_exit());
            assert!(!ctl.poll_cancel());
            let fd = ctl.raw_fd().map_or(-1, |fd| fd);
            Evaluation {
                status: Status::Ok,
                payload: fd.to_string().into_bytes(),
            }
        }
    }
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), Probe);
    host.handshake();
    host.task(42, b"");
    let r = host.result();
    assert_eq!(r.id, TaskId(42));
    let fd: i32 = String::from_utf8(r.payload).unwrap().parse().unwrap();
    assert!(fd >= 0, "the native backend has a descriptor");
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn should_exit_turns_true_when_exit_arrives_mid_task() {
    let seen = Arc::new(Mutex::new(None));
    struct Watcher(Arc<Mutex<Option<bool>>>);
    impl Evaluator for Watcher {
        fn evaluate(&mut self, _task: Task, ctl: &mut EvalControl<'_>) -> Evaluation {
            let cancelled = ctl.wait_cancel(Duration::from_secs(60));
            *self.0.lock().unwrap() = Some(cancelled && ctl.should_exit());
            Evaluation {
                status: Status::Interrupted,
                payload: vec![],
            }
        }
    }
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(config(&host.url()), Watcher(seen.clone()));
    host.handshake();
    host.task(1, b"");
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
    assert_eq!(*seen.lock().unwrap(), Some(true));
}
