//! One suite of transport scenarios, run against every backend built in.
//!
//! Each scenario is a function taking a [`Mode`]; the `conformance!` macro at the bottom
//! generates a `native::`, an `nng::` and a `tls::` test for each. `tls::` is the native backend
//! with every TCP URL turned into `tls+tcp://` and zero-config credentials (mutual
//! authentication). Native-only checks (raw bytes on the wire, queueing behaviour) live in
//! `tests/native.rs`, TLS-only ones in `tests/tls.rs`.
//!
//! Timeouts are generous and only stop a broken build from hanging; nothing asserts speed.
use mirai_transport::tls::zero_config_for;
use mirai_transport::{
    Backend, Connection, DisconnectReason, Error, Event, Listener, Options, PeerId, TlsConfig,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

mod common;

/// Upper bound for anything to happen; only reached when something is broken.
const LONG: Duration = Duration::from_secs(30);

/// What a scenario runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Native,
    Nng,
    /// Native backend, TCP URLs as `tls+tcp://`, zero-config credentials.
    Tls,
    /// Native backend, TCP URLs as `ws://` (each listener at a path of its own).
    Ws,
    /// NNG backend, TCP URLs as `ws://` (each listener at a path of its own).
    NngWs,
    /// Native backend, TCP URLs as `wss://` (each listener at a path of its own), zero-config
    /// credentials as in `Tls`.
    Wss,
}

impl Mode {
    fn nng(self) -> bool {
        matches!(self, Mode::Nng | Mode::NngWs)
    }
    fn ws(self) -> bool {
        matches!(self, Mode::Ws | Mode::NngWs | Mode::Wss)
    }
}

/// The port of a URL `scheme://host:port[/path]`.
fn port_of(url: &str) -> u16 {
    let after = url.rsplit(':').next().unwrap();
    after.split('/').next().unwrap().parse().unwrap()
}

/// One zero-config credential set for the whole test process, valid for every loopback name,
/// with both the listener and the dialer part.
fn tls_config() -> TlsConfig {
    static CONFIG: std::sync::OnceLock<TlsConfig> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let z = zero_config_for(&["127.0.0.1", "::1", "localhost"]).expect("zero_config");
            z.server_config()
                .expect("server config")
                .combine(z.client_config().expect("client config"))
        })
        .clone()
}

fn opts(mode: Mode) -> Options {
    match mode {
        Mode::Native | Mode::Ws => Options::default(),
        Mode::Nng | Mode::NngWs => Options {
            backend: Backend::Nng,
            ..Options::default()
        },
        Mode::Tls | Mode::Wss => Options {
            tls: Some(tls_config()),
            ..Options::default()
        },
    }
}

/// `tcp://<rest>`, or `tls+tcp://<rest>` in TLS mode.
fn tcp(mode: Mode, rest: &str) -> String {
    match mode {
        Mode::Tls => format!("tls+tcp://{rest}"),
        Mode::Ws | Mode::NngWs => format!("ws://{rest}"),
        Mode::Wss => format!("wss://{rest}"),
        _ => format!("tcp://{rest}"),
    }
}

/// A name no other test (or test process) uses.
fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "mirai-t-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A loopback TCP port held bound but not listening while this lives: dialing it is refused,
/// and no listener (in this or a parallel test) can be given it meanwhile. A port that was
/// merely free a moment ago could be handed to another test's `tcp://127.0.0.1:0` listener.
struct HeldPort {
    _fd: std::os::fd::OwnedFd,
    port: u16,
}

fn hold_port() -> HeldPort {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2); the result is checked and owned by the OwnedFd below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let mut sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `sin` is a valid sockaddr_in of `len` bytes for both calls.
    unsafe {
        assert_eq!(
            libc::bind(fd, (&sin as *const libc::sockaddr_in).cast(), len),
            0,
            "bind"
        );
        assert_eq!(
            libc::getsockname(fd, (&mut sin as *mut libc::sockaddr_in).cast(), &mut len),
            0
        );
    }
    HeldPort {
        _fd: owned,
        port: u16::from_be(sin.sin_port),
    }
}

/// A listener plus the events polled but not yet looked at.
struct Hub {
    l: Listener,
    pending: VecDeque<Event>,
}

