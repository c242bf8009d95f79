//! Units (`Scheduler::submit_unit`, the elements of a `mirai_map` chunk): one test per rule,
//! and a property test of the invariants under random events.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mirai_sched::{
    Action, Config, DaemonId as D, Delivery, ErrorCode, Scheduler, TaskId as T, TaskSpec,
};
use proptest::prelude::*;

type S = Scheduler<&'static str>;
type A = Action<&'static str>;

const MS: Duration = Duration::from_millis(1);

fn timed() -> (S, Instant) {
    let mut s = Scheduler::new(Config::new().with_pipeline(Some(MS)));
    let t0 = Instant::now();
    s.set_time(t0);
    (s, t0)
}

fn actions(s: &mut S) -> Vec<A> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn join(s: &mut S, d: u64) {
    s.connected(D(d));
    s.hello(D(d));
}

/// Submits units `first .. first + n` (elements `0 .. n`) with `retries`.
fn chunk(s: &mut S, first: u64, n: u32, retries: u32) {
    for i in 0..n {
        let spec = TaskSpec::new().with_retries(retries);
        s.submit_unit(T(first + u64::from(i)), "chunk", 1, spec, i);
    }
}

/// The batches sent: `(daemon, first, offset, count)`.
fn batches(acts: &[A]) -> Vec<(u64, u64, u32, u32)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Batch {
                daemon,
                task,
                offset,
                count,
                ..
            } => Some((daemon.get(), task.get(), *offset, *count)),
            _ => None,
        })
        .collect()
}

/// Answers the units `first .. first + count` from `daemon` in order, `each` apart from `at`.
fn answer(s: &mut S, at: &mut Instant, each: Duration, daemon: u64, first: u64, count: u32) {
    for i in 0..u64::from(count) {
        *at += each;
        s.set_time(*at);
        assert_eq!(s.result(D(daemon), T(first + i), false), Delivery::Deliver);
    }
}

#[test]
fn units_go_one_at_a_time_until_the_daemon_is_measured_then_in_batches() {
    let (mut s, t0) = timed();
    let mut at = t0;
    join(&mut s, 1);
    chunk(&mut s, 1, 200, 0);
    let acts = actions(&mut s);
    assert_eq!(batches(&acts), vec![(1, 1, 0, 1)], "unknown pace: one unit");
    answer(&mut s, &mut at, Duration::from_micros(10), 1, 1, 1);
    assert_eq!(batches(&actions(&mut s)), vec![(1, 2, 1, 1)]);
    answer(&mut s, &mut at, Duration::from_micros(10), 1, 2, 1);
    // Measured at 10 us a unit: about 1 ms of work, within half the queue.
    let b = batches(&actions(&mut s));
    assert_eq!(b.len(), 1);
    let (_, first, offset, count) = b[0];
    assert_eq!((first, offset), (3, 2));
    assert!(count > 1 && count <= 99, "batch of {count}");
    // Only the unit being evaluated is executing; the rest of the batch is awaiting.
    let c = s.counters();
    assert_eq!(c.executing, 1);
    assert_eq!(c.awaiting, 197);
    assert_eq!(c.completed, 2);
    answer(&mut s, &mut at, Duration::from_micros(10), 1, 3, 1);
    let c = s.counters();
    assert_eq!((c.executing, c.awaiting, c.completed), (1, 196, 3));
}

#[test]
fn an_untimed_scheduler_sends_units_one_at_a_time() {
    let mut s: S = Scheduler::new(Config::default());
    join(&mut s, 1);
    chunk(&mut s, 1, 10, 0);
    for i in 1..=10 {
        assert_eq!(batches(&actions(&mut s)), vec![(1, i, i as u32 - 1, 1)]);
        s.result(D(1), T(i), false);
    }
    assert_eq!(s.counters().completed, 10);
}

