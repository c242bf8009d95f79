//! Unit tests of the host runtime, driving hand-written daemons over real connections so that
//! every frame the host sends can be checked.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mirai_proto::{flags, Frame, Init, PROTOCOL_VERSION};
use mirai_trace::Span;

use crate::body::TaskBody;
use crate::deferred::Deferred;
use crate::handle::{run_callback, Slot};
use crate::supervise::{backoff, crashed};
use crate::sync::lock;
use crate::*;
use mirai_proto::{Hello, Task, TaskResult};
use mirai_transport::{Connection, Options};
use std::sync::atomic::AtomicUsize;

const LONG: Duration = Duration::from_secs(10);

fn host() -> Host {
    Host::start(HostConfig::new("tcp://127.0.0.1:0")).expect("host starts")
}

/// A daemon played by the test: every frame is sent and checked by hand.
struct Fake {
    conn: Connection,
}

impl Fake {
    fn dial(host: &Host) -> Fake {
        Fake {
            conn: Connection::dial(host.url(), &Options::default()).expect("dial"),
        }
    }

    /// Dials, says hello and returns the init bundle.
    fn join(host: &Host) -> (Fake, Init) {
        let f = Fake::dial(host);
        f.send(&Frame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            pid: 4242,
        }));
        match f.recv() {
            Frame::Init(i) => (f, i),
            other => panic!("expected init, got {other:?}"),
        }
    }

    fn send(&self, f: &Frame) {
        self.conn.send(&mirai_proto::encode(f)).expect("send");
    }

    fn recv(&self) -> Frame {
        self.try_recv(LONG).expect("a frame within the timeout")
    }

    fn try_recv(&self, t: Duration) -> Option<Frame> {
        let bytes = self.conn.recv(Some(t)).expect("connection open")?;
        Some(mirai_proto::decode(&bytes, usize::MAX).expect("host frames decode"))
    }

    fn task(&self) -> Task {
        match self.recv() {
            Frame::Task(t) => t,
            other => panic!("expected task, got {other:?}"),
        }
    }

    fn reply(&self, t: &Task, last: bool) {
        let r = TaskResult {
            id: t.id,
            status: Status::Ok,
            last,
            payload: t.payload.clone(),
        };
        self.send(&Frame::Result(r));
    }

    /// True once the host has closed this connection.
    fn closed_within(&self, t: Duration) -> bool {
        let end = Instant::now() + t;
        while Instant::now() < end {
            if self.conn.recv(Some(Duration::from_millis(50))).is_err() {
                return true;
            }
        }
        false
    }
}

fn value(payload: &[u8]) -> Option<Outcome> {
    Some(Outcome::Value {
        status: Status::Ok,
        payload: payload.to_vec(),
    })
}

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
    let mut c = HostConfig::new("tcp://127.0.0.1:0");
    c.mode = Mode::Direct;
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
            let parts =
                mirai_proto::task_frame_parts(id, body.flags(), body.payload().len(), body.trace());
            let want = mirai_proto::encode(&Frame::Task(Task {
                id,
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
    let mut cfg = HostConfig::new("tcp://127.0.0.1:0");
    cfg.stream = Some(base);
    cfg.serial = vec![1, 2, 3];
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
        Some(Outcome::Error(ErrorCode::Canceled))
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
        Some(Outcome::Error(ErrorCode::Canceled))
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
        Some(Outcome::Error(ErrorCode::TimedOut))
    );
    assert_eq!(h.status().counters.awaiting, 0);
}

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
        id: 1,
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
        id: 1,
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
        Some(Outcome::Error(ErrorCode::ConnectionReset))
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
        Some(Outcome::Error(ErrorCode::ConnectionReset))
    );
    assert_eq!(
        queued.wait(Some(Duration::ZERO)),
        Some(Outcome::Error(ErrorCode::ConnectionReset))
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
        Some(Outcome::Error(ErrorCode::ConnectionReset))
    );
    assert!(d.closed_within(LONG));
}

#[test]
fn futures_and_callbacks_fire_once() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let fired = Arc::new(AtomicUsize::new(0));
    let t = h.submit(b"f".to_vec(), SubmitOptions::default()).unwrap();
    let f1 = fired.clone();
    t.on_complete(Box::new(move || {
        f1.fetch_add(1, Ordering::SeqCst);
    }));
    let sent = d.task();
    d.reply(&sent, false);
    let out = futures::executor::block_on(t);
    assert_eq!(Some(out), value(b"f"));
    // The dispatcher runs the callback right after the waker, before it handles the next
    // reply: by the time t2 resolves it has run.
    let t2 = h.submit(b"g".to_vec(), SubmitOptions::default()).unwrap();
    let sent = d.task();
    d.reply(&sent, false);
    assert_eq!(t2.wait(Some(LONG)), value(b"g"));
    let f2 = fired.clone();
    t2.on_complete(Box::new(move || {
        f2.fetch_add(10, Ordering::SeqCst);
    }));
    assert_eq!(fired.load(Ordering::SeqCst), 11);
}

