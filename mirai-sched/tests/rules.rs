//! One test per scheduling rule, driven through the public API.

use std::time::{Duration, Instant};

use mirai_sched::{
    Action, Config, Counters, DaemonId as D, Delivery, ErrorCode, Memory, Mode, Scheduler,
    TaskId as T, TaskKind, TaskSpec,
};

type A = Action<&'static str>;

fn dispatcher() -> Scheduler<&'static str> {
    Scheduler::new(Config::default())
}

fn direct() -> Scheduler<&'static str> {
    Scheduler::new(
        Config::new()
            .with_mode(Mode::Direct)
            .with_memory_limit(None),
    )
}

fn actions(s: &mut Scheduler<&'static str>) -> Vec<A> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn join(s: &mut Scheduler<&'static str>, d: u64) {
    s.connected(D(d));
    s.hello(D(d));
}

fn submit(s: &mut Scheduler<&'static str>, t: u64, p: &'static str) {
    s.submit(T(t), p, 10, TaskKind::Normal, None);
}

fn dispatch(daemon: u64, task: u64, payload: &'static str) -> A {
    Action::Dispatch {
        daemon: D(daemon),
        task: T(task),
        payload,
    }
}

fn fail(task: u64, code: ErrorCode) -> A {
    Action::Fail {
        task: T(task),
        code,
    }
}

fn counters(
    connections: u64,
    cumulative: u64,
    awaiting: u64,
    executing: u64,
    completed: u64,
) -> Counters {
    Counters {
        connections,
        cumulative,
        awaiting,
        executing,
        completed,
    }
}

#[test]
fn init_precedes_dispatch_and_nothing_goes_before_hello() {
    let mut s = dispatcher();
    submit(&mut s, 1, "a");
    s.connected(D(10));
    assert_eq!(actions(&mut s), vec![], "no task before the handshake");
    assert_eq!(s.counters(), counters(0, 0, 1, 0, 0));
    s.hello(D(10));
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Init {
                daemon: D(10),
                ordinal: 1
            },
            dispatch(10, 1, "a")
        ]
    );
    join(&mut s, 11);
    assert_eq!(
        actions(&mut s),
        vec![Action::Init {
            daemon: D(11),
            ordinal: 2
        }]
    );
    // A repeated hello changes nothing and sends no second init.
    s.hello(D(11));
    assert_eq!(actions(&mut s), vec![]);
    assert_eq!(s.counters(), counters(2, 2, 0, 1, 0));
}

#[test]
fn fifo_head_of_line_and_longest_idle_daemon_first() {
    let mut s = dispatcher();
    for d in [1, 2, 3] {
        join(&mut s, d);
    }
    actions(&mut s);
    for (t, p) in [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")] {
        submit(&mut s, t, p);
    }
    // The three daemons take tasks 1..3 in hello order (all equally idle, longest first).
    assert_eq!(
        actions(&mut s),
        vec![
            dispatch(1, 1, "a"),
            dispatch(2, 2, "b"),
            dispatch(3, 3, "c")
        ]
    );
    assert_eq!(s.counters(), counters(3, 3, 2, 3, 0));
    // Daemon 3 finishes first: it gets the head (4), never 5.
    assert_eq!(s.result(D(3), T(3), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![dispatch(3, 4, "d")]);
    assert_eq!(s.result(D(1), T(1), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![dispatch(1, 5, "e")]);
    // Now 2 then 3 become idle; a new task goes to 2, which has been idle longer.
    assert_eq!(s.result(D(2), T(2), false), Delivery::Deliver);
    assert_eq!(s.result(D(3), T(4), false), Delivery::Deliver);
    submit(&mut s, 6, "f");
    assert_eq!(actions(&mut s), vec![dispatch(2, 6, "f")]);
    assert_eq!(s.counters(), counters(3, 3, 0, 2, 4));
}

#[test]
fn status_example_of_spec_3_10() {
    // Two daemons with one executing task each, one queued task, then a cancel of the queued
    // task: awaiting 0, executing 2, completed 1.
    let mut s = dispatcher();
    join(&mut s, 1);
    join(&mut s, 2);
    submit(&mut s, 1, "a");
    submit(&mut s, 2, "b");
    submit(&mut s, 3, "c");
    assert_eq!(s.counters(), counters(2, 2, 1, 2, 0));
    assert!(s.cancel(T(3)));
    let c = s.counters();
    assert_eq!((c.awaiting, c.executing, c.completed), (0, 2, 1));
    assert!(!actions(&mut s)
        .iter()
        .any(|a| matches!(a, Action::Fail { .. } | Action::Cancel { .. })));
}

#[test]
fn results_are_delivered_only_from_the_daemon_evaluating_the_task() {
    let mut s = dispatcher();
    join(&mut s, 1);
    join(&mut s, 2);
    submit(&mut s, 1, "a");
    submit(&mut s, 2, "b");
    actions(&mut s);
    // Wrong daemon, unknown task, unknown daemon: discarded, nothing changes.
    assert_eq!(s.result(D(2), T(1), false), Delivery::Discard);
    assert_eq!(s.result(D(1), T(99), false), Delivery::Discard);
    assert_eq!(s.result(D(7), T(1), false), Delivery::Discard);
    assert_eq!(s.counters(), counters(2, 2, 0, 2, 0));
    assert_eq!(s.result(D(1), T(1), false), Delivery::Deliver);
    // A duplicate reply is discarded.
    assert_eq!(s.result(D(1), T(1), false), Delivery::Discard);
    assert_eq!(s.counters(), counters(2, 2, 0, 1, 1));
    assert_eq!(actions(&mut s), vec![]);
}

#[test]
fn last_result_leaves_the_pool_is_acked_and_loses_no_queued_task() {
    let mut s = dispatcher();
    join(&mut s, 1);
    actions(&mut s);
    submit(&mut s, 1, "a");
    submit(&mut s, 2, "b");
    submit(&mut s, 3, "c");
    assert_eq!(actions(&mut s), vec![dispatch(1, 1, "a")]);
    assert_eq!(s.result(D(1), T(1), true), Delivery::Deliver);
    // Acked, and nothing more is assigned to it.
    assert_eq!(actions(&mut s), vec![Action::Ack { daemon: D(1) }]);
    // It still counts as connected until its connection closes.
    assert_eq!(s.counters(), counters(1, 1, 2, 0, 1));
    s.disconnected(D(1));
    assert_eq!(
        actions(&mut s),
        vec![],
        "a left daemon's disconnect fails nothing"
    );
    assert_eq!(s.counters(), counters(0, 1, 2, 0, 1));
    // A replacement takes the queue in order.
    join(&mut s, 2);
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Init {
                daemon: D(2),
                ordinal: 2
            },
            dispatch(2, 2, "b")
        ]
    );
    assert_eq!(s.result(D(2), T(2), true), Delivery::Deliver);
    join(&mut s, 3);
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Ack { daemon: D(2) },
            Action::Init {
                daemon: D(3),
                ordinal: 3
            },
            dispatch(3, 3, "c")
        ]
    );
    assert_eq!(s.result(D(3), T(3), false), Delivery::Deliver);
    assert_eq!(s.counters(), counters(2, 3, 0, 0, 3));
}

