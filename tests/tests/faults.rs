//! Faults against real daemon processes: every task resolves exactly once, to its value or to
//! an error value that says what happened, and nothing else is disturbed.

mod common;

use std::collections::HashSet;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use mirai::host::launch::{daemon_command, DaemonArgs};
use mirai::host::{ErrorCode, RepairPolicy, Status};
use mirai::proto::{encode, Frame, Hello, TaskResult, PROTOCOL_VERSION};
use mirai::transport::Backend;
use mirai::{Host, HostConfig, Outcome, SubmitOptions, TaskHandle};

fn submit(host: &Host, p: &str) -> TaskHandle {
    host.submit(p.as_bytes().to_vec(), SubmitOptions::default())
        .unwrap()
}

fn submit_retrying(host: &Host, p: &str, retries: u32) -> TaskHandle {
    let opts = SubmitOptions::new().with_retries(Some(retries));
    host.submit(p.as_bytes().to_vec(), opts).unwrap()
}

const NATIVE: Backend = Backend::Native;

/// Reaps the daemons a test held, after its host is gone (they exit on their own then).
fn reap(children: &mut [std::process::Child]) {
    for c in children {
        if wait_exit(c, Duration::from_secs(10)).is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn sigkill_mid_task_resolves_19_and_a_relaunched_daemon_picks_up_work() {
    let host = host();
    let a = args(NATIVE);
    let mut victim = spawn(host.url(), &a);
    assert!(host.wait_connections(1, LONG));
    let doomed = submit(&host, "sleep:600000");
    assert_eq!(
        host.status().counters.executing,
        1,
        "the only daemon took it"
    );
    let mut others = vec![spawn(host.url(), &a), spawn(host.url(), &a)];
    assert!(host.wait_connections(3, LONG));
    // Both other daemons busy, so that tasks wait in the queue when the victim dies.
    let busy: Vec<_> = (0..2).map(|_| submit(&host, "sleep:300")).collect();
    let queued: Vec<_> = (0..20).map(|_| submit(&host, "pid:")).collect();
    assert_eq!(host.status().counters.awaiting, 20);

    let killed_at = Instant::now();
    signal(victim.id(), libc::SIGKILL);
    assert_eq!(
        doomed.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );
    let took = killed_at.elapsed();
    println!("SIGKILL -> error 19 in {took:?}");
    assert!(wait_exit(&mut victim, LONG).is_some());

    for h in &busy {
        assert_eq!(ok(h.wait(Some(LONG))), b"slept");
    }
    let mut pids = HashSet::new();
    for h in &queued {
        let p = pid(h.wait(Some(LONG)));
        assert_ne!(p, victim.id());
        pids.insert(p);
    }
    assert!(pids.iter().all(|p| others.iter().any(|c| c.id() == *p)));
    let c = host.status().counters;
    assert_eq!(
        (c.connections, c.awaiting, c.executing, c.completed),
        (2, 0, 0, 23)
    );

    // A relaunched daemon joins and takes work: with the two old daemons busy, the next task
    // can only go to it.
    let fresh = spawn(host.url(), &a);
    assert!(host.wait_connections(3, LONG));
    let busy: Vec<_> = (0..2).map(|_| submit(&host, "sleep:1000")).collect();
    assert_eq!(pid(submit(&host, "pid:").wait(Some(LONG))), fresh.id());
    for h in &busy {
        assert_eq!(ok(h.wait(Some(LONG))), b"slept");
    }
    let c = host.status().counters;
    assert_eq!(
        (
            c.connections,
            c.cumulative,
            c.awaiting,
            c.executing,
            c.completed
        ),
        (3, 4, 0, 0, 26)
    );
    drop(host);
    others.push(fresh);
    reap(&mut others);
}

#[test]
fn a_retried_task_survives_sigkill_of_its_daemon() {
    let host = host();
    let a = args(NATIVE);
    let mut victim = spawn(host.url(), &a);
    assert!(host.wait_connections(1, LONG));
    let t = submit_retrying(&host, "sleep:300", 2);
    let plain = submit(&host, "echo:after");
    assert_eq!(t.attempts(), 1);
    let mut other = spawn(host.url(), &a);
    assert!(host.wait_connections(2, LONG));
    // The other daemon is free: it took the queued task, and the retried one follows it.
    assert_eq!(ok(plain.wait(Some(LONG))), b"after");
    let killed_at = Instant::now();
    signal(victim.id(), libc::SIGKILL);
    assert_eq!(
        ok(t.wait(Some(LONG))),
        b"slept",
        "run again on the other daemon"
    );
    println!(
        "SIGKILL -> retried task answered by another daemon in {:?}",
        killed_at.elapsed()
    );
    assert_eq!(t.attempts(), 2);
    assert!(wait_exit(&mut victim, LONG).is_some());
    let c = host.status().counters;
    assert_eq!(
        (c.connections, c.awaiting, c.executing, c.completed),
        (1, 0, 0, 2)
    );
    drop(host);
    reap(std::slice::from_mut(&mut other));
}

#[test]
fn repair_keeps_three_daemons_after_a_sigkill() {
    let config = HostConfig::new("tcp://127.0.0.1:0").with_repair(Some(
        RepairPolicy::default().with_backoff(Duration::from_millis(50)),
    ));
    let host = Host::start(config).unwrap();
    launch(&host, 3, &args(NATIVE), 3);
    let pids = host.launched_pids();
    let before: HashSet<u32> = host
        .map((0..30).map(|_| b"pid:".to_vec()))
        .unwrap()
        .into_iter()
        .map(|h| pid(h.wait(Some(LONG))))
        .collect();
    assert!(before.iter().all(|p| pids.contains(p)));

    signal(pids[1], libc::SIGKILL);
    assert!(eventually(LONG, || host.relaunches() == 1), "relaunched");
    assert!(
        eventually(LONG, || host.status().counters.cumulative == 4),
        "the new daemon connected"
    );
    assert!(host.wait_connections(3, LONG));
    let now = host.launched_pids();
    assert_eq!(now.len(), 3);
    assert!(!now.contains(&pids[1]) && now.contains(&pids[0]) && now.contains(&pids[2]));

    // Work continues, on all three.
    let hs: Vec<_> = (0..3).map(|_| submit(&host, "sleep:300")).collect();
    assert_eq!(host.status().counters.executing, 3);
    for h in hs {
        assert_eq!(ok(h.wait(Some(LONG))), b"slept");
    }
    // A planned exit (here: told to exit) is not repaired.
    host.exit_daemons();
    assert!(eventually(LONG, || host.launched_pids().is_empty()));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(host.relaunches(), 1);
    assert_eq!(host.status().counters.connections, 0);
}

#[test]
fn a_stopped_daemon_resumes_its_task_while_others_keep_flowing() {
    let host = host();
    let a = args(NATIVE);
    let victim = spawn(host.url(), &a);
    assert!(host.wait_connections(1, LONG));
    let started = Instant::now();
    let stalled = submit(&host, "sleep:800");
    let other = spawn(host.url(), &a);
    assert!(host.wait_connections(2, LONG));

    signal(victim.id(), libc::SIGSTOP);
    let hs = host
        .map((0..200).map(|i| format!("echo:{i}").into_bytes()))
        .unwrap();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(ok(h.wait(Some(LONG))), format!("{i}").into_bytes());
    }
    assert!(!stalled.is_resolved(), "a stopped daemon is not a lost one");
    let left = Duration::from_millis(1000).saturating_sub(started.elapsed());
    std::thread::sleep(left);
    signal(victim.id(), libc::SIGCONT);
    assert_eq!(ok(stalled.wait(Some(LONG))), b"slept");

    // Both serve again.
    let hs: Vec<_> = (0..2).map(|_| submit(&host, "sleep:300")).collect();
    assert_eq!(host.status().counters.executing, 2);
    for h in hs {
        assert_eq!(ok(h.wait(Some(LONG))), b"slept");
    }
    let c = host.status().counters;
    assert_eq!(
        (c.connections, c.awaiting, c.executing, c.completed),
        (2, 0, 0, 203)
    );
    drop(host);
    reap(&mut [victim, other]);
}

/// A daemon played by the test over a raw TCP socket: hello, then whatever the test wants.
fn raw_daemon(host: &Host) -> TcpStream {
    let addr = host.url().strip_prefix("tcp://").expect("a tcp url");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    write_msg(
        &mut s,
        &encode(&Frame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            pid: 1,
        })),
    );
    assert!(matches!(
        mirai::proto::decode(&read_msg(&mut s), usize::MAX),
        Ok(Frame::Init(_))
    ));
    s
}