impl Hub {
    /// Binds `url`; in TLS mode a `tcp://` URL becomes `tls+tcp://`.
    fn bind(url: &str, mode: Mode) -> Hub {
        Hub::bind_with(url, mode, &opts(mode))
    }

    /// [`Hub::bind`] with options of the mode changed by the caller.
    fn bind_with(url: &str, mode: Mode, options: &Options) -> Hub {
        let url = match url.strip_prefix("tcp://") {
            // A path of its own per listener: NNG finds its HTTP server for `ws://` by host
            // and port as written, so two port-0 listeners of one process at the same path
            // collide there ("Address in use").
            Some(rest) if mode.ws() => format!("{}/{}", tcp(mode, rest), unique("ws")),
            Some(rest) => tcp(mode, rest),
            None => url.to_string(),
        };
        let url = url.as_str();
        Hub {
            l: Listener::bind(url, options).unwrap_or_else(|e| panic!("bind {url}: {e}")),
            pending: VecDeque::new(),
        }
    }

    fn url(&self) -> String {
        self.l.url().to_string()
    }

    fn next(&mut self) -> Event {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no event within {LONG:?}");
            let mut v = Vec::new();
            self.l.poll(&mut v, Some(left)).expect("poll");
            self.pending.extend(v);
        }
    }

    fn connected(&mut self) -> PeerId {
        match self.next() {
            Event::Connected(id) => id,
            other => panic!("expected Connected, got {other:?}"),
        }
    }

    fn message(&mut self, from: PeerId) -> Vec<u8> {
        match self.next() {
            Event::Message(id, m) if id == from => m,
            other => panic!("expected a message from {from}, got {}", short(&other)),
        }
    }

    fn disconnected(&mut self, who: PeerId) -> DisconnectReason {
        match self.next() {
            Event::Disconnected(id, r) if id == who => r,
            other => panic!("expected Disconnected({who}), got {}", short(&other)),
        }
    }

    /// Dials the hub from another thread while polling it (keeping the events for later):
    /// a TLS dial returns only once the listener has accepted it, which takes polling.
    fn dial_polling(&mut self, mode: Mode) -> Connection {
        let url = self.url();
        let dialer = thread::spawn(move || Connection::dial(&url, &opts(mode)));
        let deadline = Instant::now() + LONG;
        while !dialer.is_finished() {
            assert!(
                Instant::now() < deadline,
                "dial did not return within {LONG:?}"
            );
            let mut v = Vec::new();
            self.l
                .poll(&mut v, Some(Duration::from_millis(5)))
                .expect("poll");
            self.pending.extend(v);
        }
        dialer.join().expect("dialer thread").expect("dial")
    }

    /// Dials the hub and waits for its Connected.
    fn dial(&mut self, backend: Mode) -> (Connection, PeerId) {
        let c = self.dial_polling(backend);
        let id = self.connected();
        (c, id)
    }
}

fn short(e: &Event) -> String {
    match e {
        Event::Message(id, m) => format!("Message({id}, {} bytes)", m.len()),
        other => format!("{other:?}"),
    }
}