/// A waker that counts its wakes.
struct CountWake(AtomicUsize);

impl std::task::Wake for CountWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A handle on a bare slot (no host), to check the slot's own bookkeeping.
fn bare_handle() -> TaskHandle {
    TaskHandle {
        id: 1,
        slot: Slot::new(Span::none()),
        host: Weak::new(),
    }
}

fn run_deferred(d: Deferred) -> usize {
    let n = d.wakers.len() + d.callbacks.len();
    for w in d.wakers {
        w.wake();
    }
    for f in d.callbacks {
        run_callback(f);
    }
    n
}

#[test]
fn slot_extras_are_boxed_only_when_used_and_freed_at_resolution() {
    let t = bare_handle();
    assert!(
        lock(&t.slot.inner).extra.is_none(),
        "a plain task pays no extras"
    );
    // A non-recording span is not kept either.
    assert!(lock(&Slot::new(Span::none()).inner).extra.is_none());
    t.on_complete(Box::new(|| {}));
    assert!(lock(&t.slot.inner).extra.is_some());
    let mut d = Deferred::default();
    assert!(t.slot.complete(Outcome::Error(ErrorCode::Canceled), &mut d));
    assert!(
        lock(&t.slot.inner).extra.is_none(),
        "extras go at resolution"
    );
    assert_eq!(run_deferred(d), 1);
}

#[test]
fn slot_callbacks_and_wakers_fire_once_before_or_after_resolution() {
    let fired = Arc::new(AtomicUsize::new(0));
    let woken = Arc::new(CountWake(AtomicUsize::new(0)));
    let waker = std::task::Waker::from(woken.clone());
    let mut t = bare_handle();
    // Registered before resolution: a waker (by a poll) and two callbacks.
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut t).poll(&mut cx).is_pending());
    assert!(
        Pin::new(&mut t).poll(&mut cx).is_pending(),
        "same waker: kept once"
    );
    for k in [1, 10] {
        let f = fired.clone();
        t.on_complete(Box::new(move || {
            f.fetch_add(k, Ordering::SeqCst);
        }));
    }
    assert_eq!(fired.load(Ordering::SeqCst), 0);
    let mut d = Deferred::default();
    assert!(t.slot.complete(value(b"v").unwrap(), &mut d));
    assert_eq!(run_deferred(d), 3);
    assert_eq!(fired.load(Ordering::SeqCst), 11);
    assert_eq!(woken.0.load(Ordering::SeqCst), 1);
    // A second resolution is refused and fires nothing.
    let mut d = Deferred::default();
    assert!(!t.slot.complete(Outcome::Error(ErrorCode::Canceled), &mut d));
    assert_eq!(run_deferred(d), 0);
    // Registered after resolution: runs at once, once.
    let f = fired.clone();
    t.on_complete(Box::new(move || {
        f.fetch_add(100, Ordering::SeqCst);
    }));
    assert_eq!(fired.load(Ordering::SeqCst), 111);
    assert!(
        lock(&t.slot.inner).extra.is_none(),
        "nothing boxed after resolution"
    );
    assert_eq!(
        Pin::new(&mut t).poll(&mut cx),
        Poll::Ready(value(b"v").unwrap())
    );
    assert_eq!(woken.0.load(Ordering::SeqCst), 1);
    assert_eq!(fired.load(Ordering::SeqCst), 111);
}

