//! Helpers shared by the cross-layer tests.
#![allow(dead_code)]

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use mirai::host::launch::{daemon_command, DaemonArgs};
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
    let opts = Options { backend: Backend::Nng, ..Options::default() };
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
    let mut c = HostConfig::new("tcp://127.0.0.1:0");
    c.transport.backend = backend;
    c
}

pub fn host() -> Host {
    Host::start(config(Backend::Native)).expect("host starts")
}

pub fn args(backend: Backend) -> DaemonArgs {
    DaemonArgs { backend: Some(backend), ..DaemonArgs::default() }
}

/// Launches `n` test daemons through the host and waits until `total` are connected.
pub fn launch(host: &Host, n: usize, args: &DaemonArgs, total: u64) {
    host.launch(&daemon_command(daemon_bin(), host.url(), args), n).expect("launch");
    assert!(host.wait_connections(total, LONG), "{total} daemons connected");
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
        Some(Outcome::Value { status: mirai::host::Status::Ok, payload }) => payload,
        other => panic!("expected an ok value, got {other:?}"),
    }
}

/// The daemon pid a `pid:` task reported.
pub fn pid(o: Option<Outcome>) -> u32 {
    String::from_utf8(ok(o)).expect("utf8").parse().expect("a pid")
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
