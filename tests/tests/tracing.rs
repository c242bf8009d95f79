//! OpenTelemetry tracing end to end: a host and real daemon processes configured only by the
//! `OTEL_*` environment export spans over OTLP/HTTP to a receiver in this process, which
//! decodes the protobuf `ExportTraceServiceRequest`s; the tests check the span tree (names,
//! kinds, parents across processes through the task frame's traceparent, links, statuses).
//!
//! Tracing is decided once per process, so every test here shares one receiver and one
//! configuration, and picks its own spans out by URL, task id and trace id.

mod common;

use std::sync::OnceLock;

use common::spans::{self, assert_span_tree, run_workload};
use common::{daemon_bin, eventually, LONG};
use mirai::host::launch::{daemon_command, DaemonArgs};
use mirai::host::{ErrorCode, Status, TraceParent};
use mirai::proto::{Frame, Hello, TaskResult, PROTOCOL_VERSION};
use mirai::transport::{Connection, Options};
use mirai::{Host, HostConfig, Outcome, SubmitOptions};
use mirai_trace::collector::{codes, Collector, ReceivedSpan};

fn collector() -> &'static Collector {
    static C: OnceLock<Collector> = OnceLock::new();
    C.get_or_init(|| {
        let c = Collector::start().expect("collector starts");
        // A short batch delay so that spans arrive while the test waits; the host's reset
        // and each daemon's exit flush anyway.
        spans::set_otel_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &c.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ]);
        c
    })
}

#[test]
fn a_small_workload_with_an_error_gives_the_span_tree() {
    let c = collector();
    let w = run_workload("traced");
    assert!(
        eventually(LONG, spans::exporter_thread_running),
        "the exporter thread runs while tracing"
    );
    assert_span_tree(c, &w);
    assert!(
        c.user_agents()
            .iter()
            .all(|a| a.starts_with("OTel-OTLP-Exporter-Rust")),
        "{:?}",
        c.user_agents()
    );
}

fn find(spans: &[ReceivedSpan], f: impl Fn(&ReceivedSpan) -> bool) -> Vec<&ReceivedSpan> {
    spans.iter().filter(|s| f(s)).collect()
}

fn mirai_span(spans: &[ReceivedSpan], id: u64) -> Option<&ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.name == "mirai" && s.attributes.get("mirai.id") == Some(&id.to_string()))
}

fn eval_span(spans: &[ReceivedSpan], id: u64) -> Option<&ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.name == "daemon eval" && s.attributes.get("mirai.id") == Some(&id.to_string()))
}

