//! The whole export path in one process: spans made with this crate's constructors reach an
//! OTLP/HTTP receiver (the `collector` feature) through the SDK's batch processor thread and
//! our blocking HTTP client, and decode as OTLP with the names, kinds, parents, links,
//! statuses and resource they were given.

use std::time::{Duration, SystemTime};

use mirai_trace::collector::{codes, Collector};
use mirai_trace::{Decision, ErrorCode, Settings, Status, TraceParent};

#[test]
fn spans_arrive_as_otlp_with_their_tree_links_and_statuses() {
    let collector = Collector::start().expect("collector");
    let settings = Settings {
        endpoint: format!("{}/v1/traces", collector.endpoint()),
        service_name: Some("mirai-trace-test".into()),
        timeout: Duration::from_secs(10),
    };
    assert!(mirai_trace::init(Decision::On(settings)), "first decision");
    assert!(mirai_trace::enabled());
    assert!(
        !mirai_trace::init(Decision::Off {
            reason: "late".into(),
            warn: false
        }),
        "decided once"
    );

    let url = "tcp://127.0.0.1:5555";
    let set = mirai_trace::daemons_set(url, true, "gpu", SystemTime::now());
    let set_cx = set.context().expect("recording");
    set.end();
    let map = mirai_trace::mirai_map(None, Some(set_cx));
    let map_cx = map.context().unwrap();
    let mut ok = mirai_trace::mirai(41, Some(map_cx), Some(set_cx));
    let mut bad = mirai_trace::mirai(42, Some(map_cx), Some(set_cx));
    map.end();
    // The daemon side only sees the traceparent text.
    let wire = bad.context().unwrap().to_string();
    let mut eval = mirai_trace::daemon_eval(42, Some(&wire));
    eval.set_outcome(Status::Error);
    eval.end();
    let mut orphan = mirai_trace::daemon_eval(43, Some("not a traceparent"));
    orphan.set_outcome(Status::Interrupted);
    orphan.end();
    bad.set_error("miraiError");
    bad.end();
    ok.set_outcome(Status::Ok);
    ok.end();
    let mut lost = mirai_trace::mirai(44, Some(map_cx), Some(set_cx));
    lost.set_error_code(ErrorCode::CONNECTION_RESET);
    lost.end();
    mirai_trace::daemon_connect(url, 7, Some(set_cx), SystemTime::now()).end();
    let reset = mirai_trace::daemons_reset(url, true, "gpu", Some(set_cx));
    mirai_trace::daemon_disconnect(url, 7, reset.context(), Some(set_cx), SystemTime::now()).end();
    reset.end();
    mirai_trace::flush();

    // flush() returns once the batch was exported: no waiting needed, but be lenient.
    assert!(
        collector.wait_for(Duration::from_secs(30), |s| s.len() >= 10),
        "got {:?}",
        collector.spans()
    );
    assert!(
        collector.rejected().is_empty(),
        "{:?}",
        collector.rejected()
    );
    let spans = collector.spans();
    assert_eq!(spans.len(), 10, "{spans:#?}");
    let one = |name: &str| {
        let v: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(v.len(), 1, "one {name}: {spans:#?}");
        v[0].clone()
    };
    let tid = |p: TraceParent| p.trace_id();
    let sid = |p: TraceParent| p.span_id();

    for s in &spans {
        assert_eq!(s.scope, mirai_trace::TRACER_NAME);
        assert_eq!(s.resource["service.name"], "mirai-trace-test");
        assert_eq!(s.resource["process.pid"], std::process::id().to_string());
        assert!(s.end_ns >= s.start_ns && s.start_ns > 0);
    }
    let set = one("daemons set tcp://127.0.0.1:5555");
    assert_eq!(
        (set.kind, set.parent_span_id.as_str()),
        (codes::INTERNAL, "")
    );
    assert_eq!(set.span_id, sid(set_cx));
    for (k, v) in [
        ("server.address", "127.0.0.1"),
        ("server.port", "5555"),
        ("network.transport", "tcp"),
        ("mirai.dispatcher", "true"),
        ("mirai.compute", "gpu"),
    ] {
        assert_eq!(set.attributes.get(k).map(String::as_str), Some(v), "{k}");
    }
    let map = one("mirai_map");
    assert_eq!(map.links, vec![(tid(set_cx), sid(set_cx))]);
    let mirais: Vec<_> = spans.iter().filter(|s| s.name == "mirai").collect();
    assert_eq!(mirais.len(), 3);
    for m in &mirais {
        assert_eq!(m.kind, codes::CLIENT);
        assert_eq!(
            (m.trace_id.as_str(), m.parent_span_id.as_str()),
            (map.trace_id.as_str(), map.span_id.as_str())
        );
        assert_eq!(m.links, vec![(tid(set_cx), sid(set_cx))]);
    }
    let failed = mirais
        .iter()
        .find(|m| m.attributes["mirai.id"] == "42")
        .unwrap();
    assert_eq!(
        (failed.status_code, failed.status_message.as_str()),
        (codes::ERROR, "miraiError")
    );
    let fine = mirais
        .iter()
        .find(|m| m.attributes["mirai.id"] == "41")
        .unwrap();
    assert_eq!(fine.status_code, codes::UNSET);
    let lost = mirais
        .iter()
        .find(|m| m.attributes["mirai.id"] == "44")
        .unwrap();
    assert_eq!(
        (lost.status_code, lost.status_message.as_str()),
        (codes::ERROR, "errorValue 19 | Connection reset")
    );

    let evals: Vec<_> = spans.iter().filter(|s| s.name == "daemon eval").collect();
    assert_eq!(evals.len(), 2);
    let child = evals
        .iter()
        .find(|e| e.attributes["mirai.id"] == "42")
        .unwrap();
    assert_eq!(child.kind, codes::SERVER);
    assert_eq!(
        (child.trace_id.as_str(), child.parent_span_id.as_str()),
        (failed.trace_id.as_str(), failed.span_id.as_str())
    );
    assert_eq!(
        (child.status_code, child.status_message.as_str()),
        (codes::ERROR, "miraiError")
    );
    let root = evals
        .iter()
        .find(|e| e.attributes["mirai.id"] == "43")
        .unwrap();
    assert_eq!(
        root.parent_span_id, "",
        "an invalid traceparent gives a root span"
    );
    assert_eq!(
        (root.status_code, root.status_message.as_str()),
        (codes::ERROR, "miraiInterrupt")
    );

    let conn = one("daemon connect tcp://127.0.0.1:5555");
    assert_eq!(conn.attributes["process.pid"], "7");
    let reset = one("daemons reset tcp://127.0.0.1:5555");
    assert_eq!(reset.links, vec![(tid(set_cx), sid(set_cx))]);
    let disc = one("daemon disconnect tcp://127.0.0.1:5555");
    assert_eq!(
        (disc.trace_id.as_str(), disc.parent_span_id.as_str()),
        (reset.trace_id.as_str(), reset.span_id.as_str())
    );
    assert!(collector.requests() >= 1);
}
