//! The engine benchmarks behind `cargo xtask bench`, built in release mode.
//!
//! Every system is measured in the same run, interleaved round by round so that drift on a
//! shared machine hits all of them alike; results are medians with min-max and ratios to the
//! floor (a raw two-process Unix-socket ping-pong of the same message size).
//!
//! Usage: `mirai-bench [--rounds R] [--trips N] [--tasks T] [--daemon PATH] [--csv FILE]`.
//! The same binary also serves as the raw echo peer (`mirai-bench raw-echo <socket>`), gives
//! the R benchmark its interleaved floor samples (`mirai-bench floor --blocks B --trips N`:
//! one line per block, the median round trip in microseconds), and runs the scale benchmark
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
        let mut cfg = HostConfig::new(url);
        cfg.transport = TransportOptions {
            backend,
            ..TransportOptions::default()
        };
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

// ---------------------------------------------------------------------------------------------
// Tracing: does it cost nothing when off?

/// The tracing group's measure and its three systems (see the crate docs).
const TRACE_MEASURE: &str = "round trip 16 B, tracing";
const UNTRACED: &str = "(a) off: no OTEL_* variable";
const DISABLED: &str = "(b) off: OTEL_SDK_DISABLED=true";
const TRACED: &str = "(c) on: to a local OTLP sink";

/// A local OTLP/HTTP receiver that keeps nothing: it answers every export with `200` and an
/// empty `ExportTraceServiceResponse` (as a collector does, so the exporter works normally) and
/// counts the spans in it.
struct Sink {
    addr: SocketAddr,
    spans: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    /// Requests that were not a readable OTLP/HTTP protobuf trace export (answered `400`).
    unreadable: Arc<AtomicU64>,
}

impl Sink {
    fn start() -> Result<Sink, String> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("OTLP sink bind: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("OTLP sink address: {e}"))?;
        let sink = Sink {
            addr,
            spans: Arc::default(),
            requests: Arc::default(),
            unreadable: Arc::default(),
        };
        let (spans, requests, unreadable) = (
            sink.spans.clone(),
            sink.requests.clone(),
            sink.unreadable.clone(),
        );
        // The exporter sends one request per connection and closes it: serve them in turn.
        // The thread ends with the process.
        std::thread::Builder::new()
            .name("otlp-sink".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    match sink_serve(conn) {
                        Some(n) => {
                            spans.fetch_add(n, Ordering::AcqRel);
                            requests.fetch_add(1, Ordering::AcqRel);
                        }
                        None => {
                            unreadable.fetch_add(1, Ordering::AcqRel);
                        }
                    }
                }
            })
            .map_err(|e| format!("OTLP sink thread: {e}"))?;
        Ok(sink)
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is appended by the exporter).
    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spans(&self) -> u64 {
        self.spans.load(Ordering::Acquire)
    }

    /// Waits (at most 30 s) until at least `n` spans have arrived; the count then.
    fn wait_spans(&self, n: u64) -> u64 {
        let end = Instant::now() + Duration::from_secs(30);
        while self.spans() < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.spans()
    }
}

/// Reads one HTTP request, answers it, and returns the number of spans it carried (`None`,
/// answered `400`, if it was not a `POST` of an uncompressed protobuf trace export).
fn sink_serve(conn: TcpStream) -> Option<u64> {
    let mut w = conn.try_clone().ok()?;
    let n = sink_read(conn);
    let status = if n.is_some() {
        "200 OK"
    } else {
        "400 Bad Request"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    w.write_all(head.as_bytes()).ok()?;
    n
}

fn sink_read(conn: TcpStream) -> Option<u64> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let post = line.starts_with("POST ");
    let (mut len, mut plain) = (0usize, true);
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().ok()?,
            "content-encoding" => plain = v.trim().eq_ignore_ascii_case("identity"),
            "transfer-encoding" => plain = false,
            _ => {}
        }
    }
    if !post || !plain || len > 64 << 20 {
        return None;
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    count_spans(&body)
}