#[test]
fn a_callback_may_drop_the_last_host_clone() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let t = h.submit(b"x".to_vec(), SubmitOptions::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let h2 = h.clone();
    t.on_complete(Box::new(move || {
        drop(h2);
        let _ = tx.send(());
    }));
    drop(h);
    let sent = d.task();
    d.reply(&sent, false);
    rx.recv_timeout(LONG).expect("callback ran");
    assert!(
        d.closed_within(LONG),
        "the host reset from its own dispatcher thread"
    );
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
    let mut cfg = HostConfig::new("tcp://127.0.0.1:0");
    cfg.memory_limit = Some(10);
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

#[test]
fn launch_spawns_and_reaps() {
    let h = host();
    let dir = std::env::temp_dir().join(format!("mirai-host-launch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cmd = launch::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("touch {}/$$", dir.display()));
    h.launch(&cmd, 3).unwrap();
    let end = Instant::now() + LONG;
    while std::fs::read_dir(&dir).unwrap().count() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
    // Reaped within the dispatcher's reap period.
    while !h.launched_pids().is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(h.launched_pids().is_empty());
    let missing = launch::Command::new("/nonexistent/mirai-daemon");
    assert!(matches!(
        h.launch(&missing, 1),
        Err(HostError::Launch { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A daemon thread that echoes every task until the host closes the connection.
fn echo_thread(host: &Host) -> std::thread::JoinHandle<usize> {
    let (d, _) = Fake::join(host);
    std::thread::spawn(move || {
        let mut served = 0;
        loop {
            match d.conn.recv(Some(LONG)) {
                Ok(Some(bytes)) => {
                    if let Ok(Frame::Task(t)) = mirai_proto::decode(&bytes, usize::MAX) {
                        d.reply(&t, false);
                        served += 1;
                    }
                }
                Ok(None) | Err(_) => return served,
            }
        }
    })
}

#[test]
fn many_threads_wait_at_once() {
    let h = host();
    let daemons: Vec<_> = (0..2).map(|_| echo_thread(&h)).collect();
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..300u32 {
                    let p = format!("{k}-{i}").into_bytes();
                    let t = h.submit(p.clone(), SubmitOptions::default()).unwrap();
                    assert_eq!(t.wait(Some(LONG)), value(&p));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(h.status().counters.completed, 1200);
    h.reset();
    let served: usize = daemons.into_iter().map(|d| d.join().unwrap()).sum();
    assert_eq!(served, 1200);
}

#[test]
fn after_a_timed_out_wait_the_dispatcher_resolves_in_the_background() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let t = h
        .submit(b"later".to_vec(), SubmitOptions::default())
        .unwrap();
    let sent = d.task();
    // This thread drives the listener for a while, and gives up.
    assert_eq!(t.wait(Some(Duration::from_millis(30))), None);
    let (tx, rx) = std::sync::mpsc::channel();
    t.on_complete(Box::new(move || {
        let _ = tx.send(std::thread::current().name().map(str::to_string));
    }));
    d.reply(&sent, false);
    let thread = rx.recv_timeout(LONG).expect("resolved with nobody waiting");
    assert_eq!(thread.as_deref(), Some("mirai-dispatcher"));
    assert_eq!(t.try_take(), value(b"later"));
}

#[test]
fn a_waiting_thread_receives_the_reply_itself() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let t = h
        .submit(b"mine".to_vec(), SubmitOptions::default())
        .unwrap();
    let sent = d.task();
    let me = std::thread::current().id();
    let (tx, rx) = std::sync::mpsc::channel();
    t.on_complete(Box::new(move || {
        let _ = tx.send(std::thread::current().id());
    }));
    let replier = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        d.reply(&sent, false);
        d
    });
    assert_eq!(t.wait(Some(LONG)), value(b"mine"));
    assert_eq!(
        rx.recv_timeout(LONG).unwrap(),
        me,
        "the waiting thread handled the reply"
    );
    drop(replier.join().unwrap());
}

#[test]
fn wait_completion_drives_and_times_out() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let seen = h.completions();
    assert_eq!(h.wait_completion(seen, Duration::from_millis(20)), seen);
    let t = h.submit(b"c".to_vec(), SubmitOptions::default()).unwrap();
    let sent = d.task();
    d.reply(&sent, false);
    assert_eq!(h.wait_completion(seen, LONG), seen + 1);
    assert!(t.is_resolved());
}

#[test]
fn a_callback_may_wait_for_another_task() {
    let h = host();
    let (d, _) = Fake::join(&h);
    let first = h.submit(b"1".to_vec(), SubmitOptions::default()).unwrap();
    let second = h.submit(b"2".to_vec(), SubmitOptions::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    first.on_complete(Box::new(move || {
        // Runs on the thread that polls; that thread must go on polling for `second`.
        let _ = tx.send((
            std::thread::current().name().map(str::to_string),
            second.wait(Some(LONG)),
        ));
    }));
    let replier = std::thread::spawn(move || {
        let a = d.task();
        d.reply(&a, false);
        let b = d.task();
        std::thread::sleep(Duration::from_millis(50));
        d.reply(&b, false);
        d
    });
    let (thread, outcome) = rx.recv_timeout(LONG).expect("the callback finished");
    assert_eq!(thread.as_deref(), Some("mirai-dispatcher"));
    assert_eq!(outcome, value(b"2"));
    drop(replier.join().unwrap());
}

// ---------------------------------------------------------------------------------------------
// Reliability: retries, pool repair, hello timeout, pending cap

fn opts_retries(n: Option<u32>) -> SubmitOptions {
    SubmitOptions {
        retries: n,
        ..SubmitOptions::default()
    }
}

#[test]
fn a_task_with_retries_survives_the_loss_of_its_daemon() {
    let h = host();
    let (a, _) = Fake::join(&h);
    let t = h.submit(b"work".to_vec(), opts_retries(Some(2))).unwrap();
    let later = h
        .submit(b"later".to_vec(), SubmitOptions::default())
        .unwrap();
    let first = a.task();
    assert_eq!(t.attempts(), 1);
    assert_eq!(later.attempts(), 0, "queued");
    a.conn.close();
    drop(a);
    // Not failed: it waits at the head of the queue, ahead of `later`.
    assert!(t.wait(Some(Duration::from_millis(200))).is_none());
    let c = h.status().counters;
    assert_eq!((c.awaiting, c.executing, c.completed), (2, 0, 0));
    let (b, _) = Fake::join(&h);
    let again = b.task();
    assert_eq!(
        (again.id, &again.payload),
        (first.id, &first.payload),
        "the same task, sent again"
    );
    assert_eq!(t.attempts(), 2);
    b.reply(&again, false);
    assert_eq!(t.wait(Some(LONG)), value(b"work"));
    let next = b.task();
    assert_eq!(next.payload, b"later");
    b.reply(&next, false);
    assert_eq!(later.wait(Some(LONG)), value(b"later"));
    assert_eq!((t.attempts(), later.attempts()), (2, 1));
}

#[test]
fn retries_run_out_and_then_the_task_fails_with_19() {
    let h = host();
    let t = h.submit(b"doomed".to_vec(), opts_retries(Some(1))).unwrap();
    for _ in 0..2 {
        let (d, _) = Fake::join(&h);
        let _ = d.task();
        d.conn.close();
    }
    assert_eq!(
        t.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::ConnectionReset))
    );
    assert_eq!(t.attempts(), 2);
    assert_eq!(h.status().counters.completed, 1);
}

#[test]
fn the_profile_default_applies_unless_the_task_says_otherwise() {
    let mut config = HostConfig::new("tcp://127.0.0.1:0");
    config.retries = 1;
    let h = Host::start(config).unwrap();
    let (a, _) = Fake::join(&h);
    let (b, _) = Fake::join(&h);
    let inherits = h.submit(b"x".to_vec(), SubmitOptions::default()).unwrap();
    let opts_out = h.submit(b"y".to_vec(), opts_retries(Some(0))).unwrap();
    let (ta, tb) = (a.task(), b.task());
    // Which daemon got which task does not matter: both are lost.
    a.conn.close();
    b.conn.close();
    assert_eq!(
        opts_out.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::ConnectionReset))
    );
    assert!(!inherits.is_resolved());
    let (c, _) = Fake::join(&h);
    let t = c.task();
    assert!(t.id == ta.id || t.id == tb.id);
    assert_eq!(t.payload, b"x");
    c.reply(&t, false);
    assert_eq!(inherits.wait(Some(LONG)), value(b"x"));
    // `map` takes the profile default too; `everywhere` never retries.
    let m = h.map([b"m".to_vec()]).unwrap();
    let e = h.everywhere(b"e".to_vec(), 1).unwrap();
    let _ = c.task();
    c.conn.close();
    let (d, _) = Fake::join(&h);
    let again = d.task();
    assert_eq!(again.payload, b"m");
    assert_eq!(m[0].attempts(), 2);
    d.reply(&again, false);
    assert_eq!(m[0].wait(Some(LONG)), value(b"m"));
    let round = d.task();
    assert_eq!(round.payload, b"e");
    d.conn.close();
    assert_eq!(
        e[0].wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::ConnectionReset))
    );
}

