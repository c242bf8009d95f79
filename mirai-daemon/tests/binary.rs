//! The `mirai-daemon` executable: command line, exit statuses, and autoexit of a busy process.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mirai_proto::{Frame, Status};

const BIN: &str = env!("CARGO_BIN_EXE_mirai-daemon");

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start mirai-daemon")
}

/// Waits for the process to end; kills it and fails the test if it does not within `PATIENCE`.
fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait failed") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mirai-daemon did not exit within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn serves_builtin_tasks_and_exits_0_on_exit() {
    let mut host = FakeHost::bind(&abstract_url("bin"));
    let mut child = spawn(&[&host.url()]);
    let hello = host.handshake();
    assert_eq!(hello.pid, child.id());
    host.task(1, b"pid:");
    assert_eq!(host.result().payload, child.id().to_string().into_bytes());
    host.task(2, b"fail:nope");
    let r = host.result();
    assert_eq!(
        (r.status, r.payload.as_slice()),
        (Status::Error, &b"nope"[..])
    );
    host.task(3, b"sleep:60000");
    host.cancel(3);
    assert_eq!(host.result().status, Status::Interrupted);
    host.task(4, &[7u8; 16]);
    assert_eq!(host.result().payload, vec![7u8; 16]);
    host.send(&Frame::Exit);
    assert_eq!(wait(&mut child).code(), Some(0));
}

/// Starts a busy task, then drops the host; returns how the process ended.
fn drop_host_while(payload: &[u8], tag: &str) -> ExitStatus {
    let mut host = FakeHost::bind(&abstract_url(tag));
    let mut child = spawn(&[&host.url()]);
    host.handshake();
    host.task(1, b"echo:up");
    assert_eq!(host.result().payload, b"up");
    host.task(2, payload);
    // Give the daemon time to start the task (were it still reading, it would still see the
    // task before the end of the stream).
    std::thread::sleep(Duration::from_millis(100));
    drop(host);
    wait(&mut child)
}

#[test]
fn a_daemon_that_does_not_look_is_terminated_by_the_watchdog() {
    let status = drop_host_while(b"block:10000", "bin-block");
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "expected SIGTERM, got {status:?}"
    );
}

#[test]
fn a_busy_daemon_leaves_when_the_host_goes() {
    // These evaluations watch the connection, so they are interrupted at once and the daemon
    // exits cleanly; the watchdog's SIGTERM is the fallback should it win the race.
    for (payload, tag) in [
        (&b"sleep:10000"[..], "bin-sleep"),
        (&b"spin:10000"[..], "bin-spin"),
    ] {
        let status = drop_host_while(payload, tag);
        assert!(
            status.code() == Some(0) || status.signal() == Some(libc::SIGTERM),
            "{}: unexpected {status:?}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn autoexit_na_finishes_its_task_and_exits_0() {
    let mut host = FakeHost::bind(&abstract_url("bin-na"));
    let mut child = spawn(&[&host.url(), "--autoexit", "na"]);
    host.handshake();
    host.task(1, b"echo:up");
    assert_eq!(host.result().payload, b"up");
    host.task(2, b"sleep:700");
    std::thread::sleep(Duration::from_millis(100));
    drop(host);
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn idle_daemon_exits_0_when_the_host_goes() {
    let mut host = FakeHost::bind(&abstract_url("bin-idle"));
    let mut child = spawn(&[&host.url()]);
    host.handshake();
    drop(host);
    assert_eq!(wait(&mut child).code(), Some(0));
}

#[test]
fn limits_give_their_exit_codes() {
    let mut host = FakeHost::tcp();
    let mut child = spawn(&[&host.url(), "--maxtasks", "1"]);
    host.handshake();
    host.task(1, b"echo:x");
    assert!(host.result().last);
    host.send(&Frame::Ack);
    assert_eq!(wait(&mut child).code(), Some(3));

    let mut host = FakeHost::tcp();
    let mut child = spawn(&[&host.url(), "--idletime", "200"]);
    host.handshake();
    host.expect_leave_notice();
    host.send(&Frame::Ack);
    assert_eq!(wait(&mut child).code(), Some(1));

    let mut host = FakeHost::tcp();
    let mut child = spawn(&[&host.url(), "--walltime", "200", "--idletime", "100000"]);
    host.handshake();
    host.expect_leave_notice();
    host.send(&Frame::Ack);
    assert_eq!(wait(&mut child).code(), Some(2));
}

#[test]
fn asyncdial_waits_for_a_host() {
    let url = abstract_url("bin-async");
    let mut child = spawn(&[&url, "--asyncdial"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "async dial gave up");
    let mut host = FakeHost::bind(&url);
    host.handshake();
    host.task(1, b"echo:hi");
    assert_eq!(host.result().payload, b"hi");
    host.send(&Frame::Exit);
    assert_eq!(wait(&mut child).code(), Some(0));
}

#[test]
fn failed_dial_exits_64_with_the_transport_message() {
    let url = FakeHost::tcp().url();
    let out = Command::new(BIN)
        .arg(&url)
        .output()
        .expect("cannot start mirai-daemon");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("6 | Connection refused"), "stderr: {err}");
    assert!(err.contains(&url), "stderr does not name the URL: {err}");
}

#[test]
fn bad_arguments_are_a_usage_error() {
    let out = Command::new(BIN)
        .args(["tcp://127.0.0.1:1", "--autoexit", "maybe"])
        .output()
        .expect("cannot start mirai-daemon");
    assert_eq!(out.status.code(), Some(65));
    let out = Command::new(BIN)
        .output()
        .expect("cannot start mirai-daemon");
    assert_eq!(out.status.code(), Some(65));
}

#[test]
fn nng_backend_from_the_command_line() {
    let opts = mirai_transport::Options {
        backend: mirai_transport::Backend::Nng,
        ..Default::default()
    };
    let mut host = FakeHost::bind_with("tcp://127.0.0.1:0", &opts);
    let mut child = spawn(&[&host.url(), "--backend", "nng"]);
    host.handshake();
    host.task(1, b"echo:via nng");
    assert_eq!(host.result().payload, b"via nng");
    host.send(&Frame::Exit);
    assert_eq!(wait(&mut child).code(), Some(0));
}