#[test]
fn slow_units_are_spread_one_at_a_time_over_every_daemon() {
    let (mut s, t0) = timed();
    let mut at = t0;
    for d in 1..=4 {
        join(&mut s, d);
    }
    chunk(&mut s, 1, 32, 0);
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut running: Vec<(u64, u64)> = batches(&actions(&mut s))
        .into_iter()
        .map(|(d, t, _, n)| {
            assert_eq!(n, 1);
            (d, t)
        })
        .collect();
    while !running.is_empty() {
        assert!(s.counters().executing <= 4);
        let (d, t) = running.remove(0);
        *seen.entry(d).or_default() += 1;
        at += 100 * MS;
        s.set_time(at);
        s.result(D(d), T(t), false);
        for (d, t, _, n) in batches(&actions(&mut s)) {
            assert_eq!(n, 1, "a unit slower than the threshold goes alone");
            running.push((d, t));
        }
    }
    assert_eq!(seen.len(), 4);
    assert!(seen.values().all(|&n| n == 8), "{seen:?}");
}

/// Whether each batch sent is coalesced.
fn coalesced(acts: &[A]) -> Vec<bool> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Batch { coalesce, .. } => Some(*coalesce),
            _ => None,
        })
        .collect()
}

/// Measures daemon `d` (two quick units), then sends it a batch of the rest: its batch.
fn measured_batch(s: &mut S, at: &mut Instant, d: u64, n: u32, retries: u32) -> (u64, u32) {
    measured_batch_at(s, at, d, n, retries, Duration::from_micros(10), true)
}

/// [`measured_batch`] at a pace of `each` a unit, checking whether the batch is coalesced.
fn measured_batch_at(
    s: &mut S,
    at: &mut Instant,
    d: u64,
    n: u32,
    retries: u32,
    each: Duration,
    coalesce: bool,
) -> (u64, u32) {
    join(s, d);
    chunk(s, 1, n, retries);
    for i in 1..=2 {
        actions(s);
        answer(s, at, each, d, i, 1);
    }
    let acts = actions(s);
    let b = batches(&acts);
    assert_eq!(b.len(), 1);
    assert!(b[0].3 > 2);
    assert_eq!(coalesced(&acts), vec![coalesce]);
    (b[0].1, b[0].3)
}

/// A pace of 200 us a unit: batches of 5 within the 1 ms threshold, not coalesced.
const MEDIUM: Duration = Duration::from_micros(200);

#[test]
fn a_lost_daemon_fails_the_unit_it_ran_and_requeues_those_it_had_not_started() {
    let (mut s, t0) = timed();
    let mut at = t0;
    let (first, count) = measured_batch_at(&mut s, &mut at, 1, 40, 0, MEDIUM, false);
    answer(&mut s, &mut at, Duration::from_micros(10), 1, first, 1);
    let running = first + 1;
    assert_eq!(s.attempts(T(running + 1)), Some(1));
    s.disconnected(D(1));
    assert_eq!(
        actions(&mut s),
        vec![Action::Fail {
            task: T(running),
            code: ErrorCode::CONNECTION_RESET
        }]
    );
    // The rest were never started: queued again, no attempt counted.
    assert_eq!(s.attempts(T(running + 1)), Some(0));
    let c = s.counters();
    assert_eq!((c.awaiting, c.executing), (36, 0));
    assert_eq!(c.completed, 4, "two measured, one answered, one lost");
    join(&mut s, 2);
    assert_eq!(batches(&actions(&mut s)), vec![(2, running + 1, 4, 1)]);
    let _ = count;
}

#[test]
fn retries_are_per_unit_the_running_one_is_sent_again_first() {
    let (mut s, t0) = timed();
    let mut at = t0;
    let (first, _) = measured_batch_at(&mut s, &mut at, 1, 20, 1, MEDIUM, false);
    s.disconnected(D(1));
    assert_eq!(actions(&mut s), vec![], "retried, not failed");
    assert_eq!(s.attempts(T(first)), Some(1));
    assert_eq!(s.attempts(T(first + 1)), Some(0));
    join(&mut s, 2);
    assert_eq!(batches(&actions(&mut s)), vec![(2, first, 2, 1)]);
    assert_eq!(s.attempts(T(first)), Some(2));
    // Lost again: its retry is spent, so it fails; the next unit has its own budget.
    s.disconnected(D(2));
    assert_eq!(
        actions(&mut s),
        vec![Action::Fail {
            task: T(first),
            code: ErrorCode::CONNECTION_RESET
        }]
    );
    join(&mut s, 3);
    assert_eq!(batches(&actions(&mut s)), vec![(3, first + 1, 3, 1)]);
    s.disconnected(D(3));
    assert_eq!(actions(&mut s), vec![], "the next unit's own retry");
}

