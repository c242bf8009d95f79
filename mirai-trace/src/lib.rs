//! OpenTelemetry spans of the mirai engine (spec §3.15), exported over OTLP/HTTP.
//!
//! Tracing is configured by the standard `OTEL_*` environment variables and nothing else, so
//! that an R user needs no extra package: set `OTEL_EXPORTER_OTLP_ENDPOINT` (e.g.
//! `http://127.0.0.1:4318`) and the host and every daemon it starts emit spans; leave it unset,
//! or set `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`, and tracing is off. The
//! decision is taken once per process, at the first call of [`enabled`] (`Host::start`, the
//! daemon's `run`); later changes to the environment are not seen. See [`config::decide`] for
//! every rule; `OTEL_SERVICE_NAME` (default `mirai`), `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT`, `OTEL_BSP_*`
//! and `OTEL_TRACES_SAMPLER` are honoured too.
//!
//! When off, nothing is started and every function here returns at once: [`enabled`] is one
//! atomic load, and the span constructors return [`Span::none`] (no allocation). The engine
//! branches on that flag, so its hot path does not change.
//!
//! When on, spans go through the OpenTelemetry SDK's batch span processor, which runs on its
//! own thread (`OpenTelemetry.Traces.BatchProcessor`), to the `opentelemetry-otlp` exporter
//! (protobuf over HTTP) with a small blocking HTTP client of ours over `TcpStream` ([`http`]):
//! no async runtime. [`flush`] exports what is buffered; the host calls it at reset and the
//! daemon when its loop ends.
//!
//! The spans (tracer `org.r-lib.mirai`), with the constructors that make them:
//! - `daemons set <url>` / `daemons reset <url>` ([`daemons_set`], [`daemons_reset`]);
//! - `mirai`, client kind, from submission to completion ([`mirai`]);
//! - `mirai_map` ([`mirai_map`]);
//! - `daemon connect <url>` / `daemon disconnect <url>` ([`daemon_connect`],
//!   [`daemon_disconnect`]);
//! - `daemon eval`, server kind, on the daemon, child of its `mirai` span through the W3C
//!   `traceparent` carried in the task frame ([`daemon_eval`]).
//!
//! This crate knows nothing of hosts or daemons beyond those names and attributes: the engine
//! crates (`mirai-host`, `mirai-daemon`) decide when each span starts and ends.

#![forbid(unsafe_code)]

#[cfg(feature = "collector")]
pub mod collector;
pub mod config;
pub mod http;

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::SystemTime;

use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, Status as OtelStatus, TraceContextExt, TraceFlags,
    TraceId, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
};
use opentelemetry_sdk::Resource;

pub use config::{Decision, Settings};
pub use mirai_proto::{ErrorCode, Status};

/// The instrumentation scope of every span.
pub const TRACER_NAME: &str = "org.r-lib.mirai";

/// The name of the thread that exports spans (the SDK's batch span processor).
pub const EXPORT_THREAD: &str = "OpenTelemetry.Traces.BatchProcessor";

struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

static TRACING: OnceLock<Option<Tracing>> = OnceLock::new();

fn tracing() -> Option<&'static Tracing> {
    TRACING
        .get_or_init(|| start(config::decide(|k| std::env::var(k).ok())))
        .as_ref()
}

/// Whether this process traces. The first call decides, from the environment, and starts the
/// exporter thread when on; later calls cost one atomic load.
#[inline]
pub fn enabled() -> bool {
    tracing().is_some()
}

/// Decides explicitly instead of from the environment, before anything else has asked
/// [`enabled`]. Returns false (and changes nothing) if the decision was already taken.
/// For embedders that configure tracing themselves, and for tests.
pub fn init(decision: Decision) -> bool {
    let mut fresh = false;
    TRACING.get_or_init(|| {
        fresh = true;
        start(decision)
    });
    fresh
}

