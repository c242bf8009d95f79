//! Helpers shared by the cross-layer tests.
#![allow(dead_code)]

pub mod spans;

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use mirai::host::launch::{daemon_backend, daemon_command, DaemonArgs};
use mirai::transport::{Backend, Listener, Options};
use mirai::{Host, HostConfig, Outcome};

/// Generous bound on any wait, only to turn a hang into a failure.
pub const LONG: Duration = Duration::from_secs(60);

/// The daemon binary of this package.
pub fn daemon_bin() -> &'static str {
    env!("CARGO_BIN_EXE_test-daemon")
}

/// True if this build can listen with the NNG backend.
pub fn nng_available() -> bool {
    let opts = Options {
        backend: Backend::Nng,
        ..Options::default()
    };
    match Listener::bind("tcp://127.0.0.1:0", &opts) {
        Ok(_) => true,
        Err(e) => {
            println!("note: NNG backend unavailable ({e}); skipping it");
            false
        }
    }
}

/// The backends to run a test over.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Native];
    if nng_available() {
        v.push(Backend::Nng);
    }
    v
}

pub fn config(backend: Backend) -> HostConfig {
    HostConfig::new("tcp://127.0.0.1:0").with_transport(Options {
        backend,
        ..Options::default()
    })
}

pub fn host() -> Host {
    Host::start(config(Backend::Native)).expect("host starts")
}

pub fn args(backend: Backend) -> DaemonArgs {
    DaemonArgs::default().with_backend(daemon_backend(backend))
}

/// Launches `n` test daemons through the host and waits until `total` are connected.
pub fn launch(host: &Host, n: usize, args: &DaemonArgs, total: u64) {
    host.launch(&daemon_command(daemon_bin(), host.url(), args), n)
        .expect("launch");
    assert!(
        host.wait_connections(total, LONG),
        "{total} daemons connected"
    );
}

/// Starts one daemon process held by the test (to inspect its exit status or kill it).
pub fn spawn(url: &str, args: &DaemonArgs) -> Child {
    let c = daemon_command(daemon_bin(), url, args);
    std::process::Command::new(&c.program)
        .args(&c.args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn test daemon")
}

/// Waits for a child to exit, up to `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The payload of a successful outcome; panics with the outcome otherwise.
pub fn ok(o: Option<Outcome>) -> Vec<u8> {
    match o {
        Some(Outcome::Value {
            status: mirai::host::Status::Ok,
            payload,
        }) => payload,
        other => panic!("expected an ok value, got {other:?}"),
    }
}

/// The daemon pid a `pid:` task reported.
pub fn pid(o: Option<Outcome>) -> u32 {
    String::from_utf8(ok(o))
        .expect("utf8")
        .parse()
        .expect("a pid")
}

/// Polls `f` until true or `timeout`.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while a process with this pid exists (zombies included).
pub fn alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission; no signal is sent.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Sends `sig` to a process this test started; panics if it cannot.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill takes no pointers; the pid is a child process of this test.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// This process's resident set size in bytes (from /proc/self/statm).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm field 2");
    // SAFETY: sysconf takes no pointers.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(1) as u64
}

/// A small deterministic pseudo-random generator (xorshift64*), seeded from the clock unless
/// `MIRAI_TEST_SEED` is set; the seed is printed so that a run can be repeated.
pub struct Rng(u64);

impl Rng {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Rng {
        let seed = std::env::var("MIRAI_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!("random seed {seed} (set MIRAI_TEST_SEED to repeat)");
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// Writes one message in the native transport's framing (8-byte little-endian length, then
/// the bytes), as a raw peer would.
pub fn write_msg(s: &mut impl std::io::Write, msg: &[u8]) {
    s.write_all(&(msg.len() as u64).to_le_bytes())
        .expect("write length");
    s.write_all(msg).expect("write message");
}

/// Reads one message in the native transport's framing.
pub fn read_msg(s: &mut impl std::io::Read) -> Vec<u8> {
    let mut len = [0u8; 8];
    s.read_exact(&mut len).expect("read length");
    let mut msg = vec![0u8; u64::from_le_bytes(len) as usize];
    s.read_exact(&mut msg).expect("read message");
    msg
}

/// True once the peer (a host) has closed the connection `s`, read to its end.
pub fn dropped<S: std::io::Read>(mut s: S) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // nothing is expected, but keep reading until the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(e) => panic!("connection not dropped: {e}"),
        }
    }
}

/// The host still serves: 50 echo tasks come back right, and `n` daemons are connected.
pub fn serves(host: &Host, n: u64) {
    let hs = host
        .map((0..50).map(|i| format!("echo:{i}").into_bytes()))
        .unwrap();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(ok(h.wait(Some(LONG))), format!("{i}").into_bytes());
    }
    assert_eq!(host.status().counters.connections, n);
}
