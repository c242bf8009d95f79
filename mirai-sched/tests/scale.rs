//! Large pools and queues: everything still completes, in order, with consistent counters.
//! (No timing assertions; run `cargo test --release -p mirai-sched --test scale -- --ignored`
//! for the million-task version.)

use std::collections::VecDeque;

use mirai_sched::{Action, Config, DaemonId as D, Delivery, Scheduler, TaskId as T, TaskKind};

/// `daemons` daemons, `tasks` tasks submitted up front, every third cancelled from last to
/// first (as a caller stopping a whole batch does) with half of them queued, an everywhere
/// round over the whole pool in the middle, then the daemons answer until everything is done.
fn run(daemons: u64, tasks: u64) {
    let mut s: Scheduler<u64> = Scheduler::new(Config::new().with_memory_limit(Some(u64::MAX)));
    for d in 0..daemons {
        s.connected(D(d));
        s.hello(D(d));
    }
    let round_at = tasks / 2;
    let mut next = 0;
    while next < tasks {
        if next == round_at {
            for i in 0..daemons {
                s.submit(
                    T(next),
                    next,
                    8,
                    TaskKind::Everywhere {
                        closes_round: i + 1 == daemons,
                    },
                    None,
                );
                next += 1;
            }
        } else {
            s.submit(T(next), next, 8, TaskKind::Normal, None);
            next += 1;
        }
    }
    let total = next;
    let mut cancelled = 0;
    for t in (0..total).rev().filter(|t| t % 3 == 0 && *t < round_at) {
        assert!(s.cancel(T(t)));
        cancelled += 1;
    }
    // The first `daemons` tasks went out at once: cancelling those leaves them executing.
    let cancelled_executing = (0..daemons.min(total)).filter(|t| t % 3 == 0).count() as u64;
    let c = s.counters();
    assert_eq!(c.executing, daemons);
    assert_eq!(c.completed, cancelled - cancelled_executing);
    assert_eq!(c.awaiting + c.executing + c.completed, total);
    let mut delivered = 0;
    let mut discarded = 0;
    let mut inbox: VecDeque<(u64, u64)> = VecDeque::new();
    let mut last_dispatched = None;
    loop {
        while let Some(a) = s.poll_action() {
            match a {
                Action::Dispatch {
                    daemon,
                    task,
                    payload,
                } => {
                    assert_eq!(task, T(payload));
                    assert!(last_dispatched < Some(task), "FIFO");
                    last_dispatched = Some(task);
                    inbox.push_back((daemon.get(), task.get()));
                }
                Action::Init { .. } | Action::Cancel { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let Some((d, t)) = inbox.pop_front() else {
            break;
        };
        match s.result(D(d), T(t), false) {
            Delivery::Deliver => delivered += 1,
            Delivery::Discard => discarded += 1,
        }
    }
    let c = s.counters();
    assert_eq!((c.awaiting, c.executing, c.completed), (0, 0, total));
    assert_eq!(delivered + cancelled, total);
    // Only the cancelled tasks that were executing reply to be discarded.
    assert_eq!(discarded, cancelled_executing);
    assert_eq!(s.memory().used, 0);
}

#[test]
fn thousand_daemons_hundred_thousand_tasks() {
    run(1_000, 100_000);
}

#[test]
#[ignore = "a million tasks: run in release"]
fn thousands_of_daemons_a_million_tasks() {
    run(5_000, 1_000_000);
}