fn start(decision: Decision) -> Option<Tracing> {
    let settings = match decision {
        Decision::On(s) => s,
        Decision::Off { reason, warn: true } => {
            log::warn!("mirai: OpenTelemetry tracing is off: {reason}");
            return None;
        }
        Decision::Off {
            reason,
            warn: false,
        } => {
            log::debug!("mirai: OpenTelemetry tracing is off: {reason}");
            return None;
        }
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(http::BlockingHttp::new(settings.timeout))
        .with_endpoint(settings.endpoint.clone())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(settings.timeout)
        .build();
    let exporter = match exporter {
        Ok(e) => e,
        Err(e) => {
            log::warn!("mirai: OpenTelemetry tracing is off: cannot build the OTLP exporter: {e}");
            return None;
        }
    };
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("process.pid", i64::from(std::process::id())));
    if let Some(name) = &settings.service_name {
        resource = resource.with_service_name(name.clone());
    }
    let processor =
        BatchSpanProcessor::builder(Logged::new(exporter, settings.endpoint.clone())).build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.build())
        .build();
    let scope = InstrumentationScope::builder(TRACER_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let tracer = provider.tracer_with_scope(scope);
    log::debug!("mirai: OpenTelemetry tracing to {}", settings.endpoint);
    Some(Tracing { provider, tracer })
}

/// Exports every span ended so far, blocking until the collector has answered (or the export
/// timeout passed). A no-op when tracing is off.
pub fn flush() {
    if let Some(t) = tracing() {
        if let Err(e) = t.provider.force_flush() {
            log::debug!("mirai: flushing spans failed: {e}");
        }
    }
}

/// The exporter, logging the first failure of a run of failures (and the recovery), so that a
/// collector that is down is said once rather than every few seconds or never.
#[derive(Debug)]
struct Logged {
    inner: opentelemetry_otlp::SpanExporter,
    endpoint: String,
    failing: AtomicBool,
}

impl Logged {
    fn new(inner: opentelemetry_otlp::SpanExporter, endpoint: String) -> Self {
        Logged {
            inner,
            endpoint,
            failing: AtomicBool::new(false),
        }
    }
}

impl SpanExporter for Logged {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let r = self.inner.export(batch).await;
        match &r {
            Err(e) if !self.failing.swap(true, Ordering::Relaxed) => {
                log::warn!("mirai: cannot export {n} span(s) to {}: {e}", self.endpoint)
            }
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                log::info!("mirai: exporting spans to {} works again", self.endpoint)
            }
            _ => {}
        }
        r
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

// ---------------------------------------------------------------------------------------------
// Trace context

