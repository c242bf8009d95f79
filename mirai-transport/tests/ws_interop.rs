//! Native <-> NNG over `ws://`: the native WebSocket transport speaks NNG's wire format
//! (pair1 over WebSocket), so each backend's listener serves the other's dialer.
#![cfg(feature = "nng")]
use mirai_transport::{Backend, Connection, DisconnectReason, Event, Listener, Options, PeerId};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

fn native() -> Options {
    Options::default()
}

fn nng() -> Options {
    Options {
        backend: Backend::Nng,
        ..Options::default()
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Polls `l` until `f` accepts an event, returning it.
fn next(l: &Listener, pending: &mut Vec<Event>) -> Event {
    let deadline = Instant::now() + LONG;
    loop {
        if !pending.is_empty() {
            return pending.remove(0);
        }
        assert!(Instant::now() < deadline, "no event in time");
        l.poll(pending, Some(Duration::from_millis(200))).unwrap();
    }
}

/// Dials `url` while polling `l` (an upgrade at a native listener advances only in `poll`,
/// and NNG's dial waits for it), returning the connection and its peer id.
fn dial(l: &Listener, dial: &Options, ev: &mut Vec<Event>) -> (Connection, PeerId) {
    let (url, o) = (l.url().to_string(), dial.clone());
    let t = std::thread::spawn(move || Connection::dial(&url, &o));
    let id = match next(l, ev) {
        Event::Connected(id) => id,
        other => panic!("expected Connected, got {other:?}"),
    };
    (t.join().unwrap().unwrap(), id)
}

fn recv(c: &Connection) -> Vec<u8> {
    c.recv(Some(LONG)).unwrap().expect("a message in time")
}

fn exchange(listen: &Options, dialer: &Options) {
    let l = Listener::bind("ws://127.0.0.1:0/interop", listen).unwrap();
    assert!(l.url().starts_with("ws://127.0.0.1:"), "{}", l.url());
    assert!(!l.url().contains(":0/"), "{}", l.url());
    let mut ev = Vec::new();
    let (c, id) = dial(&l, dialer, &mut ev);
    // Several messages each way, interleaved, with an empty one and one of 1 MiB.
    let big = pattern(1 << 20, 7);
    let to_listener: Vec<Vec<u8>> =
        vec![b"one".to_vec(), Vec::new(), pattern(70_000, 1), big.clone()];
    for (i, m) in to_listener.iter().enumerate() {
        c.send(m).unwrap();
        match next(&l, &mut ev) {
            Event::Message(from, got) => {
                assert_eq!(from, id);
                assert!(
                    got == *m,
                    "message {i} to the listener: {} bytes",
                    got.len()
                );
            }
            other => panic!("expected message {i}, got {other:?}"),
        }
        let reply = pattern(m.len() / 2 + i, 9);
        l.send(id, &reply).unwrap();
        assert!(recv(&c) == reply, "reply {i}");
    }
    l.send_parts(id, &[b"par", b"ts"]).unwrap();
    l.send(id, &big).unwrap();
    assert_eq!(recv(&c), b"parts");
    assert!(recv(&c) == big, "1 MiB to the dialer");
    // The dialer goes: the listener sees it.
    c.close();
    drop(c);
    match next(&l, &mut ev) {
        Event::Disconnected(i, reason) => {
            assert_eq!(i, id);
            assert!(
                matches!(reason, DisconnectReason::Closed | DisconnectReason::Io(_)),
                "{reason:?}"
            );
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    // The listener goes: a new dialer sees it closed.
    let (c, _) = dial(&l, dialer, &mut ev);
    drop(l);
    let deadline = Instant::now() + LONG;
    loop {
        match c.recv(Some(Duration::from_millis(200))) {
            Err(_) => break,
            Ok(None) => assert!(
                Instant::now() < deadline,
                "dialer never saw the listener go"
            ),
            Ok(Some(m)) => panic!("unexpected message of {} bytes", m.len()),
        }
    }
}

#[test]
fn native_listener_nng_dialer() {
    exchange(&native(), &nng());
}

#[test]
fn nng_listener_native_dialer() {
    exchange(&nng(), &native());
}

#[test]
fn native_dialer_refused_by_wrong_path() {
    let l = Listener::bind("ws://127.0.0.1:0/right", &native()).unwrap();
    let url = l.url().replace("/right", "/wrong");
    let t = std::thread::spawn(move || Connection::dial(&url, &native()).err());
    let mut ev = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && !t.is_finished() {
        l.poll(&mut ev, Some(Duration::from_millis(50))).unwrap();
    }
    let e = t.join().unwrap().expect("refused");
    assert!(e.to_string().contains("400"), "{e}");
    assert!(ev.is_empty(), "a refused upgrade is never reported: {ev:?}");
}

#[test]
fn nng_refuses_wss() {
    for url in ["wss://127.0.0.1:0/", "wss://127.0.0.1:5555/"] {
        assert!(matches!(
            Listener::bind(url, &nng()),
            Err(mirai_transport::Error::UnsupportedScheme(_))
        ));
        assert!(matches!(
            Connection::dial(url, &nng()),
            Err(mirai_transport::Error::UnsupportedScheme(_))
        ));
    }
}

#[test]
fn wss_exchanges_and_refuses_a_dialer_without_the_client_certificate() {
    use mirai_transport::tls::{zero_config, TlsErrorKind};
    use mirai_transport::{Error, TlsConfig};
    let z = zero_config("127.0.0.1").unwrap();
    let server = Options {
        tls: Some(z.server_config().unwrap()),
        ..native()
    };
    let l = Listener::bind("wss://127.0.0.1:0/secure", &server).unwrap();
    assert!(l.url().starts_with("wss://127.0.0.1:") && l.url().ends_with("/secure"));
    let good = Options {
        tls: Some(z.client_config().unwrap()),
        ..native()
    };
    let mut ev = Vec::new();
    let (c, id) = dial(&l, &good, &mut ev);
    c.send(&pattern(300_000, 3)).unwrap();
    match next(&l, &mut ev) {
        Event::Message(from, m) => assert!(from == id && m == pattern(300_000, 3)),
        other => panic!("expected a message, got {other:?}"),
    }
    l.send(id, b"secret").unwrap();
    assert_eq!(recv(&c), b"secret");
    // No client identity: refused during the handshake, never reported.
    let anonymous = Options {
        tls: Some(TlsConfig::client(&z.ca_cert).unwrap()),
        ..native()
    };
    let url = l.url().to_string();
    let t = std::thread::spawn(move || Connection::dial(&url, &anonymous).err());
    while !t.is_finished() {
        l.poll(&mut ev, Some(Duration::from_millis(50))).unwrap();
    }
    match t.join().unwrap() {
        Some(Error::Tls { kind, reason, .. }) => {
            assert_eq!(kind, TlsErrorKind::PeerAuth, "{reason}");
        }
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
    assert!(ev.is_empty(), "a refused peer is never reported: {ev:?}");
}