fn recv(c: &Connection) -> Vec<u8> {
    c.recv(Some(LONG))
        .expect("recv")
        .expect("a message within the timeout")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Scenarios

fn event_order(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let c = hub.dial_polling(b);
    c.send(b"one").unwrap();
    c.send(b"two").unwrap();
    // Wait until both arrived before closing, so the close cannot overtake them in NNG.
    let id = hub.connected();
    assert_eq!(hub.message(id), b"one");
    assert_eq!(hub.message(id), b"two");
    c.close();
    assert_eq!(hub.disconnected(id), DisconnectReason::Closed);
    assert!(hub.pending.is_empty());
}

fn messages_then_close_keep_order(b: Mode) {
    // Messages sent right before closing are all reported before the Disconnected.
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    for i in 0..20u32 {
        c.send(&i.to_le_bytes()).unwrap();
    }
    if b.nng() {
        // NNG may discard what is still in its queues when a socket closes; wait for delivery.
        for i in 0..20u32 {
            assert_eq!(hub.message(id), i.to_le_bytes());
        }
        c.close();
    } else {
        c.close();
        for i in 0..20u32 {
            assert_eq!(hub.message(id), i.to_le_bytes());
        }
    }
    assert_eq!(hub.disconnected(id), DisconnectReason::Closed);
}

fn exchange_both_directions(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    for i in 0..200u32 {
        hub.l.send(id, format!("ping {i}").as_bytes()).unwrap();
        assert_eq!(recv(&c), format!("ping {i}").as_bytes());
        c.send(format!("pong {i}").as_bytes()).unwrap();
        assert_eq!(hub.message(id), format!("pong {i}").as_bytes());
    }
}

fn fifty_peers_echo(b: Mode) {
    const PEERS: usize = 50;
    const EACH: usize = 20;
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let url = hub.url();
    let workers: Vec<_> = (0..PEERS)
        .map(|w| {
            let url = url.clone();
            thread::spawn(move || {
                let c = Connection::dial(&url, &opts(b)).expect("dial");
                for i in 0..EACH {
                    let m = format!("peer {w} message {i}");
                    c.send(m.as_bytes()).unwrap();
                    assert_eq!(recv(&c), m.as_bytes(), "echo to peer {w}");
                }
                c.close();
            })
        })
        .collect();
    // Per peer: connected, then EACH messages in order, then disconnected.
    let mut seen: HashMap<PeerId, usize> = HashMap::new();
    let mut sender_of: HashMap<PeerId, String> = HashMap::new();
    let mut gone = HashSet::new();
    while gone.len() < PEERS {
        match hub.next() {
            Event::Connected(id) => assert!(seen.insert(id, 0).is_none(), "id {id} reused"),
            Event::Message(id, m) => {
                let n = seen.get_mut(&id).expect("message before Connected");
                let text = String::from_utf8(m.clone()).unwrap();
                let who = text.split(" message ").next().unwrap().to_string();
                assert_eq!(
                    sender_of.entry(id).or_insert_with(|| who.clone()),
                    &who,
                    "one peer per id"
                );
                assert_eq!(text, format!("{who} message {n}"), "order within a peer");
                *n += 1;
                hub.l.send(id, &m).unwrap();
            }
            Event::Disconnected(id, r) => {
                assert_eq!(r, DisconnectReason::Closed);
                assert_eq!(
                    seen.get(&id),
                    Some(&EACH),
                    "all messages before Disconnected"
                );
                assert!(gone.insert(id));
            }
        }
    }
    for w in workers {
        w.join().expect("worker");
    }
    assert_eq!(seen.len(), PEERS);
}

fn ten_thousand_in_order_to_listener(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    let sender = thread::spawn(move || {
        for i in 0..10_000u32 {
            c.send(&i.to_le_bytes()).unwrap();
        }
        c
    });
    for i in 0..10_000u32 {
        assert_eq!(hub.message(id), i.to_le_bytes());
    }
    drop(sender.join().unwrap());
}

fn ten_thousand_in_order_to_dialer(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    // The dialer acknowledges every second message: the pace of a hub feeding a daemon one
    // task at a time, and within what NNG's polyamorous mode delivers without dropping (each
    // NNG pipe queues two messages). Unpaced bursts are checked natively in tests/native.rs.
    let reader = thread::spawn(move || {
        for i in 0..10_000u32 {
            assert_eq!(recv(&c), i.to_le_bytes(), "message {i}");
            if i % 2 == 1 {
                c.send(b"ack").unwrap();
            }
        }
    });
    for pair in 0..5_000u32 {
        hub.l.send(id, &(2 * pair).to_le_bytes()).unwrap();
        hub.l.send(id, &(2 * pair + 1).to_le_bytes()).unwrap();
        assert_eq!(hub.message(id), b"ack");
    }
    reader.join().unwrap();
}

fn eight_mib_message(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    let big = pattern(8 << 20, 7);
    let c = Arc::new(c);
    let c2 = Arc::clone(&c);
    let big2 = big.clone();
    // Sent from another thread: the hub must poll while a large message streams in.
    let t = thread::spawn(move || c2.send(&big2).unwrap());
    assert!(hub.message(id) == big, "8 MiB to listener intact");
    t.join().unwrap();
    let back = pattern(8 << 20, 99);
    hub.l.send(id, &back).unwrap();
    // The hub flushes what the socket could not take at once while polling.
    let c3 = Arc::clone(&c);
    let r = thread::spawn(move || recv(&c3));
    let (got, ev) = common::poll_until_joined(&hub.l, r);
    assert!(got == back, "8 MiB to dialer intact");
    assert!(ev.is_empty(), "{ev:?}");
}

/// Part layouts `send_parts` must deliver as their concatenation: none, empty parts at either
/// end and in the middle, a task frame's shape (small prefix, payload, suffix, trace), and
/// more parts than the native backend writes in one go. Each fits in the socket buffers (the
/// test does not poll while one side sends); `eight_mib_message_in_parts` covers queueing.
fn part_layouts() -> Vec<Vec<Vec<u8>>> {
    vec![
        vec![],
        vec![vec![]],
        vec![b"a".to_vec()],
        vec![vec![], b"ab".to_vec(), vec![], b"cd".to_vec(), vec![]],
        vec![
            pattern(30, 1),
            pattern(1000, 2),
            pattern(7, 3),
            pattern(55, 4),
        ],
        vec![pattern(40, 5), pattern(60_000, 6), pattern(7, 7), vec![]],
        (0..12u8).map(|i| pattern(usize::from(i) * 3, i)).collect(),
    ]
}

fn send_parts_arrive_joined_over(url: &str, b: Mode) {
    let mut hub = Hub::bind(url, b);
    let (c, id) = hub.dial(b);
    for layout in part_layouts() {
        let parts: Vec<&[u8]> = layout.iter().map(Vec::as_slice).collect();
        let joined = layout.concat();
        hub.l.send_parts(id, &parts).unwrap();
        assert!(recv(&c) == joined, "{} parts to dialer", parts.len());
        c.send_parts(&parts).unwrap();
        assert!(
            hub.message(id) == joined,
            "{} parts to listener",
            parts.len()
        );
    }
    // Interleaved with whole messages, order holds.
    hub.l.send_parts(id, &[b"x", b"y"]).unwrap();
    hub.l.send(id, b"z").unwrap();
    assert_eq!(recv(&c), b"xy");
    assert_eq!(recv(&c), b"z");
    c.send_parts(&[b"1", b"", b"2"]).unwrap();
    c.send(b"3").unwrap();
    assert_eq!(hub.message(id), b"12");
    assert_eq!(hub.message(id), b"3");
}

fn send_parts_arrive_joined(b: Mode) {
    send_parts_arrive_joined_over("tcp://127.0.0.1:0", b);
}

fn send_parts_arrive_joined_over_ipc(b: Mode) {
    send_parts_arrive_joined_over(&format!("ipc:///tmp/{}.sock", unique("parts")), b);
}

fn eight_mib_message_in_parts(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    let big = pattern(8 << 20, 11);
    let c = Arc::new(c);
    let c2 = Arc::clone(&c);
    let big2 = big.clone();
    let t = thread::spawn(move || {
        let (a, rest) = big2.split_at(45);
        let (m, z) = rest.split_at(5 << 20);
        c2.send_parts(&[a, m, z]).unwrap()
    });
    assert!(hub.message(id) == big, "8 MiB in parts to listener intact");
    t.join().unwrap();
    let (a, rest) = big.split_at(3);
    let (m, z) = rest.split_at(3 << 20);
    hub.l.send_parts(id, &[a, m, &[], z]).unwrap();
    // What the socket cannot take at once is queued and flushed by polling.
    let c3 = Arc::clone(&c);
    let r = thread::spawn(move || recv(&c3));
    let (got, ev) = common::poll_until_joined(&hub.l, r);
    assert!(got == big, "8 MiB in parts to dialer intact");
    assert!(ev.is_empty(), "{ev:?}");
}

fn empty_message(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    c.send(b"").unwrap();
    c.send(b"after").unwrap();
    assert_eq!(hub.message(id), b"");
    assert_eq!(hub.message(id), b"after");
    hub.l.send(id, b"").unwrap();
    hub.l.send(id, b"x").unwrap();
    assert_eq!(recv(&c), b"");
    assert_eq!(recv(&c), b"x");
}

fn first_message_bound(b: Mode) {
    // A peer that opens with a small message may then send more than the first-message bound.
    // One that opens with more is dropped by the native backend (plain and TLS); NNG ignores
    // the option (documented on Options::max_first_message) and delivers it.
    let o = Options {
        max_first_message: Some(1024),
        ..opts(b)
    };
    let mut hub = Hub::bind_with("tcp://127.0.0.1:0", b, &o);
    let (c, id) = hub.dial(b);
    c.send(b"hi").unwrap();
    assert_eq!(hub.message(id), b"hi");
    let big = pattern(64 * 1024, 3);
    c.send(&big).unwrap();
    assert!(hub.message(id) == big, "64 KiB after the first message");
    let (c2, id2) = hub.dial(b);
    let first = pattern(2048, 1);
    c2.send(&first).unwrap();
    match (b, hub.next()) {
        (Mode::Nng | Mode::NngWs, Event::Message(i, m)) => assert!(i == id2 && m == first),
        (
            Mode::Native | Mode::Tls | Mode::Ws | Mode::Wss,
            Event::Disconnected(i, DisconnectReason::Protocol(t)),
        ) => {
            assert_eq!(i, id2);
            assert!(
                t.contains("first message") && t.contains("2048") && t.contains("1024"),
                "{t}"
            );
        }
        (_, other) => panic!("unexpected {}", short(&other)),
    }
    hub.l.send(id, b"ok").unwrap();
    assert_eq!(recv(&c), b"ok");
}

fn send_to_unknown_peer(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    assert!(matches!(
        hub.l.send(mirai_transport::PeerId(424242), b"x"),
        Err(Error::UnknownPeer(mirai_transport::PeerId(424242)))
    ));
    let (c, id) = hub.dial(b);
    c.close();
    assert_eq!(hub.disconnected(id), DisconnectReason::Closed);
    assert!(matches!(hub.l.send(id, b"x"), Err(Error::UnknownPeer(i)) if i == id));
}

fn dial_nobody_fails_at_once(b: Mode) {
    let held = hold_port();
    let url = tcp(b, &format!("127.0.0.1:{}", held.port));
    let e = Connection::dial(&url, &opts(b))
        .err()
        .expect("nobody listens");
    assert!(e.to_string().contains(&url), "error names the URL: {e}");
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.code().0, 6, "{e:?}");
    let path = format!("ipc:///tmp/{}.sock", unique("none"));
    let e = Connection::dial(&path, &opts(b))
        .err()
        .expect("no socket file");
    assert!(e.to_string().contains(&path), "error names the URL: {e}");
    assert!(e.is_retryable(), "{e:?}");
    let abs = format!("abstract://{}", unique("none"));
    let e = Connection::dial(&abs, &opts(b))
        .err()
        .expect("no abstract listener");
    assert!(e.to_string().contains(&abs), "error names the URL: {e}");
    // Bad URLs are not worth retrying.
    let e = Connection::dial("tcp://127.0.0.1", &opts(b))
        .err()
        .expect("no port");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("tcp://127.0.0.1"), "{e}");
}