/// The spans in an OTLP `ExportTraceServiceRequest`: `resource_spans` (field 1), each with
/// `scope_spans` (field 2), each with `spans` (field 2). `None` if it is not valid protobuf.
fn count_spans(body: &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for rs in proto_fields(body, 1)? {
        for ss in proto_fields(rs, 2)? {
            n += proto_fields(ss, 2)?.len() as u64;
        }
    }
    Some(n)
}

/// The length-delimited fields numbered `field` of a protobuf message, skipping the others.
fn proto_fields(msg: &[u8], field: u64) -> Option<Vec<&[u8]>> {
    let varint = |i: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *msg.get(*i)?;
            *i += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    };
    let (mut out, mut i) = (Vec::new(), 0usize);
    while i < msg.len() {
        let key = varint(&mut i)?;
        match key & 7 {
            0 => {
                varint(&mut i)?;
            }
            1 => i = i.checked_add(8)?,
            2 => {
                let len = usize::try_from(varint(&mut i)?).ok()?;
                let end = i.checked_add(len)?;
                let sub = msg.get(i..end)?;
                if key >> 3 == field {
                    out.push(sub);
                }
                i = end;
            }
            5 => i = i.checked_add(4)?,
            _ => return None,
        }
    }
    (i == msg.len()).then_some(out)
}

/// The CPU the tracing children are pinned to (the last one), if `taskset` (util-linux) is
/// there and the machine has more than one CPU.
fn pin_cpu() -> Option<usize> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ok = Command::new("taskset")
        .arg("-c")
        .arg((n - 1).to_string())
        .arg("true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (n > 1 && ok).then_some(n - 1)
}

