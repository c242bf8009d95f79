//! Unit tests of the streams: URL parsing, and tcp options reaching the real sockets.

use super::*;

#[test]
fn parses_urls() {
    assert_eq!(
        Addr::parse("tcp://127.0.0.1:0").unwrap(),
        Addr::Tcp("127.0.0.1".into(), 0)
    );
    assert_eq!(
        Addr::parse("tcp://[::1]:80").unwrap(),
        Addr::Tcp("::1".into(), 80)
    );
    assert_eq!(
        Addr::parse("ipc:///tmp/x").unwrap(),
        Addr::Ipc("/tmp/x".into())
    );
    assert_eq!(Addr::parse("unix://rel").unwrap(), Addr::Ipc("rel".into()));
    assert_eq!(Addr::parse("tcp://nope").unwrap_err().code(), 15);
    assert_eq!(Addr::parse("ws://a:1").unwrap().port(), Some(1));
    assert_eq!(Addr::parse("quic://a:1").unwrap_err().code(), 9);
    // Text without "://" is NNG's invalid argument (3), as libnng 1.5 answers.
    assert_eq!(Addr::parse("garbage").unwrap_err().code(), 3);
}

#[test]
fn tls_options_need_a_tls_scheme() {
    let me = Local {
        proto: Protocol::Pair0,
        recv_max: 0,
    };
    let zc = mirai_transport::tls::zero_config("127.0.0.1").unwrap();
    let opts = TransportOptions::new().with_tls(Arc::new(zc.server_config().unwrap()));
    let url = Url::parse("tcp://127.0.0.1:0").unwrap();
    assert_eq!(Bound::bind(&url, &opts, me).unwrap_err().code(), 9);
    assert_eq!(Target::new(url, &opts, me).unwrap_err().code(), 9);
    let tls = Url::parse("tls+tcp://127.0.0.1:0").unwrap();
    let e = Bound::bind(&tls, &TransportOptions::new(), me).unwrap_err();
    assert_eq!(e.code(), 3);
    assert!(e.to_string().contains("server part"), "{e}");
    // A server-only configuration cannot dial.
    assert_eq!(Target::new(tls, &opts, me).unwrap_err().code(), 3);
}

/// `tcp-nodelay` and `tcp-keepalive` reach the kernel on both ends: read back from the
/// sockets themselves, for the defaults and for both flipped.
#[test]
fn tcp_options_are_applied_to_dialed_and_accepted_sockets() {
    use std::os::fd::AsFd;
    let me = Local {
        proto: Protocol::Pair0,
        recv_max: 0,
    };
    let state = |s: &Stream| match s {
        Stream::Tcp(t) => (
            t.nodelay().unwrap(),
            mirai_transport::keepalive(t.as_fd()).unwrap(),
        ),
        _ => panic!("not a tcp stream"),
    };
    let flipped = TransportOptions::new()
        .with_nodelay(false)
        .with_keepalive(true);
    for (opts, want) in [
        (TransportOptions::new(), (true, false)),
        (flipped, (false, true)),
    ] {
        let bound = Bound::bind(&Url::parse("tcp://127.0.0.1:0").unwrap(), &opts, me).unwrap();
        let target = Target::new(Url::parse(bound.url()).unwrap(), &opts, me).unwrap();
        // Twice: a dialer's reconnect goes through the same connect.
        for _ in 0..2 {
            let dialed = target.connect().unwrap();
            let accepted = bound.accept().unwrap();
            assert_eq!(state(&dialed), want);
            assert_eq!(state(&accepted), want);
        }
    }
}
