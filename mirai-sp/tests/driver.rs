//! The driver's endpoints, asynchronous operations and pipe events, between our own sockets.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mirai_sp::driver::PipeEvent;
use mirai_sp::{Protocol, Socket};

const WAIT: Duration = Duration::from_secs(5);

fn pair_over_tcp() -> (Socket, Socket) {
    let a = Socket::new(Protocol::Pair0).unwrap();
    let b = Socket::new(Protocol::Pair0).unwrap();
    let url = a.listen("tcp://127.0.0.1:0").unwrap();
    b.dial(&url).unwrap();
    a.wait_pipes(1, WAIT).unwrap();
    (a, b)
}

#[test]
fn endpoints_start_later_and_close_alone() {
    let a = Socket::new(Protocol::Pair0).unwrap();
    let l = a.listener("tcp://127.0.0.1:0").unwrap();
    assert!(!l.is_started());
    let url = l.start().unwrap();
    assert!(l.is_started());
    assert_eq!(url, format!("tcp://127.0.0.1:{}", l.bound_port().unwrap()));
    assert_eq!(l.start().unwrap_err().code(), 11);
    let b = Socket::new(Protocol::Pair0).unwrap();
    let d = b.dialer(&url).unwrap();
    d.start(true).unwrap();
    assert_eq!(d.pipe_count(), 1);
    assert_eq!(d.stats().unwrap().connect, 1);
    assert_eq!(b.endpoint_counts(), (1, 0));
    d.close().unwrap();
    assert_eq!(d.close().unwrap_err().code(), 12);
    assert_eq!(d.start(false).unwrap_err().code(), 12);
    let t = Instant::now();
    while !b.pipes().is_empty() && t.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(b.pipes().is_empty());
    l.close().unwrap();
    // A closed listener's port is free again and nobody answers there.
    assert_eq!(b.dial(&url).unwrap_err().code(), 6);
    a.close().unwrap();
    assert_eq!(l.close().unwrap_err().code(), 12);
    assert_eq!(a.dialer(&url).unwrap_err().code(), 7);
}

#[test]
fn sync_dial_refused_leaves_no_dialer() {
    let s = Socket::new(Protocol::Req0).unwrap();
    assert_eq!(s.dial("tcp://127.0.0.1:1").unwrap_err().code(), 6);
    assert_eq!(s.endpoint_counts(), (0, 0));
    s.dial_async("tcp://127.0.0.1:1").unwrap();
    assert_eq!(s.endpoint_counts(), (1, 0));
}

#[test]
fn async_receives_in_order_with_timeouts_and_cancel() {
    let (a, b) = pair_over_tcp();
    let (tx, rx) = mpsc::channel();
    let t1 = tx.clone();
    let first = a.recv_async(None, Box::new(move |r| t1.send((1, r)).unwrap()));
    let t2 = tx.clone();
    a.recv_async(None, Box::new(move |r| t2.send((2, r)).unwrap()));
    b.send(b"one", Some(WAIT)).unwrap();
    b.send(b"two", Some(WAIT)).unwrap();
    let (n, r) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((n, r.unwrap().body().to_vec()), (1, b"one".to_vec()));
    let (n, r) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((n, r.unwrap().body().to_vec()), (2, b"two".to_vec()));
    assert!(!a.cancel(first));
    let t3 = tx.clone();
    let t = Instant::now();
    a.recv_async(
        Some(Duration::from_millis(50)),
        Box::new(move |r| t3.send((3, r)).unwrap()),
    );
    let (n, r) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((n, r.unwrap_err().code()), (3, 5));
    assert!(t.elapsed() >= Duration::from_millis(50));
    let t4 = tx.clone();
    let op = a.recv_async(None, Box::new(move |r| t4.send((4, r)).unwrap()));
    assert!(a.cancel(op));
    let t5 = tx.clone();
    a.recv_async(None, Box::new(move |r| t5.send((5, r)).unwrap()));
    let t6 = tx.clone();
    a.send_async(
        b"back".to_vec(),
        None,
        None,
        Box::new(move |r| {
            t6.send((
                6,
                r.map(|()| mirai_sp::sm::Received::new(mirai_sp::sm::PipeId(0), Vec::new())),
            ))
            .unwrap()
        }),
    );
    let (n, r) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((n, r.is_ok()), (6, true));
    assert_eq!(b.recv(Some(WAIT)).unwrap(), b"back");
    a.close().unwrap();
    let (n, r) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((n, r.unwrap_err().code()), (5, 7));
    assert!(rx.try_recv().is_err());
}

#[test]
fn pipe_events_are_observed() {
    let a = Socket::new(Protocol::Bus0).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    a.set_pipe_observer(Some(Arc::new(move |e| s2.lock().unwrap().push(e))));
    let url = a.listen("tcp://127.0.0.1:0").unwrap();
    let b = Socket::new(Protocol::Bus0).unwrap();
    b.dial(&url).unwrap();
    a.wait_pipes(1, WAIT).unwrap();
    let id = a.pipes()[0];
    b.close().unwrap();
    let t = Instant::now();
    while seen.lock().unwrap().len() < 2 && t.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [PipeEvent::Added(id), PipeEvent::Removed(id)]
    );
}
