//! Daemons dying, hosts going away, and peers sending garbage.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use common::*;
use mirai::host::ErrorCode;
use mirai::transport::Backend;
use mirai::{Host, HostConfig, Outcome, SubmitOptions};

fn submit(host: &Host, p: &str) -> mirai::TaskHandle {
    host.submit(p.as_bytes().to_vec(), SubmitOptions::default())
        .unwrap()
}

#[test]
fn daemon_killed_mid_task_fails_that_task_with_19_only() {
    for backend in backends() {
        killed_mid_task(backend);
    }
}

fn killed_mid_task(backend: Backend) {
    let host = Host::start(config(backend)).unwrap();
    let a = args(backend);
    let mut victim = spawn(host.url(), &a);
    assert!(host.wait_connections(1, LONG));
    let doomed = submit(&host, "sleep:600000");
    assert_eq!(
        host.status().counters.executing,
        1,
        "the only daemon took it"
    );
    launch(&host, 2, &a, 3);
    let before: Vec<_> = (0..20).map(|_| submit(&host, "pid:")).collect();

    // SAFETY: signalling a child process this test started.
    let rc = unsafe { libc::kill(victim.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0);
    assert!(wait_exit(&mut victim, LONG).is_some());
    assert_eq!(
        doomed.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );

    let after: Vec<_> = (0..20).map(|_| submit(&host, "pid:")).collect();
    let mut pids = HashSet::new();
    for h in before.iter().chain(&after) {
        let p = pid(h.wait(Some(LONG)));
        assert_ne!(
            p,
            victim.id(),
            "no task ran on the killed daemon after its sleep"
        );
        pids.insert(p);
    }
    assert!(!pids.is_empty() && pids.len() <= 2);
    let c = host.status().counters;
    assert_eq!(
        (c.connections, c.awaiting, c.executing, c.completed),
        (2, 0, 0, 41)
    );
}

#[test]
fn dropping_the_host_makes_daemons_exit() {
    let host = host();
    let a = args(Backend::Native);
    let mut children: Vec<_> = (0..3).map(|_| spawn(host.url(), &a)).collect();
    assert!(host.wait_connections(3, LONG));
    // One daemon busy: autoexit ends it too, after its grace period.
    let busy = submit(&host, "sleep:600000");
    assert_eq!(host.status().counters.executing, 1);
    drop(host);
    assert_eq!(
        busy.wait(Some(Duration::ZERO)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );
    let mut clean = 0;
    for c in &mut children {
        let status =
            wait_exit(c, Duration::from_secs(10)).expect("daemon exits within seconds of its host");
        println!("daemon {} ended: {status:?}", c.id());
        if status.code() == Some(0) {
            clean += 1;
        }
    }
    assert!(clean >= 2, "idle daemons exit with code 0 (disconnected)");
}

#[test]
fn launched_daemons_exit_when_the_host_is_reset() {
    let host = host();
    launch(&host, 2, &args(Backend::Native), 2);
    let pids = host.launched_pids();
    assert_eq!(pids.len(), 2);
    host.reset();
    // The reaper left behind collects them, so they vanish from the process table.
    assert!(eventually(Duration::from_secs(10), || pids
        .iter()
        .all(|p| !alive(*p))));
}

/// Garbage that the transport or the host must refuse: a huge length prefix, a well-framed
/// message that is not a frame, and a well-formed frame header with a bogus body.
fn garbage_messages() -> Vec<Vec<u8>> {
    let framed = |body: &[u8]| {
        let mut m = (body.len() as u64).to_le_bytes().to_vec();
        m.extend_from_slice(body);
        m
    };
    vec![
        vec![0xff; 64],
        framed(b"definitely not a mirai frame"),
        framed(b"MRI\x01\xff\xff\xff\xff\x00\x13\x37"),
    ]
}

#[test]
fn garbage_over_tcp_drops_that_connection_only() {
    let host = host();
    launch(&host, 2, &args(Backend::Native), 2);
    let addr = host
        .url()
        .strip_prefix("tcp://")
        .expect("a tcp url")
        .to_string();
    for g in garbage_messages() {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(LONG)).unwrap();
        s.write_all(&g).unwrap();
        assert!(dropped(&s), "garbage {:02x?}", &g[..12.min(g.len())]);
        serves(&host, 2);
    }
}

#[test]
fn garbage_over_abstract_socket_drops_that_connection_only() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("mirai-tests-garbage-{}", std::process::id());
    let host = Host::start(HostConfig::new(format!("abstract://{name}"))).unwrap();
    launch(&host, 1, &args(Backend::Native), 1);
    for g in garbage_messages() {
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let mut s = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
        s.set_read_timeout(Some(LONG)).unwrap();
        s.write_all(&g).unwrap();
        assert!(dropped(&s));
        serves(&host, 1);
    }
}