/// One system of the tracing group: a `trace-child` process, driven over its stdin and stdout.
struct TraceChild {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl TraceChild {
    /// Starts a child with no `OTEL_*` variable but `env`; returns it and whether it traces.
    fn start(daemon: &Path, env: &[(&str, String)]) -> Result<(TraceChild, bool), String> {
        let me = std::env::current_exe().map_err(|e| format!("cannot locate myself: {e}"))?;
        // Each child and its daemon (which inherits the mask) run pinned to one CPU: on a
        // shared VM a round trip is bimodal (same-CPU wake-ups in ~10 us, cross-CPU ones in
        // 30-90 us) and which mode a process lands in would otherwise decide the comparison.
        let mut cmd = match pin_cpu() {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(me);
                c
            }
            None => Command::new(me),
        };
        cmd.arg("trace-child")
            .arg("--daemon")
            .arg(daemon)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OTEL_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().map_err(|e| format!("trace child spawn: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("trace child has no pipes".into());
        };
        let mut c = TraceChild {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let on = c.line("ready")? == "on";
        Ok((c, on))
    }

    /// The rest of the child's next line that starts with `tag`; other lines (none expected:
    /// the daemons share its stdout) are passed on.
    fn line(&mut self, tag: &str) -> Result<String, String> {
        let mut l = String::new();
        loop {
            l.clear();
            if self
                .stdout
                .read_line(&mut l)
                .map_err(|e| format!("trace child: {e}"))?
                == 0
            {
                return Err("trace child ended early (see its message above)".into());
            }
            match l.trim_end().strip_prefix(tag) {
                Some(rest) => return Ok(rest.trim().to_string()),
                None => print!("{l}"),
            }
        }
    }

    /// Has the child time `n` round trips, and adds them to `out`.
    fn block(&mut self, n: usize, out: &mut Series) -> Result<(), String> {
        writeln!(self.stdin, "{n}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("trace child: {e}"))?;
        let l = self.line("trips")?;
        let before = out.0.len();
        for v in l.split_whitespace() {
            out.0.push(
                v.parse()
                    .map_err(|_| format!("trace child sent '{v}', not a time"))?,
            );
        }
        if out.0.len() - before != n {
            return Err(format!(
                "trace child timed {} round trips, not {n}",
                out.0.len() - before
            ));
        }
        Ok(())
    }

    /// Closes its stdin (it resets its host, which exports what is left) and waits for it.
    fn finish(self) -> Result<(), String> {
        let TraceChild {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let status = child.wait().map_err(|e| format!("trace child: {e}"))?;
        if !status.success() {
            return Err(format!("trace child failed ({status})"));
        }
        Ok(())
    }
}

/// The three systems (a), (b), (c), with the sinks (b) and (c) are pointed at.
struct TraceGroup {
    children: Vec<TraceChild>,
    disabled_sink: Sink,
    traced_sink: Sink,
    /// Round trips (c) has made, warm-up included.
    traced_trips: usize,
}

impl TraceGroup {
    fn start(daemon: &Path) -> Result<TraceGroup, String> {
        let disabled_sink = Sink::start()?;
        let traced_sink = Sink::start()?;
        let (a, a_on) = TraceChild::start(daemon, &[])?;
        // Disabled over a configured endpoint: the switch must win.
        let (b, b_on) = TraceChild::start(
            daemon,
            &[
                ("OTEL_SDK_DISABLED", "true".into()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", disabled_sink.endpoint()),
            ],
        )?;
        // A batch every 100 ms rather than 5 s, so that (c)'s spans are all exported, and
        // counted, before the next system's block starts.
        let (c, c_on) = TraceChild::start(
            daemon,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", traced_sink.endpoint()),
                ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ],
        )?;
        if a_on || b_on || !c_on {
            return Err(format!("tracing decided wrongly: (a) {a_on}, (b) {b_on}, (c) {c_on}; expected off, off, on"));
        }
        Ok(TraceGroup {
            children: vec![a, b, c],
            disabled_sink,
            traced_sink,
            traced_trips: WARMUP,
        })
    }

    /// A block of `n` round trips of system `i` (0, 1, 2 for (a), (b), (c)). After (c)'s,
    /// waits until its spans have arrived: each round trip is a `mirai` span on the host and
    /// a `daemon eval` span on the daemon.
    fn block(&mut self, i: usize, n: usize, out: &mut Series) -> Result<(), String> {
        self.children[i].block(n, out)?;
        if i == 2 {
            self.traced_trips += n;
            let want = 2 * self.traced_trips as u64;
            let got = self.traced_sink.wait_spans(want);
            if got < want {
                return Err(format!(
                    "tracing on: {got} spans arrived at the local OTLP sink within 30 s, expected {want} ({} requests, {} unreadable)",
                    self.traced_sink.requests.load(Ordering::Acquire),
                    self.traced_sink.unreadable.load(Ordering::Acquire)
                ));
            }
        }
        Ok(())
    }

    /// Ends the three children; the number of spans (c) exported, checked: at least 2 per
    /// round trip, and none at all from (b).
    fn finish(self) -> Result<u64, String> {
        for c in self.children {
            c.finish()?;
        }
        // The profile's own spans (daemons set and reset, daemon connect) come last, with the
        // host's reset; give them a moment.
        let spans = self
            .traced_sink
            .wait_spans(2 * self.traced_trips as u64 + 3);
        let b = &self.disabled_sink;
        let b_requests = b.requests.load(Ordering::Acquire) + b.unreadable.load(Ordering::Acquire);
        if b.spans() > 0 || b_requests > 0 {
            return Err(format!(
                "OTEL_SDK_DISABLED=true: {} spans in {b_requests} requests arrived",
                b.spans()
            ));
        }
        if self.traced_sink.unreadable.load(Ordering::Acquire) > 0 {
            return Err(
                "tracing on: the local OTLP sink could not read some export requests".into(),
            );
        }
        Ok(spans)
    }
}

/// `trace-child [--daemon PATH]`: a host with one native echo daemon, tracing or not as the
/// environment says. Prints `ready on|off`, then for each line `N` on stdin times N round trips
/// and prints `trips` and the N times (us); at the end of stdin resets the host and exits.
fn trace_child(args: &[String]) -> Result<(), String> {
    let mut daemon = sibling("mirai-daemon")?;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--daemon" => daemon = PathBuf::from(v),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let engine = Engine::start(Backend::Native, 1, &daemon)?;
    time_trips(WARMUP, || engine.trip(), &mut Series::default())?;
    // Export outside the timed blocks (a no-op when off), so that (c)'s export of a block's
    // spans runs while the parent waits for them, not during another system's block.
    mirai_trace::flush();
    let mut out = std::io::stdout();
    let state = if mirai_trace::enabled() { "on" } else { "off" };
    writeln!(out, "ready {state}")
        .and_then(|_| out.flush())
        .map_err(|e| e.to_string())?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let mut s = Series::default();
        time_trips(num(line.trim())?, || engine.trip(), &mut s)?;
        mirai_trace::flush();
        let mut reply = String::from("trips");
        for v in &s.0 {
            let _ = write!(reply, " {v:.3}");
        }
        writeln!(out, "{reply}")
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())?;
    }
    drop(engine);
    Ok(())
}

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

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc_page_size() };
    pages * page
}

