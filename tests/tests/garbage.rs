//! Bad input on a live host's listener: random bytes, truncated frames, a length prefix
//! claiming 4 GB, old and future protocol versions, a flood of half-open connections. Each is
//! dropped with a logged reason, memory stays bounded, and the host keeps serving its daemons.
//! Task payloads never appear in the log.
//!
//! This binary installs a logger that keeps every record, so its tests can read the log.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use mirai::host::{ErrorCode, Status};
use mirai::proto::{encode, Frame, Hello, TaskId, TaskResult, MAGIC, PROTOCOL_VERSION};
use mirai::transport::{Backend, Options};
use mirai::{Host, HostConfig, Outcome, SubmitOptions};

/// Every log record of this process, as text.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        let line = format!("{} {}: {}", r.level(), r.target(), r.args());
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static LOGGER: OnceLock<&'static Capture> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        // Fails only if a logger was already set, which nothing else in this binary does.
        let _ = log::set_logger(c);
        log::set_max_level(log::LevelFilter::Trace);
        c
    })
}

fn logged() -> Vec<String> {
    capture()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Waits until a log line contains every one of `parts`.
fn wait_logged(parts: &[&str]) -> String {
    let mut found = None;
    let ok = eventually(LONG, || {
        found = logged()
            .into_iter()
            .find(|l| parts.iter().all(|p| l.contains(p)));
        found.is_some()
    });
    assert!(ok, "no log line with {parts:?}");
    found.unwrap_or_default()
}

fn tcp(host: &Host) -> TcpStream {
    let s = TcpStream::connect(host.url().strip_prefix("tcp://").expect("a tcp url")).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    s
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut m = (body.len() as u64).to_le_bytes().to_vec();
    m.extend_from_slice(body);
    m
}

fn with_version(version: u8, frame: &Frame) -> Vec<u8> {
    let mut b = encode(frame);
    b[3] = version;
    b
}

const SECRET: &str = "TOPSECRETPAYLOADMARKER";

#[test]
fn garbage_of_every_kind_is_dropped_with_a_reason_and_the_daemons_keep_serving() {
    capture();
    let config =
        HostConfig::new("tcp://127.0.0.1:0").with_hello_timeout(Duration::from_millis(500));
    let host = Host::start(config).unwrap();
    launch(&host, 2, &args(Backend::Native), 2);
    let before = rss_bytes();
    let mut rng = Rng::new();

    // Random bytes: whatever they claim, they never make a frame.
    for _ in 0..20 {
        let mut s = tcp(&host);
        let junk: Vec<u8> = (0..rng.range(1, 300))
            .map(|_| rng.next_u64() as u8)
            .collect();
        s.write_all(&junk).unwrap();
        // Never a frame: dropped at a length prefix announcing more than a hello can be (64 KiB),
        // or, if it claims less, by the hello timeout or as an undecodable hello.
        assert!(dropped(&s));
    }
    serves(&host, 2);

    // A truncated frame: the connection ends mid-message.
    let mut s = tcp(&host);
    s.write_all(&100u64.to_le_bytes()).unwrap();
    s.write_all(b"MRI\x01 only part of it").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(dropped(&s));
    wait_logged(&["dropped before saying hello", "of 100 bytes of a message"]);

    // A length prefix claiming 4 GB: dropped at the prefix (a hello is tiny), nothing allocated.
    let mut s = tcp(&host);
    s.write_all(&(4u64 << 30).to_le_bytes()).unwrap();
    s.write_all(&[0u8; 4096]).unwrap();
    assert!(dropped(&s));
    wait_logged(&["exceeds the maximum", "first message"]);
    serves(&host, 2);

    // A length prefix within the first-message bound, then silence: the hello timeout drops it.
    let mut s = tcp(&host);
    s.write_all(&(60u64 << 10).to_le_bytes()).unwrap();
    s.write_all(&[0u8; 100]).unwrap();
    assert!(dropped(&s));
    wait_logged(&["no hello within"]);
    serves(&host, 2);

    // An old and a future protocol version, in the header and in a hello.
    let hello = Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        pid: 1,
    });
    for (bytes, reason) in [
        (with_version(0, &hello), "unsupported protocol version 0"),
        (
            with_version(PROTOCOL_VERSION + 1, &hello),
            "unsupported protocol version 2",
        ),
        (
            encode(&Frame::Hello(Hello {
                protocol: PROTOCOL_VERSION + 1,
                pid: 1,
            })),
            "a hello with protocol version 2",
        ),
    ] {
        let mut s = tcp(&host);
        s.write_all(&framed(&bytes)).unwrap();
        assert!(dropped(&s));
        wait_logged(&["dropping connection", reason]);
    }
    // Well framed, but not a frame; and a frame whose body quotes text the CBOR decoder would
    // repeat in its error message.
    let mut evil = MAGIC.to_vec();
    evil.push(PROTOCOL_VERSION);
    evil.extend_from_slice(&[0xa1, 0x66]);
    evil.extend_from_slice(b"Cancel");
    evil.extend_from_slice(&[0xa1, 0x62]);
    evil.extend_from_slice(b"id");
    evil.push(0x60 + SECRET.len() as u8);
    evil.extend_from_slice(SECRET.as_bytes());
    for bytes in [b"not a mirai frame at all".to_vec(), evil] {
        let mut s = tcp(&host);
        s.write_all(&framed(&bytes)).unwrap();
        assert!(dropped(&s));
    }
    wait_logged(&["dropping connection", "malformed frame body"]);
    serves(&host, 2);
    let c = host.status().counters;
    assert_eq!(
        (c.connections, c.cumulative),
        (2, 2),
        "no garbage was taken for a daemon"
    );
    let after = rss_bytes();
    println!(
        "RSS {:.1} MiB before the garbage, {:.1} MiB after",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    assert!(
        after < before + (32 << 20),
        "memory grew by {} bytes",
        after.saturating_sub(before)
    );
    assert_no_secret();
}

