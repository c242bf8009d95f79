//! Every transport between two of our sockets: req/rep and pair round trips (small and
//! 1 MiB messages), the URL a listener reports, and each transport's errors with NNG codes.

mod tp;

use mirai_sp::driver::TransportOptions;
use mirai_sp::{Protocol, Socket};
use tp::*;

/// Every scheme with the options its listener and dialer need.
fn every_transport() -> Vec<(String, TransportOptions, TransportOptions)> {
    let none = TransportOptions::new;
    let mut v = vec![
        (format!("inproc://{}", name("rt")), none(), none()),
        (format!("ipc://{}", sock_path()), none(), none()),
        (format!("unix://{}", sock_path()), none(), none()),
        (format!("abstract://{}", name("rt")), none(), none()),
        ("tcp://127.0.0.1:0".into(), none(), none()),
        ("tcp4://127.0.0.1:0".into(), none(), none()),
        ("tcp://*:0".into(), none(), none()),
        ("ws://127.0.0.1:0/sp".into(), none(), none()),
        ("ws4://127.0.0.1:0".into(), none(), none()),
    ];
    let (l, d) = tls_pair();
    v.push(("tls+tcp://127.0.0.1:0".into(), l, d));
    let (l, d) = tls_pair();
    v.push(("tls+tcp4://127.0.0.1:0".into(), l, d));
    let (l, d) = tls_pair();
    v.push(("wss://127.0.0.1:0/secure".into(), l, d));
    if have_ipv6() {
        v.push(("tcp6://[::1]:0".into(), none(), none()));
        v.push(("tcp://[::1]:0".into(), none(), none()));
        v.push(("ws6://[::1]:0/v6".into(), none(), none()));
    }
    v
}

#[test]
fn req_rep_over_every_transport() {
    for (url, lo, do_) in every_transport() {
        let rep = Socket::new(Protocol::Rep0).unwrap();
        let req = Socket::new(Protocol::Req0).unwrap();
        link(&rep, &req, &url, &lo, &do_);
        for body in [b"ping".to_vec(), big(), Vec::new()] {
            req.send(&body, Some(WAIT)).unwrap();
            let got = rep
                .recv(Some(WAIT))
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(got, body, "{url}");
            let reply = [b"re:".as_slice(), &got].concat();
            rep.send(&reply, Some(WAIT)).unwrap();
            assert_eq!(req.recv(Some(WAIT)).unwrap(), reply, "{url}");
        }
        req.close().unwrap();
        rep.close().unwrap();
    }
}

#[test]
fn pair_both_ways_over_every_transport() {
    for (url, lo, do_) in every_transport() {
        for proto in [Protocol::Pair0, Protocol::Pair1] {
            let a = Socket::new(proto).unwrap();
            let b = Socket::new(proto).unwrap();
            link(&a, &b, &url, &lo, &do_);
            a.send(b"from the listener", Some(WAIT)).unwrap();
            assert_eq!(b.recv(Some(WAIT)).unwrap(), b"from the listener", "{url}");
            b.send(b"from the dialer", Some(WAIT)).unwrap();
            assert_eq!(a.recv(Some(WAIT)).unwrap(), b"from the dialer", "{url}");
            // Many messages in a row arrive whole and in order.
            for i in 0..200u32 {
                b.send(&i.to_be_bytes(), Some(WAIT)).unwrap();
            }
            for i in 0..200u32 {
                assert_eq!(a.recv(Some(WAIT)).unwrap(), i.to_be_bytes(), "{url}");
            }
        }
    }
}