/// The hub appears 300 ms after the dialer starts trying.
fn dial_retry_until(url: &str, b: Mode, before_bind: impl FnOnce() + Send + 'static) {
    let url2 = url.to_string();
    let server = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        before_bind();
        let mut hub = Hub::bind(&url2, b);
        let id = hub.connected();
        hub.message(id)
    });
    let deadline = Instant::now() + LONG;
    let c =
        Connection::dial_retry(url, &opts(b), || Instant::now() > deadline).expect("dial_retry");
    c.send(b"made it").unwrap();
    assert_eq!(server.join().unwrap(), b"made it");
}

fn dial_retry_waits_for_listener(b: Mode) {
    // TCP, the daemon's usual case: the port is held until just before the hub binds it.
    let held = hold_port();
    let url = tcp(b, &format!("127.0.0.1:{}", held.port));
    dial_retry_until(&url, b, move || drop(held));
    // An abstract socket: no port to share with parallel tests at all.
    dial_retry_until(&format!("abstract://{}", unique("later")), b, || {});
}

fn dial_retry_gives_up(b: Mode) {
    let held = hold_port();
    let url = tcp(b, &format!("127.0.0.1:{}", held.port));
    let mut tries = 0;
    let e = Connection::dial_retry(&url, &opts(b), || {
        tries += 1;
        tries > 2
    })
    .err()
    .expect("gives up");
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert_eq!(tries, 3);
}

