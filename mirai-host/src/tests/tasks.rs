//! Tasks from submission to resolution: frames, cancels, time-outs, maps, everywhere rounds, the memory gate, exits.

use super::*;

#[test]
fn task_round_trip_and_counters() {
    let h = host();
    let (d, init) = Fake::join(&h);
    assert_eq!(
        init,
        Init {
            stream: None,
            serial: vec![]
        }
    );
    assert!(h.wait_connections(1, LONG));
    let t = h.submit(b"abc".to_vec(), SubmitOptions::default()).unwrap();
    let sent = d.task();
    assert_eq!(
        (sent.id, sent.flags, sent.payload.as_slice()),
        (t.id(), 0, &b"abc"[..])
    );
    assert!(!t.is_resolved());
    d.reply(&sent, false);
    assert_eq!(t.wait(Some(LONG)), value(b"abc"));
    assert!(t.is_resolved());
    assert_eq!(
        t.wait(Some(Duration::ZERO)),
        None,
        "the outcome is taken once"
    );
    let c = h.status().counters;
    assert_eq!(
        (
            c.connections,
            c.cumulative,
            c.awaiting,
            c.executing,
            c.completed
        ),
        (1, 1, 0, 0, 1)
    );
    assert_eq!(h.completions(), 1);
}

#[test]
fn mode_is_as_configured() {
    assert_eq!(host().mode(), Mode::Dispatcher);
    let c = HostConfig::new("tcp://127.0.0.1:0").with_mode(Mode::Direct);
    assert_eq!(Host::start(c).expect("host starts").mode(), Mode::Direct);
}

#[test]
fn a_task_body_sends_the_bytes_encode_gives() {
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    for (flags, trace, payload) in [
        (0u8, None, Vec::new()),
        (flags::EVERYWHERE, None, b"abc".to_vec()),
        (255, Some(tp), vec![9u8; 70_000]),
        (3, Some(""), vec![1u8; 24]),
    ] {
        let body = TaskBody::new(flags, trace, &payload);
        assert_eq!(
            (body.flags(), body.trace(), body.payload()),
            (flags, trace, &payload[..])
        );
        let head = if trace.is_some() { 10 } else { 2 };
        assert_eq!(
            body.0.len(),
            head + trace.map_or(0, str::len) + payload.len(),
            "one exact-size allocation"
        );
        for id in [1, 300, u64::MAX] {
            let parts = mirai_proto::task_frame_parts(
                TaskId(id),
                body.flags(),
                body.payload().len(),
                body.trace(),
            );
            let want = mirai_proto::encode(&Frame::Task(Task {
                id: TaskId(id),
                flags,
                payload: payload.clone(),
                trace: trace.map(String::from),
            }));
            assert_eq!(parts.slices(body.payload()).concat(), want);
        }
    }
}

#[test]
fn frames_sent_from_task_bodies_decode_to_the_task_submitted() {
    let h = host();
    let (d, _) = Fake::join(&h);
    assert!(h.wait_connections(1, LONG));
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string();
    let big: Vec<u8> = (0..(1usize << 20)).map(|i| (i * 7) as u8).collect();
    let t = h
        .submit(
            big.clone(),
            SubmitOptions {
                trace: Some(tp.clone()),
                ..SubmitOptions::default()
            },
        )
        .unwrap();
    let sent = d.task();
    assert_eq!((sent.id, sent.flags), (t.id(), 0));
    assert!(sent.payload == big, "1 MiB payload intact");
    assert_eq!(
        sent.trace.as_deref(),
        Some(tp.as_str()),
        "a verbatim traceparent travels"
    );
    d.reply(&sent, false);
    assert!(matches!(t.wait(Some(LONG)), Some(Outcome::Value { .. })));
}

#[test]
fn task_ids_increase_across_hosts() {
    let (a, b) = (host(), host());
    let x = a.submit(vec![], SubmitOptions::default()).unwrap();
    let y = b.submit(vec![], SubmitOptions::default()).unwrap();
    let z = a.submit(vec![], SubmitOptions::default()).unwrap();
    assert!(x.id() < y.id() && y.id() < z.id());
}

