//! Our sockets against real NNG (libnng 1.5) over tcp and ipc, in both directions.

mod common;

use std::time::Duration;

use common::*;
use mirai_sp::sm::SmOption;
use mirai_sp::{Protocol, Socket};
use nng::options::Options;

fn two_way(proto: Protocol, theirs: nng::Protocol) {
    for (tp, ours_listens) in MATRIX {
        let (ours, t) = pair_up(proto, theirs, tp, ours_listens);
        ours.send(b"from ours", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&t), b"from ours");
        nng_send(&t, b"from nng");
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"from nng");
        let b = big();
        ours.send(&b, Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&t), b);
        nng_send(&t, &b);
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b);
        // Nothing further: non-blocking is 8, a bounded wait is 5.
        assert_eq!(ours.recv(Some(Duration::ZERO)).unwrap_err().code(), 8);
        assert_eq!(ours.recv(Some(SHORT)).unwrap_err().code(), 5);
        finish(ours, t);
    }
}

#[test]
fn pair0_both_ways() {
    two_way(Protocol::Pair0, nng::Protocol::Pair0);
}

#[test]
fn pair1_both_ways() {
    two_way(Protocol::Pair1, nng::Protocol::Pair1);
}

#[test]
fn bus_both_ways() {
    two_way(Protocol::Bus0, nng::Protocol::Bus0);
}

#[test]
fn poly_replies_per_pipe() {
    for tp in [Tp::Tcp, Tp::Ipc] {
        let ours = Socket::poly().unwrap();
        let a = nng_socket(nng::Protocol::Pair1);
        let b = nng_socket(nng::Protocol::Pair1);
        connect(&ours, &a, tp, true);
        let url = match tp {
            Tp::Tcp => ours.listen("tcp://127.0.0.1:0").unwrap(),
            Tp::Ipc => ours.listen(&ipc_url()).unwrap(),
        };
        b.dial(&url).unwrap();
        ours.wait_pipes(2, WAIT).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        nng_send(&a, b"I am a");
        nng_send(&b, b"I am b");
        let mut got = Vec::new();
        for _ in 0..2 {
            let m = ours.recv_msg(Some(WAIT)).unwrap();
            got.push(m.body().to_vec());
            let reply = [b"you are ".as_slice(), &m.body()[5..]].concat();
            ours.send_to(m.pipe, &reply, Some(WAIT)).unwrap();
        }
        got.sort();
        assert_eq!(got, [b"I am a".to_vec(), b"I am b".to_vec()]);
        assert_eq!(nng_recv(&a), b"you are a");
        assert_eq!(nng_recv(&b), b"you are b");
        finish(ours, a);
        drop(b);
    }
}

#[test]
fn req_against_nng_rep() {
    for (tp, ours_listens) in MATRIX {
        let (ours, rep) = pair_up(Protocol::Req0, nng::Protocol::Rep0, tp, ours_listens);
        assert_eq!(ours.recv(Some(SHORT)).unwrap_err().code(), 11);
        ours.send(b"2+2", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&rep), b"2+2");
        nng_send(&rep, b"4");
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"4");
        // Two contexts with requests outstanding at once; replies are routed by id.
        let c1 = ours.context().unwrap();
        let c2 = ours.context().unwrap();
        c1.send(b"one", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&rep), b"one");
        nng_send(&rep, b"r1");
        c2.send(b"two", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&rep), b"two");
        nng_send(&rep, b"r2");
        assert_eq!(c2.recv(Some(WAIT)).unwrap(), b"r2");
        assert_eq!(c1.recv(Some(WAIT)).unwrap(), b"r1");
        finish(ours, rep);
    }
}

#[test]
fn req_resends_to_nng_rep() {
    for (tp, ours_listens) in MATRIX {
        let (ours, rep) = pair_up(Protocol::Req0, nng::Protocol::Rep0, tp, ours_listens);
        ours.set_option(SmOption::ResendTime(200)).unwrap();
        ours.send(b"again?", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&rep), b"again?");
        // Not answered: the request comes back after resend-time; answer that one.
        assert_eq!(nng_recv(&rep), b"again?");
        nng_send(&rep, b"yes");
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"yes");
        finish(ours, rep);
    }
}