#[test]
fn a_lost_daemon_fails_every_unit_of_its_coalesced_batch_that_has_no_result() {
    let (mut s, t0) = timed();
    let mut at = t0;
    let (first, count) = measured_batch(&mut s, &mut at, 1, 40, 0);
    answer(&mut s, &mut at, Duration::from_micros(10), 1, first, 1);
    let c = s.counters();
    assert_eq!(c.executing, 1, "still one unit executing");
    s.disconnected(D(1));
    // The daemon may have run any of them and held their results: lost as started, in order.
    let fails: Vec<A> = (first + 1..first + u64::from(count))
        .map(|t| Action::Fail {
            task: T(t),
            code: ErrorCode::CONNECTION_RESET,
        })
        .collect();
    assert_eq!(actions(&mut s), fails);
    let c = s.counters();
    assert_eq!((c.awaiting, c.executing), (u64::from(40 - 2 - count), 0));
    assert_eq!(c.completed, u64::from(2 + count));
    // The units after the batch were never sent: queued, no attempt counted.
    let next = first + u64::from(count);
    assert_eq!(s.attempts(T(next)), Some(0));
    join(&mut s, 2);
    assert_eq!(
        batches(&actions(&mut s)),
        vec![(2, next, next as u32 - 1, 1)]
    );
}

#[test]
fn a_coalesced_daemon_that_said_where_it_is_loses_only_that_unit_until_its_next_result() {
    let (mut s, t0) = timed();
    let mut at = t0;
    let (first, count) = measured_batch(&mut s, &mut at, 1, 40, 0);
    answer(&mut s, &mut at, Duration::from_micros(10), 1, first, 1);
    let running = first + 1;
    // A notice for a unit it is not running changes nothing; one for its current unit does,
    // until its next result.
    s.running(D(1), T(running + 1));
    s.running(D(1), T(running));
    answer(&mut s, &mut at, Duration::from_micros(10), 1, running, 1);
    let running = running + 1;
    s.running(D(1), T(running));
    s.disconnected(D(1));
    assert_eq!(
        actions(&mut s),
        vec![Action::Fail {
            task: T(running),
            code: ErrorCode::CONNECTION_RESET
        }]
    );
    // The units behind it had not started: queued again, no attempt counted.
    assert_eq!(s.attempts(T(running + 1)), Some(0));
    let c = s.counters();
    assert_eq!(
        (c.awaiting, c.executing),
        (35, 0),
        "four answered, one lost"
    );
    assert!(count > 4);
}

#[test]
fn a_running_notice_is_forgotten_at_the_next_result() {
    let (mut s, t0) = timed();
    let mut at = t0;
    let (first, count) = measured_batch(&mut s, &mut at, 1, 40, 0);
    s.running(D(1), T(first));
    answer(&mut s, &mut at, Duration::from_micros(10), 1, first, 1);
    s.disconnected(D(1));
    // After that result the daemon may have run on and held more: every unit without a
    // result is lost as started.
    assert_eq!(actions(&mut s).len(), count as usize - 1);
}

#[test]
fn retries_of_a_coalesced_batch_count_an_attempt_for_each_unit_without_a_result() {
    let (mut s, t0) = timed();
    let mut at = t0;
    let (first, count) = measured_batch(&mut s, &mut at, 1, 40, 1);
    answer(&mut s, &mut at, Duration::from_micros(10), 1, first, 2);
    s.disconnected(D(1));
    assert_eq!(actions(&mut s), vec![], "retried, not failed");
    for t in first + 2..first + u64::from(count) {
        assert_eq!(s.attempts(T(t)), Some(1), "unit {t}");
    }
    assert_eq!(s.attempts(T(first + u64::from(count))), Some(0));
    let c = s.counters();
    assert_eq!((c.awaiting, c.executing, c.completed), (36, 0, 4));
    // Sent again first, each with its retry spent: lost once more, each fails.
    join(&mut s, 2);
    assert_eq!(batches(&actions(&mut s)), vec![(2, first + 2, 4, 1)]);
    assert_eq!(s.attempts(T(first + 2)), Some(2));
    s.disconnected(D(2));
    assert_eq!(
        actions(&mut s),
        vec![Action::Fail {
            task: T(first + 2),
            code: ErrorCode::CONNECTION_RESET
        }]
    );
}

