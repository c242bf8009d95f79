//! The driver's asynchronous operations and endpoint handles against real NNG: every protocol,
//! over tcp and ipc, with our socket listening and dialing.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use mirai_sp::sm::{Received, SmOption};
use mirai_sp::{Error, Protocol, Socket};
use nng::options::Options;

/// Receives in the background and waits for the callback.
fn recv_async(s: &Socket, timeout: Option<Duration>) -> Result<Received, Error> {
    let (tx, rx) = mpsc::channel();
    s.recv_async(timeout, Box::new(move |r| drop(tx.send(r))));
    rx.recv_timeout(WAIT).expect("callback")
}

fn send_async(s: &Socket, body: &[u8]) -> Result<(), Error> {
    let (tx, rx) = mpsc::channel();
    s.send_async(
        body.to_vec(),
        None,
        Some(WAIT),
        Box::new(move |r| drop(tx.send(r))),
    );
    rx.recv_timeout(WAIT).expect("callback")
}

/// Connects through the endpoint handles: created unstarted, then started (the dialer
/// synchronously), as `listen(autostart = FALSE)` and `dial(autostart = NA)` do.
fn pair_up_handles(
    proto: Protocol,
    theirs: nng::Protocol,
    tp: Tp,
    ours_listens: bool,
) -> (Socket, nng::Socket) {
    let ours = match proto {
        Protocol::Pair1 => Socket::poly().unwrap(),
        p => Socket::new(p).unwrap(),
    };
    let t = nng_socket(theirs);
    if ours_listens {
        let l = ours
            .listener(&match tp {
                Tp::Tcp => "tcp://127.0.0.1:0".to_string(),
                Tp::Ipc => ipc_url(),
            })
            .unwrap();
        assert!(!l.is_started());
        let url = l.start().unwrap();
        t.dial(&url).unwrap();
        ours.wait_pipes(1, WAIT).unwrap();
        assert_eq!(l.pipe_count(), 1);
    } else {
        let url = nng_listen(&t, tp);
        let d = ours.dialer(&url).unwrap();
        d.start(true).unwrap();
        assert_eq!(d.pipe_count(), 1);
    }
    std::thread::sleep(Duration::from_millis(100));
    (ours, t)
}

fn symmetric(proto: Protocol, theirs: nng::Protocol) {
    for (tp, ours_listens) in MATRIX {
        let (ours, t) = pair_up_handles(proto, theirs, tp, ours_listens);
        nng_send(&t, b"to ours");
        let m = recv_async(&ours, Some(WAIT)).unwrap();
        assert_eq!(m.body(), b"to ours");
        assert!(m.pipe.0 > 0);
        send_async(&ours, b"to nng").unwrap();
        assert_eq!(nng_recv(&t), b"to nng");
        let b = big();
        nng_send(&t, &b);
        assert_eq!(recv_async(&ours, Some(WAIT)).unwrap().body(), b);
        assert_eq!(recv_async(&ours, Some(SHORT)).unwrap_err().code(), 5);
        finish(ours, t);
    }
}

#[test]
fn pair0_async() {
    symmetric(Protocol::Pair0, nng::Protocol::Pair0);
}

#[test]
fn poly_async_dialing_and_listening() {
    symmetric(Protocol::Pair1, nng::Protocol::Pair1);
}

#[test]
fn bus_async() {
    symmetric(Protocol::Bus0, nng::Protocol::Bus0);
}

#[test]
fn push_pull_async() {
    for (tp, ours_listens) in MATRIX {
        let (push, pull) = pair_up_handles(Protocol::Push0, nng::Protocol::Pull0, tp, ours_listens);
        send_async(&push, b"job").unwrap();
        assert_eq!(nng_recv(&pull), b"job");
        assert_eq!(recv_async(&push, None).unwrap_err().code(), 9);
        finish(push, pull);
        let (pull, push) = pair_up_handles(Protocol::Pull0, nng::Protocol::Push0, tp, ours_listens);
        nng_send(&push, b"work");
        assert_eq!(recv_async(&pull, Some(WAIT)).unwrap().body(), b"work");
        assert_eq!(send_async(&pull, b"x").unwrap_err().code(), 9);
        finish(pull, push);
    }
}

