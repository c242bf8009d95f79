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

mod attributes;
mod engine;
mod logged;
mod pipeline;
mod span;
mod switch;
mod traceparent;

pub use attributes::url_attributes;
pub use config::{Decision, Settings};
pub use engine::{
    daemon_connect, daemon_disconnect, daemon_eval, daemons_reset, daemons_set, mirai, mirai_map,
};
pub use mirai_proto::{ErrorCode, Status};
pub use pipeline::{EXPORT_THREAD, TRACER_NAME};
pub use span::Span;
pub use switch::{enabled, flush, init};
pub use traceparent::TraceParent;
