//! What a flood of connections that have not proven themselves costs a native listener: each
//! claims a huge message (or the largest first message allowed) and sends a few bytes, over
//! TCP, IPC and TLS. The listener must hold about what arrived, not what was claimed; peers
//! over [`Options::max_first_message`] must be dropped at once; a legitimate peer must be
//! served throughout.
//!
//! The tests measure this process's memory (`/proc/self/status`), so they run one at a time
//! (`SERIAL`) and live in their own test binary. The bounds are generous (tens of MiB against
//! claims of terabytes); the figures are printed for the record. Timeouts only stop a broken
//! build from hanging.
use mirai_transport::tls::{zero_config, ZeroConfig};
use mirai_transport::{Connection, DisconnectReason, Event, Listener, Options, PeerId};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

mod common;

const LONG: Duration = Duration::from_secs(60);
/// Connections per plain flood.
const FLOOD: usize = 500;
/// Connections per TLS flood (each costs a handshake on both sides, in a debug build).
const TLS_FLOOD: usize = 200;
/// The bound a host sets on a daemon's first message (its hello is under a hundred bytes).
const FIRST: usize = 64 * 1024;
/// What each flooding peer sends after its length prefix.
const TRICKLE: usize = 100;

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// (resident, virtual) bytes of this process.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
            * 1024
    };
    (field("VmRSS:"), field("VmSize:"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

fn prefix(len: u64) -> Vec<u8> {
    let mut v = len.to_le_bytes().to_vec();
    v.extend_from_slice(&[0xAB; TRICKLE]);
    v
}

/// A listener polled by the test thread, with a tally of what it reported.
struct Hub {
    l: Listener,
    connected: Vec<PeerId>,
    messages: Vec<(PeerId, Vec<u8>)>,
    gone: Vec<(PeerId, DisconnectReason)>,
}

impl Hub {
    fn bind(url: &str, opts: &Options) -> Hub {
        Hub {
            l: Listener::bind(url, opts).unwrap_or_else(|e| panic!("bind {url}: {e}")),
            connected: Vec::new(),
            messages: Vec::new(),
            gone: Vec::new(),
        }
    }

    /// A hub at `url` with one well-behaved peer already connected and served, for checking
    /// that it keeps being served through a flood: the hub, the peer and its id.
    fn with_good_peer(url: &str, opts: &Options) -> (Hub, Connection, PeerId) {
        let mut hub = Hub::bind(url, opts);
        let good = Connection::dial(hub.l.url(), &Options::default()).unwrap();
        good.send(b"hello").unwrap();
        hub.settle(Duration::from_millis(100), |h| h.messages.len() == 1);
        let id = hub.connected[0];
        hub.serves(&good, id);
        (hub, good, id)
    }

    /// Polls once for up to `wait`; true if anything happened.
    fn poll(&mut self, wait: Duration) -> bool {
        let mut v = Vec::new();
        self.l.poll(&mut v, Some(wait)).expect("poll");
        let any = !v.is_empty();
        for e in v {
            match e {
                Event::Connected(id) => self.connected.push(id),
                Event::Message(id, m) => self.messages.push((id, m)),
                Event::Disconnected(id, r) => self.gone.push((id, r)),
            }
        }
        any
    }

    /// Polls until `done` holds and then one poll of `quiet` reports nothing (so every socket
    /// that was readable has been read: they are level-triggered).
    fn settle(&mut self, quiet: Duration, done: impl Fn(&Hub) -> bool) {
        let deadline = Instant::now() + LONG;
        loop {
            assert!(
                Instant::now() < deadline,
                "the hub did not settle within {LONG:?}"
            );
            let any = self.poll(quiet);
            if !any && done(self) {
                return;
            }
        }
    }

    /// A well-behaved peer: opens with a small message, then sends one past the first-message
    /// bound, and gets an answer.
    fn serves(&mut self, c: &Connection, id: PeerId) {
        let big: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 241) as u8).collect();
        // Sent from another thread: more than a Unix socket buffers, so the hub must poll
        // meanwhile.
        thread::scope(|scope| {
            let sender = scope.spawn(|| c.send(&big).expect("send 1 MiB"));
            let deadline = Instant::now() + LONG;
            while !self.messages.iter().any(|(i, m)| *i == id && *m == big) {
                assert!(
                    Instant::now() < deadline,
                    "1 MiB from the good peer never arrived"
                );
                self.poll(Duration::from_millis(50));
            }
            sender.join().expect("sender");
        });
        self.messages.clear();
        self.l.send(id, b"served").unwrap();
        assert_eq!(c.recv(Some(LONG)).unwrap().unwrap(), b"served");
    }
}

/// Opens `n` raw connections to the hub, each writing `prefix(claim)`.
fn flood<S: Write>(n: usize, claim: u64, connect: impl Fn() -> S) -> Vec<S> {
    (0..n)
        .map(|_| {
            let mut s = connect();
            s.write_all(&prefix(claim)).expect("write");
            s
        })
        .collect()
}