#[test]
fn maps_parents_cancels_and_verbatim_traceparents() {
    let c = collector();
    let config = HostConfig::new("tcp://127.0.0.1:0").with_compute("maps");
    let host = Host::start(config).expect("host");
    host.launch(
        &daemon_command(daemon_bin(), host.url(), &DaemonArgs::default()),
        1,
    )
    .expect("launch");
    assert!(host.wait_connections(1, LONG));

    // Host::map: one mirai_map span, parent of its tasks' mirai spans.
    let mapped = host
        .map([b"echo:1".to_vec(), b"echo:2".to_vec(), b"fail:3".to_vec()])
        .expect("map");
    // A bridge's own map: map_span, and its context as each element's parent.
    let bridge_map = host.map_span(None);
    let parent = bridge_map.context().expect("recording");
    let opts = SubmitOptions::new().with_parent(Some(parent));
    let elements: Vec<_> = (0..2)
        .map(|_| {
            host.submit(b"echo:e".to_vec(), opts.clone())
                .expect("submit")
        })
        .collect();
    bridge_map.end();
    // A caller's own span as the parent of the mirai span.
    let outer =
        TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
    let child = host
        .submit(
            b"echo:x".to_vec(),
            SubmitOptions::new().with_parent(Some(outer)),
        )
        .unwrap();
    // A traceparent carried verbatim: no mirai span, the evaluation is its child.
    let verbatim = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let carried = host
        .submit(
            b"echo:v".to_vec(),
            SubmitOptions::new().with_trace(Some(verbatim.into())),
        )
        .unwrap();
    // A parent that was not sampled: the task's span is not recorded, and neither is its
    // evaluation (the daemon's sampler follows the flags in the traceparent).
    let unsampled =
        TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00").unwrap();
    let dropped = host
        .submit(
            b"echo:d".to_vec(),
            SubmitOptions::new().with_parent(Some(unsampled)),
        )
        .unwrap();
    for h in mapped
        .iter()
        .chain(&elements)
        .chain([&child, &carried, &dropped])
    {
        assert!(matches!(h.wait(Some(LONG)), Some(Outcome::Value { .. })));
    }
    // A task cancelled while it runs: errorValue 20 on the mirai span, miraiInterrupt on the
    // daemon's (the daemon is interrupted; the host discards its reply).
    let long = host
        .submit(b"sleep:60000".to_vec(), SubmitOptions::default())
        .unwrap();
    assert!(eventually(LONG, || long.attempts() == 1), "dispatched");
    // Whether the cancel reaches the daemon during the evaluation or just before it starts
    // (the daemon then applies it at the start), the evaluation is interrupted.
    assert!(host.cancel(&long));
    assert_eq!(
        long.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::CANCELED))
    );
    host.reset();

    let ids: Vec<u64> = mapped
        .iter()
        .chain(&elements)
        .chain([&child, &carried, &long])
        .map(|h| h.id().get())
        .collect();
    // Every task has a mirai span but the one whose caller gave the traceparent.
    let has_mirai = |id: u64| id != carried.id().get();
    let arrived = c.wait_for(LONG, |s| {
        ids.iter().all(|&id| {
            eval_span(s, id).is_some() && (!has_mirai(id) || mirai_span(s, id).is_some())
        })
    });
    let all = c.spans();
    let missing: Vec<String> = ids
        .iter()
        .flat_map(|&id| {
            let e = eval_span(&all, id)
                .is_none()
                .then(|| format!("daemon eval {id}"));
            let m =
                (has_mirai(id) && mirai_span(&all, id).is_none()).then(|| format!("mirai {id}"));
            e.into_iter().chain(m)
        })
        .collect();
    assert!(arrived, "spans did not all arrive: missing {missing:?}");

    let set = find(&all, |s| s.name == format!("daemons set {}", host.url()));
    assert_eq!(set.len(), 1);
    let set_link = vec![(set[0].trace_id.clone(), set[0].span_id.clone())];
    let under = |parent: &ReceivedSpan, id: u64| {
        let m = mirai_span(&all, id).unwrap_or_else(|| panic!("mirai span of {id}"));
        assert_eq!(
            (m.trace_id.as_str(), m.parent_span_id.as_str()),
            (parent.trace_id.as_str(), parent.span_id.as_str())
        );
        assert_eq!(m.links, set_link);
        let e = eval_span(&all, id).unwrap();
        assert_eq!(
            (e.trace_id.as_str(), e.parent_span_id.as_str()),
            (m.trace_id.as_str(), m.span_id.as_str())
        );
        m.clone()
    };

    // Host::map
    let map_of = |id: u64| {
        let m = mirai_span(&all, id).unwrap();
        find(&all, |s| {
            s.name == "mirai_map" && s.span_id == m.parent_span_id
        })
    };
    let maps = map_of(mapped[0].id().get());
    assert_eq!(maps.len(), 1, "{all:#?}");
    let map = maps[0];
    assert_eq!(
        (map.kind, map.parent_span_id.as_str()),
        (codes::INTERNAL, "")
    );
    assert_eq!(map.links, set_link);
    assert_eq!(
        map.attributes.get("mirai.tasks").map(String::as_str),
        Some("3")
    );
    for h in &mapped {
        under(map, h.id().get());
    }
    let failed = mirai_span(&all, mapped[2].id().get()).unwrap();
    assert_eq!(
        (failed.status_code, failed.status_message.as_str()),
        (codes::ERROR, "miraiError")
    );
    let kids = find(&all, |s| {
        s.trace_id == map.trace_id && s.parent_span_id == map.span_id
    });
    assert_eq!(kids.len(), 3, "only the map's own tasks are its children");

    // Host::map_span + SubmitOptions::parent
    let bridge = find(&all, |s| {
        s.name == "mirai_map" && s.span_id == parent.span_id()
    });
    assert_eq!(bridge.len(), 1);
    assert_eq!(bridge[0].trace_id, parent.trace_id());
    for h in &elements {
        under(bridge[0], h.id().get());
    }

    // A caller's parent
    let m = mirai_span(&all, child.id().get()).unwrap();
    assert_eq!(
        (m.trace_id.as_str(), m.parent_span_id.as_str()),
        ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    );

    // Verbatim traceparent: no mirai span; the evaluation is the caller's span's child.
    assert!(mirai_span(&all, carried.id().get()).is_none());
    let e = eval_span(&all, carried.id().get()).unwrap();
    assert_eq!(
        (e.trace_id.as_str(), e.parent_span_id.as_str()),
        ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    );

    // Not sampled: nothing recorded on either side (the daemon exported everything else).
    assert!(
        mirai_span(&all, dropped.id().get()).is_none()
            && eval_span(&all, dropped.id().get()).is_none()
    );

    // Cancel
    let m = mirai_span(&all, long.id().get()).unwrap();
    assert_eq!(
        (m.status_code, m.status_message.as_str()),
        (codes::ERROR, "errorValue 20 | Operation canceled")
    );
    let e = eval_span(&all, long.id().get()).unwrap();
    assert_eq!(
        (e.parent_span_id.as_str(), e.status_code),
        (m.span_id.as_str(), codes::ERROR)
    );
    assert_eq!(e.status_message, "miraiInterrupt");
}

