//! The process-wide switch: tracing is decided once (from the environment or by [`init`]),
//! then every entry point asks it. When off it costs one atomic load.

use std::sync::OnceLock;

use crate::config::{self, Decision};
use crate::pipeline::{start, Tracing};

static TRACING: OnceLock<Option<Tracing>> = OnceLock::new();

/// The running pipeline, deciding from the environment on the first call.
pub(crate) fn tracing() -> Option<&'static Tracing> {
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

/// Exports every span ended so far, blocking until the collector has answered (or the export
/// timeout passed). A no-op when tracing is off.
pub fn flush() {
    if let Some(t) = tracing() {
        if let Err(e) = t.provider.force_flush() {
            log::debug!("mirai: flushing spans failed: {e}");
        }
    }
}