#[test]
fn listeners_report_their_port_and_scheme() {
    let s = Socket::new(Protocol::Pair0).unwrap();
    let (l, _) = tls_pair();
    for (url, opts, prefix, suffix) in [
        (
            "tcp://127.0.0.1:0",
            TransportOptions::new(),
            "tcp://127.0.0.1:",
            "",
        ),
        (
            "tcp4://127.0.0.1:0",
            TransportOptions::new(),
            "tcp4://127.0.0.1:",
            "",
        ),
        ("tcp://*:0", TransportOptions::new(), "tcp://:", ""),
        (
            "ws://127.0.0.1:0/a/b",
            TransportOptions::new(),
            "ws://127.0.0.1:",
            "/a/b",
        ),
        (
            "tls+tcp://127.0.0.1:0",
            l.clone(),
            "tls+tcp://127.0.0.1:",
            "",
        ),
        ("wss://127.0.0.1:0/w", l, "wss://127.0.0.1:", "/w"),
    ] {
        let got = s.listen_with(url, &opts).unwrap();
        assert!(
            got.starts_with(prefix) && got.ends_with(suffix),
            "{url} -> {got}"
        );
        let port = &got[prefix.len()..got.len() - suffix.len()];
        assert!(port.parse::<u16>().unwrap() > 0, "{url} -> {got}");
    }
    let inproc = format!("inproc://{}", name("url"));
    assert_eq!(s.listen(&inproc).unwrap(), inproc);
    let abs = format!("abstract://{}", name("url"));
    assert_eq!(s.listen(&abs).unwrap(), abs);
    s.close().unwrap();
}

#[test]
fn bad_urls_and_options_have_nng_codes() {
    let s = Socket::new(Protocol::Pair0).unwrap();
    let (l, d) = tls_pair();
    assert_eq!(s.dial("no-scheme").unwrap_err().code(), 3);
    assert_eq!(s.listen("tcp://[::1:0").unwrap_err().code(), 3);
    assert_eq!(s.dial("udp://127.0.0.1:1").unwrap_err().code(), 9);
    assert_eq!(s.dial("tcp://127.0.0.1").unwrap_err().code(), 15);
    // TLS options on a scheme without TLS: not supported.
    assert_eq!(
        s.listen_with("tcp://127.0.0.1:0", &l).unwrap_err().code(),
        9
    );
    assert_eq!(s.dial_with("ws://127.0.0.1:1", &d).unwrap_err().code(), 9);
    // A TLS scheme without the part it needs: a clear error, not a listener without a
    // certificate.
    let e = s.listen("tls+tcp://127.0.0.1:0").unwrap_err();
    assert_eq!(e.code(), 3);
    assert!(e.to_string().contains("server part"), "{e}");
    assert_eq!(
        s.listen_with("wss://127.0.0.1:0", &d).unwrap_err().code(),
        3
    );
    assert_eq!(
        s.dial_async_with("tls+tcp://127.0.0.1:1", &l)
            .unwrap_err()
            .code(),
        3
    );
}

#[test]
fn inproc_names() {
    let a = Socket::new(Protocol::Pair0).unwrap();
    let b = Socket::new(Protocol::Pair0).unwrap();
    let url = format!("inproc://{}", name("names"));
    assert_eq!(b.dial(&url).unwrap_err().code(), 6);
    a.listen(&url).unwrap();
    assert_eq!(b.listen(&url).unwrap_err().code(), 10);
    a.close().unwrap();
    // Closing frees the name at once.
    b.listen(&url).unwrap();
    let c = Socket::new(Protocol::Pair0).unwrap();
    c.dial(&url).unwrap();
    c.send(b"x", Some(WAIT)).unwrap();
    assert_eq!(b.recv(Some(WAIT)).unwrap(), b"x");
}

#[test]
fn abstract_names() {
    let a = Socket::new(Protocol::Pair0).unwrap();
    let b = Socket::new(Protocol::Pair0).unwrap();
    let url = format!("abstract://{}", name("abs"));
    assert_eq!(b.dial(&url).unwrap_err().code(), 6);
    a.listen(&url).unwrap();
    assert_eq!(b.listen(&url).unwrap_err().code(), 10);
    a.close().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    b.listen(&url).unwrap();
}

#[test]
fn ws_refuses_wrong_path_and_protocol() {
    let rep = Socket::new(Protocol::Rep0).unwrap();
    let bound = rep.listen("ws://127.0.0.1:0/here").unwrap();
    let req = Socket::new(Protocol::Req0).unwrap();
    let elsewhere = bound.replace("/here", "/there");
    assert_eq!(req.dial(&elsewhere).unwrap_err().code(), 6);
    // A pub dialer asks for "sub.sp.nanomsg.org": the rep listener answers 400, a protocol
    // error (13) as NNG reports it.
    let publ = Socket::new(Protocol::Pub0).unwrap();
    assert_eq!(publ.dial(&bound).unwrap_err().code(), 13);
    req.dial(&bound).unwrap();
    req.send(b"ok", Some(WAIT)).unwrap();
    assert_eq!(rep.recv(Some(WAIT)).unwrap(), b"ok");
}

