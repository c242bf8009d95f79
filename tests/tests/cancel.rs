//! Cancellation and timeouts against real daemon processes.

mod common;

use std::time::Duration;

use common::*;
use mirai::host::ErrorCode;
use mirai::transport::Backend;
use mirai::{Outcome, SubmitOptions};

fn submit(host: &mirai::Host, p: &str) -> mirai::TaskHandle {
    host.submit(p.as_bytes().to_vec(), SubmitOptions::default())
        .unwrap()
}

#[test]
fn cancelled_queued_task_is_never_sent() {
    let host = host();
    launch(&host, 1, &args(Backend::Native), 1);
    let running = submit(&host, "sleep:500");
    let queued = submit(&host, "echo:queued");
    let c = host.status().counters;
    assert_eq!((c.awaiting, c.executing), (1, 1));
    assert!(host.cancel(&queued));
    assert_eq!(
        queued.try_take(),
        Some(Outcome::Error(ErrorCode::CANCELED)),
        "resolved at once"
    );
    let c = host.status().counters;
    assert_eq!((c.awaiting, c.executing, c.completed), (0, 1, 1));
    assert_eq!(ok(running.wait(Some(LONG))), b"slept");
    // Had the cancelled task reached the daemon, it would now be executing there.
    let c = host.status().counters;
    assert_eq!((c.awaiting, c.executing, c.completed), (0, 0, 2));
    assert_eq!(ok(submit(&host, "echo:next").wait(Some(LONG))), b"next");
    assert_eq!(host.status().counters.completed, 3);
}

#[test]
fn cancelled_running_task_resolves_20_and_the_daemon_serves_on() {
    for backend in backends() {
        cancel_running(backend);
    }
}

fn cancel_running(backend: Backend) {
    let host = mirai::Host::start(config(backend)).unwrap();
    launch(&host, 1, &args(backend), 1);
    let first = pid(submit(&host, "pid:").wait(Some(LONG)));
    // Far longer than any wait below: only an interrupt can end it in time.
    let long = submit(&host, "sleep:600000");
    assert_eq!(host.status().counters.executing, 1);
    assert!(host.cancel(&long));
    assert_eq!(
        long.try_take(),
        Some(Outcome::Error(ErrorCode::CANCELED)),
        "resolved at once"
    );
    assert!(!host.cancel(&long), "already cancelled");
    // The daemon is interrupted, replies (discarded) and takes the next task.
    assert_eq!(pid(submit(&host, "pid:").wait(Some(LONG))), first);
    assert!(alive(first));
    let c = host.status().counters;
    assert_eq!(
        (c.connections, c.awaiting, c.executing, c.completed),
        (1, 0, 0, 3)
    );

    // Repeated cancellation leaves the daemon usable.
    for _ in 0..5 {
        let t = submit(&host, "spin:600000");
        assert!(host.cancel(&t));
    }
    assert_eq!(pid(submit(&host, "pid:").wait(Some(LONG))), first);
}

#[test]
fn timeout_resolves_5_and_cancels_at_the_daemon() {
    let host = host();
    launch(&host, 1, &args(Backend::Native), 1);
    let first = pid(submit(&host, "pid:").wait(Some(LONG)));
    let opts = SubmitOptions::new()
        .with_timeout(Some(Duration::from_millis(200)))
        .with_trace(None);
    let t = host.submit(b"sleep:600000".to_vec(), opts.clone()).unwrap();
    assert_eq!(
        t.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::TIMED_OUT))
    );
    assert_eq!(pid(submit(&host, "pid:").wait(Some(LONG))), first);
    // A task that finishes in time is unaffected by its timeout.
    let quick = host
        .submit(
            b"echo:quick".to_vec(),
            SubmitOptions::new()
                .with_timeout(Some(LONG))
                .with_trace(None),
        )
        .unwrap();
    assert_eq!(ok(quick.wait(Some(LONG))), b"quick");
}

#[test]
fn queued_task_times_out_without_daemons() {
    let host = host();
    let opts = SubmitOptions::new()
        .with_timeout(Some(Duration::from_millis(100)))
        .with_trace(None);
    let t = host.submit(b"echo:x".to_vec(), opts).unwrap();
    assert_eq!(
        t.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::TIMED_OUT))
    );
    let c = host.status().counters;
    assert_eq!((c.awaiting, c.completed), (0, 1));
}