#[test]
fn a_cancelled_task_is_not_retried() {
    let h = host();
    let (a, _) = Fake::join(&h);
    let t = h.submit(b"c".to_vec(), opts_retries(Some(3))).unwrap();
    let _ = a.task();
    assert!(h.cancel(&t));
    assert_eq!(a.recv(), Frame::Cancel { id: t.id() });
    a.conn.close();
    let (b, _) = Fake::join(&h);
    assert!(
        b.try_recv(Duration::from_millis(200)).is_none(),
        "nothing resent"
    );
    assert_eq!(
        t.wait(Some(Duration::ZERO)),
        Some(Outcome::Error(ErrorCode::Canceled))
    );
}

#[test]
fn a_silent_connection_is_dropped_after_the_hello_timeout() {
    let mut config = HostConfig::new("tcp://127.0.0.1:0");
    config.hello_timeout = Duration::from_millis(300);
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
    let mut config = HostConfig::new("tcp://127.0.0.1:0");
    config.max_pending = 2;
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

/// A repair policy that acts fast, for tests.
fn quick_repair(max_per_minute: u32) -> RepairPolicy {
    RepairPolicy {
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        stable: Duration::from_secs(60),
        max_per_minute,
    }
}

#[test]
fn repair_relaunches_crashes_only_and_caps_the_rate() {
    let mut config = HostConfig::new("tcp://127.0.0.1:0");
    config.repair = Some(quick_repair(3));
    let h = Host::start(config).unwrap();
    let dir = std::env::temp_dir().join(format!("mirai-host-repair-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Planned exits: 0 and the limit codes are not crashes.
    for code in [0, 1, 2, 3] {
        let cmd = launch::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("touch {}/planned-$$; exit {code}", dir.display()));
        h.launch(&cmd, 1).unwrap();
    }
    // A crash loop: exit code 9 at once, every time.
    let crash = launch::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("touch {}/crash-$$; exit 9", dir.display()));
    h.launch(&crash, 1).unwrap();
    let count = |prefix: &str| {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(prefix)
            })
            .count()
    };
    let end = Instant::now() + LONG;
    while h.relaunches() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(h.relaunches(), 3);
    // The cap holds: no fourth relaunch within the minute.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(h.relaunches(), 3);
    assert_eq!(count("planned-"), 4, "planned exits are not relaunched");
    assert!(
        eventually(|| count("crash-") == 4),
        "the first launch and three relaunches ran"
    );
    h.reset();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repair_follows_a_killed_daemon_even_while_a_thread_waits() {
    let mut config = HostConfig::new("tcp://127.0.0.1:0");
    config.repair = Some(quick_repair(10));
    let h = Host::start(config).unwrap();
    h.launch(&launch::Command::new("/bin/sleep").arg("600"), 2)
        .unwrap();
    let pids = h.launched_pids();
    assert_eq!(pids.len(), 2);
    // A thread blocked in a wait holds the poll role meanwhile.
    let blocker = h
        .submit(b"never answered".to_vec(), SubmitOptions::default())
        .unwrap();
    let waiter = std::thread::spawn(move || blocker.wait(Some(Duration::from_secs(3))));
    std::thread::sleep(Duration::from_millis(50));
    assert!(sigkill(pids[0]), "killing daemon pid {}", pids[0]);
    assert!(eventually(|| h.relaunches() == 1));
    assert!(eventually(|| {
        let now = h.launched_pids();
        now.len() == 2 && !now.contains(&pids[0]) && now.contains(&pids[1])
    }));
    assert!(
        waiter.join().unwrap().is_none(),
        "the wait was not disturbed"
    );
    // `sleep` is no daemon: it does not leave with the host, so end it here.
    let left = h.launched_pids();
    h.reset();
    for p in left {
        sigkill(p);
    }
}