#[test]
fn rep_against_nng_req() {
    for (tp, ours_listens) in MATRIX {
        let (ours, req) = pair_up(Protocol::Rep0, nng::Protocol::Req0, tp, ours_listens);
        assert_eq!(
            ours.send(b"nothing asked", Some(WAIT)).unwrap_err().code(),
            11
        );
        nng_send(&req, b"ping");
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"ping");
        ours.send(b"pong", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&req), b"pong");
        let b = big();
        nng_send(&req, &b);
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b);
        ours.send(&b, Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&req), b);
        finish(ours, req);
    }
}

#[test]
fn rep_contexts_answer_two_nng_requesters_out_of_order() {
    for tp in [Tp::Tcp, Tp::Ipc] {
        let ours = Socket::new(Protocol::Rep0).unwrap();
        let r1 = nng_socket(nng::Protocol::Req0);
        let r2 = nng_socket(nng::Protocol::Req0);
        connect(&ours, &r1, tp, true);
        let url = match tp {
            Tp::Tcp => ours.listen("tcp://127.0.0.1:0").unwrap(),
            Tp::Ipc => ours.listen(&ipc_url()).unwrap(),
        };
        r2.dial(&url).unwrap();
        ours.wait_pipes(2, WAIT).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        nng_send(&r1, b"q1");
        let c1 = ours.context().unwrap();
        let first = c1.recv(Some(WAIT)).unwrap();
        nng_send(&r2, b"q2");
        let c2 = ours.context().unwrap();
        let second = c2.recv(Some(WAIT)).unwrap();
        assert_eq!(
            (first.as_slice(), second.as_slice()),
            (&b"q1"[..], &b"q2"[..])
        );
        c2.send(b"a2", Some(WAIT)).unwrap();
        c1.send(b"a1", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&r2), b"a2");
        assert_eq!(nng_recv(&r1), b"a1");
        finish(ours, r1);
        drop(r2);
    }
}

#[test]
fn pub_to_nng_sub_filters() {
    for (tp, ours_listens) in MATRIX {
        let (ours, sub) = pair_up(Protocol::Pub0, nng::Protocol::Sub0, tp, ours_listens);
        sub.set_opt::<nng::options::protocol::pubsub::Subscribe>(b"a".to_vec())
            .unwrap();
        for m in [&b"a1"[..], b"b1", b"a2"] {
            ours.send(m, Some(WAIT)).unwrap();
        }
        assert_eq!(nng_recv(&sub), b"a1");
        assert_eq!(nng_recv(&sub), b"a2");
        sub.set_opt::<nng::options::RecvTimeout>(Some(SHORT))
            .unwrap();
        assert_eq!(sub.recv().unwrap_err(), nng::Error::TimedOut);
        assert_eq!(ours.recv(Some(SHORT)).unwrap_err().code(), 9);
        finish(ours, sub);
    }
}

#[test]
fn sub_from_nng_pub_filters_and_unsubscribes() {
    for (tp, ours_listens) in MATRIX {
        let (ours, publ) = pair_up(Protocol::Sub0, nng::Protocol::Pub0, tp, ours_listens);
        nng_send(&publ, b"news before subscribing");
        std::thread::sleep(Duration::from_millis(100));
        ours.subscribe(b"news").unwrap();
        let ctx = ours.context().unwrap();
        ctx.set_option(SmOption::Subscribe(b"sport".to_vec()))
            .unwrap();
        for m in [&b"news 1"[..], b"sport 1", b"weather"] {
            nng_send(&publ, m);
        }
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"news 1");
        assert_eq!(ctx.recv(Some(WAIT)).unwrap(), b"sport 1");
        assert_eq!(ours.recv(Some(SHORT)).unwrap_err().code(), 5);
        ours.unsubscribe(b"news").unwrap();
        assert_eq!(ours.unsubscribe(b"news").unwrap_err().code(), 12);
        nng_send(&publ, b"news 2");
        assert_eq!(ours.recv(Some(SHORT)).unwrap_err().code(), 5);
        assert_eq!(ours.send(b"x", Some(SHORT)).unwrap_err().code(), 9);
        finish(ours, publ);
    }
}

