//! Chaos soak: many tiny tasks over 8 daemons while a thread SIGKILLs a random daemon every
//! 50-200 ms and relaunches it. Afterwards every task has resolved exactly once, to the right
//! value or to error 19 (never lost, never duplicated), the counters agree, and the host's
//! memory is back near where it started.
//!
//! 100,000 tasks in the normal test run; set `MIRAI_SOAK_TASKS` for a longer soak, e.g.
//! `MIRAI_SOAK_TASKS=1000000 cargo test --release -p mirai-tests --test chaos -- --nocapture`.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mirai::host::launch::daemon_command;
use mirai::host::{ErrorCode, Status};
use mirai::transport::Backend;
use mirai::{Host, Outcome, SubmitOptions, TaskHandle};

const DAEMONS: usize = 8;
/// Tasks in flight at once: handles are checked and dropped window by window, so that memory
/// stays flat however long the soak.
const WINDOW: usize = 10_000;
/// Every third task may be retried twice.
const RETRIES: u32 = 2;

#[test]
fn chaos_soak_every_task_resolves_exactly_once() {
    let n: usize = std::env::var("MIRAI_SOAK_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let host = Host::start(config(Backend::Native)).expect("host starts");
    let cmd = daemon_command(daemon_bin(), host.url(), &args(Backend::Native));
    launch(&host, DAEMONS, &args(Backend::Native), DAEMONS as u64);

    // Warm up (allocator pools, listener buffers, scheduler maps at their working size), then
    // take the baseline.
    let warm = host
        .map((0..WINDOW).map(|i| format!("echo:{i}").into_bytes()))
        .unwrap();
    for h in &warm {
        assert!(h.wait(Some(LONG)).is_some());
    }
    drop(warm);
    let baseline = rss_bytes();

    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let chaos = {
        let (host, cmd, stop, kills) = (host.clone(), cmd.clone(), stop.clone(), kills.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new();
            let mut killed: HashSet<u32> = HashSet::new();
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(rng.range(50, 200)));
                let live: Vec<u32> = host
                    .launched_pids()
                    .into_iter()
                    .filter(|p| !killed.contains(p))
                    .collect();
                if live.is_empty() {
                    continue;
                }
                let victim = live[rng.range(0, live.len() as u64) as usize];
                signal(victim, libc::SIGKILL);
                killed.insert(victim);
                kills.fetch_add(1, Ordering::AcqRel);
                host.launch(&cmd, 1).expect("relaunch");
            }
        })
    };

    let started = Instant::now();
    let (mut values, mut lost, mut retried) = (0u64, 0u64, 0u64);
    let mut next = 0;
    while next < n {
        let end = (next + WINDOW).min(n);
        let handles: Vec<(usize, TaskHandle)> = (next..end)
            .map(|i| {
                let retries = if i % 3 == 0 { RETRIES } else { 0 };
                let opts = SubmitOptions::new().with_retries(Some(retries));
                (
                    i,
                    host.submit(format!("echo:{i}").into_bytes(), opts)
                        .expect("submit"),
                )
            })
            .collect();
        // Each handle's callback must fire exactly once.
        let fired: Arc<Vec<AtomicU8>> = Arc::new((next..end).map(|_| AtomicU8::new(0)).collect());
        for (k, (_, h)) in handles.iter().enumerate() {
            let f = fired.clone();
            h.on_complete(Box::new(move || {
                f[k].fetch_add(1, Ordering::AcqRel);
            }));
        }
        for (i, h) in &handles {
            let retries = if i % 3 == 0 { RETRIES } else { 0 };
            match h.wait(Some(LONG)) {
                Some(Outcome::Value {
                    status: Status::Ok,
                    payload,
                }) => {
                    assert_eq!(
                        payload,
                        format!("{i}").into_bytes(),
                        "task {i} got another task's value"
                    );
                    values += 1;
                }
                Some(Outcome::Error(ErrorCode::CONNECTION_RESET)) => {
                    assert_eq!(
                        h.attempts(),
                        retries + 1,
                        "task {i} failed with retries left"
                    );
                    lost += 1;
                }
                other => panic!("task {i}: unexpected outcome {other:?}"),
            }
            assert!(
                h.attempts() >= 1 && h.attempts() <= retries + 1,
                "task {i}: {} attempts",
                h.attempts()
            );
            if h.attempts() > 1 {
                retried += 1;
            }
            assert_eq!(
                h.wait(Some(Duration::ZERO)),
                None,
                "task {i} resolved twice"
            );
        }
        assert!(eventually(LONG, || fired
            .iter()
            .all(|c| c.load(Ordering::Acquire) >= 1)));
        assert!(
            fired.iter().all(|c| c.load(Ordering::Acquire) == 1),
            "a callback ran twice"
        );
        next = end;
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Release);
    chaos.join().expect("chaos thread");

    assert_eq!(values + lost, n as u64, "every task resolved");
    assert_eq!(
        host.completions(),
        (WINDOW + n) as u64,
        "exactly one resolution per task"
    );
    // The pool recovers, and the counters add up.
    assert!(host.wait_connections(DAEMONS as u64, LONG));
    let c = host.status().counters;
    assert_eq!(
        (c.awaiting, c.executing, c.completed),
        (0, 0, (WINDOW + n) as u64),
        "{c:?}"
    );
    let kills = kills.load(Ordering::Acquire);
    // A relaunched daemon may itself be killed before it says hello, and then never joins.
    assert!(
        c.cumulative > DAEMONS as u64 && c.cumulative <= DAEMONS as u64 + kills,
        "{c:?}, {kills} kills"
    );
    assert_eq!(
        c.connections, DAEMONS as u64,
        "every kill was made good by a relaunch"
    );
    let m = host.status().memory;
    assert_eq!(m.used, 0);

    let after = rss_bytes();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "chaos soak: {n} tasks over {DAEMONS} daemons in {took:?} ({:.0} tasks/s); {kills} kills; \
         {values} values, {lost} resolved 19, {retried} retried; host RSS {:.1} MiB before, {:.1} MiB after",
        n as f64 / took.as_secs_f64(),
        mib(baseline),
        mib(after)
    );
    assert!(kills > 0, "the chaos thread killed nothing");
    // Near the baseline: nothing per task is kept. The margin covers allocator caching.
    assert!(
        after < baseline + (64 << 20),
        "host RSS grew from {:.1} to {:.1} MiB",
        mib(baseline),
        mib(after)
    );
}