#[test]
fn busy_daemon_disconnect_fails_its_task_with_19_and_queue_waits() {
    let mut s = dispatcher();
    join(&mut s, 1);
    join(&mut s, 2);
    actions(&mut s);
    for (t, p) in [(1, "a"), (2, "b"), (3, "c")] {
        submit(&mut s, t, p);
    }
    assert_eq!(
        actions(&mut s),
        vec![dispatch(1, 1, "a"), dispatch(2, 2, "b")]
    );
    s.disconnected(D(1));
    // No retry: task 1 fails, task 3 stays queued (daemon 2 is busy).
    assert_eq!(actions(&mut s), vec![fail(1, ErrorCode::CONNECTION_RESET)]);
    assert_eq!(s.counters(), counters(1, 2, 1, 1, 1));
    // A late reply for the lost task is discarded.
    assert_eq!(s.result(D(1), T(1), false), Delivery::Discard);
    s.disconnected(D(1));
    assert_eq!(s.result(D(2), T(2), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![dispatch(2, 3, "c")]);
    // An idle daemon's disconnect fails nothing.
    join(&mut s, 3);
    actions(&mut s);
    s.disconnected(D(3));
    assert_eq!(actions(&mut s), vec![]);
}

#[test]
fn cancel_queued_and_executing_once_only() {
    let mut s = dispatcher();
    join(&mut s, 1);
    actions(&mut s);
    submit(&mut s, 1, "a");
    submit(&mut s, 2, "b");
    submit(&mut s, 3, "c");
    actions(&mut s);
    assert_eq!(s.memory().used, 20);
    // Queued: removed, bytes released, no action.
    assert!(s.cancel(T(2)));
    assert!(!s.cancel(T(2)));
    assert_eq!(s.memory().used, 10);
    assert_eq!(actions(&mut s), vec![]);
    // Executing: one Cancel action, the daemon stays busy (task 3 waits) until it answers.
    assert!(s.cancel(T(1)));
    assert!(!s.cancel(T(1)));
    assert_eq!(
        actions(&mut s),
        vec![Action::Cancel {
            daemon: D(1),
            task: T(1)
        }]
    );
    assert_eq!(s.counters(), counters(1, 1, 1, 1, 1));
    assert_eq!(s.result(D(1), T(1), false), Delivery::Discard);
    assert_eq!(actions(&mut s), vec![dispatch(1, 3, "c")]);
    assert_eq!(s.memory().used, 0);
    // Completed or unknown: false.
    assert!(!s.cancel(T(1)));
    assert!(!s.cancel(T(42)));
    assert_eq!(s.result(D(1), T(3), false), Delivery::Deliver);
    assert!(!s.cancel(T(3)));
    assert_eq!(actions(&mut s), vec![]);
    assert_eq!(s.counters(), counters(1, 1, 0, 0, 3));
}

#[test]
fn cancelled_task_of_a_daemon_that_disconnects_gets_no_fail() {
    let mut s = dispatcher();
    join(&mut s, 1);
    submit(&mut s, 1, "a");
    assert!(s.cancel(T(1)));
    actions(&mut s);
    s.disconnected(D(1));
    assert_eq!(actions(&mut s), vec![]);
    assert_eq!(s.counters(), counters(0, 1, 0, 0, 1));
}

#[test]
fn timeout_of_queued_and_executing_tasks() {
    let t0 = Instant::now();
    let at = |ms| t0 + Duration::from_millis(ms);
    let mut s = dispatcher();
    join(&mut s, 1);
    actions(&mut s);
    s.submit(T(1), "a", 10, TaskKind::Normal, Some(at(300)));
    s.submit(T(2), "b", 10, TaskKind::Normal, Some(at(100)));
    s.submit(T(3), "c", 10, TaskKind::Normal, None);
    assert_eq!(actions(&mut s), vec![dispatch(1, 1, "a")]);
    assert_eq!(s.poll_timeout(), Some(at(100)));
    s.handle_timeout(at(99));
    assert_eq!(actions(&mut s), vec![]);
    // The queued task times out: removed, bytes released, no cancel; 3 still waits on 1.
    s.handle_timeout(at(100));
    assert_eq!(actions(&mut s), vec![fail(2, ErrorCode::TIMED_OUT)]);
    assert_eq!(s.memory().used, 10);
    assert_eq!(s.poll_timeout(), Some(at(300)));
    assert_eq!(s.counters(), counters(1, 1, 1, 1, 1));
    // The executing one: Fail then Cancel; the daemon stays busy until it answers.
    s.handle_timeout(at(1000));
    assert_eq!(
        actions(&mut s),
        vec![
            fail(1, ErrorCode::TIMED_OUT),
            Action::Cancel {
                daemon: D(1),
                task: T(1)
            }
        ]
    );
    assert_eq!(s.poll_timeout(), None);
    assert!(!s.cancel(T(1)), "a timed-out task is no longer held");
    assert_eq!(s.counters(), counters(1, 1, 1, 1, 1));
    assert_eq!(s.result(D(1), T(1), false), Delivery::Discard);
    assert_eq!(actions(&mut s), vec![dispatch(1, 3, "c")]);
    assert_eq!(s.counters(), counters(1, 1, 0, 1, 2));
}

#[test]
fn a_deadline_goes_away_with_its_task() {
    let t0 = Instant::now();
    let mut s = dispatcher();
    join(&mut s, 1);
    s.submit(
        T(1),
        "a",
        1,
        TaskKind::Normal,
        Some(t0 + Duration::from_secs(1)),
    );
    s.submit(
        T(2),
        "b",
        1,
        TaskKind::Normal,
        Some(t0 + Duration::from_secs(2)),
    );
    assert_eq!(s.result(D(1), T(1), false), Delivery::Deliver);
    assert!(s.cancel(T(2)));
    assert_eq!(s.poll_timeout(), None);
    actions(&mut s);
    s.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!(actions(&mut s), vec![]);
}

#[test]
fn everywhere_round_reaches_distinct_daemons_and_waits_for_new_ones() {
    let mut s = dispatcher();
    for d in [1, 2, 3] {
        join(&mut s, d);
    }
    actions(&mut s);
    // .min = 4 with 3 daemons: 4 round tasks, then a normal task behind them.
    for t in 1..=4 {
        s.submit(
            T(t),
            "e",
            1,
            TaskKind::Everywhere {
                closes_round: t == 4,
            },
            None,
        );
    }
    submit(&mut s, 5, "n");
    assert_eq!(
        actions(&mut s),
        vec![
            dispatch(1, 1, "e"),
            dispatch(2, 2, "e"),
            dispatch(3, 3, "e")
        ]
    );
    // Daemons finishing their round task get nothing: not task 4 (same round) and not task 5
    // (head-of-line behind the round).
    for (d, t) in [(1, 1), (2, 2), (3, 3)] {
        assert_eq!(s.result(D(d), T(t), false), Delivery::Deliver);
    }
    assert_eq!(actions(&mut s), vec![]);
    assert_eq!(s.counters(), counters(3, 3, 2, 0, 3));
    // A new daemon takes the last round task, which closes the round; the normal task then
    // goes to the longest-idle daemon.
    join(&mut s, 4);
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Init {
                daemon: D(4),
                ordinal: 4
            },
            dispatch(4, 4, "e"),
            dispatch(1, 5, "n")
        ]
    );
}

