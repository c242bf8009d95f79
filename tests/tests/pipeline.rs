//! Pipelining in dispatcher mode against real daemon processes: a daemon evaluating a short
//! task may be sent the next one; such a task is taken back when another daemon is free, and
//! whatever happens (cancel, timeout, a daemon killed or leaving on its task limit) every task
//! is evaluated at most once and resolves exactly once.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mirai::host::ErrorCode;
use mirai::transport::Backend;
use mirai::{Host, HostConfig, Outcome, SubmitOptions, TaskHandle};

const NATIVE: Backend = Backend::Native;

/// A host that pipelines to daemons whose tasks take under `threshold`.
fn piped_host(threshold: Duration) -> Host {
    let c: HostConfig = config(NATIVE).with_pipeline(Some(threshold));
    Host::start(c).expect("host starts")
}

fn submit(host: &Host, p: &str) -> TaskHandle {
    host.submit(p.as_bytes().to_vec(), SubmitOptions::default())
        .unwrap()
}

/// Gives every daemon a history of short tasks (tasks one at a time go to the daemon idle
/// longest, so they alternate); returns the daemons' pids.
fn warm_up(host: &Host, rounds: usize) -> HashSet<u32> {
    (0..rounds)
        .map(|_| pid(submit(host, "pid:").wait(Some(LONG))))
        .collect()
}

#[test]
fn pipelining_is_on_by_default_and_can_be_turned_off() {
    assert!(HostConfig::new("tcp://127.0.0.1:0").pipeline.is_some());
    for pipeline in [true, false] {
        // A wide threshold, so that a slow test machine still counts these tasks as short.
        let c = config(NATIVE).with_pipeline(pipeline.then_some(Duration::from_millis(100)));
        let host = Host::start(c).unwrap();
        launch(&host, 1, &args(NATIVE), 1);
        warm_up(&host, 4);
        // A daemon with a history of short tasks, busy with a task that just started: the
        // next task goes to it at once (executing) only when pipelining is on.
        let first = submit(&host, "sleep:300");
        let second = submit(&host, "echo:second");
        let s = host.status();
        let c = s.counters;
        // A pipelined task counts as awaiting until it starts, so `executing` stays at 1.
        assert_eq!((c.awaiting, c.executing), (1, 1));
        assert_eq!(
            s.pipelined,
            u64::from(pipeline),
            "pipelined when on, queued when off"
        );
        assert_eq!(ok(first.wait(Some(LONG))), b"slept");
        assert_eq!(ok(second.wait(Some(LONG))), b"second");
        let c = host.status().counters;
        assert_eq!((c.awaiting, c.executing, c.completed), (0, 0, 6));
    }
}

#[test]
fn a_task_pipelined_behind_a_long_one_is_taken_back_by_a_free_daemon() {
    let host = piped_host(Duration::from_millis(100));
    launch(&host, 2, &args(NATIVE), 2);
    assert_eq!(warm_up(&host, 8).len(), 2);
    // One daemon busy for a while: by the time the long task starts, its task has run longer
    // than the threshold, so it is not pipelined to.
    let medium = submit(&host, "sleep:600");
    std::thread::sleep(Duration::from_millis(300));
    // The other daemon takes a task far longer than any wait here, then the short task is
    // pipelined to it (no daemon idle, its task just started).
    let long = submit(&host, "sleep:600000");
    let short = submit(&host, "pid:");
    let s = host.status();
    assert_eq!(
        (s.counters.awaiting, s.counters.executing, s.pipelined),
        (1, 2, 1),
        "the short task was pipelined"
    );
    // The medium task ends, its daemon is idle with nothing queued: the short task is asked
    // back from behind the long one and runs there, long before the long task could end.
    assert_eq!(ok(medium.wait(Some(LONG))), b"slept");
    let ran_on = pid(short.wait(Some(LONG)));
    assert!(!long.is_resolved(), "the long task is still running");
    assert_eq!(short.attempts(), 1, "a give-back does not count an attempt");
    // The daemon that was free is the only one that can take a task now.
    assert_eq!(pid(submit(&host, "pid:").wait(Some(LONG))), ran_on);
    assert!(host.cancel(&long));
    assert_eq!(long.try_take(), Some(Outcome::Error(ErrorCode::CANCELED)));
    assert!(eventually(LONG, || host.status().counters.executing == 0));
    let c = host.status().counters;
    assert_eq!((c.awaiting, c.executing, c.completed), (0, 0, 12));
}

