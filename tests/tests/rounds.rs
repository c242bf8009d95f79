//! everywhere rounds, direct mode and daemons that leave on maxtasks.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use mirai::host::Mode;
use mirai::transport::Backend;
use mirai::{Host, SubmitOptions};

#[test]
fn everywhere_reaches_each_daemon_exactly_once() {
    let host = host();
    launch(&host, 3, &args(Backend::Native), 3);
    let launched: HashSet<u32> = host.launched_pids().into_iter().collect();
    let before: Vec<_> = (0..6)
        .map(|_| {
            host.submit(b"sleep:20".to_vec(), SubmitOptions::default())
                .unwrap()
        })
        .collect();
    let round = host.everywhere(b"pid:".to_vec(), 1).unwrap();
    assert_eq!(round.len(), 3);
    let after = host
        .submit(b"echo:after".to_vec(), SubmitOptions::default())
        .unwrap();
    let pids: Vec<u32> = round.iter().map(|h| pid(h.wait(Some(LONG)))).collect();
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        3,
        "each daemon ran the round once: {pids:?}"
    );
    assert_eq!(distinct, launched);
    for h in before {
        assert_eq!(ok(h.wait(Some(LONG))), b"slept");
    }
    assert_eq!(ok(after.wait(Some(LONG))), b"after");
}

#[test]
fn everywhere_min_waits_for_daemons_still_connecting() {
    let host = host();
    launch(&host, 1, &args(Backend::Native), 1);
    let round = host.everywhere(b"pid:".to_vec(), 2).unwrap();
    assert_eq!(round.len(), 2);
    let later = host
        .submit(b"echo:later".to_vec(), SubmitOptions::default())
        .unwrap();
    let first = pid(round[0].wait(Some(LONG)));
    // The second round task must not go to the same daemon, and the later task waits behind it.
    assert!(!round[1].is_resolved());
    assert!(!later.is_resolved());
    launch(&host, 1, &args(Backend::Native), 2);
    let second = pid(round[1].wait(Some(LONG)));
    assert_ne!(first, second);
    assert_eq!(ok(later.wait(Some(LONG))), b"later");
}

#[test]
fn direct_mode_is_round_robin() {
    let cfg = config(Backend::Native).with_mode(Mode::Direct);
    let host = Host::start(cfg).unwrap();
    // `launch` returns once `wait_connections` sees 3 daemons. In direct mode that must mean
    // 3 handshakes, not 3 open connections: a daemon joins the ring only after its hello, and
    // the even spread below fails if tasks are submitted before all three have joined.
    launch(&host, 3, &args(Backend::Native), 3);
    assert_eq!(host.status().counters.cumulative, 3);
    let hs = host.map((0..30).map(|_| b"pid:".to_vec())).unwrap();
    let pids: Vec<u32> = hs.iter().map(|h| pid(h.wait(Some(LONG)))).collect();
    let mut count: HashMap<u32, usize> = HashMap::new();
    for p in &pids {
        *count.entry(*p).or_default() += 1;
    }
    assert_eq!(count.len(), 3, "{pids:?}");
    assert!(count.values().all(|&n| n == 10), "{count:?}");
    assert!(
        pids.iter().enumerate().all(|(i, p)| *p == pids[i % 3]),
        "cyclic: {pids:?}"
    );
}

#[test]
fn maxtasks_daemons_leave_and_queued_tasks_finish_on_a_relaunched_daemon() {
    let host = host();
    let limited = args(Backend::Native).with_maxtasks(3);
    let mut children: Vec<_> = (0..2).map(|_| spawn(host.url(), &limited)).collect();
    assert!(host.wait_connections(2, LONG));
    let hs = host.map((0..10).map(|_| b"pid:".to_vec())).unwrap();
    let limited_pids: HashSet<u32> = children.iter().map(|c| c.id()).collect();
    for c in &mut children {
        let status = wait_exit(c, LONG).expect("a maxtasks daemon exits");
        assert_eq!(status.code(), Some(3), "exit code 3 (maxtasks)");
    }
    assert!(eventually(LONG, || host.status().counters.connections == 0));
    let c = host.status().counters;
    assert_eq!((c.awaiting, c.executing, c.completed), (4, 0, 6));
    assert_eq!(hs.iter().filter(|h| h.is_resolved()).count(), 6);

    launch(&host, 1, &args(Backend::Native), 1);
    let fresh = host.launched_pids();
    assert_eq!(fresh.len(), 1);
    let mut count: HashMap<u32, usize> = HashMap::new();
    for h in &hs {
        *count.entry(pid(h.wait(Some(LONG)))).or_default() += 1;
    }
    for p in &limited_pids {
        assert_eq!(count.get(p), Some(&3), "{count:?}");
    }
    assert_eq!(count.get(&fresh[0]), Some(&4), "{count:?}");
    let c = host.status().counters;
    assert_eq!(
        (c.awaiting, c.executing, c.completed, c.cumulative),
        (0, 0, 10, 3)
    );
}