fn tcp_port_zero_resolved(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let url = hub.url();
    let port = port_of(&url);
    assert_ne!(port, 0, "{url}");
    assert!(url.starts_with(&tcp(b, "127.0.0.1:")), "{url}");
    let (c, id) = hub.dial(b);
    c.send(b"hi").unwrap();
    assert_eq!(hub.message(id), b"hi");
}

fn ipv6_loopback(b: Mode) {
    let mut hub = Hub::bind("tcp://[::1]:0", b);
    assert!(hub.url().starts_with(&tcp(b, "[::1]:")), "{}", hub.url());
    let (c, id) = hub.dial(b);
    c.send(b"v6").unwrap();
    assert_eq!(hub.message(id), b"v6");
    hub.l.send(id, b"v6 back").unwrap();
    assert_eq!(recv(&c), b"v6 back");
}

fn ipc_path(b: Mode) {
    let path = format!("/tmp/{}.sock", unique("ipc"));
    let url = format!("ipc://{path}");
    {
        let mut hub = Hub::bind(&url, b);
        assert_eq!(hub.url(), url);
        let (c, id) = hub.dial(b);
        c.send(b"over ipc").unwrap();
        assert_eq!(hub.message(id), b"over ipc");
        hub.l.send(id, b"back").unwrap();
        assert_eq!(recv(&c), b"back");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("socket file exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only socket file");
    }
    assert!(
        !std::path::Path::new(&path).exists(),
        "socket file removed when the listener drops"
    );
}

