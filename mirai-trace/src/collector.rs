//! An OTLP/HTTP trace receiver for tests (feature `collector`).
//!
//! It listens on 127.0.0.1, accepts `POST /v1/traces` requests with a protobuf
//! `ExportTraceServiceRequest` body (the OTLP/HTTP binary encoding), decodes them with the
//! `opentelemetry-proto` messages, answers `200` with an empty `ExportTraceServiceResponse`
//! as a collector does, and keeps every span received. It speaks HTTP/1.1 with keep-alive
//! and `Content-Length` or chunked bodies, plain or gzip-compressed (as the OTLP specification
//! asks of receivers), so that both mirai's exporter and a real collector forwarding to it
//! (`rotel`, the OpenTelemetry Collector) can deliver.
//!
//! Not for production: it keeps everything in memory and stops with the process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

/// One span as received, flattened with its resource and scope for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// Span name.
    pub name: String,
    /// Trace id, 32 hex digits.
    pub trace_id: String,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Parent span id, 16 hex digits, or empty for a root span.
    pub parent_span_id: String,
    /// `SpanKind` as its protobuf number (1 internal, 2 server, 3 client).
    pub kind: i32,
    /// Status code as its protobuf number (0 unset, 1 ok, 2 error).
    pub status_code: i32,
    /// Status description.
    pub status_message: String,
    /// Attributes, values rendered as text (strings unquoted).
    pub attributes: BTreeMap<String, String>,
    /// `(trace id, span id)` of each link.
    pub links: Vec<(String, String)>,
    /// Resource attributes, rendered as text.
    pub resource: BTreeMap<String, String>,
    /// Instrumentation scope name.
    pub scope: String,
    /// Start and end, nanoseconds since the epoch.
    pub start_ns: u64,
    /// End time.
    pub end_ns: u64,
}

/// Span kinds and status codes as OTLP numbers them.
pub mod codes {
    /// `SPAN_KIND_INTERNAL`.
    pub const INTERNAL: i32 = 1;
    /// `SPAN_KIND_SERVER`.
    pub const SERVER: i32 = 2;
    /// `SPAN_KIND_CLIENT`.
    pub const CLIENT: i32 = 3;
    /// `STATUS_CODE_UNSET`.
    pub const UNSET: i32 = 0;
    /// `STATUS_CODE_ERROR`.
    pub const ERROR: i32 = 2;
}

#[derive(Default)]
struct Received {
    requests: usize,
    spans: Vec<ReceivedSpan>,
    /// Requests that were not valid OTLP (path, content type, body): a test should see none.
    rejected: Vec<String>,
    /// `User-Agent` of each request, to tell who delivered.
    agents: Vec<String>,
    /// `Content-Encoding` of each request (empty when absent).
    encodings: Vec<String>,
}

/// A running receiver. Dropping it stops accepting (threads serving open connections end when
/// their peer closes).
pub struct Collector {
    addr: std::net::SocketAddr,
    state: Arc<(Mutex<Received>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    /// Binds 127.0.0.1 on an ephemeral port and starts accepting.
    pub fn start() -> std::io::Result<Collector> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state: Arc<(Mutex<Received>, Condvar)> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let st = state.clone();
        let stopping = stop.clone();
        std::thread::Builder::new()
            .name("otlp-collector".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let st = st.clone();
                    let _ = std::thread::Builder::new()
                        .name("otlp-conn".into())
                        .spawn(move || serve(conn, &st));
                }
            })?;
        Ok(Collector { addr, state, stop })
    }

    /// The base URL to give as `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://127.0.0.1:<port>`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens at.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.lock().spans.clone()
    }

    /// How many export requests were decoded.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Why each rejected request was rejected.
    pub fn rejected(&self) -> Vec<String> {
        self.lock().rejected.clone()
    }

    /// The `User-Agent` header of each accepted request (empty when absent).
    pub fn user_agents(&self) -> Vec<String> {
        self.lock().agents.clone()
    }

    /// The `Content-Encoding` header of each accepted request (empty when absent).
    pub fn encodings(&self) -> Vec<String> {
        self.lock().encodings.clone()
    }

    /// Waits until `done(spans)` holds or `timeout` passes; returns whether it held.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[ReceivedSpan]) -> bool) -> bool {
        let end = Instant::now() + timeout;
        let (m, cv) = &*self.state;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if done(&g.spans) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.state.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // Wake the accept loop with a connection of our own so that it sees the flag.
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn map(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

fn flatten(req: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource = rs.resource.map(|r| map(&r.attributes)).unwrap_or_default();
        for ss in rs.scope_spans {
            let scope = ss.scope.map(|s| s.name).unwrap_or_default();
            for s in ss.spans {
                let status = s.status.unwrap_or_default();
                out.push(ReceivedSpan {
                    name: s.name,
                    trace_id: hexs(&s.trace_id),
                    span_id: hexs(&s.span_id),
                    parent_span_id: hexs(&s.parent_span_id),
                    kind: s.kind,
                    status_code: status.code,
                    status_message: status.message,
                    attributes: map(&s.attributes),
                    links: s
                        .links
                        .iter()
                        .map(|l| (hexs(&l.trace_id), hexs(&l.span_id)))
                        .collect(),
                    resource: resource.clone(),
                    scope: scope.clone(),
                    start_ns: s.start_time_unix_nano,
                    end_ns: s.end_time_unix_nano,
                });
            }
        }
    }
    out
}