/// Sends SIGKILL to a process this test started, with the `kill` utility (safe code: no
/// `libc` in this crate). True if it was sent.
fn sigkill(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Linux's numbers of the signals these tests name (`signal(7)`).
const SIGKILL: i32 = 9;
const SIGSEGV: i32 = 11;

fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + LONG;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let p = RepairPolicy {
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        ..RepairPolicy::default()
    };
    let got: Vec<_> = (1..=6).map(|n| backoff(&p, n).as_millis()).collect();
    assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
    assert_eq!(backoff(&p, u32::MAX), Duration::from_secs(1));
}

#[test]
fn only_signals_and_unplanned_codes_are_crashes() {
    use std::os::unix::process::ExitStatusExt;
    for code in 0..=3 {
        assert!(!crashed(ExitStatus::from_raw(code << 8)), "exit {code}");
    }
    for code in [4, 9, 64, 66, 255] {
        assert!(crashed(ExitStatus::from_raw(code << 8)), "exit {code}");
    }
    assert!(crashed(ExitStatus::from_raw(SIGKILL)));
    assert!(crashed(ExitStatus::from_raw(SIGSEGV)));
}

#[test]
fn a_queued_task_slot_stays_small() {
    // Every unresolved task has one (design.md: host memory per unresolved mirai): with the
    // Arc's counts it must fit a 64-byte allocation.
    assert!(
        std::mem::size_of::<Slot>() <= 40,
        "Slot is {} bytes",
        std::mem::size_of::<Slot>()
    );
}
