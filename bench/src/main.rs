//! The engine benchmarks behind `cargo xtask bench`, built in release mode.
//!
//! Every system is measured in the same run, interleaved round by round so that drift on a
//! shared machine hits all of them alike; results are medians with min-max and ratios to the
//! floor (a raw two-process Unix-socket ping-pong of the same message size).
//!
//! Usage: `mirai-bench [--rounds R] [--trips N] [--tasks T] [--daemon PATH] [--csv FILE]`.
//! The same binary also serves as the raw echo peer (`mirai-bench raw-echo <socket>`), gives
//! the R benchmark its interleaved floor samples (`mirai-bench floor --blocks B --trips N`:
//! one line per block, the median round trip in microseconds), runs the `nng` crate's req/rep
//! reference rows of the nanonext benchmark (`mirai-bench nng-reqrep`, see `nanonext.rs`), and
//! runs the scale benchmark
//! (`mirai-bench scale --daemons 100,300,1000 --tasks 100000 [--daemon PATH] [--csv FILE]`:
//! that many Rust echo daemons on one host, time and host memory; rows are appended to an
//! existing CSV file, so that each count can run in a process of its own).
//!
//! The round trip is also measured with OpenTelemetry tracing (`mirai-trace`) in three child
//! processes, since a process decides once, from its `OTEL_*` environment, whether it traces:
//! (a) no `OTEL_*` variable, (b) `OTEL_SDK_DISABLED=true` over a configured endpoint, (c) every
//! span exported over OTLP/HTTP to a sink of this process on 127.0.0.1, which answers 200,
//! counts the spans and keeps nothing. Each child (`mirai-bench trace-child [--daemon PATH]`)
//! runs a host with one native echo daemon and times blocks of round trips on request; the
//! three take their turns in every round, in a rotating order, each pinned with its daemon to
//! the last CPU (`taskset`), so that the comparison is of code paths, not of CPU placement.
//! The spans (c) sent are counted after each of its blocks and at the end; (b) must send none.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mirai::host::launch;
use mirai::host::TransportOptions;
use mirai::transport::Backend;
use mirai::{Host, HostConfig, SubmitOptions};

mod nanonext;
mod scale;
mod trace;

use scale::scale;
use trace::{trace_child, TraceGroup, DISABLED, TRACED, TRACE_MEASURE, UNTRACED};