fn half_a_result(s: &mut TcpStream, id: mirai::proto::TaskId) {
    use std::io::Write;
    let r = encode(&Frame::Result(TaskResult {
        id,
        status: Status::Ok,
        last: false,
        payload: vec![7; 1000],
    }));
    let mut msg = (r.len() as u64).to_le_bytes().to_vec();
    msg.extend_from_slice(&r[..r.len() / 2]);
    s.write_all(&msg).unwrap();
    s.shutdown(std::net::Shutdown::Both).unwrap();
}

#[test]
fn a_connection_cut_mid_frame_fails_its_task_only() {
    let host = host();
    // Before hello: half a length prefix, then half a message.
    for cut in [
        &[0x10u8, 0, 0][..],
        &[100, 0, 0, 0, 0, 0, 0, 0, b'M', b'R', b'I'][..],
    ] {
        use std::io::Write;
        let mut s = TcpStream::connect(host.url().strip_prefix("tcp://").unwrap()).unwrap();
        s.write_all(cut).unwrap();
        drop(s);
    }
    // After hello, mid-result: the task it held fails with 19; a retryable one runs again.
    let mut raw = raw_daemon(&host);
    let plain = submit(&host, "echo:plain");
    let Ok(Frame::Task(t)) = mirai::proto::decode(&read_msg(&mut raw), usize::MAX) else {
        panic!("a task")
    };
    half_a_result(&mut raw, t.id);
    assert_eq!(
        plain.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );

    let mut raw = raw_daemon(&host);
    let retried = submit_retrying(&host, "echo:again", 1);
    let Ok(Frame::Task(t)) = mirai::proto::decode(&read_msg(&mut raw), usize::MAX) else {
        panic!("a task")
    };
    half_a_result(&mut raw, t.id);
    launch(&host, 2, &args(NATIVE), 2);
    assert_eq!(ok(retried.wait(Some(LONG))), b"again");
    assert_eq!(retried.attempts(), 2);
    let hs = host
        .map((0..50).map(|i| format!("echo:{i}").into_bytes()))
        .unwrap();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(ok(h.wait(Some(LONG))), format!("{i}").into_bytes());
    }
    let c = host.status().counters;
    assert_eq!(
        (c.connections, c.awaiting, c.executing, c.completed),
        (2, 0, 0, 52)
    );
}