fn abstract_socket(b: Mode) {
    let url = format!("abstract://{}", unique("abs"));
    let mut hub = Hub::bind(&url, b);
    assert_eq!(hub.url(), url);
    let (c, id) = hub.dial(b);
    c.send(b"abstract").unwrap();
    assert_eq!(hub.message(id), b"abstract");
    hub.l.send(id, b"back").unwrap();
    assert_eq!(recv(&c), b"back");
}

fn wake_unblocks_poll(b: Mode) {
    let hub = Arc::new(Hub::bind("tcp://127.0.0.1:0", b).l);
    // Woken while blocked.
    let (tx, rx) = mpsc::channel();
    let h2 = Arc::clone(&hub);
    let t = thread::spawn(move || {
        let mut ev = Vec::new();
        h2.poll(&mut ev, None).expect("poll");
        tx.send(ev.len()).unwrap();
    });
    thread::sleep(Duration::from_millis(100));
    hub.wake();
    assert_eq!(rx.recv_timeout(LONG).expect("poll returned after wake"), 0);
    t.join().unwrap();
    // Woken before polling: the next poll returns at once.
    hub.wake();
    let (tx, rx) = mpsc::channel();
    let h3 = Arc::clone(&hub);
    thread::spawn(move || {
        let mut ev = Vec::new();
        h3.poll(&mut ev, None).expect("poll");
        tx.send(()).unwrap();
    });
    rx.recv_timeout(LONG)
        .expect("poll returned after an earlier wake");
}

fn poll_times_out(b: Mode) {
    let hub = Hub::bind("tcp://127.0.0.1:0", b);
    let mut ev = Vec::new();
    let start = Instant::now();
    hub.l
        .poll(&mut ev, Some(Duration::from_millis(50)))
        .unwrap();
    assert!(ev.is_empty());
    assert!(
        start.elapsed() >= Duration::from_millis(45),
        "waited the timeout"
    );
}

fn disconnect_reports_local(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    let (c2, id2) = hub.dial(b);
    hub.l.disconnect(id);
    assert_eq!(hub.disconnected(id), DisconnectReason::Local);
    assert!(matches!(hub.l.send(id, b"x"), Err(Error::UnknownPeer(_))));
    assert!(
        matches!(c.recv(Some(LONG)), Err(Error::Closed)),
        "dialer sees the close"
    );
    // The other peer is unaffected. (NNG's dialer may reconnect after the close under load: that
    // is a new peer with a new id, never `id` again, so such a `Connected` may come first.)
    c2.send(b"still here").unwrap();
    loop {
        match hub.next() {
            Event::Message(from, m) if from == id2 => {
                assert_eq!(m, b"still here");
                break;
            }
            Event::Connected(new) if new != id && new != id2 => continue,
            other => panic!("expected a message from {id2}, got {}", short(&other)),
        }
    }
}

