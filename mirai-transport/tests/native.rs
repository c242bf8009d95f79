//! Checks of the native backend that need raw access to the wire or depend on its queueing:
//! malformed and truncated frames, huge length prefixes, non-blocking sends to a peer that does
//! not read, socket-file handling. The backend-neutral contract is in `tests/conformance.rs`.
use mirai_transport::{Connection, DisconnectReason, Error, Event, Listener, Options, PeerId};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

mod common;

const LONG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Log capture: framing violations are warnings naming the peer and the reason.

struct Capture;
static LOGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LOGS.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
                "{} {}",
                r.level(),
                r.args()
            ));
        }
    }
    fn flush(&self) {}
}

fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Capture).expect("logger");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// The warning that contains every one of `parts` (they are logged before the event that
/// reports the disconnect, so no waiting is needed).
fn logged(parts: &[&str]) -> String {
    let logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    logs.iter()
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no log line with {parts:?}; have {logs:?}"))
        .clone()
}

fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "mirai-n-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

struct Hub {
    l: Listener,
    pending: VecDeque<Event>,
}

impl Hub {
    fn bind(url: &str, opts: &Options) -> Hub {
        Hub {
            l: Listener::bind(url, opts).expect("bind"),
            pending: VecDeque::new(),
        }
    }

    fn tcp() -> Hub {
        Hub::bind("tcp://127.0.0.1:0", &Options::default())
    }

    fn addr(&self) -> String {
        self.l.url().trim_start_matches("tcp://").to_string()
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
            Event::Message(id, m) => panic!(
                "expected a message from {from}, got {} bytes from {id}",
                m.len()
            ),
            other => panic!("expected a message from {from}, got {other:?}"),
        }
    }

    fn disconnected(&mut self, who: PeerId) -> DisconnectReason {
        match self.next() {
            Event::Disconnected(id, r) if id == who => r,
            Event::Message(id, m) => panic!(
                "expected Disconnected({who}), got {} bytes from {id}",
                m.len()
            ),
            other => panic!("expected Disconnected({who}), got {other:?}"),
        }
    }

    /// A well-behaved peer, to show the hub keeps serving others.
    fn good_peer(&mut self) -> (Connection, PeerId) {
        let c = Connection::dial(self.l.url(), &Options::default()).expect("dial");
        (c, self.connected())
    }

    fn raw_peer(&mut self) -> (TcpStream, PeerId) {
        let s = TcpStream::connect(self.addr()).expect("raw connect");
        (s, self.connected())
    }

    fn still_works(&mut self, c: &Connection, id: PeerId) {
        c.send(b"still fine").unwrap();
        assert_eq!(self.message(id), b"still fine");
        self.l.send(id, b"yes").unwrap();
        assert_eq!(c.recv(Some(LONG)).unwrap().unwrap(), b"yes");
    }
}

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

#[test]
fn listener_and_connection_are_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Listener>();
    check::<Connection>();
}