#[test]
fn reset_with_tasks_queued_and_executing_resolves_all_with_19() {
    let host = host();
    launch(&host, 2, &args(NATIVE), 2);
    let pids = host.launched_pids();
    let mut all: Vec<TaskHandle> = (0..2).map(|_| submit(&host, "sleep:600000")).collect();
    all.extend((0..10).map(|i| submit(&host, &format!("echo:{i}"))));
    all.extend((0..5).map(|_| submit_retrying(&host, "sleep:600000", 3)));
    let c = host.status().counters;
    assert_eq!((c.executing, c.awaiting), (2, 15));
    let waiter = {
        let h = submit(&host, "sleep:600000");
        std::thread::spawn(move || h.wait(Some(LONG)))
    };
    std::thread::sleep(Duration::from_millis(50));
    host.reset();
    for h in &all {
        assert_eq!(
            h.wait(Some(Duration::ZERO)),
            Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
        );
    }
    assert_eq!(
        waiter.join().unwrap(),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET)),
        "a blocked wait ends too"
    );
    // Busy daemons see their host go and leave (autoexit); nothing is relaunched.
    assert!(eventually(Duration::from_secs(15), || pids
        .iter()
        .all(|p| !alive(*p))));
}

#[test]
fn a_thousand_cancels_of_running_tasks_never_kill_the_daemon() {
    let host = host();
    launch(&host, 1, &args(NATIVE), 1);
    let first = pid(submit(&host, "pid:").wait(Some(LONG)));
    for i in 0..1000 {
        let t = submit(
            &host,
            if i % 2 == 0 {
                "spin:600000"
            } else {
                "sleep:600000"
            },
        );
        // Cancel it once it is running (dispatched), not while it is queued.
        let end = Instant::now() + LONG;
        while t.attempts() == 0 {
            assert!(Instant::now() < end, "task {i} never dispatched");
            std::thread::sleep(Duration::from_micros(100));
        }
        assert!(host.cancel(&t), "task {i} still held");
        assert_eq!(t.try_take(), Some(Outcome::Error(ErrorCode::CANCELED)));
    }
    assert_eq!(
        pid(submit(&host, "pid:").wait(Some(LONG))),
        first,
        "the same daemon serves on"
    );
    assert!(alive(first));
    let c = host.status().counters;
    assert_eq!(
        (
            c.connections,
            c.cumulative,
            c.awaiting,
            c.executing,
            c.completed
        ),
        (1, 1, 0, 0, 1002)
    );
}

