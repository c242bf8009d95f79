//! Peers coming and going: protocol violations, lost daemons, resets, hello time-outs and the pending cap.

use super::*;

#[test]
fn garbage_and_protocol_violations_drop_only_that_peer() {
    let h = host();
    let (good, _) = Fake::join(&h);

    let garbage = Fake::dial(&h);
    garbage
        .conn
        .send(b"\x00\x01 definitely not a frame")
        .unwrap();
    assert!(garbage.closed_within(LONG));

    let wrong_version = Fake::dial(&h);
    wrong_version.send(&Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION + 1,
        pid: 1,
    }));
    assert!(wrong_version.closed_within(LONG));

    let early = Fake::dial(&h);
    early.send(&Frame::Result(TaskResult {
        id: TaskId(1),
        status: Status::Ok,
        last: false,
        payload: vec![],
    }));
    assert!(early.closed_within(LONG));

    let (twice, _) = Fake::join(&h);
    twice.send(&Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        pid: 1,
    }));
    assert!(twice.closed_within(LONG));

    let (wrong_kind, _) = Fake::join(&h);
    wrong_kind.send(&Frame::Task(Task {
        id: TaskId(1),
        flags: 0,
        payload: vec![],
        trace: None,
    }));
    assert!(wrong_kind.closed_within(LONG));

    let t = h.submit(b"ok".to_vec(), SubmitOptions::default()).unwrap();
    let sent = good.task();
    good.reply(&sent, false);
    assert_eq!(t.wait(Some(LONG)), value(b"ok"));
}

#[test]
fn busy_daemon_lost_fails_its_task_with_19_and_queued_tasks_wait() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let a = h.submit(b"a".to_vec(), SubmitOptions::default()).unwrap();
    let b = h.submit(b"b".to_vec(), SubmitOptions::default()).unwrap();
    let _ = d.task();
    d.conn.close();
    drop(d);
    assert_eq!(
        a.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );
    assert!(!b.is_resolved());
    let (d2, _) = Fake::join(&h);
    let sent = d2.task();
    assert_eq!(sent.payload, b"b");
    d2.reply(&sent, false);
    assert_eq!(b.wait(Some(LONG)), value(b"b"));
}

#[test]
fn reset_resolves_everything_and_closes_connections() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let running = h.submit(b"r".to_vec(), SubmitOptions::default()).unwrap();
    let queued = h.submit(b"q".to_vec(), SubmitOptions::default()).unwrap();
    let _ = d.task();
    h.reset();
    assert_eq!(
        running.wait(Some(Duration::ZERO)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );
    assert_eq!(
        queued.wait(Some(Duration::ZERO)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );
    assert!(d.closed_within(LONG));
    assert!(matches!(
        h.submit(vec![], SubmitOptions::default()),
        Err(HostError::Closed)
    ));
    assert!(h.is_closed());
    h.reset(); // idempotent
    assert!(!h.wait_connections(1, Duration::from_millis(10)));
    assert!(
        h.admit(),
        "a closed host lets the caller through to see the closure"
    );
}

#[test]
fn dropping_the_last_clone_resets() {
    let h = host();
    let h2 = h.clone();
    let (d, _) = Fake::join(&h);
    let t = h.submit(b"x".to_vec(), SubmitOptions::default()).unwrap();
    let _ = d.task();
    drop(h);
    assert!(!t.is_resolved(), "a clone still lives");
    drop(h2);
    assert_eq!(
        t.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );
    assert!(d.closed_within(LONG));
}

#[test]
fn a_silent_connection_is_dropped_after_the_hello_timeout() {
    let config =
        HostConfig::new("tcp://127.0.0.1:0").with_hello_timeout(Duration::from_millis(300));
    let h = Host::start(config).unwrap();
    let silent = Fake::dial(&h);
    let (good, _) = Fake::join(&h);
    let started = Instant::now();
    assert!(silent.closed_within(LONG));
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "not before its time"
    );
    // A daemon that said hello is never subject to it.
    std::thread::sleep(Duration::from_millis(400));
    let t = h
        .submit(b"still".to_vec(), SubmitOptions::default())
        .unwrap();
    let sent = good.task();
    good.reply(&sent, false);
    assert_eq!(t.wait(Some(LONG)), value(b"still"));
    assert_eq!(h.status().counters.connections, 1);
}

#[test]
fn connections_beyond_the_pending_cap_are_dropped_at_once() {
    let config = HostConfig::new("tcp://127.0.0.1:0").with_max_pending(2);
    let h = Host::start(config).unwrap();
    let p1 = Fake::dial(&h);
    let p2 = Fake::dial(&h);
    // Let the host see both before the third arrives.
    std::thread::sleep(Duration::from_millis(100));
    let p3 = Fake::dial(&h);
    assert!(
        p3.closed_within(LONG),
        "the newest beyond the cap is dropped"
    );
    assert!(!p1.closed_within(Duration::from_millis(100)));
    // Once one of them says hello, there is room again.
    p1.send(&Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        pid: 1,
    }));
    assert!(matches!(p1.recv(), Frame::Init(_)));
    let (d, _) = Fake::join(&h);
    let t = h.submit(b"ok".to_vec(), SubmitOptions::default()).unwrap();
    // Either hello'd daemon may take it.
    let (who, sent) = match p1.try_recv(Duration::from_millis(500)) {
        Some(Frame::Task(s)) => (&p1, s),
        _ => (&d, d.task()),
    };
    who.reply(&sent, false);
    assert_eq!(t.wait(Some(LONG)), value(b"ok"));
    drop(p2);
}