extern "C" {
    fn sysconf(name: i32) -> i64;
}

/// `sysconf(_SC_PAGESIZE)` (30 on Linux).
unsafe fn libc_page_size() -> u64 {
    let p = sysconf(30);
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// `scale --daemons A,B,C --tasks T [--daemon PATH] [--csv FILE]`: for each count, one host
/// with that many Rust echo daemons (native transport) runs T tasks of 16 bytes, submitted at
/// once and then collected; prints and writes connect time, run time, tasks/s and the host's
/// memory: resident memory per connected daemon, and its growth from then to when every task
/// has been submitted (the peak: most are queued), in total and per task.
fn scale(args: &[String]) -> Result<(), String> {
    let mut counts = vec![100usize, 300, 1000];
    let mut tasks = 100_000usize;
    let mut daemon = sibling("mirai-daemon")?;
    let mut csv: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--daemons" => counts = v.split(',').map(num).collect::<Result<_, _>>()?,
            "--tasks" => tasks = num(v)?,
            "--daemon" => daemon = PathBuf::from(v),
            "--csv" => csv = Some(PathBuf::from(v)),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    // Appends to an existing file (one process per count keeps each count's memory figures
    // free of the allocator state an earlier count left behind).
    let header = "daemons,tasks,connect_s,run_s,tasks_per_s,host_rss_before_mb,host_bytes_per_daemon,host_peak_growth_mb,host_bytes_per_task,all_completed\n";
    let mut out = match &csv {
        Some(p) if p.exists() => {
            std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?
        }
        _ => String::from(header),
    };
    println!(
        "{:>8} {:>9} {:>11} {:>9} {:>11} {:>14} {:>16} {:>14}",
        "daemons",
        "tasks",
        "connect s",
        "run s",
        "tasks/s",
        "host B/daemon",
        "host peak +MB",
        "host B/task"
    );
    for &n in &counts {
        let before = rss();
        let url = format!("abstract://mirai-bench-scale-{}-{n}", std::process::id());
        let mut cfg = HostConfig::new(url);
        cfg.max_pending = cfg.max_pending.max(n + 16);
        cfg.hello_timeout = Duration::from_secs(120);
        let host = Host::start(cfg).map_err(|e| format!("host: {e}"))?;
        let cmd = launch::Command::new(&daemon).arg(host.url());
        let t0 = Instant::now();
        host.launch(&cmd, n).map_err(|e| e.to_string())?;
        if !host.wait_connections(n as u64, Duration::from_secs(300)) {
            return Err(format!("{n} daemons did not connect within 300 s"));
        }
        let connect = t0.elapsed().as_secs_f64();
        let base = rss();
        let per_daemon = base.saturating_sub(before) as f64 / n as f64;
        let t1 = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| host.submit(vec![7u8; MSG], SubmitOptions::default()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let peak = rss();
        let mut ok = 0usize;
        for h in handles {
            if matches!(
                h.wait(Some(Duration::from_secs(300))),
                Some(mirai::Outcome::Value { .. })
            ) {
                ok += 1;
            }
        }
        let run = t1.elapsed().as_secs_f64();
        let growth = peak.saturating_sub(base) as f64;
        host.reset();
        drop(host);
        // Let the daemons exit before the next count starts.
        std::thread::sleep(Duration::from_millis(500 + n as u64));
        println!(
            "{:>8} {:>9} {:>11.2} {:>9.2} {:>11.0} {:>14.0} {:>16.1} {:>14.0}",
            n,
            tasks,
            connect,
            run,
            tasks as f64 / run,
            per_daemon,
            growth / 1e6,
            growth / tasks as f64
        );
        out.push_str(&format!(
            "{n},{tasks},{connect:.4},{run:.4},{:.1},{:.2},{per_daemon:.1},{:.3},{:.1},{}\n",
            tasks as f64 / run,
            before as f64 / 1e6,
            growth / 1e6,
            growth / tasks as f64,
            ok == tasks
        ));
        if ok != tasks {
            return Err(format!("{n} daemons: only {ok} of {tasks} tasks completed"));
        }
    }
    if let Some(path) = csv {
        std::fs::write(&path, out).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A length-delimited protobuf field.
    fn ld(field: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(field << 3 | 2, &mut out);
        varint(body.len() as u64, &mut out);
        out.extend_from_slice(body);
        out
    }

    /// A span with a trace id, a kind (varint), a start time (fixed64) and a dropped count
    /// (fixed32, as if it were one), so that counting has to skip every wire type.
    fn span() -> Vec<u8> {
        let mut s = ld(1, &[7; 16]);
        s.extend([6 << 3, 3]);
        s.push(7 << 3 | 1);
        s.extend([1; 8]);
        s.push(10 << 3 | 5);
        s.extend([0; 4]);
        s
    }

    #[test]
    fn spans_are_counted_across_resources_and_scopes() {
        let scope_a = [
            ld(1, &ld(1, b"org.r-lib.mirai")),
            ld(2, &span()),
            ld(2, &span()),
        ]
        .concat();
        let scope_b = [ld(2, &span()), ld(3, b"schema")].concat();
        let resource = ld(1, &ld(1, &ld(1, b"service.name")));
        let rs1 = [resource.clone(), ld(2, &scope_a), ld(2, &scope_b)].concat();
        let rs2 = [resource, ld(2, &ld(2, &span()))].concat();
        let request = [ld(1, &rs1), ld(1, &rs2)].concat();
        assert_eq!(count_spans(&request), Some(4));
        assert_eq!(count_spans(&[]), Some(0));
        // Cut short, or an unknown wire type: not an export request.
        assert_eq!(count_spans(&request[..request.len() - 3]), None);
        assert_eq!(count_spans(&[1 << 3 | 3]), None);
    }

    #[test]
    fn the_sink_answers_the_exporter_and_counts_its_spans() {
        let sink = Sink::start().expect("sink");
        let settings = mirai_trace::Settings {
            endpoint: format!("{}/v1/traces", sink.endpoint()),
            service_name: Some("mirai-bench-test".into()),
            timeout: Duration::from_secs(10),
        };
        assert!(
            mirai_trace::init(mirai_trace::Decision::On(settings)),
            "first decision in this process"
        );
        for id in 0..5 {
            mirai_trace::mirai(id, None, None).end();
        }
        mirai_trace::daemon_eval(5, None).end();
        // Returns once the collector answered.
        mirai_trace::flush();
        assert_eq!(sink.wait_spans(6), 6);
        assert!(sink.requests.load(Ordering::Acquire) >= 1);
        assert_eq!(sink.unreadable.load(Ordering::Acquire), 0);
        // Anything but a POST of an OTLP protobuf body is refused, and not counted.
        let mut s = TcpStream::connect(sink.addr).expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert_eq!(sink.spans(), 6);
    }
}