fn dialer_close_reported(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    c.close();
    assert_eq!(hub.disconnected(id), DisconnectReason::Closed);
    assert!(matches!(c.send(b"x"), Err(Error::Closed)));
    assert!(matches!(
        c.recv(Some(Duration::from_millis(10))),
        Err(Error::Closed)
    ));
}

fn listener_gone_dialer_sees_closed(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    hub.l.send(id, b"last words").unwrap();
    assert_eq!(recv(&c), b"last words");
    drop(hub);
    assert!(matches!(c.recv(Some(LONG)), Err(Error::Closed)));
    assert!(matches!(c.recv(Some(Duration::ZERO)), Err(Error::Closed)));
    // Sending to a hub that has gone fails rather than blocking forever.
    let mut failed = false;
    for _ in 0..100 {
        if c.send(b"anyone?").is_err() {
            failed = true;
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert!(failed, "send to a vanished hub errs");
}

fn try_recv_and_timeouts(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    assert_eq!(c.try_recv().unwrap(), None);
    assert_eq!(c.recv(Some(Duration::from_millis(30))).unwrap(), None);
    hub.l.send(id, b"soon").unwrap();
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(m) = c.try_recv().unwrap() {
            assert_eq!(m, b"soon");
            break;
        }
        assert!(Instant::now() < deadline, "message never arrived");
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.try_recv().unwrap(), None);
}

fn concurrent_send_and_recv_on_dialer(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let (c, id) = hub.dial(b);
    let c = Arc::new(c);
    let received = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (c, received) = (Arc::clone(&c), Arc::clone(&received));
        thread::spawn(move || {
            (0..500u32)
                .map(|_| {
                    let v = u32::from_le_bytes(recv(&c).try_into().unwrap());
                    received.fetch_add(1, Ordering::Release);
                    v
                })
                .collect::<Vec<_>>()
        })
    };
    let writer = {
        let (c, received) = (Arc::clone(&c), Arc::clone(&received));
        thread::spawn(move || {
            for i in 0..500u32 {
                // At most two echoes in flight (NNG's polyamorous hub drops beyond that).
                let deadline = Instant::now() + LONG;
                while received.load(Ordering::Acquire) + 2 <= i as usize {
                    assert!(Instant::now() < deadline, "echo {i} never came back");
                    thread::sleep(Duration::from_micros(100));
                }
                c.send(&i.to_le_bytes()).unwrap();
            }
        })
    };
    // Echo everything back: the dialer receives on one thread while sending on another.
    for _ in 0..500 {
        let m = hub.message(id);
        hub.l.send(id, &m).unwrap();
    }
    writer.join().unwrap();
    assert_eq!(reader.join().unwrap(), (0..500).collect::<Vec<_>>());
}

fn ids_never_reused(b: Mode) {
    let mut hub = Hub::bind("tcp://127.0.0.1:0", b);
    let mut ids = HashSet::new();
    for _ in 0..10 {
        let (c, id) = hub.dial(b);
        assert!(ids.insert(id), "id {id} reused");
        c.close();
        assert_eq!(hub.disconnected(id), DisconnectReason::Closed);
    }
}

