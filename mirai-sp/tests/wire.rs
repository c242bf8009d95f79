//! What NNG puts on the wire, observed with raw std sockets, and how our sockets treat bad
//! peers (incompatible protocol, oversized message).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::*;
use mirai_sp::driver::Addr;
use mirai_sp::handshake;
use mirai_sp::{Protocol, Socket, SocketOptions};

/// NNG dials a raw listener; we answer with `peer`'s header and read what NNG sends.
fn observe(theirs: nng::Protocol, peer: Protocol, send: bool) -> ([u8; 8], Vec<u8>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let s = nng_socket(theirs);
    s.dial_async(&format!("tcp://127.0.0.1:{port}")).unwrap();
    let (mut c, _) = l.accept().unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(&handshake::encode(peer)).unwrap();
    let mut h = [0u8; 8];
    c.read_exact(&mut h).unwrap();
    let mut frame = Vec::new();
    if send {
        // Let NNG attach the pipe before it sends.
        std::thread::sleep(Duration::from_millis(100));
        nng_send(&s, b"abc");
        let mut len = [0u8; 8];
        c.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u64::from_be_bytes(len) as usize];
        c.read_exact(&mut body).unwrap();
        frame = [len.to_vec(), body].concat();
    }
    (h, frame)
}

#[test]
fn nng_headers_carry_the_protocol_ids_we_use() {
    use nng::Protocol as N;
    let cases = [
        (N::Pair0, Protocol::Pair0),
        (N::Pair1, Protocol::Pair1),
        (N::Pub0, Protocol::Pub0),
        (N::Sub0, Protocol::Sub0),
        (N::Req0, Protocol::Req0),
        (N::Rep0, Protocol::Rep0),
        (N::Push0, Protocol::Push0),
        (N::Pull0, Protocol::Pull0),
        (N::Surveyor0, Protocol::Surveyor0),
        (N::Respondent0, Protocol::Respondent0),
        (N::Bus0, Protocol::Bus0),
    ];
    for (n, ours) in cases {
        let (h, _) = observe(n, ours.peer(), false);
        assert_eq!(h, handshake::encode(ours), "{ours}");
    }
}

#[test]
fn nng_per_protocol_headers() {
    use nng::Protocol as N;
    let len7 = [0, 0, 0, 0, 0, 0, 0, 7];
    // No header: pair0, pub, push, bus.
    for (n, p) in [
        (N::Pair0, Protocol::Pair0),
        (N::Pub0, Protocol::Sub0),
        (N::Push0, Protocol::Pull0),
        (N::Bus0, Protocol::Bus0),
    ] {
        let (_, f) = observe(n, p, true);
        assert_eq!(f, [0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c'], "{p}");
    }
    // pair1: 32-bit hop count 1.
    let (_, f) = observe(N::Pair1, Protocol::Pair1, true);
    assert_eq!(f, [&len7[..], &[0, 0, 0, 1], b"abc"].concat());
    // req and surveyor: a 32-bit id with the high bit set.
    for (n, p) in [
        (N::Req0, Protocol::Rep0),
        (N::Surveyor0, Protocol::Respondent0),
    ] {
        let (_, f) = observe(n, p, true);
        assert_eq!(&f[..8], &len7, "{p}");
        assert!(f[8] & 0x80 != 0, "{p}: id high bit");
        assert_eq!(&f[12..], b"abc");
    }
}

#[test]
fn incompatible_nng_peer_gets_no_pipe() {
    let ours = Socket::new(Protocol::Req0).unwrap();
    let url = ours.listen("tcp://127.0.0.1:0").unwrap();
    let wrong = nng_socket(nng::Protocol::Pub0);
    wrong.dial_async(&url).unwrap();
    std::thread::sleep(SHORT);
    assert!(ours.pipes().is_empty());
    let right = nng_socket(nng::Protocol::Rep0);
    right.dial(&url).unwrap();
    ours.wait_pipes(1, WAIT).unwrap();
    finish(ours, right);
}

#[test]
fn oversized_message_drops_the_connection() {
    for tp in [Tp::Tcp, Tp::Ipc] {
        let opts = SocketOptions {
            recv_max: 1000,
            ..SocketOptions::default()
        };
        let ours = Socket::with_machine(mirai_sp::sm::new_machine(Protocol::Pull0), opts).unwrap();
        let push = nng_socket(nng::Protocol::Push0);
        connect(&ours, &push, tp, true);
        nng_send(&push, &[1; 1000]);
        assert_eq!(ours.recv(Some(WAIT)).unwrap().len(), 1000);
        nng_send(&push, &[2; 1001]);
        assert_eq!(ours.recv(Some(SHORT)).unwrap_err().code(), 5);
        // The offending pipe is gone (NNG may already have reconnected: at most one).
        assert!(ours.pipes().len() <= 1);
        finish(ours, push);
    }
}

#[test]
fn dial_errors_and_close() {
    let ours = Socket::new(Protocol::Pair0).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let e = ours.dial(&format!("tcp://127.0.0.1:{port}")).unwrap_err();
    assert_eq!(e.code(), 6);
    assert_eq!(
        ours.dial("ipc:///nonexistent/mirai-sp.sock")
            .unwrap_err()
            .code(),
        6
    );
    // An unknown scheme is 9; ws:// is a transport now, so nobody listening is 6.
    assert_eq!(ours.dial("quic://127.0.0.1:1").unwrap_err().code(), 9);
    assert_eq!(ours.dial("ws://127.0.0.1:1").unwrap_err().code(), 6);
    let url = ours.listen("tcp://127.0.0.1:0").unwrap();
    assert!(!url.ends_with(":0"));
    let other = Socket::new(Protocol::Pair0).unwrap();
    assert_eq!(other.listen(&url).unwrap_err().code(), 10);
    assert!(matches!(Addr::parse(&url), Ok(Addr::Tcp(_, p)) if p != 0));
    ours.close().unwrap();
    assert_eq!(ours.recv(Some(SHORT)).unwrap_err().code(), 7);
    assert_eq!(ours.close().unwrap_err().code(), 7);
}

#[test]
fn close_wakes_a_blocked_receiver() {
    let ours = std::sync::Arc::new(Socket::new(Protocol::Pull0).unwrap());
    let o = std::sync::Arc::clone(&ours);
    let t = std::thread::spawn(move || o.recv(Some(WAIT)).unwrap_err().code());
    std::thread::sleep(Duration::from_millis(100));
    ours.close().unwrap();
    assert_eq!(t.join().unwrap(), 7);
}

#[test]
fn closed_context_reports_closed_and_bus_has_none() {
    let req = Socket::new(Protocol::Req0).unwrap();
    let c = req.context().unwrap();
    assert_eq!(c.recv(Some(SHORT)).unwrap_err().code(), 11);
    c.close().unwrap();
    assert_eq!(c.recv(Some(SHORT)).unwrap_err().code(), 7);
    assert_eq!(c.send(b"x", Some(SHORT)).unwrap_err().code(), 7);
    assert_eq!(c.close().unwrap_err().code(), 7);
    let bus = Socket::new(Protocol::Bus0).unwrap();
    assert_eq!(bus.context().unwrap_err().code(), 9);
}
