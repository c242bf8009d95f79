//! The spans of the mirai engine, one constructor each: their names, kinds, attributes,
//! parents and links. Every constructor returns [`Span::none`] at once when tracing is off;
//! the engine crates decide when each span starts and ends.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::SpanKind;
use opentelemetry::KeyValue;

use crate::attributes::{profile_attributes, url_attributes};
use crate::span::{begin, Span, Start};
use crate::switch::tracing;
use crate::traceparent::TraceParent;

/// `daemons set <url>`: a compute profile being set up (internal kind), since `started` (so
/// that it can be named after the resolved URL once the profile listens). End it once set up;
/// its [`Span::context`] is what the profile's other spans link to.
pub fn daemons_set(url: &str, dispatcher: bool, compute: &str, started: SystemTime) -> Span {
    let Some(t) = tracing() else {
        return Span::none();
    };
    begin(
        &t.tracer,
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
        &t.tracer,
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
        &t.tracer,
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
        &t.tracer,
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
        &t.tracer,
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
        &t.tracer,
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