#[test]
fn everywhere_round_behind_busy_daemons_and_earlier_tasks() {
    let mut s = dispatcher();
    join(&mut s, 1);
    join(&mut s, 2);
    submit(&mut s, 1, "a");
    actions(&mut s);
    // Daemon 1 is busy; a round of 2 starts on daemon 2.
    s.submit(
        T(2),
        "e",
        1,
        TaskKind::Everywhere {
            closes_round: false,
        },
        None,
    );
    s.submit(
        T(3),
        "e",
        1,
        TaskKind::Everywhere { closes_round: true },
        None,
    );
    submit(&mut s, 4, "b");
    assert_eq!(actions(&mut s), vec![dispatch(2, 2, "e")]);
    // Daemon 2 is free again but already had the round: nothing for it.
    assert_eq!(s.result(D(2), T(2), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![]);
    // Daemon 1 frees up: it takes the closing task, and the round being closed, daemon 2
    // takes the next task.
    assert_eq!(s.result(D(1), T(1), false), Delivery::Deliver);
    assert_eq!(
        actions(&mut s),
        vec![dispatch(1, 3, "e"), dispatch(2, 4, "b")]
    );
}

#[test]
fn everywhere_round_closes_when_its_closing_task_is_cancelled() {
    let mut s = dispatcher();
    join(&mut s, 1);
    actions(&mut s);
    s.submit(
        T(1),
        "e",
        1,
        TaskKind::Everywhere {
            closes_round: false,
        },
        None,
    );
    s.submit(
        T(2),
        "e",
        1,
        TaskKind::Everywhere { closes_round: true },
        None,
    );
    submit(&mut s, 3, "n");
    assert_eq!(actions(&mut s), vec![dispatch(1, 1, "e")]);
    assert_eq!(s.result(D(1), T(1), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![]);
    // No task of the round is left: the round closes and daemon 1 may work again.
    assert!(s.cancel(T(2)));
    assert_eq!(actions(&mut s), vec![dispatch(1, 3, "n")]);
}

#[test]
fn consecutive_everywhere_rounds_each_reach_every_daemon() {
    let mut s = dispatcher();
    join(&mut s, 1);
    join(&mut s, 2);
    actions(&mut s);
    for (t, closes) in [(1, false), (2, true), (3, false), (4, true)] {
        s.submit(
            T(t),
            "e",
            1,
            TaskKind::Everywhere {
                closes_round: closes,
            },
            None,
        );
    }
    assert_eq!(
        actions(&mut s),
        vec![dispatch(1, 1, "e"), dispatch(2, 2, "e")]
    );
    assert_eq!(s.result(D(1), T(1), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![dispatch(1, 3, "e")]);
    // Daemon 1 already had round 2; task 4 waits for daemon 2.
    assert_eq!(s.result(D(1), T(3), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![]);
    assert_eq!(s.result(D(2), T(2), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![dispatch(2, 4, "e")]);
}

#[test]
fn memory_budget_counts_queued_bytes_only() {
    let mut s: Scheduler<&str> = Scheduler::new(
        Config::new()
            .with_mode(Mode::Dispatcher)
            .with_memory_limit(Some(100)),
    );
    join(&mut s, 1);
    actions(&mut s);
    assert!(s.admit());
    // Sent straight to the idle daemon: never counted.
    s.submit(T(1), "a", 500, TaskKind::Normal, None);
    assert_eq!(
        s.memory(),
        Memory {
            used: 0,
            peak: 0,
            limit: Some(100)
        }
    );
    s.submit(T(2), "b", 60, TaskKind::Normal, None);
    assert!(s.admit());
    // Admission only checks used < limit, so one task may push usage over the budget.
    s.submit(T(3), "c", 60, TaskKind::Normal, None);
    assert_eq!(
        s.memory(),
        Memory {
            used: 120,
            peak: 120,
            limit: Some(100)
        }
    );
    assert!(!s.admit());
    assert!(s.cancel(T(3)));
    assert!(s.admit());
    // Dispatching releases the bytes too.
    assert_eq!(s.result(D(1), T(1), false), Delivery::Deliver);
    assert_eq!(
        s.memory(),
        Memory {
            used: 0,
            peak: 120,
            limit: Some(100)
        }
    );
    let unbounded = dispatcher();
    assert!(unbounded.admit());
    assert_eq!(unbounded.memory().limit, None);
}

#[test]
fn reset_fails_held_tasks_in_fifo_order_and_is_harmless_afterwards() {
    let mut s = dispatcher();
    join(&mut s, 1);
    join(&mut s, 2);
    actions(&mut s);
    for (t, p) in [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")] {
        submit(&mut s, t, p);
    }
    assert!(s.cancel(T(2))); // executing, already resolved: no Fail at reset
    assert!(s.cancel(T(4))); // queued, removed
    actions(&mut s);
    s.reset();
    assert_eq!(
        actions(&mut s),
        vec![
            fail(1, ErrorCode::CONNECTION_RESET),
            fail(3, ErrorCode::CONNECTION_RESET),
            fail(5, ErrorCode::CONNECTION_RESET)
        ]
    );
    assert_eq!(s.counters(), counters(2, 2, 0, 0, 5));
    assert_eq!(s.memory().used, 0);
    s.reset();
    assert_eq!(actions(&mut s), vec![]);
    // Later calls are harmless.
    assert_eq!(s.result(D(1), T(1), false), Delivery::Discard);
    assert!(!s.cancel(T(3)));
    submit(&mut s, 6, "f");
    assert_eq!(actions(&mut s), vec![fail(6, ErrorCode::OBJECT_CLOSED)]);
    join(&mut s, 3);
    s.handle_timeout(Instant::now());
    assert_eq!(actions(&mut s), vec![]);
    assert_eq!(s.counters().completed, 6);
    s.exit_all();
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Exit { daemon: D(1) },
            Action::Exit { daemon: D(2) },
            Action::Exit { daemon: D(3) }
        ]
    );
}

#[test]
fn exit_all_covers_every_connection_in_connection_order() {
    let mut s = dispatcher();
    join(&mut s, 5);
    s.connected(D(3));
    join(&mut s, 9);
    actions(&mut s);
    s.exit_all();
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Exit { daemon: D(5) },
            Action::Exit { daemon: D(3) },
            Action::Exit { daemon: D(9) }
        ]
    );
    assert_eq!(s.counters().connections, 2);
}

#[test]
fn direct_mode_round_robin_queueing_at_busy_daemons() {
    let mut s = direct();
    assert_eq!(s.mode(), Mode::Direct);
    join(&mut s, 1);
    join(&mut s, 2);
    s.connected(D(3)); // no hello: takes nothing, but counts as a connection in direct mode
    actions(&mut s);
    for (t, p) in [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")] {
        submit(&mut s, t, p);
    }
    assert_eq!(
        actions(&mut s),
        vec![
            dispatch(1, 1, "a"),
            dispatch(2, 2, "b"),
            dispatch(1, 3, "c"),
            dispatch(2, 4, "d"),
            dispatch(1, 5, "e")
        ]
    );
    assert_eq!(s.counters(), counters(3, 2, 0, 5, 0));
    assert_eq!(s.memory(), Memory::default());
    assert!(s.admit());
    assert_eq!(
        s.result(D(2), T(1), false),
        Delivery::Discard,
        "task 1 is on daemon 1"
    );
    assert_eq!(s.result(D(1), T(1), false), Delivery::Deliver);
    assert_eq!(s.result(D(1), T(1), false), Delivery::Discard);
    assert!(!s.cancel(T(3)), "no cancellation in direct mode");
    assert_eq!(s.result(D(1), T(3), false), Delivery::Deliver);
    assert_eq!(s.counters(), counters(3, 2, 0, 3, 2));
    // Daemon 1 disconnects holding task 5; daemon 2 keeps its tasks.
    s.disconnected(D(1));
    assert_eq!(actions(&mut s), vec![fail(5, ErrorCode::CONNECTION_RESET)]);
    submit(&mut s, 6, "f");
    assert_eq!(actions(&mut s), vec![dispatch(2, 6, "f")]);
    assert_eq!(s.counters(), counters(2, 2, 0, 3, 3));
}

#[test]
fn direct_mode_tasks_wait_for_a_daemon_then_go_round_robin() {
    let mut s = direct();
    submit(&mut s, 1, "a");
    submit(&mut s, 2, "b");
    assert_eq!(s.counters(), counters(0, 0, 2, 0, 0));
    join(&mut s, 1);
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Init {
                daemon: D(1),
                ordinal: 1
            },
            dispatch(1, 1, "a"),
            dispatch(1, 2, "b")
        ]
    );
    join(&mut s, 2);
    actions(&mut s);
    submit(&mut s, 3, "c");
    submit(&mut s, 4, "d");
    assert_eq!(
        actions(&mut s),
        vec![dispatch(1, 3, "c"), dispatch(2, 4, "d")]
    );
    // A daemon leaving on `last` leaves the ring; its other tasks stay until it goes.
    assert_eq!(s.result(D(1), T(1), true), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![Action::Ack { daemon: D(1) }]);
    submit(&mut s, 5, "e");
    submit(&mut s, 6, "f");
    assert_eq!(
        actions(&mut s),
        vec![dispatch(2, 5, "e"), dispatch(2, 6, "f")]
    );
    s.disconnected(D(1));
    assert_eq!(
        actions(&mut s),
        vec![
            fail(2, ErrorCode::CONNECTION_RESET),
            fail(3, ErrorCode::CONNECTION_RESET)
        ]
    );
}