/// A span's identity in W3C Trace Context form: what a child names as its parent, what a link
/// points at, and what travels to a daemon in a task frame (`traceparent`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// Parses a W3C `traceparent` header value, `00-<32 hex>-<16 hex>-<2 hex>`. Later versions
    /// are read by the version-00 layout as the recommendation asks; `ff`, all-zero ids,
    /// upper-case or malformed values give `None`.
    pub fn parse(s: &str) -> Option<TraceParent> {
        let b = s.as_bytes();
        if b.len() < 55 || (b.len() > 55 && b[55] != b'-') {
            return None;
        }
        let version = hex::<1>(&b[0..2])?[0];
        if version == 0xff || (version == 0 && b.len() != 55) {
            return None;
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let trace_id = hex::<16>(&b[3..35])?;
        let span_id = hex::<8>(&b[36..52])?;
        let flags = hex::<1>(&b[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The trace id, as 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The span id, as 16 lower-case hex digits.
    pub fn span_id(&self) -> String {
        to_hex(&self.span_id)
    }

    /// Whether the trace is sampled (flag bit 0).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    fn from_context(sc: &SpanContext) -> Option<TraceParent> {
        sc.is_valid().then(|| TraceParent {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
        })
    }

    fn to_context(self) -> SpanContext {
        SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            TraceFlags::new(self.flags),
            true,
            TraceState::NONE,
        )
    }
}

impl fmt::Display for TraceParent {
    /// The `traceparent` header value (version 00).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id(),
            self.span_id(),
            self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

fn hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn to_hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Spans

/// A span; it ends when dropped (or at [`Span::end`]). When tracing is off it is empty: every
/// method is a no-op and it holds no allocation. A span the sampler dropped records nothing but
/// keeps its context (not sampled), so that its children, on a daemon too, are dropped alike.
#[derive(Default)]
pub struct Span {
    inner: Option<Box<opentelemetry_sdk::trace::Span>>,
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span")
            .field("context", &self.context())
            .finish()
    }
}

impl Span {
    /// The empty span.
    pub const fn none() -> Span {
        Span { inner: None }
    }

    /// True if this span is being recorded (tracing is on and it was sampled).
    pub fn is_recording(&self) -> bool {
        use opentelemetry::trace::Span as _;
        self.inner.as_ref().is_some_and(|s| s.is_recording())
    }

    /// This span's identity, to parent other spans on or to send to a daemon (also for a span
    /// the sampler dropped: its flags say so); `None` for the empty span.
    pub fn context(&self) -> Option<TraceParent> {
        use opentelemetry::trace::Span as _;
        self.inner
            .as_ref()
            .and_then(|s| TraceParent::from_context(s.span_context()))
    }

    /// Sets an error status with this description (e.g. `miraiError`).
    pub fn set_error(&mut self, description: impl Into<Cow<'static, str>>) {
        use opentelemetry::trace::Span as _;
        if let Some(s) = &mut self.inner {
            s.set_status(OtelStatus::error(description));
        }
    }

    /// Sets the status an evaluation ended with: `Error` and `Interrupted` become an error
    /// status described `miraiError` and `miraiInterrupt`; `Ok` leaves the status unset.
    pub fn set_outcome(&mut self, status: Status) {
        match status {
            Status::Ok => {}
            Status::Error => self.set_error("miraiError"),
            Status::Interrupted => self.set_error("miraiInterrupt"),
            // A status newer than this code: an error all the same, named as it is.
            other => self.set_error(format!("{other:?}")),
        }
    }

    /// Sets an error status for a task that resolved to an error value (no daemon answered
    /// it, it was cancelled, it timed out): described `errorValue <code> | <text>`, e.g.
    /// `errorValue 19 | Connection reset`.
    pub fn set_error_code(&mut self, code: ErrorCode) {
        if self.inner.is_some() {
            self.set_error(format!("errorValue {code}"));
        }
    }

    /// Adds an attribute.
    pub fn set_attribute(&mut self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        use opentelemetry::trace::Span as _;
        if let Some(s) = &mut self.inner {
            s.set_attribute(KeyValue::new(key, value));
        }
    }

    /// Ends the span now.
    pub fn end(self) {
        drop(self);
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        use opentelemetry::trace::Span as _;
        if let Some(s) = &mut self.inner {
            s.end();
        }
    }
}

struct Start {
    name: Cow<'static, str>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    parent: Option<TraceParent>,
    link: Option<TraceParent>,
    at: Option<SystemTime>,
}

fn begin(t: &Tracing, s: Start) -> Span {
    use opentelemetry::trace::Span as _;
    let mut b = t
        .tracer
        .span_builder(s.name)
        .with_kind(s.kind)
        .with_attributes(s.attributes);
    if let Some(l) = s.link {
        b = b.with_links(vec![Link::with_context(l.to_context())]);
    }
    if let Some(at) = s.at {
        b = b.with_start_time(at);
    }
    // An explicit root when there is no parent: never pick up an ambient context.
    let cx = match s.parent {
        Some(p) => Context::new().with_remote_span_context(p.to_context()),
        None => Context::new(),
    };
    let span = b.start_with_context(&t.tracer, &cx);
    if span.span_context().is_valid() {
        Span {
            inner: Some(Box::new(span)),
        }
    } else {
        Span::none()
    }
}

/// The `server.address`, `server.port` and `network.transport` attributes of a mirai URL:
/// host and port for `tcp://` and `tls+tcp://`, the path or name for `ipc://` and
/// `abstract://`; the transport is the scheme.
pub fn url_attributes(url: &str) -> Vec<KeyValue> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let mut v = vec![KeyValue::new("network.transport", scheme.to_string())];
    if scheme.ends_with("tcp") || scheme.starts_with("ws") {
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')) => {
                (h, p.parse::<u16>().ok())
            }
            _ => (authority, None),
        };
        v.push(KeyValue::new(
            "server.address",
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        ));
        if let Some(p) = port {
            v.push(KeyValue::new("server.port", i64::from(p)));
        }
    } else {
        v.push(KeyValue::new("server.address", rest.to_string()));
    }
    v
}

