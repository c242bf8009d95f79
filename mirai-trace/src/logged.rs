//! The OTLP exporter wrapped to log export failures once per run of failures.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

/// The exporter, logging the first failure of a run of failures (and the recovery), so that a
/// collector that is down is said once rather than every few seconds or never.
#[derive(Debug)]
pub(crate) struct Logged {
    inner: opentelemetry_otlp::SpanExporter,
    endpoint: String,
    failing: AtomicBool,
}

impl Logged {
    pub(crate) fn new(inner: opentelemetry_otlp::SpanExporter, endpoint: String) -> Self {
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