#[test]
fn tls_handshake_failures_are_errors_with_codes() {
    let (lo, d) = tls_pair();
    let rep = Socket::new(Protocol::Rep0).unwrap();
    let bound = rep.listen_with("tls+tcp://127.0.0.1:0", &lo).unwrap();
    let req = Socket::new(Protocol::Req0).unwrap();
    // A CA that did not issue the listener's certificate: 27.
    let stranger = with(creds().client_config().unwrap());
    assert_eq!(req.dial_with(&bound, &stranger).unwrap_err().code(), 27);
    // The right CA but no client certificate, where the listener requires one: 27 too,
    // reported by the dial itself (not a connection that dies later).
    let c = creds();
    let lo2 = with(c.server_config().unwrap());
    let bound2 = rep.listen_with("tls+tcp://127.0.0.1:0", &lo2).unwrap();
    let anonymous = with(mirai_transport::TlsConfig::client(&c.ca_cert).unwrap());
    assert_eq!(req.dial_with(&bound2, &anonymous).unwrap_err().code(), 27);
    // TLS dialing a plain tcp listener: a cryptographic error.
    let plain = Socket::new(Protocol::Rep0).unwrap();
    let tcp = plain.listen("tcp://127.0.0.1:0").unwrap();
    let tls_url = tcp.replace("tcp://", "tls+tcp://");
    assert_eq!(req.dial_with(&tls_url, &d).unwrap_err().code(), 26);
    // The right credentials still work on the same listener afterwards.
    req.dial_with(&bound, &d).unwrap();
    req.send(b"after", Some(WAIT)).unwrap();
    assert_eq!(rep.recv(Some(WAIT)).unwrap(), b"after");
}

#[test]
fn tls_listener_without_client_auth_accepts_anonymous_dialers() {
    let c = creds();
    let server = mirai_transport::TlsConfig::server(&c.server_cert, &c.server_key, None).unwrap();
    let client = mirai_transport::TlsConfig::client(&c.ca_cert).unwrap();
    let pull = Socket::new(Protocol::Pull0).unwrap();
    let push = Socket::new(Protocol::Push0).unwrap();
    link(
        &pull,
        &push,
        "tls+tcp://127.0.0.1:0",
        &with(server),
        &with(client),
    );
    push.send(&big(), Some(WAIT)).unwrap();
    assert_eq!(pull.recv(Some(WAIT)).unwrap(), big());
}

#[test]
fn dialers_reconnect_after_the_listener_returns() {
    for (url, lo, do_) in [
        (
            "ws://127.0.0.1:0/r".to_string(),
            TransportOptions::new(),
            TransportOptions::new(),
        ),
        {
            let (l, d) = tls_pair();
            ("tls+tcp://127.0.0.1:0".to_string(), l, d)
        },
        (
            format!("inproc://{}", name("re")),
            TransportOptions::new(),
            TransportOptions::new(),
        ),
    ] {
        let first = Socket::new(Protocol::Pull0).unwrap();
        let bound = first.listen_with(&url, &lo).unwrap();
        let push = Socket::with_machine(
            mirai_sp::sm::new_machine(Protocol::Push0),
            mirai_sp::SocketOptions {
                reconnect: std::time::Duration::from_millis(50),
                ..Default::default()
            },
        )
        .unwrap();
        push.dial_async_with(&bound, &do_).unwrap();
        push.wait_pipes(1, WAIT).unwrap();
        first.close().unwrap();
        drop(first);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let second = Socket::new(Protocol::Pull0).unwrap();
        second.listen_with(&bound, &lo).unwrap();
        push.send(b"again", Some(WAIT)).unwrap();
        assert_eq!(second.recv(Some(WAIT)).unwrap(), b"again", "{url}");
    }
}

