//! The span tree through a real OpenTelemetry collector: the host and its daemons export to
//! `rotel` (a Rust OTLP collector, from PyPI's `rotel` package: `scripts/deps.sh` installs it
//! and links `rotel-agent` on the PATH), which receives our OTLP/HTTP requests and forwards the
//! spans over OTLP/HTTP to a receiver in this test that decodes them. So a collector that is
//! not ours accepts what mirai's exporter sends, and what comes out the other side is the tree
//! of `tests/tracing.rs`.
//!
//! Where `rotel-agent` is not installed the test says so and passes, unless `CI` or
//! `MIRAI_REQUIRE_ROTEL` is set (CI runs `scripts/deps.sh` first), when it fails.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::spans::{self, assert_span_tree, run_workload};
use mirai_trace::collector::Collector;

/// The `rotel-agent` binary: `$MIRAI_ROTEL_AGENT`, else on the PATH.
fn rotel_agent() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MIRAI_ROTEL_AGENT") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("rotel-agent"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The collector process, stopped when the test ends however it ends.
struct Rotel {
    child: Child,
    log: PathBuf,
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rotel {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[test]
fn the_span_tree_arrives_through_the_rotel_collector() {
    let Some(agent) = rotel_agent() else {
        let required =
            std::env::var_os("CI").is_some() || std::env::var_os("MIRAI_REQUIRE_ROTEL").is_some();
        assert!(!required, "rotel-agent not found: run scripts/deps.sh (pip install rotel) or set MIRAI_ROTEL_AGENT");
        println!("note: rotel-agent not found (scripts/deps.sh installs it); skipping the real-collector test");
        return;
    };
    let receiver = Collector::start().expect("receiver");
    let dir = std::env::temp_dir().join(format!("mirai-rotel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (http, grpc) = (free_port(), free_port());
    let log = dir.join("rotel.log");
    let child = Command::new(&agent)
        .arg("start")
        .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
        .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
        .args(["--exporter", "otlp"])
        .args(["--otlp-exporter-endpoint", &receiver.endpoint()])
        .args(["--otlp-exporter-protocol", "http"])
        .args(["--batch-timeout", "100ms"])
        .arg("--pid-file")
        .arg(dir.join("rotel.pid"))
        .arg("--log-file")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", agent.display()));
    let mut rotel = Rotel { child, log };
    let end = Instant::now() + common::LONG;
    while TcpStream::connect(("127.0.0.1", http)).is_err() {
        if let Ok(Some(status)) = rotel.child.try_wait() {
            panic!("rotel-agent exited ({status}): {}", rotel.log());
        }
        assert!(
            Instant::now() < end,
            "rotel-agent does not listen on {http}: {}",
            rotel.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    spans::set_otel_env(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("http://127.0.0.1:{http}"),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ]);
    let w = run_workload("via-rotel");
    if !receiver.wait_for(common::LONG, |all| spans::complete(all, &w)) {
        panic!(
            "spans did not come through rotel; its log:\n{}",
            rotel.log()
        );
    }
    assert_span_tree(&receiver, &w);
    // They came from rotel, not straight from mirai's exporter.
    let agents = receiver.user_agents();
    assert!(
        !agents.is_empty()
            && agents
                .iter()
                .all(|a| !a.starts_with("OTel-OTLP-Exporter-Rust")),
        "{agents:?}"
    );
    drop(rotel);
    let _ = std::fs::remove_dir_all(&dir);
}
