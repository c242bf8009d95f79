//! Tracing: does it cost nothing when off? The three child processes (a), (b), (c) of the
//! tracing group, the OTLP sink they export to, and the `trace-child` command (see the crate
//! docs).

use super::*;

/// The tracing group's measure and its three systems (see the crate docs).
pub(super) const TRACE_MEASURE: &str = "round trip 16 B, tracing";
pub(super) const UNTRACED: &str = "(a) off: no OTEL_* variable";
pub(super) const DISABLED: &str = "(b) off: OTEL_SDK_DISABLED=true";
pub(super) const TRACED: &str = "(c) on: to a local OTLP sink";

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
pub(super) struct TraceGroup {
    children: Vec<TraceChild>,
    disabled_sink: Sink,
    traced_sink: Sink,
    /// Round trips (c) has made, warm-up included.
    traced_trips: usize,
}

impl TraceGroup {
    pub(super) fn start(daemon: &Path) -> Result<TraceGroup, String> {
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
    pub(super) fn block(&mut self, i: usize, n: usize, out: &mut Series) -> Result<(), String> {
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
    pub(super) fn finish(self) -> Result<u64, String> {
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
pub(super) fn trace_child(args: &[String]) -> Result<(), String> {
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