fn raw_connector(hub: &Hub) -> Box<dyn Fn() -> Box<dyn ReadWrite>> {
    let url = hub.l.url().to_string();
    match url.strip_prefix("ipc://") {
        Some(path) => {
            let path = path.to_string();
            Box::new(move || Box::new(UnixStream::connect(&path).expect("unix connect")))
        }
        None => {
            let addr = url.trim_start_matches("tcp://").to_string();
            Box::new(move || Box::new(TcpStream::connect(&addr).expect("tcp connect")))
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn report(what: &str, before: (u64, u64), after: (u64, u64)) -> (u64, u64) {
    let grew = (
        after.0.saturating_sub(before.0),
        after.1.saturating_sub(before.1),
    );
    println!(
        "{what}: RSS {:.1} -> {:.1} MiB (+{:.1}), virtual {:.1} -> {:.1} MiB (+{:.1})",
        mib(before.0),
        mib(after.0),
        mib(grew.0),
        mib(before.1),
        mib(after.1),
        mib(grew.1)
    );
    grew
}

#[test]
fn huge_claims_that_are_allowed_cost_what_arrived() {
    // No first-message bound, the default 16 GiB limit: 500 peers each claim exactly the
    // limit (8 TiB in all) and send 100 bytes. They are legal and are waited for; the
    // listener must hold about what arrived.
    let _s = serial();
    let opts = Options::default();
    let claim = opts.max_message as u64;
    let (mut hub, good, id) = Hub::with_good_peer("tcp://127.0.0.1:0", &opts);
    let before = memory();

    let connect = raw_connector(&hub);
    let raws = flood(FLOOD, claim, &*connect);
    hub.settle(Duration::from_millis(300), |h| {
        h.connected.len() == FLOOD + 1
    });
    let after = memory();
    let (rss, vm) = report(
        &format!("{FLOOD} peers claiming {claim} bytes each, {TRICKLE} sent"),
        before,
        after,
    );
    assert!(
        hub.gone.is_empty(),
        "legal claims are waited for: {:?}",
        &hub.gone[..1]
    );
    assert!(
        rss < 64 << 20,
        "resident memory grew by {:.1} MiB",
        mib(rss)
    );
    // Reserving the claims would be 8 TiB of address space; growing with what arrived is at
    // most 64 KiB per peer.
    assert!(vm < 512 << 20, "address space grew by {:.1} MiB", mib(vm));
    hub.serves(&good, id);

    // When they give up, each is reported with what it had sent.
    drop(raws);
    hub.settle(Duration::from_millis(100), |h| h.gone.len() == FLOOD);
    let want = format!("after {TRICKLE} of {claim} bytes of a message");
    for (_, r) in &hub.gone {
        assert!(
            matches!(r, DisconnectReason::Protocol(t) if t.contains(&want)),
            "{r:?}"
        );
    }
    hub.serves(&good, id);
}

/// Half the flood claims 4 GiB as its first message and is dropped at once; the other half
/// claims the largest first message allowed and trickles. The good peer is served throughout.
fn flood_with_a_first_message_bound(url: &str) {
    let _s = serial();
    let opts = Options {
        max_first_message: Some(FIRST),
        ..Options::default()
    };
    let (mut hub, good, id) = Hub::with_good_peer(url, &opts);
    let before = memory();

    let connect = raw_connector(&hub);
    let mut raws = Vec::new();
    for _ in 0..FLOOD / 50 {
        // Interleaved, so drops and held peers mix in the listener's tables.
        raws.extend(flood(25, 4 << 30, &*connect));
        raws.extend(flood(25, FIRST as u64, &*connect));
    }
    hub.settle(Duration::from_millis(300), |h| {
        h.connected.len() == FLOOD + 1 && h.gone.len() == FLOOD / 2
    });
    let after = memory();
    let (rss, vm) = report(
        &format!(
            "{url}: {} peers over the first-message bound, {} at it",
            FLOOD / 2,
            FLOOD / 2
        ),
        before,
        after,
    );
    for (_, r) in &hub.gone {
        assert!(
            matches!(r, DisconnectReason::Protocol(t)
                if t.contains("first message") && t.contains("4294967296") && t.contains("65536")),
            "{r:?}"
        );
    }
    assert!(
        rss < 64 << 20,
        "resident memory grew by {:.1} MiB",
        mib(rss)
    );
    assert!(vm < 512 << 20, "address space grew by {:.1} MiB", mib(vm));
    hub.serves(&good, id);

    // The dropped ones were closed by the hub; the held ones were not.
    let mut buf = [0u8; 8];
    for (i, s) in raws.iter_mut().enumerate() {
        if (i / 25) % 2 == 0 {
            assert!(
                matches!(s.read(&mut buf), Ok(0) | Err(_)),
                "peer {i} still open"
            );
        }
    }
    drop(raws);
    hub.settle(Duration::from_millis(100), |h| h.gone.len() == FLOOD);
    let want = format!("after {TRICKLE} of {FIRST} bytes of a message");
    let held = hub
        .gone
        .iter()
        .filter(|(_, r)| matches!(r, DisconnectReason::Protocol(t) if t.contains(&want)))
        .count();
    assert_eq!(held, FLOOD / 2, "{:?}", &hub.gone[FLOOD / 2..]);
    hub.serves(&good, id);
}

#[test]
fn flood_with_a_first_message_bound_tcp() {
    flood_with_a_first_message_bound("tcp://127.0.0.1:0");
}

#[test]
fn flood_with_a_first_message_bound_ipc() {
    let path = format!("/tmp/mirai-flood-{}.sock", std::process::id());
    flood_with_a_first_message_bound(&format!("ipc://{path}"));
}

// ---------------------------------------------------------------------------------------------
// TLS: the listener is polled by its own thread (a TLS client's handshake needs it).

/// A rustls client holding the zero-config client identity, past the listener's greeting.
fn tls_client(
    z: &ZeroConfig,
    port: u16,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    common::raw_tls_client(z, port, rustls::DEFAULT_VERSIONS, LONG)
}

#[test]
fn tls_flood_with_a_first_message_bound() {
    let _s = serial();
    let z = zero_config("127.0.0.1").unwrap();
    let opts = Options {
        tls: Some(z.server_config().unwrap()),
        max_first_message: Some(FIRST),
        ..Options::default()
    };
    let l = Arc::new(Listener::bind("tls+tcp://127.0.0.1:0", &opts).unwrap());
    let port: u16 = l.url().rsplit(':').next().unwrap().parse().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (l, events, stop) = (Arc::clone(&l), Arc::clone(&events), Arc::clone(&stop));
        thread::spawn(move || {
            let mut batch = Vec::new();
            while !stop.load(Ordering::Acquire) {
                l.poll(&mut batch, Some(Duration::from_millis(50)))
                    .expect("poll");
                for e in batch.drain(..) {
                    if let Event::Message(id, m) = &e {
                        let _ = l.send(*id, m);
                    }
                    events.lock().unwrap().push(e);
                }
            }
        })
    };
    let count = |f: &dyn Fn(&Event) -> bool| events.lock().unwrap().iter().filter(|e| f(e)).count();
    let wait_for = |what: &str, f: &dyn Fn(&Event) -> bool, n: usize| {
        let deadline = Instant::now() + LONG;
        while count(f) < n {
            assert!(
                Instant::now() < deadline,
                "{what}: fewer than {n} within {LONG:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    };
    let client_opts = Options {
        tls: Some(z.client_config().unwrap()),
        ..Options::default()
    };
    let good = Connection::dial(l.url(), &client_opts).unwrap();
    let echo = |m: &[u8]| {
        good.send(m).unwrap();
        assert!(good.recv(Some(LONG)).unwrap().unwrap() == m, "echo");
    };
    echo(b"hello");
    // Warm up the client side too (its first handshake initialises what all later ones share).
    drop(tls_client(&z, port));
    wait_for("warm-up", &|e| matches!(e, Event::Disconnected(..)), 1);
    let before = memory();

    let mut raws = Vec::new();
    for i in 0..TLS_FLOOD {
        let mut s = tls_client(&z, port);
        let claim = if i % 2 == 0 { 4u64 << 30 } else { FIRST as u64 };
        s.write_all(&prefix(claim)).unwrap();
        s.flush().unwrap();
        raws.push(s);
    }
    let first_too_large = |e: &Event| matches!(e, Event::Disconnected(_, DisconnectReason::Protocol(t)) if t.contains("first message"));
    wait_for("drops", &first_too_large, TLS_FLOOD / 2);
    // The held ones' bytes arrive with the handshake's last flight or right after it; give
    // the poller a moment beyond the echo below, which goes through the same loop.
    echo(b"after the flood");
    thread::sleep(Duration::from_millis(300));
    let after = memory();
    let (rss, vm) = report(
        &format!(
            "tls: {} peers over the first-message bound, {} at it (client side in the same process)",
            TLS_FLOOD / 2,
            TLS_FLOOD / 2
        ),
        before,
        after,
    );
    // Both ends of every TLS session live in this process: that is most of the growth.
    assert!(
        rss < 64 << 20,
        "resident memory grew by {:.1} MiB",
        mib(rss)
    );
    assert!(vm < 512 << 20, "address space grew by {:.1} MiB", mib(vm));
    let big: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 239) as u8).collect();
    echo(&big);

    drop(raws);
    let truncated = |e: &Event| {
        matches!(e, Event::Disconnected(_, DisconnectReason::Protocol(t))
            if t.contains(&format!("after {TRICKLE} of {FIRST} bytes")))
    };
    wait_for("held peers leaving", &truncated, TLS_FLOOD / 2);
    echo(b"still served");
    stop.store(true, Ordering::Release);
    l.wake();
    poller.join().unwrap();
}
