//! The tracing tests' shared workload and span-tree checks.

use std::collections::BTreeSet;
use std::time::Duration;

use mirai::{Host, HostConfig, Outcome, SubmitOptions};
use mirai_trace::collector::{codes, Collector, ReceivedSpan};

use super::{daemon_bin, LONG};
use mirai::host::launch::{daemon_command, DaemonArgs};

/// Every `OTEL_*` variable that could change the tracing decision of this test process (and of
/// the daemons it starts, which inherit its environment).
const OTEL_VARS: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
];

/// Sets this process's OTEL environment to exactly `vars` (inherited by the daemons it
/// launches). Call before anything asks whether to trace: the decision is taken once.
pub fn set_otel_env(vars: &[(&str, &str)]) {
    for k in OTEL_VARS {
        std::env::remove_var(k);
    }
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
}

/// True if a thread of this process has the span exporter's name (as the kernel keeps it:
/// the first 15 bytes).
pub fn exporter_thread_running() -> bool {
    let want = &mirai_trace::EXPORT_THREAD.as_bytes()[..15];
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("comm")).ok())
        .any(|comm| comm.strip_suffix(b"\n").unwrap_or(&comm) == want)
}

/// True once process `pid` has exited (a zombie not yet reaped counts) or does not exist.
pub fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// What the workload did, to find its spans by.
pub struct Workload {
    pub url: String,
    pub port: String,
    pub compute: String,
    /// Task ids in submission order: ok, failed, ok.
    pub ids: Vec<u64>,
    /// The daemon processes.
    pub pids: Vec<u32>,
}

/// A host with 2 echo daemons, 3 tasks of which the second fails, then a reset.
pub fn run_workload(compute: &str) -> Workload {
    let config = HostConfig::new("tcp://127.0.0.1:0").with_compute(compute);
    let host = Host::start(config).expect("host starts");
    assert!(host.tracing(), "tracing is on");
    host.launch(
        &daemon_command(daemon_bin(), host.url(), &DaemonArgs::default()),
        2,
    )
    .expect("launch");
    assert!(host.wait_connections(2, LONG), "2 daemons connected");
    let pids = host.launched_pids();
    let payloads: [&[u8]; 3] = [b"echo:a", b"fail:boom", b"echo:c"];
    let handles: Vec<_> = payloads
        .iter()
        .map(|p| {
            host.submit(p.to_vec(), SubmitOptions::default())
                .expect("submit")
        })
        .collect();
    let outcomes: Vec<_> = handles
        .iter()
        .map(|h| h.wait(Some(LONG)).expect("resolved"))
        .collect();
    assert!(
        matches!(&outcomes[0], Outcome::Value { status: mirai::host::Status::Ok, payload } if payload == b"a")
    );
    assert!(
        matches!(&outcomes[1], Outcome::Value { status: mirai::host::Status::Error, payload } if payload == b"boom")
    );
    assert!(
        matches!(&outcomes[2], Outcome::Value { status: mirai::host::Status::Ok, payload } if payload == b"c")
    );
    let url = host.url().to_string();
    host.reset();
    let port = url.rsplit(':').next().expect("a port").to_string();
    Workload {
        url,
        port,
        compute: compute.to_string(),
        ids: handles.iter().map(|h| h.id().get()).collect(),
        pids,
    }
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn children<'a>(spans: &'a [ReceivedSpan], parent: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.trace_id == parent.trace_id && s.parent_span_id == parent.span_id)
        .collect()
}

/// The workload's spans: those naming its URL, its `mirai` spans, and their descendants.
fn workload_spans(all: &[ReceivedSpan], w: &Workload) -> Vec<ReceivedSpan> {
    let ids: BTreeSet<String> = w.ids.iter().map(|i| i.to_string()).collect();
    let traces: BTreeSet<&str> = all
        .iter()
        .filter(|s| {
            s.name.ends_with(&w.url)
                || (s.name == "mirai" && ids.contains(&s.attributes["mirai.id"]))
        })
        .map(|s| s.trace_id.as_str())
        .collect();
    all.iter()
        .filter(|s| traces.contains(s.trace_id.as_str()))
        .cloned()
        .collect()
}

/// True once every span the workload should produce has arrived.
pub fn complete(all: &[ReceivedSpan], w: &Workload) -> bool {
    let s = workload_spans(all, w);
    let count = |n: &str| s.iter().filter(|x| x.name == n).count();
    count(&format!("daemons set {}", w.url)) >= 1
        && count(&format!("daemons reset {}", w.url)) >= 1
        && count(&format!("daemon connect {}", w.url)) >= 2
        && count(&format!("daemon disconnect {}", w.url)) >= 2
        && count("mirai") >= 3
        && count("daemon eval") >= 3
}

