//! The completion notifier: called once per resolved task, whatever the outcome, and only
//! once the task's handle shows it resolved.

use std::sync::mpsc;
use std::sync::Mutex;

use super::*;

/// A host whose notifier reports, for each call, whether the task watched then was resolved.
fn notified_host() -> (Host, mpsc::Receiver<bool>, Arc<Mutex<Option<TaskHandle>>>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let watched: Arc<Mutex<Option<TaskHandle>>> = Arc::new(Mutex::new(None));
    let w = Arc::clone(&watched);
    let mut c = HostConfig::new("tcp://127.0.0.1:0");
    c.on_complete = Some(CompletionNotifier::new(move || {
        let resolved = lock(&w).as_ref().is_none_or(TaskHandle::is_resolved);
        let _ = lock(&tx).send(resolved);
    }));
    (Host::start(c).expect("host starts"), rx, watched)
}

fn next(rx: &mpsc::Receiver<bool>) -> bool {
    rx.recv_timeout(LONG).expect("a notification")
}

fn quiet(rx: &mpsc::Receiver<bool>) -> bool {
    rx.recv_timeout(Duration::from_millis(100)).is_err()
}

#[test]
fn every_kind_of_completion_notifies_once() {
    let (h, rx, watched) = notified_host();
    let (d, _) = Fake::join(&h);
    assert!(h.wait_connections(1, LONG));
    assert!(quiet(&rx), "connections do not notify");

    // A reply, seen resolved by the time the notifier runs.
    let t = h.submit(b"ok".to_vec(), SubmitOptions::default()).unwrap();
    *lock(&watched) = Some(t);
    let sent = d.task();
    d.reply(&sent, false);
    assert!(next(&rx), "the handle is resolved before the notifier runs");
    assert!(quiet(&rx), "once per task");
    let t = lock(&watched).take().unwrap();
    assert_eq!(t.wait(Some(LONG)), value(b"ok"));

    // An evaluation error is a reply like any other.
    let t = h.submit(b"err".to_vec(), SubmitOptions::default()).unwrap();
    let sent = d.task();
    d.send(&Frame::Result(TaskResult {
        id: sent.id,
        status: Status::Error,
        last: false,
        payload: b"e".to_vec(),
    }));
    assert!(next(&rx));
    assert!(t.wait(Some(LONG)).is_some());

    // A timeout (5), from the dispatcher's deadline.
    let t = h
        .submit(
            b"slow".to_vec(),
            SubmitOptions::new().with_timeout(Some(Duration::from_millis(50))),
        )
        .unwrap();
    let sent = d.task();
    assert!(next(&rx));
    assert_eq!(
        t.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::TIMED_OUT))
    );
    assert_eq!(d.recv(), Frame::Cancel { id: t.id() });
    d.reply(&sent, false);
    assert!(quiet(&rx), "the late reply resolves nothing");

    // A cancel (20), on the cancelling thread.
    let t = h.submit(b"c".to_vec(), SubmitOptions::default()).unwrap();
    let sent = d.task();
    assert!(h.cancel(&t));
    assert!(next(&rx));
    assert!(!h.cancel(&t), "a second cancel resolves nothing");
    assert!(quiet(&rx));
    assert_eq!(
        t.wait(Some(Duration::ZERO)),
        Some(Outcome::Error(ErrorCode::CANCELED))
    );
    assert_eq!(d.recv(), Frame::Cancel { id: t.id() });
    d.reply(&sent, false);

    // A lost daemon (19).
    let t = h
        .submit(b"lost".to_vec(), SubmitOptions::default())
        .unwrap();
    let _ = d.task();
    d.conn.close();
    assert!(next(&rx));
    assert_eq!(
        t.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );

    // A reset resolves what is queued, each task notifying once.
    let queued: Vec<TaskHandle> = (0..3)
        .map(|_| h.submit(b"q".to_vec(), SubmitOptions::default()).unwrap())
        .collect();
    h.reset();
    for _ in &queued {
        assert!(next(&rx));
    }
    assert!(quiet(&rx));
    assert!(queued.iter().all(TaskHandle::is_resolved));
    assert_eq!(h.completions(), 8);
}

#[test]
fn a_panicking_notifier_is_contained() {
    let mut c = HostConfig::new("tcp://127.0.0.1:0");
    c.on_complete = Some(CompletionNotifier::new(|| panic!("notifier")));
    let h = Host::start(c).expect("host starts");
    let (d, _) = Fake::join(&h);
    let t = h.submit(b"x".to_vec(), SubmitOptions::default()).unwrap();
    let sent = d.task();
    d.reply(&sent, false);
    assert_eq!(t.wait(Some(LONG)), value(b"x"));
    let t2 = h.submit(b"y".to_vec(), SubmitOptions::default()).unwrap();
    let sent = d.task();
    d.reply(&sent, false);
    assert_eq!(t2.wait(Some(LONG)), value(b"y"), "the host still serves");
}
