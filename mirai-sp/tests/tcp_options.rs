//! `tcp-nodelay` and `tcp-keepalive` on dialers and listeners: set before start, refused
//! after, and seen by the kernel on both ends of the connection (keepalive through the timer
//! `/proc/net/tcp` shows; no-delay is read from the sockets in the driver's unit tests).

mod tp;

use std::time::{Duration, Instant};

use mirai_sp::driver::TransportOptions;
use mirai_sp::{Protocol, Socket};
use tp::*;

/// The timer column (`tr`) of each established IPv4 connection with an end at `port`:
/// 2 is the keepalive timer, 1 a retransmission, 0 none.
fn timers(port: u16) -> Vec<u8> {
    let text = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port_of = |a: &str| {
        a.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let ends = [port_of(f.get(1)?)?, port_of(f.get(2)?)?];
            let timer = u8::from_str_radix(f.get(5)?.split(':').next()?, 16).ok()?;
            (*f.get(3)? == "01" && ends.contains(&port)).then_some(timer)
        })
        .collect()
}

/// Waits until both ends of the connection at `port` are past any retransmission (the
/// handshake's bytes acknowledged), then returns their timers.
fn settled_timers(port: u16) -> Vec<u8> {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let t = timers(port);
        if (t.len() == 2 && !t.contains(&1)) || Instant::now() > end {
            return t;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects a listener and a dialer at `url` with `flip` applied to both before start;
/// returns the keepalive timers of both ends.
fn link_with(url: &str, lo: &TransportOptions, do_: &TransportOptions, flip: bool) -> Vec<u8> {
    let a = Socket::new(Protocol::Pair0).unwrap();
    let b = Socket::new(Protocol::Pair0).unwrap();
    let l = a.listener_with(url, lo).unwrap();
    if flip {
        l.set_tcp_nodelay(false).unwrap();
        l.set_tcp_keepalive(true).unwrap();
    }
    let bound = l.start().unwrap();
    let d = b.dialer_with(&dial_url(&bound), do_).unwrap();
    if flip {
        d.set_tcp_nodelay(false).unwrap();
        d.set_tcp_keepalive(true).unwrap();
    }
    assert_eq!(d.tcp_options().unwrap(), (!flip, flip));
    assert_eq!(l.tcp_options().unwrap(), (!flip, flip));
    d.start(true).unwrap();
    a.wait_pipes(1, Duration::from_secs(5)).unwrap();
    // Fixed once started: NNG's incorrect state (11).
    assert_eq!(d.set_tcp_keepalive(false).unwrap_err().code(), 11);
    assert_eq!(l.set_tcp_nodelay(true).unwrap_err().code(), 11);
    assert_eq!(d.tcp_options().unwrap(), (!flip, flip));
    settled_timers(l.bound_port().unwrap())
}

#[test]
fn keepalive_reaches_both_ends_over_tcp_and_tls() {
    let none = TransportOptions::new();
    for flip in [false, true] {
        let want = if flip { vec![2, 2] } else { vec![0, 0] };
        assert_eq!(
            link_with("tcp://127.0.0.1:0", &none, &none, flip),
            want,
            "tcp {flip}"
        );
        let (lo, do_) = tls_pair();
        assert_eq!(
            link_with("tls+tcp://127.0.0.1:0", &lo, &do_, flip),
            want,
            "tls {flip}"
        );
    }
}