/// Waits for the workload's spans, then checks their tree.
pub fn assert_span_tree(collector: &Collector, w: &Workload) {
    let arrived = collector.wait_for(LONG, |all| complete(all, w));
    let spans = workload_spans(&collector.spans(), w);
    assert!(
        arrived,
        "spans of the workload did not all arrive; got {spans:#?}"
    );
    assert!(
        collector.rejected().is_empty(),
        "rejected requests: {:?}",
        collector.rejected()
    );
    let host_pid = std::process::id().to_string();
    let daemon_pids: BTreeSet<String> = w.pids.iter().map(|p| p.to_string()).collect();
    for s in &spans {
        assert_eq!(s.scope, "org.r-lib.mirai", "{s:#?}");
        assert_eq!(
            s.resource.get("service.name").map(String::as_str),
            Some("mirai"),
            "{s:#?}"
        );
    }

    // One `daemons set`, a root, with the profile's attributes.
    let sets = named(&spans, &format!("daemons set {}", w.url));
    assert_eq!(sets.len(), 1, "{spans:#?}");
    let set = sets[0];
    assert_eq!(
        (set.kind, set.parent_span_id.as_str()),
        (codes::INTERNAL, "")
    );
    assert_eq!(set.resource["process.pid"], host_pid);
    for (k, v) in [
        ("server.address", "127.0.0.1"),
        ("server.port", w.port.as_str()),
        ("network.transport", "tcp"),
        ("mirai.dispatcher", "true"),
        ("mirai.compute", w.compute.as_str()),
    ] {
        assert_eq!(
            set.attributes.get(k).map(String::as_str),
            Some(v),
            "attribute {k} of {set:#?}"
        );
    }
    let set_link = vec![(set.trace_id.clone(), set.span_id.clone())];

    // Three `mirai` spans (client, ids as submitted, linked to the set span), each with
    // exactly one `daemon eval` child evaluated in a daemon process; the failed one has an
    // error status on both.
    let mirais = named(&spans, "mirai");
    assert_eq!(mirais.len(), 3, "{mirais:#?}");
    for (i, id) in w.ids.iter().enumerate() {
        let m: Vec<_> = mirais
            .iter()
            .filter(|m| m.attributes["mirai.id"] == id.to_string())
            .collect();
        assert_eq!(m.len(), 1, "one mirai span for task {id}");
        let m = m[0];
        assert_eq!(m.kind, codes::CLIENT);
        assert_eq!(m.resource["process.pid"], host_pid);
        assert_eq!(
            m.links, set_link,
            "the mirai span of task {id} links to the daemons set span"
        );
        let evals = children(&spans, m);
        assert_eq!(evals.len(), 1, "task {id} has one child: {evals:#?}");
        let e = evals[0];
        assert_eq!((e.name.as_str(), e.kind), ("daemon eval", codes::SERVER));
        assert_eq!(e.attributes["mirai.id"], id.to_string());
        assert!(
            daemon_pids.contains(&e.resource["process.pid"]),
            "evaluated by a daemon: {e:#?}"
        );
        let failed = i == 1;
        let want = if failed {
            (codes::ERROR, "miraiError")
        } else {
            (codes::UNSET, "")
        };
        assert_eq!((m.status_code, m.status_message.as_str()), want, "{m:#?}");
        assert_eq!((e.status_code, e.status_message.as_str()), want, "{e:#?}");
    }
    assert_eq!(named(&spans, "daemon eval").len(), 3);

    // A connect per daemon (linked to the set span), a disconnect per daemon under the reset.
    let connects = named(&spans, &format!("daemon connect {}", w.url));
    let got: BTreeSet<String> = connects
        .iter()
        .map(|c| c.attributes["process.pid"].clone())
        .collect();
    assert_eq!((connects.len(), &got), (2, &daemon_pids), "{connects:#?}");
    assert!(connects.iter().all(|c| c.links == set_link));
    let resets = named(&spans, &format!("daemons reset {}", w.url));
    assert_eq!(resets.len(), 1);
    let reset = resets[0];
    assert_eq!(reset.links, set_link);
    assert_eq!(reset.attributes.get("mirai.compute"), Some(&w.compute));
    let disconnects = named(&spans, &format!("daemon disconnect {}", w.url));
    let got: BTreeSet<String> = disconnects
        .iter()
        .map(|c| c.attributes["process.pid"].clone())
        .collect();
    assert_eq!(
        (disconnects.len(), &got),
        (2, &daemon_pids),
        "{disconnects:#?}"
    );
    for d in &disconnects {
        assert_eq!(
            (d.trace_id.as_str(), d.parent_span_id.as_str()),
            (reset.trace_id.as_str(), reset.span_id.as_str())
        );
    }
}

/// A generous wait for spans that should not come, before checking that none did.
pub const QUIET: Duration = Duration::from_secs(2);