/// Connects as a daemon over the raw transport (hello, init) to read the task frames the host
/// sends.
fn fake_daemon(url: &str, pid: u32) -> Connection {
    let conn = Connection::dial(url, &Options::default()).expect("dial");
    conn.send(&mirai::proto::encode(&Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        pid,
    })))
    .unwrap();
    let init = conn.recv(Some(LONG)).unwrap().expect("init");
    assert!(matches!(
        mirai::proto::decode(&init, usize::MAX),
        Ok(Frame::Init(_))
    ));
    conn
}

fn next_task(conn: &Connection) -> mirai::proto::Task {
    let bytes = conn.recv(Some(LONG)).unwrap().expect("a task");
    match mirai::proto::decode(&bytes, usize::MAX) {
        Ok(Frame::Task(t)) => t,
        other => panic!("expected a task, got {other:?}"),
    }
}

fn answer(conn: &Connection, id: mirai::proto::TaskId) {
    let r = Frame::Result(TaskResult {
        id,
        status: Status::Ok,
        last: false,
        payload: b"ok".to_vec(),
    });
    conn.send(&mirai::proto::encode(&r)).unwrap();
}

#[test]
fn task_frames_carry_the_mirai_span_as_traceparent_unless_one_is_given() {
    let c = collector();
    let host = Host::start(HostConfig::new("tcp://127.0.0.1:0")).expect("host");
    let conn = fake_daemon(host.url(), 4_000_001);
    assert!(host.wait_connections(1, LONG));

    let h = host
        .submit(b"p".to_vec(), SubmitOptions::default())
        .unwrap();
    let task = next_task(&conn);
    assert_eq!(task.id, h.id());
    let sent = TraceParent::parse(task.trace.as_deref().expect("a traceparent"))
        .expect("a valid traceparent");
    assert!(sent.sampled());
    answer(&conn, task.id);
    assert!(matches!(h.wait(Some(LONG)), Some(Outcome::Value { .. })));

    // Under a parent that was not sampled, the traceparent says so.
    let unsampled = TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    let h3 = host
        .submit(b"p".to_vec(), SubmitOptions::new().with_parent(unsampled))
        .unwrap();
    let task = next_task(&conn);
    let sent3 = TraceParent::parse(task.trace.as_deref().expect("a traceparent")).unwrap();
    assert!(!sent3.sampled());
    assert_eq!(sent3.trace_id(), "0af7651916cd43dd8448eb211c80319c");
    answer(&conn, task.id);
    assert!(h3.wait(Some(LONG)).is_some());

    let given = "00-11111111111111111111111111111111-2222222222222222-01";
    let h2 = host
        .submit(
            b"p".to_vec(),
            SubmitOptions::new().with_trace(Some(given.into())),
        )
        .unwrap();
    let task = next_task(&conn);
    assert_eq!(
        task.trace.as_deref(),
        Some(given),
        "a caller's traceparent is carried verbatim"
    );
    answer(&conn, task.id);
    assert!(h2.wait(Some(LONG)).is_some());
    host.reset();

    let id = h.id().get();
    assert!(
        c.wait_for(LONG, |s| mirai_span(s, id).is_some()),
        "the mirai span arrives"
    );
    let all = c.spans();
    let m = mirai_span(&all, id).unwrap();
    assert_eq!(
        (m.trace_id.clone(), m.span_id.clone()),
        (sent.trace_id(), sent.span_id())
    );
    assert!(
        mirai_span(&all, h2.id().get()).is_none(),
        "no mirai span for a task traced by its caller"
    );
    // The fake daemon's connect and disconnect, by the pid it said hello with (the reset
    // exported every host span before it returned).
    let ours = |verb: &str| find(&all, |s| s.name == format!("daemon {verb} {}", host.url())).len();
    assert_eq!((ours("connect"), ours("disconnect")), (1, 1));
    let connect = find(&all, |s| s.name == format!("daemon connect {}", host.url()));
    assert_eq!(connect[0].attributes["process.pid"], "4000001");
}