fn profile_attributes(url: &str, dispatcher: bool, compute: &str) -> Vec<KeyValue> {
    let mut v = url_attributes(url);
    v.push(KeyValue::new("mirai.dispatcher", dispatcher));
    v.push(KeyValue::new("mirai.compute", compute.to_string()));
    v
}

/// `daemons set <url>`: a compute profile being set up (internal kind), since `started` (so
/// that it can be named after the resolved URL once the profile listens). End it once set up;
/// its [`Span::context`] is what the profile's other spans link to.
pub fn daemons_set(url: &str, dispatcher: bool, compute: &str, started: SystemTime) -> Span {
    let Some(t) = tracing() else {
        return Span::none();
    };
    begin(
        t,
        Start {
            name: format!("daemons set {url}").into(),
            kind: SpanKind::Internal,
            attributes: profile_attributes(url, dispatcher, compute),
            parent: None,
            link: None,
            at: Some(started),
        },
    )
}

/// `daemons reset <url>`: a compute profile being torn down, linked to its `daemons set` span.
pub fn daemons_reset(url: &str, dispatcher: bool, compute: &str, set: Option<TraceParent>) -> Span {
    let Some(t) = tracing() else {
        return Span::none();
    };
    begin(
        t,
        Start {
            name: format!("daemons reset {url}").into(),
            kind: SpanKind::Internal,
            attributes: profile_attributes(url, dispatcher, compute),
            parent: None,
            link: set,
            at: None,
        },
    )
}

/// `mirai`: one task from submission to completion (client kind), attribute `mirai.id`, child
/// of `parent` (e.g. a `mirai_map` span) and linked to the profile's `daemons set` span.
pub fn mirai(id: u64, parent: Option<TraceParent>, set: Option<TraceParent>) -> Span {
    let Some(t) = tracing() else {
        return Span::none();
    };
    begin(
        t,
        Start {
            name: Cow::Borrowed("mirai"),
            kind: SpanKind::Client,
            attributes: vec![KeyValue::new("mirai.id", id as i64)],
            parent,
            link: set,
            at: None,
        },
    )
}

/// `mirai_map`: a map's submission, parent of its tasks' `mirai` spans, linked to the
/// profile's `daemons set` span.
pub fn mirai_map(parent: Option<TraceParent>, set: Option<TraceParent>) -> Span {
    let Some(t) = tracing() else {
        return Span::none();
    };
    begin(
        t,
        Start {
            name: Cow::Borrowed("mirai_map"),
            kind: SpanKind::Internal,
            attributes: Vec::new(),
            parent,
            link: set,
            at: None,
        },
    )
}

fn daemon_event(
    verb: &str,
    url: &str,
    pid: u32,
    parent: Option<TraceParent>,
    set: Option<TraceParent>,
    at: SystemTime,
) -> Span {
    let Some(t) = tracing() else {
        return Span::none();
    };
    let mut attributes = url_attributes(url);
    attributes.push(KeyValue::new("process.pid", i64::from(pid)));
    begin(
        t,
        Start {
            name: format!("daemon {verb} {url}").into(),
            kind: SpanKind::Internal,
            attributes,
            parent,
            link: set,
            at: Some(at),
        },
    )
}

