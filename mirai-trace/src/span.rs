//! The [`Span`] handle the engine holds, and [`begin`], which starts one from a [`Start`]
//! description on the process's tracer. Which spans exist, with which names and attributes,
//! is [`crate::engine`]'s concern.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use mirai_proto::{ErrorCode, Status};
use opentelemetry::trace::{Link, SpanKind, Status as OtelStatus, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use crate::traceparent::TraceParent;

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

/// What a span starts with: everything [`begin`] needs besides the tracer.
pub(crate) struct Start {
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: SpanKind,
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) parent: Option<TraceParent>,
    pub(crate) link: Option<TraceParent>,
    pub(crate) at: Option<SystemTime>,
}

/// Starts `s` on `tracer`; the empty span if the SDK gave no valid context.
pub(crate) fn begin(tracer: &SdkTracer, s: Start) -> Span {
    use opentelemetry::trace::Span as _;
    let mut b = tracer
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
    let span = b.start_with_context(tracer, &cx);
    if span.span_context().is_valid() {
        Span {
            inner: Some(Box::new(span)),
        }
    } else {
        Span::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