#[test]
fn garbage_bytes_drop_only_that_peer() {
    let mut hub = Hub::tcp();
    let (good, gid) = hub.good_peer();
    let (mut raw, rid) = hub.raw_peer();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    match hub.disconnected(rid) {
        DisconnectReason::Protocol(text) => assert!(text.contains("exceeds the maximum"), "{text}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    // The hub closed the offender's socket.
    let mut buf = [0u8; 16];
    raw.set_read_timeout(Some(LONG)).unwrap();
    assert!(matches!(raw.read(&mut buf), Ok(0) | Err(_)));
    hub.still_works(&good, gid);
}

#[test]
fn length_prefix_over_the_limit_is_a_protocol_error() {
    let opts = Options {
        max_message: 1 << 30,
        ..Options::default()
    };
    let mut hub = Hub::bind("tcp://127.0.0.1:0", &opts);
    let (good, gid) = hub.good_peer();
    let (mut raw, rid) = hub.raw_peer();
    // Claims 4 GiB and keeps the connection open: the hub must not wait for (or allocate) it.
    raw.write_all(&(4u64 << 30).to_le_bytes()).unwrap();
    raw.write_all(b"a few bytes").unwrap();
    match hub.disconnected(rid) {
        DisconnectReason::Protocol(text) => {
            assert!(
                text.contains("4294967296") && text.contains("1073741824"),
                "{text}"
            )
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    hub.still_works(&good, gid);
    drop(raw);
}

#[test]
fn huge_claim_under_the_limit_waits_without_blocking_others() {
    // Default limit (16 GiB): a 4 GiB claim is legal and is simply waited for, while memory
    // grows only with the bytes that arrive (see the unit tests of the reassembly buffer).
    let mut hub = Hub::tcp();
    let (good, gid) = hub.good_peer();
    let (mut raw, rid) = hub.raw_peer();
    raw.write_all(&(4u64 << 30).to_le_bytes()).unwrap();
    raw.write_all(&[1u8; 1000]).unwrap();
    hub.still_works(&good, gid);
    drop(raw);
    match hub.disconnected(rid) {
        DisconnectReason::Protocol(text) => {
            assert!(text.contains("after 1000 of 4294967296 bytes"), "{text}")
        }
        other => panic!("expected a truncation report, got {other:?}"),
    }
    hub.still_works(&good, gid);
}

#[test]
fn partial_frame_then_close() {
    let mut hub = Hub::tcp();
    let (mut raw, rid) = hub.raw_peer();
    let mut bytes = frame(b"whole");
    bytes.extend_from_slice(&100u64.to_le_bytes());
    bytes.extend_from_slice(b"part");
    raw.write_all(&bytes).unwrap();
    drop(raw);
    assert_eq!(hub.message(rid), b"whole");
    match hub.disconnected(rid) {
        DisconnectReason::Protocol(text) => {
            assert!(text.contains("after 4 of 100 bytes"), "{text}")
        }
        other => panic!("expected a truncation report, got {other:?}"),
    }

    let (mut raw, rid) = hub.raw_peer();
    raw.write_all(&[5, 0, 0]).unwrap();
    drop(raw);
    match hub.disconnected(rid) {
        DisconnectReason::Protocol(text) => {
            assert!(text.contains("3 of 8 bytes of a length prefix"), "{text}")
        }
        other => panic!("expected a truncation report, got {other:?}"),
    }
}

#[test]
fn frames_split_byte_by_byte_reassemble() {
    let mut hub = Hub::tcp();
    let (mut raw, rid) = hub.raw_peer();
    raw.set_nodelay(true).unwrap();
    let mut bytes = frame(b"first");
    bytes.extend(frame(b""));
    bytes.extend(frame(&[9u8; 200]));
    let writer = thread::spawn(move || {
        for b in bytes {
            raw.write_all(&[b]).unwrap();
            thread::sleep(Duration::from_micros(200));
        }
        raw
    });
    assert_eq!(hub.message(rid), b"first");
    assert_eq!(hub.message(rid), b"");
    assert_eq!(hub.message(rid), vec![9u8; 200]);
    drop(writer.join().unwrap());
    assert_eq!(hub.disconnected(rid), DisconnectReason::Closed);
}

#[test]
fn send_never_blocks_on_a_peer_that_does_not_read() {
    const N: usize = 64;
    const SIZE: usize = 1 << 20;
    let mut hub = Hub::tcp();
    let (c, id) = hub.good_peer();
    // 64 MiB to a peer not reading: far beyond socket buffers. Run the sends in a thread
    // and wait with a timeout, so a blocking send fails the test instead of hanging it.
    let l = Arc::new(hub.l);
    let (tx, rx) = mpsc::channel();
    let l2 = Arc::clone(&l);
    thread::spawn(move || {
        for i in 0..N {
            let mut m = vec![(i % 251) as u8; SIZE];
            m[..8].copy_from_slice(&(i as u64).to_le_bytes());
            l2.send(id, &m).unwrap();
        }
        tx.send(()).unwrap();
    });
    rx.recv_timeout(LONG)
        .expect("64 sends returned while the peer was not reading");
    // Now the peer reads everything, in order, while the hub's poll flushes its queue.
    let reader = thread::spawn(move || {
        for i in 0..N {
            let m = c.recv(Some(LONG)).unwrap().expect("message");
            assert_eq!(m.len(), SIZE);
            assert_eq!(
                u64::from_le_bytes(m[..8].try_into().unwrap()),
                i as u64,
                "order"
            );
            assert!(
                m[8..].iter().all(|&b| b == (i % 251) as u8),
                "content of message {i}"
            );
        }
        c
    });
    let mut ev = Vec::new();
    let deadline = Instant::now() + LONG;
    while !reader.is_finished() {
        assert!(Instant::now() < deadline, "reader did not finish");
        l.poll(&mut ev, Some(Duration::from_millis(20))).unwrap();
    }
    let _c = reader.join().unwrap();
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn unpaced_burst_to_dialer_keeps_order() {
    let mut hub = Hub::tcp();
    let (c, id) = hub.good_peer();
    for i in 0..10_000u32 {
        hub.l.send(id, &i.to_le_bytes()).unwrap();
    }
    let reader = thread::spawn(move || {
        for i in 0..10_000u32 {
            assert_eq!(c.recv(Some(LONG)).unwrap().unwrap(), i.to_le_bytes());
        }
    });
    common::poll_until_joined(&hub.l, reader);
}

#[test]
fn unpaced_burst_of_parted_messages_to_dialer_keeps_order_and_bytes() {
    // Enough bytes that the socket refuses some: a message is then cut mid-part (its rest
    // queued) and later ones are queued whole, both from parts.
    let mut hub = Hub::tcp();
    let (c, id) = hub.good_peer();
    let msg = |i: u32| -> Vec<Vec<u8>> {
        let n = (i as usize * 7919) % 20_000;
        vec![
            i.to_le_bytes().to_vec(),
            vec![(i % 251) as u8; n],
            Vec::new(),
            vec![7; (i % 3) as usize],
        ]
    };
    for i in 0..2_000u32 {
        let parts = msg(i);
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        hub.l.send_parts(id, &refs).unwrap();
    }
    let reader = thread::spawn(move || {
        for i in 0..2_000u32 {
            assert!(
                c.recv(Some(LONG)).unwrap().unwrap() == msg(i).concat(),
                "message {i}"
            );
        }
    });
    common::poll_until_joined(&hub.l, reader);
}

#[test]
fn parts_go_out_as_one_length_prefixed_frame() {
    // On the wire a parted message is exactly the frame of its concatenation.
    let mut hub = Hub::tcp();
    let (mut raw, id) = hub.raw_peer();
    hub.l
        .send_parts(id, &[b"head-", b"", b"body", b"-tail"])
        .unwrap();
    let want = frame(b"head-body-tail");
    let mut got = vec![0u8; want.len()];
    raw.read_exact(&mut got).unwrap();
    assert_eq!(got, want);
}

#[test]
fn concurrent_senders_to_one_peer_keep_each_threads_order() {
    let mut hub = Hub::tcp();
    let (c, id) = hub.good_peer();
    let l = Arc::new(hub.l);
    let senders: Vec<_> = (0..4u8)
        .map(|t| {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                for i in 0..500u32 {
                    let mut m = vec![t; 10_000];
                    m[1..5].copy_from_slice(&i.to_le_bytes());
                    l.send(id, &m).unwrap();
                }
            })
        })
        .collect();
    let reader = thread::spawn(move || {
        let mut next = [0u32; 4];
        for _ in 0..2000 {
            let m = c.recv(Some(LONG)).unwrap().unwrap();
            let t = m[0] as usize;
            assert_eq!(
                u32::from_le_bytes(m[1..5].try_into().unwrap()),
                next[t],
                "thread {t} order"
            );
            assert!(m[5..].iter().all(|&b| b == t as u8));
            next[t] += 1;
        }
    });
    common::poll_until_joined(&l, reader);
    for s in senders {
        s.join().unwrap();
    }
}

#[test]
fn dialer_rejects_oversized_message_then_is_closed() {
    let mut hub = Hub::tcp();
    let small = Options {
        max_message: 100,
        ..Options::default()
    };
    let c = Connection::dial(hub.l.url(), &small).unwrap();
    let id = hub.connected();
    hub.l.send(id, &[0u8; 100]).unwrap();
    hub.l.send(id, &[0u8; 101]).unwrap();
    assert_eq!(c.recv(Some(LONG)).unwrap().unwrap().len(), 100);
    match c.recv(Some(LONG)) {
        Err(Error::MessageTooLarge { len: 101, max: 100 }) => {}
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert!(matches!(c.recv(Some(LONG)), Err(Error::Closed)));
    assert_eq!(hub.disconnected(id), DisconnectReason::Closed);
}

#[test]
fn raw_fd_becomes_readable_when_a_message_arrives() {
    let mut hub = Hub::tcp();
    let (c, id) = hub.good_peer();
    let fd = c.raw_fd().expect("native connections have an fd");
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
    assert_eq!(ready, 0, "nothing to read yet");
    hub.l.send(id, b"ding").unwrap();
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, LONG.as_millis() as i32) };
    assert_eq!(ready, 1);
    assert_eq!(c.try_recv().unwrap().unwrap(), b"ding");
}

#[test]
fn recv_timeout_does_not_split_frames() {
    // Many medium messages read with short timeouts: every one comes out whole.
    let mut hub = Hub::tcp();
    let (c, id) = hub.good_peer();
    let reader = thread::spawn(move || {
        let mut got = 0u32;
        let deadline = Instant::now() + LONG;
        while got < 300 {
            assert!(Instant::now() < deadline);
            if let Some(m) = c.recv(Some(Duration::from_millis(1))).unwrap() {
                assert_eq!(m.len(), 70_000);
                assert_eq!(u32::from_le_bytes(m[..4].try_into().unwrap()), got);
                got += 1;
            }
        }
    });
    for i in 0..300u32 {
        let mut m = vec![0u8; 70_000];
        m[..4].copy_from_slice(&i.to_le_bytes());
        hub.l.send(id, &m).unwrap();
    }
    common::poll_until_joined(&hub.l, reader);
}

#[test]
fn stale_ipc_socket_is_replaced_but_live_or_foreign_files_are_not() {
    let path = format!("/tmp/{}.sock", unique("stale"));
    let url = format!("ipc://{path}");
    // A socket file left behind by a listener that is gone.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(std::path::Path::new(&path).exists());
    let mut hub = Hub::bind(&url, &Options::default());
    let (c, id) = hub.good_peer();
    hub.still_works(&c, id);
    // A second listener must not steal a live socket.
    let e = Listener::bind(&url, &Options::default())
        .err()
        .expect("in use");
    assert_eq!(e.code().0, 10, "{e:?}");
    drop(hub);
    assert!(!std::path::Path::new(&path).exists());
    // A regular file is never deleted.
    std::fs::write(&path, b"precious").unwrap();
    assert!(Listener::bind(&url, &Options::default()).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn local_disconnect_of_a_busy_peer() {
    // disconnect() while the peer is streaming in: Local is reported once, nothing after it.
    let mut hub = Hub::tcp();
    let (c, id) = hub.good_peer();
    let c = Arc::new(c);
    let c2 = Arc::clone(&c);
    let writer = thread::spawn(move || while c2.send(&[1u8; 1000]).is_ok() {});
    let _ = hub.message(id);
    hub.l.disconnect(id);
    hub.l.disconnect(id); // twice is harmless
    loop {
        match hub.next() {
            Event::Message(i, _) if i == id => continue,
            Event::Disconnected(i, r) if i == id => {
                assert_eq!(r, DisconnectReason::Local);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    writer.join().unwrap();
    let mut ev = Vec::new();
    hub.l
        .poll(&mut ev, Some(Duration::from_millis(50)))
        .unwrap();
    assert!(ev.is_empty(), "nothing after Disconnected: {ev:?}");
}

#[test]
fn ipc_listener_refuses_peers_of_other_users() {
    use std::os::unix::process::CommandExt;
    // Starting a process as another user needs root (CI and these machines run as root).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to start a peer as another user");
        return;
    }
    let name = unique("uid");
    let hub = Hub::bind(&format!("abstract://{name}"), &Options::default());
    // A peer running as `nobody` connects and sends one framed message, then lingers.
    let script = format!(
        "import socket,struct,time\ns=socket.socket(socket.AF_UNIX)\ns.connect('\\0{name}')\n\
         s.sendall(struct.pack('<Q',5)+b'other')\ntime.sleep(2)\n"
    );
    let mut other = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .uid(65534)
        .gid(65534)
        .spawn()
        .expect("python3 runs as nobody");
    thread::sleep(Duration::from_millis(300));
    let mine = Connection::dial(hub.l.url(), &Options::default()).expect("same-user dial");
    mine.send(b"mine").unwrap();
    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let mut v = Vec::new();
        hub.l
            .poll(&mut v, Some(Duration::from_millis(100)))
            .unwrap();
        seen.extend(v);
    }
    let _ = other.wait();
    let connects = seen
        .iter()
        .filter(|e| matches!(e, Event::Connected(_)))
        .count();
    let messages: Vec<&[u8]> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Message(_, m) => Some(m.as_slice()),
            _ => None,
        })
        .collect();
    assert_eq!(connects, 1, "only the same-user peer connects: {seen:?}");
    assert_eq!(messages, vec![&b"mine"[..]]);
}

// ---------------------------------------------------------------------------------------------
// The bound on a connection's first message (Options::max_first_message).

/// Bytes a stranger sends after its length prefix; no log line or reason may quote them.
const MARKER: &[u8] = b"PEERBYTESMARKER";

/// A raw stream to a hub, whatever its socket type.
trait Duplex: Read + Write + Send {}
impl<T: Read + Write + Send> Duplex for T {}

/// Connects to the hub without the transport, and says how the hub's log names this peer.
fn raw_connect(hub: &mut Hub) -> (Box<dyn Duplex>, String, PeerId) {
    let url = hub.l.url().to_string();
    let (s, label): (Box<dyn Duplex>, String) = match url.strip_prefix("ipc://") {
        Some(path) => (
            Box::new(std::os::unix::net::UnixStream::connect(path).expect("unix connect")),
            format!("local process {}", std::process::id()),
        ),
        None => {
            let s = TcpStream::connect(hub.addr()).expect("raw connect");
            let label = s.local_addr().unwrap().to_string();
            (Box::new(s), label)
        }
    };
    (s, label, hub.connected())
}

/// A stranger claiming 4 GiB as its first message is dropped at the prefix, with a reason
/// (event and log) naming the numbers and its address but never its bytes, while a peer that
/// opened with a small message goes on and may then send more than the first-message bound.
fn first_message_over_the_bound_is_dropped_at_the_prefix(url: &str) {
    init_logs();
    let opts = Options {
        max_first_message: Some(64 * 1024),
        ..Options::default()
    };
    let mut hub = Hub::bind(url, &opts);
    // A legitimate peer opens with a small message, as a daemon says hello.
    let (good, gid) = hub.good_peer();
    good.send(b"hello").unwrap();
    assert_eq!(hub.message(gid), b"hello");

    let (mut raw, label, rid) = raw_connect(&mut hub);
    raw.write_all(&(4u64 << 30).to_le_bytes()).unwrap();
    raw.write_all(MARKER).unwrap();
    // The connection stays open: only the prefix can have ended it (the transport has no
    // timeout of its own), so reaching the event at all shows it was dropped at once.
    let text = match hub.disconnected(rid) {
        DisconnectReason::Protocol(text) => text,
        other => panic!("expected a protocol error, got {other:?}"),
    };
    assert!(
        text.contains("first message") && text.contains("4294967296") && text.contains("65536"),
        "{text}"
    );
    assert!(
        !text.contains("PEERBYTES"),
        "the reason quotes the peer: {text}"
    );
    let line = logged(&["dropped", "first message", "4294967296", &label]);
    assert!(line.starts_with("WARN"), "{line}");
    assert!(
        !line.contains("PEERBYTES"),
        "the log quotes the peer: {line}"
    );
    // The hub closed the stranger's socket.
    let mut buf = [0u8; 16];
    assert!(matches!(raw.read(&mut buf), Ok(0) | Err(_)));

    // After its first message a peer is bounded by max_message alone.
    let big: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 251) as u8).collect();
    let sender = {
        let big = big.clone();
        thread::spawn(move || {
            good.send(&big).unwrap();
            good
        })
    };
    assert!(
        hub.message(gid) == big,
        "1 MiB after the first message arrives intact"
    );
    let good = sender.join().unwrap();
    hub.still_works(&good, gid);

    // A first message exactly at the bound passes, even trickled in, and so do larger ones
    // after it from the same peer.
    let (mut raw, _, rid) = raw_connect(&mut hub);
    let first = frame(&vec![3u8; 64 * 1024]);
    let writer = thread::spawn(move || {
        for piece in first.chunks(10_000) {
            raw.write_all(piece).unwrap();
            thread::sleep(Duration::from_millis(2));
        }
        raw.write_all(&frame(&vec![4u8; 200_000])).unwrap();
        raw
    });
    assert_eq!(hub.message(rid), vec![3u8; 64 * 1024]);
    assert_eq!(hub.message(rid), vec![4u8; 200_000]);
    drop(writer.join().unwrap());
    assert_eq!(hub.disconnected(rid), DisconnectReason::Closed);
    hub.still_works(&good, gid);
}

#[test]
fn first_message_over_the_bound_is_dropped_at_the_prefix_tcp() {
    first_message_over_the_bound_is_dropped_at_the_prefix("tcp://127.0.0.1:0");
}

#[test]
fn first_message_over_the_bound_is_dropped_at_the_prefix_ipc() {
    let path = format!("/tmp/{}.sock", unique("first"));
    first_message_over_the_bound_is_dropped_at_the_prefix(&format!("ipc://{path}"));
}

#[test]
fn oversized_prefixes_are_logged_with_the_peer_address() {
    // Without a first-message bound, max_message still drops a huge claim at its prefix, and
    // the listener says who sent it.
    init_logs();
    let opts = Options {
        max_message: 1 << 30,
        ..Options::default()
    };
    let mut hub = Hub::bind("tcp://127.0.0.1:0", &opts);
    let (mut raw, label, rid) = raw_connect(&mut hub);
    raw.write_all(&(4u64 << 30).to_le_bytes()).unwrap();
    raw.write_all(MARKER).unwrap();
    match hub.disconnected(rid) {
        DisconnectReason::Protocol(text) => {
            assert!(
                !text.contains("first message") && text.contains("1073741824"),
                "{text}"
            )
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    let line = logged(&["dropped", "4294967296", "1073741824", &label]);
    assert!(!line.contains("PEERBYTES"), "{line}");
}