/// `daemon connect <url>`: a daemon (process `pid`) completed its handshake at `at`. Linked to
/// the profile's `daemons set` span; end it at once.
pub fn daemon_connect(url: &str, pid: u32, set: Option<TraceParent>, at: SystemTime) -> Span {
    daemon_event("connect", url, pid, None, set, at)
}

/// `daemon disconnect <url>`: a daemon's connection ended at `at` (child of the `daemons
/// reset` span when the reset ended it). Linked to the profile's `daemons set` span.
pub fn daemon_disconnect(
    url: &str,
    pid: u32,
    parent: Option<TraceParent>,
    set: Option<TraceParent>,
    at: SystemTime,
) -> Span {
    daemon_event("disconnect", url, pid, parent, set, at)
}

/// `daemon eval`: one evaluation on a daemon (server kind), attribute `mirai.id`, child of the
/// task's `traceparent` when the frame carried a valid one (else a root span). Set its status
/// from the result with [`Span::set_outcome`].
pub fn daemon_eval(id: u64, traceparent: Option<&str>) -> Span {
    let Some(t) = tracing() else {
        return Span::none();
    };
    let parent = traceparent.and_then(|s| {
        let p = TraceParent::parse(s);
        if p.is_none() {
            log::debug!(
                "mirai daemon: task {id} carries an invalid traceparent; its span is a root"
            );
        }
        p
    });
    begin(
        t,
        Start {
            name: Cow::Borrowed("daemon eval"),
            kind: SpanKind::Server,
            attributes: vec![KeyValue::new("mirai.id", id as i64)],
            parent,
            link: None,
            at: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_what_w3c_rejects() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let p = TraceParent::parse(s).unwrap();
        assert_eq!(p.to_string(), s);
        assert_eq!(p.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.span_id(), "00f067aa0ba902b7");
        assert!(p.sampled());
        assert!(
            !TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap()
                .sampled()
        );
        // A later version with extra fields is read by the 00 layout.
        assert!(TraceParent::parse(&format!("cc{}-extra", &s[2..])).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01é",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    fn attrs(url: &str) -> Vec<(String, String)> {
        url_attributes(url)
            .into_iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect()
    }

    #[test]
    fn url_attributes_follow_the_scheme() {
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            attrs("tcp://127.0.0.1:5555"),
            vec![
                kv("network.transport", "tcp"),
                kv("server.address", "127.0.0.1"),
                kv("server.port", "5555")
            ]
        );
        assert_eq!(
            attrs("tls+tcp://[::1]:40000"),
            vec![
                kv("network.transport", "tls+tcp"),
                kv("server.address", "::1"),
                kv("server.port", "40000")
            ]
        );
        assert_eq!(
            attrs("tcp://hostname"),
            vec![
                kv("network.transport", "tcp"),
                kv("server.address", "hostname")
            ]
        );
        assert_eq!(
            attrs("abstract://mirai-x"),
            vec![
                kv("network.transport", "abstract"),
                kv("server.address", "mirai-x")
            ]
        );
        assert_eq!(
            attrs("ipc:///tmp/s"),
            vec![
                kv("network.transport", "ipc"),
                kv("server.address", "/tmp/s")
            ]
        );
    }

    #[test]
    fn the_empty_span_is_inert() {
        let mut s = Span::none();
        s.set_error("x");
        s.set_outcome(Status::Error);
        s.set_attribute("k", 1i64);
        assert!(!s.is_recording());
        assert_eq!(s.context(), None);
        s.end();
        assert_eq!(std::mem::size_of::<Span>(), std::mem::size_of::<usize>());
    }
}