#[test]
fn an_idle_daemon_takes_back_half_of_anothers_unstarted_units() {
    let (mut s, t0) = timed();
    let mut at = t0;
    let (first, count) = measured_batch(&mut s, &mut at, 1, 20, 0);
    // Daemon 2 takes the rest of the queue, one unit after another, and so falls idle with
    // nothing queued while daemon 1 still has units it has not started.
    join(&mut s, 2);
    let mut asked: Vec<u64> = Vec::new();
    for _ in 0..20 {
        let acts = actions(&mut s);
        asked.extend(acts.iter().filter_map(|a| match a {
            Action::Withdraw { daemon, task } if daemon.get() == 1 => Some(task.get()),
            _ => None,
        }));
        if !asked.is_empty() {
            break;
        }
        for (d, t, _, n) in batches(&acts) {
            assert_eq!(d, 2);
            answer(&mut s, &mut at, Duration::from_micros(10), 2, t, n);
        }
    }
    let followers = u64::from(count - 1);
    assert_eq!(asked.len() as u64, followers - followers / 2);
    assert_eq!(*asked.last().unwrap(), first + followers);
    // The daemon gives them back unstarted; they go to the idle daemon.
    for &t in &asked {
        assert!(s.withdrawn(D(1), T(t)));
    }
    let b = batches(&actions(&mut s));
    assert_eq!(b[0].0, 2);
    assert_eq!(b[0].1, asked[0]);
    // Daemon 1 goes on with the units it kept.
    answer(&mut s, &mut at, Duration::from_micros(10), 1, first, 1);
}

#[test]
fn a_cancelled_follower_is_dropped_by_its_daemon_and_never_sent_again() {
    let (mut s, t0) = timed();
    let mut at = t0;
    let (first, _) = measured_batch(&mut s, &mut at, 1, 10, 0);
    assert!(s.cancel(T(first + 2)));
    assert_eq!(
        actions(&mut s),
        vec![Action::Cancel {
            daemon: D(1),
            task: T(first + 2)
        }]
    );
    answer(&mut s, &mut at, Duration::from_micros(10), 1, first, 2);
    // Its daemon drops it and says so: it is not queued again.
    s.withdrawn(D(1), T(first + 2));
    assert_eq!(s.attempts(T(first + 2)), None);
    answer(&mut s, &mut at, Duration::from_micros(10), 1, first + 3, 1);
    let c = s.counters();
    assert_eq!(c.completed, 6);
    assert!(!s.cancel(T(first + 2)));
}

#[test]
fn a_last_result_leaves_the_followers_to_be_given_back_and_sent_elsewhere() {
    let (mut s, t0) = timed();
    let mut at = t0;
    let (first, count) = measured_batch(&mut s, &mut at, 1, 10, 0);
    at += MS;
    s.set_time(at);
    assert_eq!(s.result(D(1), T(first), true), Delivery::Deliver);
    assert_eq!(actions(&mut s), vec![Action::Ack { daemon: D(1) }]);
    for t in first + 1..first + u64::from(count) {
        assert!(s.withdrawn(D(1), T(t)));
    }
    join(&mut s, 2);
    assert_eq!(batches(&actions(&mut s)), vec![(2, first + 1, 3, 1)]);
    assert_eq!(s.counters().executing, 1);
}

#[test]
fn units_of_two_chunks_never_share_a_batch() {
    let (mut s, t0) = timed();
    let mut at = t0;
    join(&mut s, 1);
    chunk(&mut s, 1, 3, 0);
    chunk(&mut s, 4, 30, 0);
    for i in 1..=2 {
        actions(&mut s);
        answer(&mut s, &mut at, Duration::from_micros(10), 1, i, 1);
    }
    // The last unit of the first chunk goes alone; the second chunk's units follow as a batch
    // of their own, pipelined behind it.
    let b = batches(&actions(&mut s));
    assert_eq!(b.len(), 2);
    assert_eq!(b[0], (1, 3, 2, 1));
    assert_eq!((b[1].0, b[1].1, b[1].2), (1, 4, 0));
    assert!(b[1].3 > 1);
    assert_eq!(s.counters().executing, 1);
}