#[test]
fn direct_mode_timeout_only_fails_and_later_reply_is_discarded() {
    let t0 = Instant::now();
    let mut s = direct();
    s.submit(T(1), "a", 1, TaskKind::Normal, Some(t0));
    s.handle_timeout(t0);
    // Never sent: removed and failed.
    assert_eq!(actions(&mut s), vec![fail(1, ErrorCode::TIMED_OUT)]);
    join(&mut s, 1);
    assert_eq!(
        actions(&mut s),
        vec![Action::Init {
            daemon: D(1),
            ordinal: 1
        }]
    );
    s.submit(T(2), "b", 1, TaskKind::Normal, Some(t0));
    actions(&mut s);
    s.handle_timeout(t0);
    assert_eq!(
        actions(&mut s),
        vec![fail(2, ErrorCode::TIMED_OUT)],
        "no Cancel in direct mode"
    );
    assert_eq!(s.counters().executing, 1);
    assert_eq!(s.result(D(1), T(2), false), Delivery::Discard);
    assert_eq!(s.counters(), counters(1, 1, 0, 0, 2));
}

#[test]
fn direct_mode_reset_codes() {
    // One sent and unanswered (19), then never sent ones (7), in submission order.
    let mut s = direct();
    join(&mut s, 1);
    submit(&mut s, 1, "a");
    submit(&mut s, 2, "b");
    assert_eq!(s.result(D(1), T(1), true), Delivery::Deliver); // daemon 1 leaves the ring
    submit(&mut s, 3, "c");
    submit(&mut s, 4, "d");
    assert_eq!(s.counters(), counters(1, 1, 2, 1, 1));
    actions(&mut s);
    s.reset();
    assert_eq!(
        actions(&mut s),
        vec![
            fail(2, ErrorCode::CONNECTION_RESET),
            fail(3, ErrorCode::OBJECT_CLOSED),
            fail(4, ErrorCode::OBJECT_CLOSED)
        ]
    );
    // No daemon ever connected.
    let mut s = direct();
    submit(&mut s, 1, "a");
    s.reset();
    assert_eq!(actions(&mut s), vec![fail(1, ErrorCode::OBJECT_CLOSED)]);
    submit(&mut s, 2, "b");
    assert_eq!(actions(&mut s), vec![fail(2, ErrorCode::OBJECT_CLOSED)]);
}