#[test]
fn pub_sub_async() {
    for (tp, ours_listens) in MATRIX {
        let (sub, publ) = pair_up_handles(Protocol::Sub0, nng::Protocol::Pub0, tp, ours_listens);
        sub.subscribe(b"t").unwrap();
        let (tx, rx) = mpsc::channel();
        sub.recv_async(Some(WAIT), Box::new(move |r| drop(tx.send(r))));
        nng_send(&publ, b"other");
        nng_send(&publ, b"topic");
        assert_eq!(rx.recv_timeout(WAIT).unwrap().unwrap().body(), b"topic");
        finish(sub, publ);
        let (publ, sub) = pair_up_handles(Protocol::Pub0, nng::Protocol::Sub0, tp, ours_listens);
        sub.set_opt::<nng::options::protocol::pubsub::Subscribe>(Vec::new())
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        send_async(&publ, b"all").unwrap();
        assert_eq!(nng_recv(&sub), b"all");
        finish(publ, sub);
    }
}

#[test]
fn req_rep_contexts_async() {
    for (tp, ours_listens) in MATRIX {
        let (req, rep) = pair_up_handles(Protocol::Req0, nng::Protocol::Rep0, tp, ours_listens);
        let ctx = req.context().unwrap();
        ctx.send(b"q", Some(Duration::ZERO)).unwrap();
        let (tx, rx) = mpsc::channel();
        ctx.recv_async(Some(WAIT), Box::new(move |r| drop(tx.send(r))));
        assert_eq!(nng_recv(&rep), b"q");
        nng_send(&rep, b"a");
        assert_eq!(rx.recv_timeout(WAIT).unwrap().unwrap().body(), b"a");
        // A cancelled receive gives the reply to the next one.
        ctx.send(b"q2", Some(Duration::ZERO)).unwrap();
        let op = ctx.recv_async(None, Box::new(|_| panic!("cancelled receive completed")));
        assert!(ctx.cancel(op));
        assert_eq!(nng_recv(&rep), b"q2");
        nng_send(&rep, b"a2");
        assert_eq!(ctx.recv(Some(WAIT)).unwrap(), b"a2");
        finish(req, rep);
        let (rep, req) = pair_up_handles(Protocol::Rep0, nng::Protocol::Req0, tp, ours_listens);
        let ctx = rep.context().unwrap();
        let (tx, rx) = mpsc::channel();
        ctx.recv_async(Some(WAIT), Box::new(move |r| drop(tx.send(r))));
        nng_send(&req, b"ping");
        assert_eq!(rx.recv_timeout(WAIT).unwrap().unwrap().body(), b"ping");
        let (tx, rx) = mpsc::channel();
        ctx.send_async(
            b"pong".to_vec(),
            Some(WAIT),
            Box::new(move |r| drop(tx.send(r))),
        );
        rx.recv_timeout(WAIT).unwrap().unwrap();
        assert_eq!(nng_recv(&req), b"pong");
        finish(rep, req);
    }
}

#[test]
fn survey_async() {
    use nng::options::protocol::survey::SurveyTime;
    for (tp, ours_listens) in MATRIX {
        let (sv, resp) = pair_up_handles(
            Protocol::Surveyor0,
            nng::Protocol::Respondent0,
            tp,
            ours_listens,
        );
        sv.set_option(SmOption::SurveyTime(300)).unwrap();
        sv.send(b"who?", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&resp), b"who?");
        nng_send(&resp, b"me");
        assert_eq!(recv_async(&sv, Some(WAIT)).unwrap().body(), b"me");
        // Pending when the survey ends: 5.
        assert_eq!(recv_async(&sv, Some(WAIT)).unwrap_err().code(), 5);
        finish(sv, resp);
        let (resp, sv) = pair_up_handles(
            Protocol::Respondent0,
            nng::Protocol::Surveyor0,
            tp,
            ours_listens,
        );
        sv.set_opt::<SurveyTime>(Some(Duration::from_millis(1000)))
            .unwrap();
        nng_send(&sv, b"status?");
        assert_eq!(recv_async(&resp, Some(WAIT)).unwrap().body(), b"status?");
        send_async(&resp, b"fine").unwrap();
        assert_eq!(nng_recv(&sv), b"fine");
        finish(resp, sv);
    }
}

#[test]
fn closing_our_dialer_drops_the_nng_pipe_and_it_reconnects_when_started_anew() {
    for tp in [Tp::Tcp, Tp::Ipc] {
        let t = nng_socket(nng::Protocol::Pair0);
        let url = nng_listen(&t, tp);
        let ours = Socket::new(Protocol::Pair0).unwrap();
        let d = ours.dialer(&url).unwrap();
        d.start(false).unwrap();
        ours.wait_pipes(1, WAIT).unwrap();
        d.close().unwrap();
        let deadline = std::time::Instant::now() + WAIT;
        while !ours.pipes().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(ours.pipes().is_empty());
        ours.dial(&url).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        nng_send(&t, b"back");
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"back");
        finish(ours, t);
    }
}
