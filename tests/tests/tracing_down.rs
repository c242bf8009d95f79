//! Tracing never gets in the engine's way: with an endpoint where no collector listens, a host
//! and its daemons trace, fail to export (logged, not raised), and work exactly as untraced
//! ones; the reset and the daemons' exits return despite the failing flushes.

mod common;

use std::net::TcpListener;

use common::spans::{self, exporter_thread_running};
use common::{daemon_bin, eventually, LONG};
use mirai::host::launch::{daemon_command, DaemonArgs};
use mirai::host::Status;
use mirai::{Host, HostConfig, Outcome, SubmitOptions};

#[test]
fn an_unreachable_collector_changes_nothing_but_the_log() {
    // A port that was free a moment ago: connections to it are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    spans::set_otel_env(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        &format!("http://127.0.0.1:{port}"),
    )]);
    let host = Host::start(HostConfig::new("tcp://127.0.0.1:0")).expect("host");
    assert!(host.tracing(), "tracing is on");
    // A thread names itself once it runs: give it a moment.
    assert!(
        eventually(LONG, exporter_thread_running),
        "the exporter thread runs"
    );
    host.launch(
        &daemon_command(daemon_bin(), host.url(), &DaemonArgs::default()),
        2,
    )
    .expect("launch");
    assert!(host.wait_connections(2, LONG));
    let hs = host
        .map((0..20).map(|i| format!("echo:{i}").into_bytes()))
        .unwrap();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(
            h.wait(Some(LONG)),
            Some(Outcome::Value {
                status: Status::Ok,
                payload: format!("{i}").into_bytes()
            })
        );
    }
    let f = host
        .submit(b"fail:x".to_vec(), SubmitOptions::default())
        .unwrap();
    assert!(matches!(
        f.wait(Some(LONG)),
        Some(Outcome::Value {
            status: Status::Error,
            ..
        })
    ));
    let pids = host.launched_pids();
    host.reset();
    assert!(host.is_closed());
    // The daemons flush on their way out, fail, and exit all the same.
    assert!(
        eventually(LONG, || pids.iter().all(|&p| spans::exited(p))),
        "daemons exited"
    );
}