#[derive(Debug, Clone)]
enum Ev {
    Join,
    /// Answer the current unit of the `i`-th daemon (mod the count), after `us` microseconds.
    Answer(usize, u16),
    Lose(usize),
    Cancel(u16),
    Withdrawn(usize),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        1 => Just(Ev::Join),
        8 => (any::<usize>(), 1u16..3000).prop_map(|(i, us)| Ev::Answer(i, us)),
        1 => any::<usize>().prop_map(Ev::Lose),
        1 => any::<u16>().prop_map(Ev::Cancel),
        2 => any::<usize>().prop_map(Ev::Withdrawn),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every unit resolves exactly once (answered, failed, or cancelled), is never with two
    /// daemons at once, each daemon answers its units in the order sent, and `executing`
    /// never exceeds the daemons.
    #[test]
    fn units_are_never_lost_duplicated_or_overcounted(
        n in 1u32..120, retries in 0u32..2, evs in prop::collection::vec(ev(), 1..300)
    ) {
        let (mut s, t0) = timed();
        let mut at = t0;
        chunk(&mut s, 1, n, retries);
        // Per daemon: units sent and unanswered, in order.
        let mut held: Vec<(u64, Vec<u64>)> = Vec::new();
        let mut resolved: HashSet<u64> = HashSet::new();
        let mut next_daemon = 1;
        let mut asked: HashSet<u64> = HashSet::new();
        for e in evs {
            match e {
                Ev::Join => {
                    join(&mut s, next_daemon);
                    held.push((next_daemon, Vec::new()));
                    next_daemon += 1;
                }
                Ev::Answer(i, us) if !held.is_empty() => {
                    let k = i % held.len();
                    if let Some(&t) = held[k].1.first() {
                        at += Duration::from_micros(u64::from(us));
                        s.set_time(at);
                        if s.result(D(held[k].0), T(t), false) == Delivery::Deliver {
                            prop_assert!(resolved.insert(t), "unit {t} resolved twice");
                        }
                        held[k].1.remove(0);
                    }
                }
                Ev::Lose(i) if !held.is_empty() => {
                    let (d, _) = held.remove(i % held.len());
                    s.disconnected(D(d));
                }
                Ev::Cancel(t) => {
                    let t = u64::from(t) % u64::from(n) + 1;
                    if s.cancel(T(t)) {
                        prop_assert!(resolved.insert(t), "unit {t} cancelled after resolving");
                    }
                }
                // The daemon gives back the last unit it holds if it was asked for it.
                Ev::Withdrawn(i) if !held.is_empty() => {
                    let k = i % held.len();
                    if let Some(&t) = held[k].1.last() {
                        if held[k].1.len() > 1 && asked.remove(&t) {
                            s.withdrawn(D(held[k].0), T(t));
                            held[k].1.pop();
                        }
                    }
                }
                _ => {}
            }
            // What the harness does while handling actions (a withdrawn answer) may cause more.
            let mut acts = actions(&mut s);
            while !acts.is_empty() {
                for a in std::mem::take(&mut acts) {
                    match a {
                        Action::Batch { daemon, task, offset, count, .. } => {
                            prop_assert_eq!(u64::from(offset) + 1, task.get());
                            let h = held.iter_mut().find(|h| h.0 == daemon.get());
                            let h = h.expect("a batch for a daemon that is gone");
                            // (Or pipelined behind the one unit it runs.)
                            prop_assert!(h.1.len() <= 1, "a batch to a busy daemon");
                            for t in task.get()..task.get() + u64::from(count) {
                                prop_assert!(!resolved.contains(&t), "resolved unit {t} sent");
                                prop_assert!(
                                    held.iter().all(|h| !h.1.contains(&t)),
                                    "unit {t} with two daemons"
                                );
                                let h = held.iter_mut().find(|h| h.0 == daemon.get()).unwrap();
                                h.1.push(t);
                            }
                        }
                        Action::Fail { task, code } => {
                            prop_assert_eq!(code, ErrorCode::CONNECTION_RESET);
                            prop_assert!(resolved.insert(task.get()), "unit failed twice");
                        }
                        Action::Withdraw { task, .. } => {
                            asked.insert(task.get());
                        }
                        // A cancelled unit that has not started is dropped by the daemon.
                        Action::Cancel { daemon, task } => {
                            let h = held.iter_mut().find(|h| h.0 == daemon.get()).unwrap();
                            if h.1.first() != Some(&task.get()) {
                                prop_assert!(s.withdrawn(daemon, task) || !h.1.contains(&task.get()));
                                h.1.retain(|&u| u != task.get());
                            }
                        }
                        _ => {}
                    }
                }
                acts = actions(&mut s);
            }
            let c = s.counters();
            prop_assert!(c.executing <= held.len() as u64);
            prop_assert_eq!(c.awaiting + c.executing + c.completed, u64::from(n));
            let busy = held.iter().filter(|h| !h.1.is_empty()).count() as u64;
            prop_assert_eq!(c.executing, busy);
        }
        // Drain: every daemon answers everything; a new one joins if none is left.
        if held.is_empty() {
            join(&mut s, next_daemon);
            held.push((next_daemon, Vec::new()));
        }
        for _ in 0..10 * n {
            for a in actions(&mut s) {
                match a {
                    Action::Batch { daemon, task, count, .. } => {
                        let h = held.iter_mut().find(|h| h.0 == daemon.get()).unwrap();
                        h.1.extend(task.get()..task.get() + u64::from(count));
                    }
                    Action::Fail { task, .. } => {
                        prop_assert!(resolved.insert(task.get()));
                    }
                    _ => {}
                }
            }
            let Some(k) = held.iter().position(|h| !h.1.is_empty()) else { break };
            let t = held[k].1.remove(0);
            at += Duration::from_micros(5);
            s.set_time(at);
            if s.result(D(held[k].0), T(t), false) == Delivery::Deliver {
                prop_assert!(resolved.insert(t), "unit {t} resolved twice");
            }
        }
        prop_assert_eq!(resolved.len() as u64, u64::from(n), "every unit resolved once");
        prop_assert_eq!(s.counters().completed, u64::from(n));
    }
}