#[test]
fn push_to_nng_pulls_round_robin() {
    for tp in [Tp::Tcp, Tp::Ipc] {
        let ours = Socket::new(Protocol::Push0).unwrap();
        let p1 = nng_socket(nng::Protocol::Pull0);
        let p2 = nng_socket(nng::Protocol::Pull0);
        connect(&ours, &p1, tp, true);
        let url = match tp {
            Tp::Tcp => ours.listen("tcp://127.0.0.1:0").unwrap(),
            Tp::Ipc => ours.listen(&ipc_url()).unwrap(),
        };
        p2.dial(&url).unwrap();
        ours.wait_pipes(2, WAIT).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        for i in 0..4u8 {
            ours.send(&[i], Some(WAIT)).unwrap();
        }
        // Each message goes to one ready puller: all arrive once, and both pullers get work.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let deadline = std::time::Instant::now() + WAIT;
        while a.len() + b.len() < 4 && std::time::Instant::now() < deadline {
            if let Ok(m) = p1.try_recv() {
                a.extend_from_slice(m.as_slice());
            }
            if let Ok(m) = p2.try_recv() {
                b.extend_from_slice(m.as_slice());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut all = [a.clone(), b.clone()].concat();
        all.sort();
        assert_eq!(all, [0, 1, 2, 3]);
        assert!(
            !a.is_empty() && !b.is_empty(),
            "one puller got everything: {a:?} {b:?}"
        );
        finish(ours, p1);
        drop(p2);
    }
}

#[test]
fn push_pull_both_directions() {
    for (tp, ours_listens) in MATRIX {
        let (push, pull) = pair_up(Protocol::Push0, nng::Protocol::Pull0, tp, ours_listens);
        push.send(&big(), Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&pull), big());
        assert_eq!(push.recv(Some(SHORT)).unwrap_err().code(), 9);
        finish(push, pull);
        let (pull, push) = pair_up(Protocol::Pull0, nng::Protocol::Push0, tp, ours_listens);
        nng_send(&push, b"job");
        assert_eq!(pull.recv(Some(WAIT)).unwrap(), b"job");
        assert_eq!(pull.send(b"x", Some(SHORT)).unwrap_err().code(), 9);
        finish(pull, push);
    }
}

#[test]
fn surveyor_against_nng_respondent() {
    for (tp, ours_listens) in MATRIX {
        let (ours, resp) = pair_up(
            Protocol::Surveyor0,
            nng::Protocol::Respondent0,
            tp,
            ours_listens,
        );
        ours.set_option(SmOption::SurveyTime(500)).unwrap();
        ours.send(b"who?", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&resp), b"who?");
        nng_send(&resp, b"me");
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"me");
        // The deadline passes while we wait: 5; afterwards, with no new survey: 11.
        assert_eq!(ours.recv(Some(WAIT)).unwrap_err().code(), 5);
        assert_eq!(ours.recv(Some(WAIT)).unwrap_err().code(), 11);
        // A late answer to a new survey is dropped.
        ours.send(b"again?", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&resp), b"again?");
        std::thread::sleep(Duration::from_millis(700));
        nng_send(&resp, b"too late");
        assert_eq!(ours.recv(Some(WAIT)).unwrap_err().code(), 11);
        finish(ours, resp);
    }
}

#[test]
fn respondent_against_nng_surveyor() {
    use nng::options::protocol::survey::SurveyTime;
    for (tp, ours_listens) in MATRIX {
        let (ours, surv) = pair_up(
            Protocol::Respondent0,
            nng::Protocol::Surveyor0,
            tp,
            ours_listens,
        );
        surv.set_opt::<SurveyTime>(Some(Duration::from_millis(1000)))
            .unwrap();
        assert_eq!(ours.send(b"unasked", Some(WAIT)).unwrap_err().code(), 11);
        nng_send(&surv, b"status?");
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"status?");
        ours.send(b"fine", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&surv), b"fine");
        // Answered after NNG's deadline: NNG does not deliver it.
        surv.set_opt::<SurveyTime>(Some(Duration::from_millis(200)))
            .unwrap();
        nng_send(&surv, b"quick?");
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"quick?");
        std::thread::sleep(Duration::from_millis(400));
        ours.send(b"slow", Some(WAIT)).unwrap();
        assert!(surv.recv().is_err());
        finish(ours, surv);
    }
}