#[test]
fn init_carries_the_kth_stream_and_the_serial_config() {
    let base = rng::seed_stream(42);
    let cfg = HostConfig::new("tcp://127.0.0.1:0")
        .with_stream(Some(base))
        .with_serial(vec![1, 2, 3]);
    let h = Host::start(cfg).unwrap();
    let (_d1, i1) = Fake::join(&h);
    let (_d2, i2) = Fake::join(&h);
    assert_eq!(i1.stream, Some(rng::next_stream(base)));
    assert_eq!(i2.stream, Some(rng::next_stream(rng::next_stream(base))));
    assert_eq!(i1.serial, vec![1, 2, 3]);
}

#[test]
fn queued_task_cancelled_is_never_sent() {
    let h = host();
    let t = h
        .submit(b"never".to_vec(), SubmitOptions::default())
        .unwrap();
    assert_eq!(h.status().counters.awaiting, 1);
    assert!(h.cancel(&t));
    assert_eq!(
        t.wait(Some(Duration::ZERO)),
        Some(Outcome::Error(ErrorCode::CANCELED))
    );
    assert!(!h.cancel(&t), "a second cancel finds nothing");
    let (d, _) = Fake::join(&h);
    assert_eq!(
        d.try_recv(Duration::from_millis(300)),
        None,
        "the cancelled task was not sent"
    );
    let c = h.status().counters;
    assert_eq!((c.awaiting, c.executing, c.completed), (0, 0, 1));
}

#[test]
fn executing_task_cancel_signals_the_daemon_and_discards_its_reply() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let t = h
        .submit(b"slow".to_vec(), SubmitOptions::default())
        .unwrap();
    let sent = d.task();
    assert!(h.cancel(&t));
    assert_eq!(
        t.wait(Some(Duration::ZERO)),
        Some(Outcome::Error(ErrorCode::CANCELED))
    );
    assert_eq!(d.recv(), Frame::Cancel { id: sent.id });
    // The daemon stays busy until it answers; the next task waits for that.
    let next = h
        .submit(b"next".to_vec(), SubmitOptions::default())
        .unwrap();
    assert_eq!(h.status().counters.executing, 1);
    d.send(&Frame::Result(TaskResult {
        id: sent.id,
        status: Status::Interrupted,
        last: false,
        payload: vec![],
    }));
    let n = d.task();
    assert_eq!(n.payload, b"next");
    d.reply(&n, false);
    assert_eq!(next.wait(Some(LONG)), value(b"next"));
}

#[test]
fn timeout_resolves_with_5() {
    let h = host();
    let opts = SubmitOptions {
        timeout: Some(Duration::from_millis(50)),
        trace: None,
        ..SubmitOptions::default()
    };
    let t = h.submit(b"late".to_vec(), opts).unwrap();
    assert_eq!(
        t.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::TIMED_OUT))
    );
    assert_eq!(h.status().counters.awaiting, 0);
}

#[test]
fn everywhere_reaches_each_daemon_once() {
    let h = host();
    let (d1, _) = Fake::join(&h);
    let (d2, _) = Fake::join(&h);
    assert!(h.wait_connections(2, LONG));
    let round = h.everywhere(b"setup".to_vec(), 1).unwrap();
    assert_eq!(round.len(), 2);
    let after = h
        .submit(b"after".to_vec(), SubmitOptions::default())
        .unwrap();
    let (t1, t2) = (d1.task(), d2.task());
    assert_eq!(t1.flags & flags::EVERYWHERE, flags::EVERYWHERE);
    assert_eq!(t2.flags & flags::EVERYWHERE, flags::EVERYWHERE);
    assert_ne!(t1.id, t2.id);
    d1.reply(&t1, false);
    d2.reply(&t2, false);
    for r in &round {
        assert_eq!(r.wait(Some(LONG)), value(b"setup"));
    }
    // The plain task goes to whichever daemon is idle first: both are.
    let got = [
        d1.try_recv(Duration::from_millis(500)),
        d2.try_recv(Duration::from_millis(500)),
    ];
    let tasks: Vec<&Frame> = got.iter().flatten().collect();
    assert_eq!(tasks.len(), 1);
    if let Frame::Task(t) = tasks[0] {
        assert_eq!(t.id, after.id());
        assert_eq!(t.flags, 0);
    } else {
        panic!("expected a task");
    }
}

