//! Setting up the export pipeline when tracing is on: the OTLP/HTTP exporter over our blocking
//! client ([`crate::http`]), the batch span processor and its thread, the resource, the tracer
//! provider and the `org.r-lib.mirai` tracer.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::config::Decision;
use crate::http;
use crate::logged::Logged;

/// The instrumentation scope of every span.
pub const TRACER_NAME: &str = "org.r-lib.mirai";

/// The name of the thread that exports spans (the SDK's batch span processor).
pub const EXPORT_THREAD: &str = "OpenTelemetry.Traces.BatchProcessor";

/// A running pipeline: the provider (to flush) and the tracer spans start on.
pub(crate) struct Tracing {
    pub(crate) provider: SdkTracerProvider,
    pub(crate) tracer: SdkTracer,
}

/// Starts the pipeline the decision asks for; `None` when it says off (logged as its reason
/// says) or when the exporter cannot be built.
pub(crate) fn start(decision: Decision) -> Option<Tracing> {
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