/// Runs `n` tasks over a pool of 2 daemons that exit on a limit, relaunching them as they go:
/// no task may be lost to an exit.
fn limit_exits_lose_nothing(
    limits: DaemonArgs,
    n: usize,
    task: impl Fn(usize) -> String,
    expect: impl Fn(usize) -> Vec<u8>,
    pace: Option<Duration>,
) {
    let host = host();
    let cmd = daemon_command(daemon_bin(), host.url(), &limits);
    host.launch(&cmd, 2).unwrap();
    let mut launches = 2;
    let mut handles = Vec::new();
    let end = Instant::now() + LONG;
    let mut next = 0;
    loop {
        if next < n {
            match pace {
                Some(p) => {
                    handles.push(submit(&host, &task(next)));
                    next += 1;
                    std::thread::sleep(p);
                }
                None => {
                    handles.extend((0..n).map(|i| submit(&host, &task(i))));
                    next = n;
                }
            }
        }
        if next == n && handles.iter().all(|h| h.is_resolved()) {
            break;
        }
        assert!(Instant::now() < end, "tasks stuck");
        if host.launched_pids().len() < 2 {
            host.launch(&cmd, 1).unwrap();
            launches += 1;
        }
        if pace.is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for (i, h) in handles.iter().enumerate() {
        match h.wait(Some(Duration::ZERO)) {
            Some(Outcome::Value {
                status: Status::Ok,
                payload,
            }) => {
                assert_eq!(payload, expect(i), "task {i}")
            }
            other => panic!("task {i} lost to a limit exit: {other:?}"),
        }
    }
    let c = host.status().counters;
    assert_eq!((c.awaiting, c.executing, c.completed), (0, 0, n as u64));
    println!("{n} tasks over {launches} daemon launches ({limits:?})");
    assert!(launches > 2, "the limit made daemons exit");
}

#[test]
fn maxtasks_exits_with_a_queue_lose_no_task() {
    let limits = args(NATIVE).with_maxtasks(5);
    limit_exits_lose_nothing(
        limits,
        100,
        |i| format!("echo:{i}"),
        |i| format!("{i}").into_bytes(),
        None,
    );
}

#[test]
fn walltime_exits_with_a_queue_lose_no_task() {
    let limits = args(NATIVE).with_walltime(Duration::from_millis(250));
    limit_exits_lose_nothing(
        limits,
        40,
        |_| "sleep:40".into(),
        |_| b"slept".to_vec(),
        None,
    );
}

#[test]
fn idle_exits_racing_new_tasks_lose_no_task() {
    // Tasks arrive about as often as the daemons' idle time runs out, so that some reach a
    // daemon just as it decides to leave: the leave notice makes it answer them.
    let limits = args(NATIVE).with_idletime(Duration::from_millis(30));
    limit_exits_lose_nothing(
        limits,
        60,
        |i| format!("echo:{i}"),
        |i| format!("{i}").into_bytes(),
        Some(Duration::from_millis(30)),
    );
}