/// `tls+tcp://` is served only by the native backend, and only with credentials of the right
/// side; the NNG backend refuses it whatever the options.
fn tls_scheme_needs_support_and_configuration(b: Mode) {
    let bind = |o: &Options| Listener::bind("tls+tcp://127.0.0.1:0", o).err();
    let dial = |o: &Options| Connection::dial("tls+tcp://127.0.0.1:5555", o).err();
    match b {
        Mode::Nng | Mode::NngWs => {
            let with_tls = Options {
                tls: Some(tls_config()),
                ..opts(b)
            };
            for o in [opts(b), with_tls] {
                assert!(matches!(bind(&o), Some(Error::UnsupportedScheme(_))));
                assert!(matches!(dial(&o), Some(Error::UnsupportedScheme(_))));
            }
        }
        Mode::Native | Mode::Ws => {
            for e in [bind(&opts(b)), dial(&opts(b))] {
                let e = e.expect("refused without credentials");
                assert!(matches!(e, Error::TlsConfig(_)), "{e:?}");
                assert!(e.to_string().contains("Options::tls"), "{e}");
                assert!(e.to_string().contains("tls+tcp://127.0.0.1:"), "{e}");
                assert_eq!(e.code(), (3, "Invalid argument"));
                assert!(!e.is_retryable());
            }
        }
        Mode::Tls | Mode::Wss => {
            // Each side needs its own part: a dialer-only config cannot listen, and the other
            // way round.
            let z = zero_config_for(&["127.0.0.1"]).unwrap();
            let server_only = Options {
                tls: Some(z.server_config().unwrap()),
                ..Options::default()
            };
            let client_only = Options {
                tls: Some(z.client_config().unwrap()),
                ..Options::default()
            };
            assert!(
                matches!(bind(&client_only), Some(Error::TlsConfig(m)) if m.contains("server part"))
            );
            assert!(
                matches!(dial(&server_only), Some(Error::TlsConfig(m)) if m.contains("client part"))
            );
            assert!(bind(&server_only).is_none());
        }
    }
}

fn bind_twice_is_address_in_use(b: Mode) {
    let hub = Hub::bind("tcp://127.0.0.1:0", b);
    let e = Listener::bind(&hub.url(), &opts(b))
        .err()
        .expect("port taken");
    assert!(matches!(e, Error::Bind { .. }), "{e:?}");
    assert_eq!(e.code(), (10, "Address in use"), "{e:?}");
    assert!(e.to_string().contains(&hub.url()), "{e}");
    let abs = format!("abstract://{}", unique("twice"));
    let _first = Listener::bind(&abs, &opts(b)).unwrap();
    assert!(matches!(
        Listener::bind(&abs, &opts(b)),
        Err(Error::Bind { .. })
    ));
}

fn invalid_urls_rejected(b: Mode) {
    for url in ["tcp://127.0.0.1", "udp://127.0.0.1:1", "ipc://", "nonsense"] {
        let e = Listener::bind(url, &opts(b))
            .err()
            .unwrap_or_else(|| panic!("{url} binds"));
        assert!(matches!(e, Error::InvalidUrl { .. }), "{url}: {e:?}");
        assert!(e.to_string().contains(url), "{e}");
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod native {
            $( #[test] fn $name() { super::$name(super::Mode::Native) } )*
        }
        #[cfg(feature = "nng")]
        mod nng {
            $( #[test] fn $name() { super::$name(super::Mode::Nng) } )*
        }
        mod tls {
            $( #[test] fn $name() { super::$name(super::Mode::Tls) } )*
        }
        mod ws {
            $( #[test] fn $name() { super::$name(super::Mode::Ws) } )*
        }
        mod wss {
            $( #[test] fn $name() { super::$name(super::Mode::Wss) } )*
        }
        #[cfg(feature = "nng")]
        mod nng_ws {
            $( #[test] fn $name() { super::$name(super::Mode::NngWs) } )*
        }
    };
}

conformance!(
    event_order,
    messages_then_close_keep_order,
    exchange_both_directions,
    fifty_peers_echo,
    ten_thousand_in_order_to_listener,
    ten_thousand_in_order_to_dialer,
    eight_mib_message,
    eight_mib_message_in_parts,
    send_parts_arrive_joined,
    send_parts_arrive_joined_over_ipc,
    empty_message,
    first_message_bound,
    send_to_unknown_peer,
    dial_nobody_fails_at_once,
    dial_retry_waits_for_listener,
    dial_retry_gives_up,
    tcp_port_zero_resolved,
    ipv6_loopback,
    ipc_path,
    abstract_socket,
    wake_unblocks_poll,
    poll_times_out,
    disconnect_reports_local,
    dialer_close_reported,
    listener_gone_dialer_sees_closed,
    try_recv_and_timeouts,
    concurrent_send_and_recv_on_dialer,
    ids_never_reused,
    tls_scheme_needs_support_and_configuration,
    bind_twice_is_address_in_use,
    invalid_urls_rejected,
);
