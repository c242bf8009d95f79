//! With tracing off, nothing of it happens: no exporter thread starts, task frames carry no
//! traceparent (only one the caller gave), and nothing reaches a collector, even one the
//! environment names, from the host or from the daemons it starts.
//!
//! Off here by `OTEL_SDK_DISABLED=true` beside an endpoint that works; the other ways to be
//! off (no endpoint, `OTEL_TRACES_EXPORTER=none`) are rules of `mirai_trace::config`, tested
//! there. The decision is per process: this file is its own test binary.

mod common;

use std::sync::OnceLock;

use common::spans::{self, exporter_thread_running, QUIET};
use common::{daemon_bin, LONG};
use mirai::host::launch::{daemon_command, DaemonArgs};
use mirai::host::{Status, TraceParent};
use mirai::proto::{Frame, Hello, TaskResult, PROTOCOL_VERSION};
use mirai::transport::{Connection, Options};
use mirai::{Host, HostConfig, Outcome, SubmitOptions};
use mirai_trace::collector::Collector;

fn collector() -> &'static Collector {
    static C: OnceLock<Collector> = OnceLock::new();
    C.get_or_init(|| {
        let c = Collector::start().expect("collector starts");
        spans::set_otel_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &c.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        c
    })
}

#[test]
fn no_exporter_thread_no_traceparent_and_no_spans() {
    let c = collector();
    let host = Host::start(HostConfig::new("tcp://127.0.0.1:0")).expect("host");
    assert!(!host.tracing());
    assert!(!mirai_trace::enabled());
    assert!(
        !exporter_thread_running(),
        "no exporter thread when tracing is off"
    );

    // Frames as a daemon sees them.
    let conn = Connection::dial(host.url(), &Options::default()).expect("dial");
    conn.send(&mirai::proto::encode(&Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        pid: 1,
    })))
    .unwrap();
    assert!(conn.recv(Some(LONG)).unwrap().is_some(), "init");
    let task = |opts: SubmitOptions| {
        let h = host.submit(b"p".to_vec(), opts).unwrap();
        let bytes = conn.recv(Some(LONG)).unwrap().expect("a task");
        let Ok(Frame::Task(t)) = mirai::proto::decode(&bytes, usize::MAX) else {
            panic!("not a task")
        };
        let r = Frame::Result(TaskResult {
            id: t.id,
            status: Status::Ok,
            last: false,
            payload: vec![],
        });
        conn.send(&mirai::proto::encode(&r)).unwrap();
        assert!(matches!(h.wait(Some(LONG)), Some(Outcome::Value { .. })));
        t.trace
    };
    assert_eq!(
        task(SubmitOptions::default()),
        None,
        "no traceparent is added"
    );
    let parent = TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert_eq!(
        task(SubmitOptions::new().with_parent(parent)),
        None,
        "a parent alone adds none"
    );
    let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string();
    let opts = SubmitOptions::new().with_trace(Some(given.clone()));
    assert_eq!(
        task(opts),
        Some(given),
        "a caller's traceparent is still carried"
    );
    assert!(host.map_span(None).context().is_none());
    drop(conn);

    // Real daemons inherit the environment and must stay silent too.
    host.launch(
        &daemon_command(daemon_bin(), host.url(), &DaemonArgs::default()),
        2,
    )
    .expect("launch");
    assert!(host.wait_connections(2, LONG));
    let hs = host.map([b"echo:1".to_vec(), b"fail:2".to_vec()]).unwrap();
    for h in &hs {
        assert!(h.wait(Some(LONG)).is_some());
    }
    let pids = host.launched_pids();
    host.reset();
    // The daemons exit (and would flush) when the host goes.
    assert!(
        common::eventually(LONG, || pids.iter().all(|&p| spans::exited(p))),
        "daemons exited"
    );
    assert!(
        !c.wait_for(QUIET, |s| !s.is_empty()),
        "spans arrived: {:#?}",
        c.spans()
    );
    assert_eq!((c.requests(), c.rejected().len()), (0, 0));
    assert!(!exporter_thread_running());
}
