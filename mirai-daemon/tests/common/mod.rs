//! A fake host for daemon tests: a `mirai_transport::Listener` speaking mirai-proto frames.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mirai_daemon::{DaemonConfig, DaemonError, Evaluator, ExitCode};
use mirai_proto::{Frame, Hello, Init, Task, TaskResult, DEFAULT_MAX_FRAME};
use mirai_transport::{Event, Listener, Options, PeerId};

/// Generous bound on any single wait, only so that a broken daemon fails the test instead of
/// hanging it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A fresh abstract-socket URL, unique within this machine for this process.
pub fn abstract_url(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "abstract://mirai-daemon-test-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct FakeHost {
    pub listener: Listener,
    events: VecDeque<Event>,
    pub peer: Option<PeerId>,
}

impl FakeHost {
    pub fn bind(url: &str) -> FakeHost {
        FakeHost::bind_with(url, &Options::default())
    }

    pub fn bind_with(url: &str, opts: &Options) -> FakeHost {
        let listener =
            Listener::bind(url, opts).unwrap_or_else(|e| panic!("cannot bind {url}: {e}"));
        FakeHost {
            listener,
            events: VecDeque::new(),
            peer: None,
        }
    }

    pub fn tcp() -> FakeHost {
        FakeHost::bind("tcp://127.0.0.1:0")
    }

    pub fn url(&self) -> String {
        self.listener.url().to_string()
    }

    /// The next listener event, or None after `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut got = Vec::new();
            self.listener
                .poll(&mut got, Some(left))
                .expect("listener poll failed");
            self.events.extend(got);
        }
    }

    /// Waits for a daemon to connect and say hello.
    pub fn accept(&mut self) -> Hello {
        let peer = match self.next_event(PATIENCE) {
            Some(Event::Connected(p)) => p,
            other => panic!("expected a connection, got {other:?}"),
        };
        self.peer = Some(peer);
        match self.recv() {
            Frame::Hello(h) => h,
            other => panic!("expected hello, got {other:?}"),
        }
    }

    /// Accepts a daemon and sends it `init`.
    pub fn handshake_with(&mut self, init: Init) -> Hello {
        let hello = self.accept();
        assert_eq!(hello.protocol, mirai_proto::PROTOCOL_VERSION);
        self.send(&Frame::Init(init));
        hello
    }

    /// Accepts a daemon and sends it an empty init bundle.
    pub fn handshake(&mut self) -> Hello {
        self.handshake_with(Init {
            stream: None,
            serial: Vec::new(),
        })
    }

    pub fn send_raw(&self, bytes: &[u8]) {
        let peer = self.peer.expect("no daemon connected");
        self.listener
            .send(peer, bytes)
            .expect("send to daemon failed");
    }

    pub fn send(&self, frame: &Frame) {
        self.send_raw(&mirai_proto::encode(frame));
    }

    pub fn task(&self, id: u64, payload: &[u8]) {
        self.send(&Frame::Task(Task {
            id: mirai_daemon::TaskId(id),
            flags: 0,
            payload: payload.to_vec(),
            trace: None,
        }));
    }

    pub fn cancel(&self, id: u64) {
        self.send(&Frame::Cancel {
            id: mirai_daemon::TaskId(id),
        });
    }

    /// The next frame from the daemon; panics if it disconnects or stays silent.
    pub fn recv(&mut self) -> Frame {
        match self.try_recv(PATIENCE) {
            Some(f) => f,
            None => panic!("no frame from the daemon within {PATIENCE:?}"),
        }
    }

    /// The next frame within `timeout`, None on timeout; panics on disconnect.
    pub fn try_recv(&mut self, timeout: Duration) -> Option<Frame> {
        match self.next_event(timeout)? {
            Event::Message(p, bytes) => {
                assert_eq!(Some(p), self.peer, "message from an unexpected peer");
                Some(mirai_proto::decode(&bytes, DEFAULT_MAX_FRAME).expect("daemon sent garbage"))
            }
            other => panic!("expected a message from the daemon, got {other:?}"),
        }
    }

    pub fn result(&mut self) -> TaskResult {
        match self.recv() {
            Frame::Result(r) => r,
            other => panic!("expected a result, got {other:?}"),
        }
    }

    /// The leave notice of a daemon reaching an idle limit: a `last` result for no task.
    pub fn expect_leave_notice(&mut self) {
        let r = self.result();
        assert_eq!(
            (r.id, r.last, r.payload.len()),
            (mirai_daemon::session::LEAVE_NOTICE_ID, true, 0),
            "expected a leave notice"
        );
    }

    /// Waits for the daemon to disconnect; panics if it sends anything first.
    pub fn expect_disconnect(&mut self) {
        match self.next_event(PATIENCE) {
            Some(Event::Disconnected(p, _)) => assert_eq!(Some(p), self.peer),
            other => panic!("expected the daemon to disconnect, got {other:?}"),
        }
    }
}

pub type DaemonHandle = JoinHandle<Result<ExitCode, DaemonError>>;

/// Runs a daemon loop on its own thread.
pub fn spawn_daemon<E: Evaluator + Send + 'static>(
    config: DaemonConfig,
    mut ev: E,
) -> DaemonHandle {
    std::thread::spawn(move || mirai_daemon::run(&config, &mut ev))
}

/// Joins a daemon thread, failing the test if it has not returned within `PATIENCE`.
pub fn join(handle: DaemonHandle) -> Result<ExitCode, DaemonError> {
    let deadline = Instant::now() + PATIENCE;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "daemon did not return within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().expect("daemon thread panicked")
}
