//! Many tasks over several daemon processes, on every transport backend.

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use common::*;
use mirai::{Host, SubmitOptions};

fn ten_thousand_tasks(backend: mirai::transport::Backend) {
    const N: usize = 10_000;
    let start = std::time::Instant::now();
    let host = Host::start(config(backend)).expect("host starts");
    launch(&host, 4, &args(backend), 4);

    // Half submitted one by one, half through `map`, each payload naming its task.
    let mut handles = Vec::with_capacity(N);
    for i in 0..N / 2 {
        handles.push(
            host.submit(format!("echo:{i}").into_bytes(), SubmitOptions::default())
                .unwrap(),
        );
    }
    handles.extend(
        host.map((N / 2..N).map(|i| format!("echo:{i}").into_bytes()))
            .unwrap(),
    );

    // Every handle's callback must fire exactly once.
    let fired: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
    for (i, h) in handles.iter().enumerate() {
        let f = fired.clone();
        h.on_complete(Box::new(move || {
            f[i].fetch_add(1, Ordering::SeqCst);
        }));
    }
    for (i, h) in handles.iter().enumerate() {
        assert_eq!(
            ok(h.wait(Some(LONG))),
            format!("{i}").into_bytes(),
            "task {i}"
        );
        assert!(h.is_resolved());
        assert_eq!(
            h.wait(Some(std::time::Duration::ZERO)),
            None,
            "task {i} resolved once"
        );
    }
    assert!(eventually(LONG, || fired
        .iter()
        .all(|c| c.load(Ordering::SeqCst) >= 1)));
    assert!(
        fired.iter().all(|c| c.load(Ordering::SeqCst) == 1),
        "callbacks ran exactly once"
    );

    let ids: Vec<u64> = handles.iter().map(|h| h.id().get()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "task ids increase");
    let c = host.status().counters;
    assert_eq!(
        (c.completed, c.awaiting, c.executing),
        (N as u64, 0, 0),
        "{backend:?}: {c:?}"
    );
    assert_eq!((c.connections, c.cumulative), (4, 4));
    assert_eq!(host.completions(), N as u64);
    println!(
        "{backend:?}: {N} tasks on 4 daemons in {:?}",
        start.elapsed()
    );
}

#[test]
fn ten_thousand_tasks_on_four_daemons_every_backend() {
    for backend in backends() {
        ten_thousand_tasks(backend);
    }
}

#[test]
fn handles_are_futures() {
    let host = host();
    launch(&host, 2, &args(mirai::transport::Backend::Native), 2);
    let handles = host
        .map((0..200).map(|i| format!("echo:{i}").into_bytes()))
        .unwrap();
    let outcomes = futures::executor::block_on(futures::future::join_all(handles));
    for (i, o) in outcomes.into_iter().enumerate() {
        assert_eq!(ok(Some(o)), format!("{i}").into_bytes());
    }
}

#[test]
fn error_status_is_carried_back() {
    let host = host();
    launch(&host, 1, &args(mirai::transport::Backend::Native), 1);
    let h = host
        .submit(b"fail:boom".to_vec(), SubmitOptions::default())
        .unwrap();
    assert_eq!(
        h.wait(Some(LONG)),
        Some(mirai::Outcome::Value {
            status: mirai::host::Status::Error,
            payload: b"boom".to_vec()
        })
    );
}
