//! Task handles: futures, callbacks, slots, and threads that wait (and take the poll role).

use super::*;

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
        id: TaskId(1),
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
    assert!(t.slot.complete(Outcome::Error(ErrorCode::CANCELED), &mut d));
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
    assert!(!t.slot.complete(Outcome::Error(ErrorCode::CANCELED), &mut d));
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
