//! Median round trip of one tiny task through a host and one daemon process:
//! `cargo run --release -p mirai-host --example roundtrip -- <path to mirai-daemon> [n]`.
//! A quick check while developing; `cargo xtask bench` is the real benchmark. Tracing follows
//! the `OTEL_*` environment (off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set), and
//! `MIRAI_PIPELINE=off` turns pipelining off, for A/B runs.

use std::time::{Duration, Instant};

use mirai_host::launch::{daemon_command, DaemonArgs};
use mirai_host::{Host, HostConfig, SubmitOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let daemon = args
        .next()
        .ok_or("usage: roundtrip <mirai-daemon binary> [iterations]")?;
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let url = format!("abstract://mirai-roundtrip-{}", std::process::id());
    let mut config = HostConfig::new(url);
    if std::env::var("MIRAI_PIPELINE").is_ok_and(|v| v == "off") {
        config = config.with_pipeline(None);
    }
    let host = Host::start(config)?;
    host.launch(
        &daemon_command(daemon, host.url(), &DaemonArgs::default()),
        1,
    )?;
    if !host.wait_connections(1, Duration::from_secs(10)) {
        return Err("the daemon did not connect".into());
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let h = host.submit(b"echo:1".to_vec(), SubmitOptions::default())?;
        h.wait(None).ok_or("no outcome")?;
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "{n} round trips (tracing {}): median {:?}, p10 {:?}, p90 {:?}",
        if host.tracing() { "on" } else { "off" },
        times[n / 2],
        times[n / 10],
        times[n * 9 / 10]
    );
    Ok(())
}