#[test]
fn debug_shows_a_summary() {
    let mut s = dispatcher();
    submit(&mut s, 1, "a");
    let text = format!("{s:?}");
    assert!(
        text.contains("awaiting: 1") && text.contains("Dispatcher"),
        "{text}"
    );
}

fn submit_retry(s: &mut Scheduler<&'static str>, t: u64, p: &'static str, retries: u32) {
    let spec = TaskSpec::new().with_retries(retries);
    s.submit_with(T(t), p, 10, spec);
}

#[test]
fn a_retried_task_goes_back_to_the_head_of_the_queue() {
    let mut s = Scheduler::new(
        Config::new()
            .with_mode(Mode::Dispatcher)
            .with_memory_limit(Some(1000)),
    );
    join(&mut s, 10);
    join(&mut s, 11);
    submit_retry(&mut s, 1, "a", 2);
    submit(&mut s, 2, "b");
    submit(&mut s, 3, "c");
    submit(&mut s, 4, "d");
    actions(&mut s);
    assert_eq!(s.attempts(T(1)), Some(1));
    assert_eq!(s.counters(), counters(2, 2, 2, 2, 0));
    assert_eq!(s.memory().used, 20);
    // Daemon 10 dies while evaluating task 1: no failure, task 1 waits ahead of 3 and 4.
    s.disconnected(D(10));
    assert_eq!(actions(&mut s), vec![]);
    assert_eq!(s.counters(), counters(1, 2, 3, 1, 0));
    assert_eq!(s.memory().used, 30, "its bytes count again while it waits");
    // The next free daemon takes it before the tasks submitted after it.
    assert_eq!(s.result(D(11), T(2), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![dispatch(11, 1, "a")]);
    assert_eq!(s.attempts(T(1)), Some(2));
    // Lost again: one retry left.
    s.disconnected(D(11));
    join(&mut s, 12);
    assert_eq!(actions(&mut s)[1..], [dispatch(12, 1, "a")]);
    assert_eq!(s.attempts(T(1)), Some(3));
    // Budget spent: the third loss fails it with 19.
    s.disconnected(D(12));
    assert_eq!(actions(&mut s), vec![fail(1, ErrorCode::CONNECTION_RESET)]);
    assert_eq!(s.attempts(T(1)), None);
    join(&mut s, 13);
    assert_eq!(actions(&mut s)[1..], [dispatch(13, 3, "c")]);
    assert_eq!(s.counters(), counters(1, 4, 1, 1, 2));
}

#[test]
fn older_retried_tasks_go_first() {
    let mut s = dispatcher();
    for d in 10..13 {
        join(&mut s, d);
    }
    submit_retry(&mut s, 1, "a", 1);
    submit_retry(&mut s, 2, "b", 1);
    submit_retry(&mut s, 3, "c", 1);
    submit(&mut s, 4, "d");
    actions(&mut s);
    // Lost in the order 3, 1: they wait in submission order, ahead of task 4.
    s.disconnected(D(12));
    s.disconnected(D(10));
    assert_eq!(actions(&mut s), vec![]);
    assert_eq!(s.result(D(11), T(2), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![dispatch(11, 1, "a")]);
    assert_eq!(s.result(D(11), T(1), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![dispatch(11, 3, "c")]);
    assert_eq!(s.result(D(11), T(3), false), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![dispatch(11, 4, "d")]);
}

#[test]
fn cancelled_timed_out_and_everywhere_tasks_are_not_retried() {
    let t0 = Instant::now();
    let mut s = dispatcher();
    for d in 10..13 {
        join(&mut s, d);
    }
    actions(&mut s);
    submit_retry(&mut s, 1, "a", 5);
    let spec = TaskSpec::new()
        .with_deadline(Some(t0 + Duration::from_millis(5)))
        .with_retries(5);
    s.submit_with(T(2), "b", 10, spec);
    let spec = TaskSpec::new()
        .with_kind(TaskKind::Everywhere { closes_round: true })
        .with_retries(5);
    s.submit_with(T(3), "c", 10, spec);
    actions(&mut s);
    assert!(s.cancel(T(1)));
    s.handle_timeout(t0 + Duration::from_millis(10));
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Cancel {
                daemon: D(10),
                task: T(1)
            },
            fail(2, ErrorCode::TIMED_OUT),
            Action::Cancel {
                daemon: D(11),
                task: T(2)
            }
        ]
    );
    s.disconnected(D(10));
    s.disconnected(D(11));
    assert_eq!(actions(&mut s), vec![], "already resolved: nothing more");
    s.disconnected(D(12));
    assert_eq!(actions(&mut s), vec![fail(3, ErrorCode::CONNECTION_RESET)]);
    assert_eq!(s.counters(), counters(0, 3, 0, 0, 3));
}

#[test]
fn reset_fails_a_retried_task_waiting_again() {
    let mut s = direct();
    join(&mut s, 10);
    submit_retry(&mut s, 1, "a", 1);
    s.disconnected(D(10));
    actions(&mut s);
    // It was sent once, so it is a lost connection (19), not a never-sent task (7).
    submit(&mut s, 2, "b");
    s.reset();
    assert_eq!(
        actions(&mut s),
        vec![
            fail(1, ErrorCode::CONNECTION_RESET),
            fail(2, ErrorCode::OBJECT_CLOSED)
        ]
    );
}

#[test]
fn direct_mode_retries_go_round_robin_in_order() {
    let mut s = direct();
    join(&mut s, 10);
    join(&mut s, 11);
    actions(&mut s);
    submit_retry(&mut s, 1, "a", 1);
    submit_retry(&mut s, 2, "b", 1);
    submit_retry(&mut s, 3, "c", 1);
    assert_eq!(
        actions(&mut s),
        vec![
            dispatch(10, 1, "a"),
            dispatch(11, 2, "b"),
            dispatch(10, 3, "c")
        ]
    );
    s.disconnected(D(10));
    assert_eq!(
        actions(&mut s),
        vec![dispatch(11, 1, "a"), dispatch(11, 3, "c")]
    );
    assert_eq!(s.counters(), counters(1, 2, 0, 3, 0));
}

#[test]
fn an_idle_daemon_leaves_with_a_notice_and_nothing_is_lost() {
    let mut s = dispatcher();
    join(&mut s, 10);
    join(&mut s, 11);
    actions(&mut s);
    // Daemon 10 (idle) hits its idle time: it leaves the pool and is acknowledged.
    assert_eq!(s.result(D(10), T(0), true), Delivery::Discard);
    assert_eq!(actions(&mut s), vec![Action::Ack { daemon: D(10) }]);
    submit(&mut s, 1, "a");
    submit(&mut s, 2, "b");
    assert_eq!(
        actions(&mut s),
        vec![dispatch(11, 1, "a")],
        "nothing goes to a leaving daemon"
    );
    // Daemon 11's notice crosses task 1 on its way: discarded; the daemon answers task 1 as
    // its last result and leaves then.
    assert_eq!(s.result(D(11), T(0), true), Delivery::Discard);
    assert_eq!(actions(&mut s), vec![]);
    assert_eq!(s.result(D(11), T(1), true), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![Action::Ack { daemon: D(11) }]);
    assert_eq!(s.counters(), counters(2, 2, 1, 0, 1));
    s.disconnected(D(10));
    s.disconnected(D(11));
    assert_eq!(
        actions(&mut s),
        vec![],
        "task 2 waits for a new daemon, it is not failed"
    );
    join(&mut s, 12);
    assert_eq!(actions(&mut s)[1..], [dispatch(12, 2, "b")]);
}

#[test]
fn direct_mode_leave_notice_keeps_tasks_already_sent() {
    let mut s = direct();
    join(&mut s, 10);
    actions(&mut s);
    submit(&mut s, 1, "a");
    submit(&mut s, 2, "b");
    actions(&mut s);
    assert_eq!(s.result(D(10), T(0), true), Delivery::Discard);
    assert_eq!(actions(&mut s), vec![Action::Ack { daemon: D(10) }]);
    // Tasks sent before the ack are still answered and delivered.
    assert_eq!(s.result(D(10), T(1), true), Delivery::Deliver);
    assert_eq!(s.result(D(10), T(2), true), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![], "one ack only");
    submit(&mut s, 3, "c");
    assert_eq!(actions(&mut s), vec![], "no daemon in the ring");
}

// ---------------------------------------------------------------------------------------------
// Pipelining

const THRESHOLD: Duration = Duration::from_millis(1);

fn piped() -> Scheduler<&'static str> {
    Scheduler::new(Config::new().with_pipeline(Some(THRESHOLD)))
}