#[test]
fn cancelled_or_timed_out_pipelined_tasks_resolve_and_never_run() {
    let host = piped_host(Duration::from_millis(100));
    launch(&host, 1, &args(NATIVE), 1);
    let daemon = warm_up(&host, 4);
    let first = submit(&host, "sleep:500");
    // Each of these would hold the only daemon for ten minutes, without reading its
    // connection, if it ever started.
    let cancelled = submit(&host, "block:600000");
    let s = host.status();
    assert_eq!(
        (s.counters.awaiting, s.counters.executing, s.pipelined),
        (1, 1, 1),
        "pipelined"
    );
    assert!(host.cancel(&cancelled));
    assert_eq!(
        cancelled.try_take(),
        Some(Outcome::Error(ErrorCode::CANCELED))
    );
    assert_eq!(ok(first.wait(Some(LONG))), b"slept");
    // The daemon gave the cancelled task back unstarted: it is free for the next one.
    assert!(daemon.contains(&pid(submit(&host, "pid:").wait(Some(LONG)))));

    // The half-second task weighs on the daemon's average: short tasks bring it down again.
    warm_up(&host, 4);
    let first = submit(&host, "sleep:500");
    let opts = SubmitOptions::new().with_timeout(Some(Duration::from_millis(100)));
    let timed_out = host.submit(b"block:600000".to_vec(), opts).unwrap();
    assert_eq!(host.status().pipelined, 1, "pipelined");
    assert_eq!(
        timed_out.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::TIMED_OUT))
    );
    assert_eq!(ok(first.wait(Some(LONG))), b"slept");
    assert!(daemon.contains(&pid(submit(&host, "pid:").wait(Some(LONG)))));
    let c = host.status().counters;
    assert_eq!((c.awaiting, c.executing, c.completed), (0, 0, 14));
}

/// 10,000 tasks on two daemons, one killed mid-run: half the tasks may be retried once. Every
/// handle resolves exactly once; only tasks the killed daemon held (at most two: one running,
/// one pipelined) fail, with 19, and only if they had no retry.
#[test]
fn ten_thousand_tasks_resolve_once_with_a_daemon_killed_mid_run() {
    const N: usize = 10_000;
    let host = host();
    let a = args(NATIVE);
    let mut victim = spawn(host.url(), &a);
    let mut survivor = spawn(host.url(), &a);
    assert!(host.wait_connections(2, LONG));
    let mut handles = Vec::with_capacity(N);
    for i in 0..N {
        let opts = SubmitOptions::new().with_retries(Some((i % 2) as u32));
        handles.push(host.submit(format!("echo:{i}").into_bytes(), opts).unwrap());
    }
    let fired: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
    for (i, h) in handles.iter().enumerate() {
        let f = fired.clone();
        h.on_complete(Box::new(move || {
            f[i].fetch_add(1, Ordering::SeqCst);
        }));
    }
    let mut seen = host.completions();
    while seen < (N / 5) as u64 {
        seen = host.wait_completion(seen, LONG);
    }
    signal(victim.id(), libc::SIGKILL);
    let mut reset = Vec::new();
    for (i, h) in handles.iter().enumerate() {
        match h.wait(Some(LONG)) {
            Some(Outcome::Error(ErrorCode::CONNECTION_RESET)) => reset.push(i),
            other => assert_eq!(ok(other), format!("{i}").into_bytes(), "task {i}"),
        }
    }
    println!("tasks lost with the killed daemon: {reset:?}");
    assert!(
        reset.len() <= 2,
        "more tasks lost than a daemon holds: {reset:?}"
    );
    assert!(
        reset.iter().all(|i| i % 2 == 0),
        "a task with a retry left failed: {reset:?}"
    );
    assert!(eventually(LONG, || fired
        .iter()
        .all(|c| c.load(Ordering::SeqCst) >= 1)));
    assert!(
        fired.iter().all(|c| c.load(Ordering::SeqCst) == 1),
        "callbacks ran exactly once"
    );
    // The victim may have held no task when killed: its disconnect is then seen a little later.
    assert!(eventually(LONG, || host.status().counters.connections == 1));
    let c = host.status().counters;
    assert_eq!(
        (c.completed, c.awaiting, c.executing, c.connections),
        (N as u64, 0, 0, 1)
    );
    assert!(wait_exit(&mut victim, LONG).is_some());
    drop(host);
    assert!(wait_exit(&mut survivor, LONG).is_some());
}

