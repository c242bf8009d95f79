//! The worker loop over the NNG backend (no descriptor, so no watchdog: cancels and a lost
//! host are seen through the connection alone).

mod common;

use common::*;
use mirai_daemon::{AutoExit, BuiltinEvaluator, DaemonConfig, ExitCode, Status};
use mirai_proto::Frame;
use mirai_transport::{Backend, Options};

fn nng() -> Options {
    Options {
        backend: Backend::Nng,
        ..Options::default()
    }
}

fn nng_daemon(host: &FakeHost, autoexit: AutoExit) -> DaemonHandle {
    let mut cfg = DaemonConfig::new(host.url());
    cfg.transport = nng();
    cfg.autoexit = autoexit;
    spawn_daemon(cfg, BuiltinEvaluator)
}

#[test]
fn tasks_and_cancels_over_nng() {
    let mut host = FakeHost::bind_with(&abstract_url("nng"), &nng());
    let d = nng_daemon(&host, AutoExit::Exit);
    host.handshake();
    host.task(1, b"echo:over nng");
    let r = host.result();
    assert_eq!(
        (r.id.get(), r.status, r.payload.as_slice()),
        (1, Status::Ok, &b"over nng"[..])
    );
    host.task(2, b"sleep:60000");
    host.cancel(2);
    assert_eq!(host.result().status, Status::Interrupted);
    // One task at a time: NNG's polyamorous pair drops bursts beyond two queued messages per
    // peer (a documented limit of the transport's NNG backend), so no queueing at the daemon.
    for i in 3..200u64 {
        host.task(i, format!("echo:{i}").as_bytes());
        let r = host.result();
        assert_eq!((r.id.get(), r.payload), (i, i.to_string().into_bytes()));
    }
    host.task(200, b"sleep:60000");
    host.cancel(200);
    assert_eq!(host.result().status, Status::Interrupted);
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn host_gone_over_nng() {
    // Idle: the loop returns 0.
    let mut host = FakeHost::bind_with("tcp://127.0.0.1:0", &nng());
    let d = nng_daemon(&host, AutoExit::Exit);
    host.handshake();
    drop(host);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);

    // Busy with autoexit = TRUE: the evaluation is interrupted and the loop returns 0.
    let mut host = FakeHost::bind_with("tcp://127.0.0.1:0", &nng());
    let d = nng_daemon(&host, AutoExit::Exit);
    host.handshake();
    host.task(1, b"sleep:60000");
    std::thread::sleep(std::time::Duration::from_millis(100));
    drop(host);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}