fn put(s: &mut Scheduler<&'static str>, t: u64, p: &'static str) {
    s.submit_with(T(t), p, 10, TaskSpec::default());
}

/// Daemon `d` (alone idle) answers `n` tasks of 100 us each, ids from `first`.
fn history(s: &mut Scheduler<&'static str>, at: &mut Instant, d: u64, first: u64, n: u64) {
    for t in first..first + n {
        s.set_time(*at);
        put(s, t, "short");
        assert_eq!(actions(s), vec![dispatch(d, t, "short")]);
        *at += Duration::from_micros(100);
        s.set_time(*at);
        assert_eq!(s.result(D(d), T(t), false), Delivery::Deliver);
        actions(s);
    }
}

/// A pipelining scheduler whose one daemon (1) has answered tasks 1 to 3 in 100 us each,
/// and the time after them.
fn one_short_daemon() -> (Scheduler<&'static str>, Instant) {
    let mut at = Instant::now();
    let s = one_short_daemon_from(&mut at);
    (s, at)
}

/// [`one_short_daemon`] on the clock of an earlier scenario of the same test, moved on by its
/// history.
fn one_short_daemon_from(at: &mut Instant) -> Scheduler<&'static str> {
    let mut s = piped();
    s.set_time(*at);
    join(&mut s, 1);
    actions(&mut s);
    history(&mut s, at, 1, 1, 3);
    s
}