#[test]
fn a_unit_pipelined_to_a_lost_daemon_goes_back_unstarted() {
    let (mut s, t0) = timed();
    let mut at = t0;
    join(&mut s, 1);
    s.submit_with(T(1), "task", 1, TaskSpec::new());
    actions(&mut s);
    for i in 0..2 {
        at += Duration::from_micros(10);
        s.set_time(at);
        s.result(D(1), T(1 + i), false);
        s.submit_with(T(2 + i), "task", 1, TaskSpec::new());
        actions(&mut s);
    }
    // Daemon 1, measured quick and busy with task 3, is pipelined task 4; the chunk queues
    // behind it, and once task 3 is answered its units are pipelined behind task 4.
    s.submit_with(T(4), "task", 1, TaskSpec::new());
    chunk(&mut s, 10, 5, 0);
    actions(&mut s);
    at += Duration::from_micros(10);
    s.set_time(at);
    s.result(D(1), T(3), false);
    let acts = actions(&mut s);
    let b = batches(&acts);
    assert_eq!(b.len(), 1, "pipelined");
    assert!(b[0].3 > 1, "a batch of several: {b:?}");
    assert_eq!(coalesced(&acts), vec![true], "and coalesced, yet not begun");
    assert_eq!(s.counters().executing, 1);
    s.disconnected(D(1));
    // The task it ran fails; none of the units had started: all are queued again.
    assert_eq!(
        actions(&mut s),
        vec![Action::Fail {
            task: T(4),
            code: ErrorCode::CONNECTION_RESET
        }]
    );
    let c = s.counters();
    assert_eq!((c.awaiting, c.executing), (5, 0));
    assert_eq!(s.attempts(T(10)), Some(0));
}