/// Daemons that leave after three tasks (`maxtasks`), two at a time: each is pipelined to
/// while it evaluates its third task (after two results it has a history), so its last
/// result comes with a task it never started, which it gives back and which runs elsewhere.
#[test]
fn maxtasks_daemons_with_pipelining_lose_nothing() {
    const N: usize = 300;
    let host = piped_host(Duration::from_millis(200));
    let url = host.url().to_string();
    let a = args(NATIVE).with_maxtasks(3);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Two slots, each relaunching its daemon as soon as it exits.
    let slots: Vec<_> = (0..2)
        .map(|_| {
            let (url, a, stop) = (url.clone(), a.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let mut c = spawn(&url, &a);
                    let status = wait_exit(&mut c, LONG).expect("daemon exits");
                    codes.push(status.code());
                }
                codes
            })
        })
        .collect();
    let handles: Vec<_> = (0..N)
        .map(|i| submit(&host, &format!("echo:{i}")))
        .collect();
    for (i, h) in handles.iter().enumerate() {
        assert_eq!(
            ok(h.wait(Some(LONG))),
            format!("{i}").into_bytes(),
            "task {i}"
        );
    }
    stop.store(true, Ordering::SeqCst);
    let c = host.status().counters;
    assert_eq!((c.completed, c.awaiting, c.executing), (N as u64, 0, 0));
    // The slots' last daemons leave after their third task: feed them until they have.
    let mut extra = Vec::new();
    let mut launched = 0u64;
    for s in slots {
        while !s.is_finished() {
            extra.push(submit(&host, "echo:x"));
            std::thread::sleep(Duration::from_millis(20));
        }
        let codes = s.join().expect("slot thread");
        launched += codes.len() as u64;
        assert!(
            codes.iter().all(|c| *c == Some(3)),
            "every daemon left on its task limit: {codes:?}"
        );
    }
    println!("{launched} daemons served {N} tasks");
    assert!(
        launched as usize >= N / 3,
        "each daemon evaluates at most three tasks"
    );
    host.reset();
    for h in extra {
        assert!(matches!(
            h.wait(Some(LONG)),
            Some(Outcome::Value { .. }) | Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
        ));
    }
}

/// CPU time (user + system) of this process's threads whose name starts with `prefix`.
fn thread_cpu(prefix: &str) -> Duration {
    let tick = 1.0 / 100.0; // USER_HZ
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks: f64 =
            fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
        total += ticks * tick;
    }
    Duration::from_secs_f64(total)
}

/// Not a test: throughput of 10,000 trivial tasks submitted one by one on two daemons, with
/// and without pipelining, interleaved, and the dispatcher thread's CPU per task. Each
/// submission also spins for 10 us, as R's `mirai()` costs the submitting thread (so results
/// are handled by the dispatcher thread while tasks are submitted, as from R). Run with
/// `cargo test --release -p mirai-tests --test pipeline -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput_with_and_without_pipelining() {
    const N: usize = 10_000;
    let mut rows = Vec::new();
    for round in 0..5 {
        for pipeline in [false, true] {
            let c = config(NATIVE).with_pipeline(if pipeline {
                mirai::host::DEFAULT_PIPELINE
            } else {
                None
            });
            let host = Host::start(c).unwrap();
            launch(&host, 2, &args(NATIVE), 2);
            warm_up(&host, 10);
            let cpu0 = thread_cpu("mirai-dispatch");
            let start = std::time::Instant::now();
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let t = std::time::Instant::now();
                    while t.elapsed() < Duration::from_micros(10) {
                        std::hint::spin_loop();
                    }
                    submit(&host, &format!("echo:{i}"))
                })
                .collect();
            for h in &handles {
                assert!(h.wait(Some(LONG)).is_some());
            }
            let took = start.elapsed();
            let cpu = thread_cpu("mirai-dispatch").saturating_sub(cpu0);
            let rate = N as f64 / took.as_secs_f64();
            let us = cpu.as_secs_f64() * 1e6 / N as f64;
            println!("round {round} pipelining {pipeline:5}: {rate:8.0} tasks/s, dispatcher thread {us:5.1} us/task");
            rows.push((pipeline, rate, us));
        }
    }
    for pipeline in [false, true] {
        let mut r: Vec<f64> = rows
            .iter()
            .filter(|x| x.0 == pipeline)
            .map(|x| x.1)
            .collect();
        r.sort_by(f64::total_cmp);
        let mut u: Vec<f64> = rows
            .iter()
            .filter(|x| x.0 == pipeline)
            .map(|x| x.2)
            .collect();
        u.sort_by(f64::total_cmp);
        println!("pipelining {pipeline:5}: median {:.0} tasks/s (min {:.0}, max {:.0}), dispatcher median {:.1} us/task", r[r.len() / 2], r[0], r[r.len() - 1], u[u.len() / 2]);
    }
}