#[test]
fn ws_listeners_share_a_port_by_path() {
    let a = Socket::new(Protocol::Pair0).unwrap();
    let b = Socket::new(Protocol::Pair0).unwrap();
    let url_a = a.listen("ws://127.0.0.1:0/a").unwrap();
    let port = url_a
        .trim_start_matches("ws://127.0.0.1:")
        .trim_end_matches("/a")
        .to_string();
    let url_b = b.listen(&format!("ws://127.0.0.1:{port}/b")).unwrap();
    assert_eq!(url_b, format!("ws://127.0.0.1:{port}/b"));
    // The same path twice, or wss on a ws port, is taken.
    let c = Socket::new(Protocol::Pair0).unwrap();
    assert_eq!(c.listen(&url_b).unwrap_err().code(), 10);
    let (l, _) = tls_pair();
    let wss = format!("wss://127.0.0.1:{port}/c");
    assert_eq!(c.listen_with(&wss, &l).unwrap_err().code(), 10);
    let (da, db) = (
        Socket::new(Protocol::Pair0).unwrap(),
        Socket::new(Protocol::Pair0).unwrap(),
    );
    da.dial(&url_a).unwrap();
    db.dial(&url_b).unwrap();
    da.send(b"to a", Some(WAIT)).unwrap();
    db.send(b"to b", Some(WAIT)).unwrap();
    assert_eq!(a.recv(Some(WAIT)).unwrap(), b"to a");
    assert_eq!(b.recv(Some(WAIT)).unwrap(), b"to b");
    // Closing one listener leaves the other path served; the closed one is refused.
    a.close().unwrap();
    let late = Socket::new(Protocol::Pair0).unwrap();
    assert_eq!(late.dial(&url_a).unwrap_err().code(), 6);
    late.dial(&url_b).unwrap();
    // Closing the last frees the port.
    b.close().unwrap();
    let tcp = Socket::new(Protocol::Pair0).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while tcp.listen(&format!("tcp://127.0.0.1:{port}")).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "port {port} still held"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn big_messages_both_ways_at_once() {
    let (l, d) = tls_pair();
    let (l2, d2) = tls_pair();
    for (url, lo, do_) in [
        ("tls+tcp://127.0.0.1:0".to_string(), l, d),
        ("wss://127.0.0.1:0/both".to_string(), l2, d2),
        (
            "ws://127.0.0.1:0/both".to_string(),
            TransportOptions::new(),
            TransportOptions::new(),
        ),
    ] {
        let a = std::sync::Arc::new(Socket::new(Protocol::Pair1).unwrap());
        let b = std::sync::Arc::new(Socket::new(Protocol::Pair1).unwrap());
        link(&a, &b, &url, &lo, &do_);
        // Both sides write 8 MiB while the other also writes: neither may wedge.
        let senders: Vec<_> = [&a, &b]
            .into_iter()
            .map(|s| {
                let s = std::sync::Arc::clone(s);
                std::thread::spawn(move || {
                    for _ in 0..8 {
                        s.send(&big(), Some(WAIT)).unwrap();
                    }
                })
            })
            .collect();
        for s in [&a, &b] {
            for _ in 0..8 {
                assert_eq!(s.recv(Some(WAIT)).unwrap(), big(), "{url}");
            }
        }
        for t in senders {
            t.join().unwrap();
        }
    }
}

#[test]
fn closed_listeners_free_their_address_at_once() {
    let (l, _) = tls_pair();
    let port = |u: &str| {
        let tail = u.rsplit_once(':').unwrap().1;
        tail.split('/').next().unwrap().to_string()
    };
    for (url, opts) in [
        (
            format!("abstract://{}", name("again")),
            TransportOptions::new(),
        ),
        (format!("ipc://{}", sock_path()), TransportOptions::new()),
        (
            format!("inproc://{}", name("again")),
            TransportOptions::new(),
        ),
        ("tcp://127.0.0.1:0".to_string(), TransportOptions::new()),
        ("tls+tcp://127.0.0.1:0".to_string(), l.clone()),
        (
            "ws://127.0.0.1:0/again".to_string(),
            TransportOptions::new(),
        ),
        ("wss://127.0.0.1:0/again".to_string(), l.clone()),
    ] {
        let first = Socket::new(Protocol::Pair0).unwrap();
        let bound = first.listen_with(&url, &opts).unwrap();
        first.close().unwrap();
        let second = Socket::new(Protocol::Pair0).unwrap();
        let again = second
            .listen_with(&bound, &opts)
            .unwrap_or_else(|e| panic!("{bound} after close: {e}"));
        if bound.contains("127.0.0.1") {
            assert_eq!(port(&again), port(&bound));
        }
    }
}