#[test]
fn everywhere_min_exceeds_connections() {
    let h = host();
    let round = h.everywhere(b"s".to_vec(), 2).unwrap();
    assert_eq!(round.len(), 2);
    assert!(round[0].id() < round[1].id());
    assert!(
        h.everywhere(b"s".to_vec(), 0).unwrap().is_empty(),
        "min 0 with nobody connected"
    );
}

#[test]
fn map_submits_in_order() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let hs = h.map((0..5u8).map(|i| vec![i])).unwrap();
    for (i, handle) in hs.iter().enumerate() {
        let t = d.task();
        assert_eq!(t.id, handle.id());
        assert_eq!(t.payload, vec![i as u8]);
        d.reply(&t, false);
    }
    let outs = futures::executor::block_on(futures::future::join_all(hs));
    assert_eq!(
        outs,
        (0..5u8).map(|i| value(&[i]).unwrap()).collect::<Vec<_>>()
    );
}

#[test]
fn memory_gate_waits_for_bytes_to_leave_the_queue() {
    let cfg = HostConfig::new("tcp://127.0.0.1:0").with_memory_limit(Some(10));
    let h = Host::start(cfg).unwrap();
    assert!(h.admit());
    let big = h.submit(vec![0; 20], SubmitOptions::default()).unwrap();
    assert!(!h.admit());
    assert!(!h.wait_admit(Duration::from_millis(20)));
    assert_eq!(h.status().memory.used, 20);
    let h2 = h.clone();
    let waiter = std::thread::spawn(move || h2.wait_admit(LONG));
    std::thread::sleep(Duration::from_millis(50));
    assert!(h.cancel(&big));
    assert!(waiter.join().unwrap());
    assert_eq!(h.status().memory.used, 0);
    assert_eq!(h.status().memory.peak, 20);
}

#[test]
fn completions_wake_waiters() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let seen = h.completions();
    let t = h.submit(b"c".to_vec(), SubmitOptions::default()).unwrap();
    let h2 = h.clone();
    let waiter = std::thread::spawn(move || h2.wait_completion(seen, LONG));
    let sent = d.task();
    d.reply(&sent, false);
    assert_eq!(waiter.join().unwrap(), seen + 1);
    assert!(t.is_resolved());
    assert_eq!(
        h.wait_completion(seen + 1, Duration::from_millis(10)),
        seen + 1
    );
}

#[test]
fn last_result_is_acknowledged_and_removes_the_daemon() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let t = h
        .submit(b"only".to_vec(), SubmitOptions::default())
        .unwrap();
    let q = h
        .submit(b"queued".to_vec(), SubmitOptions::default())
        .unwrap();
    let sent = d.task();
    d.reply(&sent, true);
    assert_eq!(d.recv(), Frame::Ack);
    assert_eq!(t.wait(Some(LONG)), value(b"only"));
    assert_eq!(
        d.try_recv(Duration::from_millis(200)),
        None,
        "nothing more after the ack"
    );
    assert!(!q.is_resolved());
    let (d2, _) = Fake::join(&h);
    let s2 = d2.task();
    d2.reply(&s2, false);
    assert_eq!(q.wait(Some(LONG)), value(b"queued"));
}

#[test]
fn exit_daemons_sends_exit_to_each() {
    let h = host();
    let (d1, _) = Fake::join(&h);
    let (d2, _) = Fake::join(&h);
    assert!(h.wait_connections(2, LONG));
    h.exit_daemons();
    assert_eq!(d1.recv(), Frame::Exit);
    assert_eq!(d2.recv(), Frame::Exit);
}