const MSG: usize = 16;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("floor") {
        if let Err(e) = floor_blocks(&args[1..]) {
            eprintln!("mirai-bench floor: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Some(sub @ ("nng-reqrep" | "nng-rep" | "sp-reqrep")) = args.first().map(String::as_str) {
        let r = match sub {
            "nng-rep" => nanonext::nng_rep(&args[1..]),
            "sp-reqrep" => nanonext::sp_reqrep(&args[1..]),
            _ => nanonext::nng_reqrep(&args[1..]),
        };
        if let Err(e) = r {
            eprintln!("mirai-bench {sub}: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("scale") {
        if let Err(e) = scale(&args[1..]) {
            eprintln!("mirai-bench scale: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("trace-child") {
        if let Err(e) = trace_child(&args[1..]) {
            eprintln!("mirai-bench trace-child: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("raw-echo") {
        let Some(path) = args.get(1) else {
            eprintln!("usage: mirai-bench raw-echo <socket-path>");
            std::process::exit(2);
        };
        if let Err(e) = raw_echo(path) {
            eprintln!("raw-echo: {e}");
            std::process::exit(1);
        }
        return;
    }
    match Opts::parse(&args).and_then(|o| run(&o)) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("mirai-bench: {e}");
            std::process::exit(1);
        }
    }
}

struct Opts {
    rounds: usize,
    trips: usize,
    tasks: usize,
    daemon: PathBuf,
    csv: Option<PathBuf>,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut o = Opts {
            rounds: 10,
            trips: 1000,
            tasks: 10_000,
            daemon: sibling("mirai-daemon")?,
            csv: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
            match a.as_str() {
                "--rounds" => o.rounds = num(val()?)?,
                "--trips" => o.trips = num(val()?)?,
                "--tasks" => o.tasks = num(val()?)?,
                "--daemon" => o.daemon = PathBuf::from(val()?),
                "--csv" => o.csv = Some(PathBuf::from(val()?)),
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        if o.rounds == 0 || o.trips == 0 {
            return Err("--rounds and --trips must be at least 1".into());
        }
        Ok(o)
    }
}

fn num(s: &str) -> Result<usize, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not a whole number"))
}

/// A binary built next to this one (same target directory).
fn sibling(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot locate myself: {e}"))?;
    Ok(me.with_file_name(name))
}

/// The floor's peer: echo fixed-size messages on a Unix socket until it closes.
fn raw_echo(path: &str) -> std::io::Result<()> {
    let mut s = UnixStream::connect(path)?;
    let mut buf = [0u8; MSG];
    loop {
        if s.read_exact(&mut buf).is_err() {
            return Ok(());
        }
        s.write_all(&buf)?;
    }
}

/// The raw floor: a child process echoing 16 bytes over a Unix socket.
struct Raw {
    child: Child,
    stream: UnixStream,
    dir: PathBuf,
}

impl Raw {
    fn start() -> Result<Raw, String> {
        let dir = std::env::temp_dir().join(format!("mirai-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join("raw.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| format!("raw floor bind: {e}"))?;
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let child = Command::new(me)
            .arg("raw-echo")
            .arg(&path)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("raw floor spawn: {e}"))?;
        let (stream, _) = listener
            .accept()
            .map_err(|e| format!("raw floor accept: {e}"))?;
        Ok(Raw { child, stream, dir })
    }

    fn trip(&mut self) -> Result<(), String> {
        let mut buf = [7u8; MSG];
        self.stream.write_all(&buf).map_err(|e| e.to_string())?;
        self.stream.read_exact(&mut buf).map_err(|e| e.to_string())
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The engine: a host with `n` `mirai-daemon` echo daemons over one backend.
struct Engine {
    host: Host,
}

impl Engine {
    fn start(backend: Backend, daemons: usize, daemon: &PathBuf) -> Result<Engine, String> {
        let url = format!(
            "abstract://mirai-bench-{}-{:?}-{}",
            std::process::id(),
            backend,
            daemons
        );
        let cfg = HostConfig::new(url).with_transport(TransportOptions {
            backend,
            ..TransportOptions::default()
        });
        let host = Host::start(cfg).map_err(|e| format!("{backend:?} host: {e}"))?;
        let backend_arg = match backend {
            Backend::Native => "native",
            Backend::Nng => "nng",
        };
        let cmd = launch::Command::new(daemon)
            .arg(host.url())
            .arg("--backend")
            .arg(backend_arg);
        host.launch(&cmd, daemons).map_err(|e| e.to_string())?;
        if !host.wait_connections(daemons as u64, Duration::from_secs(30)) {
            return Err(format!(
                "{backend:?}: {daemons} daemons did not connect within 30 s"
            ));
        }
        Ok(Engine { host })
    }

    fn trip(&self) -> Result<(), String> {
        let h = self
            .host
            .submit(vec![7u8; MSG], SubmitOptions::default())
            .map_err(|e| e.to_string())?;
        match h.wait(Some(Duration::from_secs(30))) {
            Some(mirai::Outcome::Value { payload, .. }) if payload.len() == MSG => Ok(()),
            other => Err(format!("unexpected outcome {other:?}")),
        }
    }

    /// Seconds to submit `n` tasks and collect every result.
    fn throughput(&self, n: usize) -> Result<f64, String> {
        let t = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|_| self.host.submit(vec![7u8; MSG], SubmitOptions::default()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for h in handles {
            if !matches!(
                h.wait(Some(Duration::from_secs(60))),
                Some(mirai::Outcome::Value { .. })
            ) {
                return Err("a throughput task did not complete".into());
            }
        }
        Ok(t.elapsed().as_secs_f64())
    }
}

#[derive(Default)]
struct Series(Vec<f64>);

impl Series {
    fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            return f64::NAN;
        }
        let m = v.len() / 2;
        if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        }
    }
    fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }
    fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }
}

fn time_trips(
    n: usize,
    mut f: impl FnMut() -> Result<(), String>,
    out: &mut Series,
) -> Result<(), String> {
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        out.0.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(())
}

fn run(o: &Opts) -> Result<(), String> {
    if !o.daemon.exists() {
        return Err(format!(
            "daemon binary {} not found (build it with cargo build --release -p mirai-daemon)",
            o.daemon.display()
        ));
    }
    let mut raw = Raw::start()?;
    let native = Engine::start(Backend::Native, 1, &o.daemon)?;
    let nng = Engine::start(Backend::Nng, 1, &o.daemon)?;
    let native2 = Engine::start(Backend::Native, 2, &o.daemon)?;
    let nng2 = Engine::start(Backend::Nng, 2, &o.daemon)?;
    let mut trace = TraceGroup::start(&o.daemon)?;

    // Warm-up, then interleaved rounds.
    time_trips(WARMUP, || raw.trip(), &mut Series::default())?;
    time_trips(WARMUP, || native.trip(), &mut Series::default())?;
    time_trips(WARMUP, || nng.trip(), &mut Series::default())?;

    let (mut s_raw, mut s_native, mut s_nng) =
        (Series::default(), Series::default(), Series::default());
    let (mut tp_native, mut tp_nng) = (Series::default(), Series::default());
    let mut s_trace: [Series; 3] = Default::default();
    for round in 0..o.rounds {
        time_trips(o.trips, || raw.trip(), &mut s_raw)?;
        time_trips(o.trips, || native.trip(), &mut s_native)?;
        time_trips(o.trips, || nng.trip(), &mut s_nng)?;
        if o.tasks > 0 {
            tp_native
                .0
                .push(o.tasks as f64 / native2.throughput(o.tasks)?);
            tp_nng.0.push(o.tasks as f64 / nng2.throughput(o.tasks)?);
        }
        // A rotating order, so that none of the three always follows the same system.
        for k in 0..3 {
            let i = (round + k) % 3;
            trace.block(i, o.trips, &mut s_trace[i])?;
        }
    }
    drop(raw);
    let spans = trace.finish()?;

    let floor = s_raw.median();
    let mut rows = vec![
        (
            "round trip 16 B",
            "raw unix socket, 2 processes (floor)",
            "us",
            &s_raw,
            1.0,
        ),
        (
            "round trip 16 B",
            "engine, native transport, 1 daemon",
            "us",
            &s_native,
            s_native.median() / floor,
        ),
        (
            "round trip 16 B",
            "engine, nng transport, 1 daemon",
            "us",
            &s_nng,
            s_nng.median() / floor,
        ),
    ];
    // Ratios to (a), the default: no OTEL_* variable at all.
    let untraced = s_trace[0].median();
    let traced_label = format!("{TRACED} ({spans} spans)");
    for (i, label) in [UNTRACED, DISABLED, traced_label.as_str()]
        .into_iter()
        .enumerate()
    {
        rows.push((
            TRACE_MEASURE,
            label,
            "us",
            &s_trace[i],
            s_trace[i].median() / untraced,
        ));
    }
    let tp_base = tp_native.median();
    if o.tasks > 0 {
        rows.push((
            "tasks/s, 2 daemons",
            "engine, native transport",
            "tasks/s",
            &tp_native,
            1.0,
        ));
        rows.push((
            "tasks/s, 2 daemons",
            "engine, nng transport",
            "tasks/s",
            &tp_nng,
            tp_nng.median() / tp_base,
        ));
    }

    println!(
        "mirai-bench: {} rounds x {} round trips, {} tasks per throughput sample, {} cores",
        o.rounds,
        o.trips,
        o.tasks,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{:<24} {:<42} {:>12} {:>24} {:>8}",
        "measure", "system", "median", "min - max", "ratio"
    );
    let mut csv = String::from("measure,system,unit,median,min,max,ratio\n");
    for (measure, system, unit, s, ratio) in &rows {
        println!(
            "{:<24} {:<42} {:>9.1} {:<2} {:>11.1} - {:<10.1} {:>7.2}x",
            measure,
            system,
            s.median(),
            if *unit == "us" { "us" } else { "" },
            s.min(),
            s.max(),
            ratio
        );
        csv.push_str(&format!(
            "\"{measure}\",\"{system}\",{unit},{:.3},{:.3},{:.3},{:.4}\n",
            s.median(),
            s.min(),
            s.max(),
            ratio
        ));
    }
    println!(
        "ratios: round trips relative to the raw floor, the tracing group's to (a); throughput relative to the native engine"
    );
    println!(
        "tracing: the local OTLP/HTTP sink received {spans} spans from (c) (at least 2 per round trip: {}) and none from (b)",
        2 * (WARMUP + o.rounds * o.trips)
    );
    if let Some(path) = &o.csv {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, csv).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    drop((native, nng, native2, nng2));
    Ok(())
}

/// Untimed round trips before the timed ones, per system.
const WARMUP: usize = 200;

/// `floor --blocks B --trips N`: B blocks of N raw round trips, each timed alone; prints each
/// block's median (us), the statistic the R benchmark takes of its own round trips.
fn floor_blocks(args: &[String]) -> Result<(), String> {
    let (mut blocks, mut trips) = (5usize, 200usize);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--blocks" => blocks = num(v)?,
            "--trips" => trips = num(v)?,
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let mut raw = Raw::start()?;
    for _ in 0..50 {
        raw.trip()?;
    }
    let mut out = String::new();
    for _ in 0..blocks {
        let mut s = Series::default();
        time_trips(trips.max(1), || raw.trip(), &mut s)?;
        out.push_str(&format!("{:.3}\n", s.median()));
    }
    print!("{out}");
    Ok(())
}