/// A parsed request: path, lower-cased headers, body.
struct Request {
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Reads one request; `Ok(None)` at a clean end of the connection.
fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    if method != "POST" {
        return Err(bad("not a POST"));
    }
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("connection closed in the request head"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').ok_or_else(|| bad("bad header line"))?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or_default(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                // Trailers until the empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    } else {
        let len: usize = headers
            .get("content-length")
            .map_or(Ok(0), |v| v.parse())
            .map_err(|_| bad("bad length"))?;
        if len > 64 << 20 {
            return Err(bad("body too large"));
        }
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some(Request {
        path,
        headers,
        body,
    }))
}

/// The request body, gunzipped if it says it is compressed (at most 64 MiB).
fn body(req: &Request) -> Result<Vec<u8>, (u16, String)> {
    if req.headers.get("content-encoding").map(String::as_str) != Some("gzip") {
        return Ok(req.body.clone());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(req.body.as_slice())
        .take(64 << 20)
        .read_to_end(&mut out)
        .map_err(|e| (400, format!("bad gzip body: {e}")))?;
    Ok(out)
}

fn respond(w: &mut TcpStream, code: u16, reason: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

fn serve(conn: TcpStream, st: &(Mutex<Received>, Condvar)) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    loop {
        let req = match read_request(&mut r) {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                st.0.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .rejected
                    .push(format!("unreadable request: {e}"));
                let _ = respond(&mut w, 400, "Bad Request", b"");
                return;
            }
        };
        let ctype = req.headers.get("content-type").cloned().unwrap_or_default();
        let problem = if req.path != "/v1/traces" {
            Some((404, format!("path {}", req.path)))
        } else if req
            .headers
            .get("content-encoding")
            .is_some_and(|e| e != "identity" && e != "gzip")
        {
            Some((
                415,
                format!("content encoding '{}'", req.headers["content-encoding"]),
            ))
        } else if ctype != "application/x-protobuf" {
            Some((415, format!("content type '{ctype}'")))
        } else {
            None
        };
        let decoded = match problem {
            Some(p) => Err(p),
            None => body(&req).and_then(|b| {
                ExportTraceServiceRequest::decode(b.as_slice())
                    .map_err(|e| (400, format!("undecodable body: {e}")))
            }),
        };
        let (m, cv) = st;
        match decoded {
            Ok(export) => {
                {
                    let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
                    g.requests += 1;
                    g.agents
                        .push(req.headers.get("user-agent").cloned().unwrap_or_default());
                    g.encodings.push(
                        req.headers
                            .get("content-encoding")
                            .cloned()
                            .unwrap_or_default(),
                    );
                    g.spans.extend(flatten(export));
                }
                cv.notify_all();
                let ok = ExportTraceServiceResponse::default().encode_to_vec();
                if respond(&mut w, 200, "OK", &ok).is_err() {
                    return;
                }
            }
            Err((code, why)) => {
                m.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .rejected
                    .push(why);
                if respond(&mut w, code, "Rejected", b"").is_err() {
                    return;
                }
            }
        }
        if req
            .headers
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            return;
        }
    }
}