#[test]
fn a_4_gb_length_prefix_over_the_limit_is_dropped_at_once() {
    capture();
    let config = HostConfig::new("tcp://127.0.0.1:0").with_transport(Options {
        max_message: 1 << 30,
        ..Options::default()
    });
    let host = Host::start(config).unwrap();
    launch(&host, 1, &args(Backend::Native), 1);
    let started = Instant::now();
    let mut s = tcp(&host);
    s.write_all(&(4u64 << 30).to_le_bytes()).unwrap();
    assert!(dropped(&s));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "dropped at the prefix, not by a timeout"
    );
    wait_logged(&["dropped before saying hello", "exceeds the maximum"]);
    serves(&host, 1);
}

#[test]
fn a_flood_of_half_open_connections_stays_bounded_and_the_host_serves_on() {
    capture();
    let config = HostConfig::new("tcp://127.0.0.1:0")
        .with_max_pending(100)
        .with_hello_timeout(Duration::from_secs(1));
    let host = Host::start(config).unwrap();
    launch(&host, 2, &args(Backend::Native), 2);
    serves(&host, 2);
    let before = rss_bytes();

    let flood: Vec<TcpStream> = (0..1000).map(|_| tcp(&host)).collect();
    // Beyond the cap, connections are dropped at once; meanwhile the daemons are served.
    serves(&host, 2);
    wait_logged(&["dropping connection", "already waiting to say hello"]);
    let during = rss_bytes();
    for s in &flood {
        assert!(
            dropped(s),
            "every half-open connection is dropped (cap or hello timeout)"
        );
    }
    wait_logged(&["no hello within 1s"]);
    drop(flood);
    serves(&host, 2);
    let after = rss_bytes();
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "1000 half-open connections: RSS {:.1} MiB before, {:.1} MiB during, {:.1} MiB after",
        mib(before),
        mib(during),
        mib(after)
    );
    assert!(
        during < before + (32 << 20) && after < before + (32 << 20),
        "memory is bounded"
    );
    let c = host.status().counters;
    assert_eq!((c.connections, c.cumulative), (2, 2));
}

#[test]
fn payloads_never_appear_in_the_log() {
    capture();
    let host = Host::start(HostConfig::new("tcp://127.0.0.1:0")).unwrap();
    // One daemon in this process (its log is captured too), one a separate process.
    let mut cfg = mirai::daemon::DaemonConfig::new(host.url());
    // Not `Exit`: its watchdog would terminate this whole process if the host left mid-task.
    cfg.autoexit = mirai::daemon::AutoExit::Finish;
    let inproc =
        std::thread::spawn(move || mirai::daemon::run(&cfg, &mut mirai::daemon::BuiltinEvaluator));
    let mut victim = spawn(host.url(), &args(Backend::Native));
    assert!(host.wait_connections(2, LONG));
    let secret = |kind: &str| format!("{kind}:{SECRET}").into_bytes();
    let submit = |p: Vec<u8>| host.submit(p, SubmitOptions::default()).unwrap();

    // Values and error values.
    for k in ["echo", "fail"] {
        assert!(matches!(
            submit(secret(k)).wait(Some(LONG)),
            Some(Outcome::Value { .. })
        ));
    }
    // The builtin evaluator refuses a bad duration with an error value quoting it: a value,
    // which goes back to the caller, not into the log.
    let bad = submit(format!("sleep:{SECRET}").into_bytes());
    assert!(matches!(
        bad.wait(Some(LONG)),
        Some(Outcome::Value {
            status: Status::Error,
            ..
        })
    ));
    // Timed out and cancelled while queued, and cancelled while running.
    let busy: Vec<_> = (0..2).map(|_| submit(b"sleep:300".to_vec())).collect();
    let opts = SubmitOptions::new().with_timeout(Some(Duration::from_millis(50)));
    let t = host.submit(secret("echo"), opts).unwrap();
    assert_eq!(
        t.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::TIMED_OUT))
    );
    let c = submit(secret("echo"));
    assert!(host.cancel(&c));
    for h in busy {
        assert_eq!(ok(h.wait(Some(LONG))), b"slept");
    }
    let running = submit(b"spin:600000".to_vec());
    assert!(host.cancel(&running));
    // A daemon killed while one task runs and a retryable one waits or runs.
    let busy = submit(b"sleep:400".to_vec());
    let retried = host
        .submit(secret("echo"), SubmitOptions::new().with_retries(Some(1)))
        .unwrap();
    signal(victim.id(), libc::SIGKILL);
    assert!(wait_exit(&mut victim, LONG).is_some());
    assert_eq!(ok(retried.wait(Some(LONG))), SECRET.as_bytes());
    assert!(busy.wait(Some(LONG)).is_some());
    // A daemon that answers with a broken frame carrying the payload.
    let mut raw = tcp(&host);
    write_msg(
        &mut raw,
        &encode(&Frame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            pid: 1,
        })),
    );
    let _init = read_msg(&mut raw);
    let mut broken = encode(&Frame::Result(TaskResult {
        id: TaskId(1),
        status: Status::Ok,
        last: false,
        payload: secret("x"),
    }));
    broken.truncate(broken.len() - 2);
    write_msg(&mut raw, &broken);
    assert!(dropped(&raw));
    wait_logged(&["sent malformed frame body"]);
    drop(host);
    assert!(inproc.join().expect("daemon thread").is_ok());
    assert_no_secret();
}

fn assert_no_secret() {
    let lines = logged();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(!l.contains(SECRET), "a payload reached the log: {l}");
    }
}