#[test]
fn only_a_daemon_with_a_history_of_short_tasks_is_pipelined_to() {
    let mut s = piped();
    let mut at = Instant::now();
    s.set_time(at);
    join(&mut s, 1);
    actions(&mut s);
    history(&mut s, &mut at, 1, 1, 1);
    // One result is not a history: the next task waits.
    put(&mut s, 10, "a");
    put(&mut s, 11, "b");
    assert_eq!(actions(&mut s), vec![dispatch(1, 10, "a")]);
    assert_eq!(s.counters().awaiting, 1);
    at += Duration::from_micros(100);
    s.set_time(at);
    s.result(D(1), T(10), false);
    // Two short results: the next task is sent behind the current one, never a third.
    assert_eq!(actions(&mut s), vec![dispatch(1, 11, "b")]);
    put(&mut s, 12, "c");
    put(&mut s, 13, "d");
    assert_eq!(actions(&mut s), vec![dispatch(1, 12, "c")]);
    // The pipelined task counts as awaiting until its daemon starts it.
    assert_eq!(s.counters(), counters(1, 1, 2, 1, 2));
    // A long task: the daemon's average rises above the threshold, nothing more is pipelined.
    at += Duration::from_millis(20);
    s.set_time(at);
    s.result(D(1), T(11), false);
    assert_eq!(
        actions(&mut s),
        Vec::<A>::new(),
        "12 is current now; 13 waits"
    );
    at += Duration::from_micros(100);
    s.set_time(at);
    s.result(D(1), T(12), false);
    assert_eq!(actions(&mut s), vec![dispatch(1, 13, "d")]);
    put(&mut s, 14, "e");
    assert_eq!(actions(&mut s), Vec::<A>::new());
    // Plain `submit` tasks (no copy to take back) and everywhere rounds are never pipelined.
    let mut s = one_short_daemon_from(&mut at);
    put(&mut s, 10, "a");
    submit(&mut s, 11, "plain");
    s.submit(
        T(12),
        "round",
        1,
        TaskKind::Everywhere { closes_round: true },
        None,
    );
    assert_eq!(actions(&mut s), vec![dispatch(1, 10, "a")]);
    assert_eq!(s.counters().awaiting, 2);
}

#[test]
fn a_current_task_already_longer_than_the_threshold_gets_nothing_behind_it() {
    let (mut s, mut at) = one_short_daemon();
    put(&mut s, 10, "a");
    actions(&mut s);
    at += Duration::from_millis(5);
    s.set_time(at);
    put(&mut s, 11, "b");
    assert_eq!(actions(&mut s), Vec::<A>::new());
    assert_eq!(s.counters().awaiting, 1);
}

#[test]
fn a_free_daemon_takes_back_a_pipelined_task_only_once_it_is_given_back() {
    let (mut s, mut at) = one_short_daemon();
    put(&mut s, 10, "long");
    put(&mut s, 11, "short");
    assert_eq!(
        actions(&mut s),
        vec![dispatch(1, 10, "long"), dispatch(1, 11, "short")]
    );
    // A new daemon says hello with nothing queued: the pipelined task is asked back.
    join(&mut s, 2);
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Init {
                daemon: D(2),
                ordinal: 2
            },
            Action::Withdraw {
                daemon: D(1),
                task: T(11)
            }
        ]
    );
    // Not re-dispatched before the daemon confirms: still held there, counted as awaiting.
    assert_eq!(s.counters(), counters(2, 2, 1, 1, 3));
    assert_eq!(s.attempts(T(11)), Some(1));
    assert!(s.withdrawn(D(1), T(11)));
    assert_eq!(actions(&mut s), vec![dispatch(2, 11, "short")]);
    assert_eq!(
        s.attempts(T(11)),
        Some(1),
        "the give-back did not count an attempt"
    );
    assert!(!s.withdrawn(D(1), T(11)), "a second give-back is ignored");
    assert_eq!(s.result(D(2), T(11), false), Delivery::Deliver);
    assert_eq!(s.result(D(1), T(10), false), Delivery::Deliver);
    assert_eq!(s.counters(), counters(2, 2, 0, 0, 5));

    // Asked back too late: the daemon had started it, and simply answers it.
    let mut s = one_short_daemon_from(&mut at);
    put(&mut s, 10, "a");
    put(&mut s, 11, "b");
    actions(&mut s);
    join(&mut s, 2);
    assert!(actions(&mut s).contains(&Action::Withdraw {
        daemon: D(1),
        task: T(11)
    }));
    assert_eq!(s.result(D(1), T(10), false), Delivery::Deliver);
    assert_eq!(
        actions(&mut s),
        Vec::<A>::new(),
        "11 is now current at daemon 1"
    );
    assert_eq!(s.result(D(1), T(11), false), Delivery::Deliver);
    assert_eq!(s.counters(), counters(2, 2, 0, 0, 5));
}

#[test]
fn a_daemon_leaving_or_lost_with_a_pipelined_task() {
    // Leaving: its last result; the pipelined task it never started comes back and goes to
    // the head of the queue, ahead of later submissions.
    let (mut s, mut at) = one_short_daemon();
    put(&mut s, 10, "a");
    put(&mut s, 11, "b");
    put(&mut s, 12, "c");
    assert_eq!(
        actions(&mut s),
        vec![dispatch(1, 10, "a"), dispatch(1, 11, "b")]
    );
    assert_eq!(s.result(D(1), T(10), true), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![Action::Ack { daemon: D(1) }]);
    assert_eq!(
        s.counters(),
        counters(1, 1, 2, 0, 4),
        "11 is held (awaiting) until answered"
    );
    assert!(s.withdrawn(D(1), T(11)));
    assert_eq!(s.counters(), counters(1, 1, 2, 0, 4));
    join(&mut s, 2);
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Init {
                daemon: D(2),
                ordinal: 2
            },
            dispatch(2, 11, "b")
        ]
    );
    s.disconnected(D(1));

    // Lost: both tasks it held fail with 19, in the order they were sent.
    let mut s = one_short_daemon_from(&mut at);
    put(&mut s, 10, "a");
    put(&mut s, 11, "b");
    actions(&mut s);
    s.disconnected(D(1));
    assert_eq!(
        actions(&mut s),
        vec![
            fail(10, ErrorCode::CONNECTION_RESET),
            fail(11, ErrorCode::CONNECTION_RESET)
        ]
    );
    assert_eq!(s.counters(), counters(0, 1, 0, 0, 5));
}
