//! The host side of mirai: a compute profile's engine.
//!
//! A [`Host`] listens at a URL, accepts daemons as they dial in, and runs a dispatcher that
//! drives the `mirai-sched` state machine over a `mirai-transport` listener. Submitting returns
//! a [`TaskHandle`] at once; the handle resolves when the daemon replies, fails, or the task is
//! cancelled or times out. A handle is a [`std::future::Future`] and can also be waited on with
//! a timeout, or given a callback (how the R bridge schedules promise settlement).
//!
//! Also here: L'Ecuyer-CMRG stream generation identical to R's `parallel::nextRNGStream`
//! ([`rng`]), and the launcher that starts local daemon processes ([`launch`]).
//!
//! The protocol itself (hello admission and time-outs, frame validation, init bundles, the
//! scheduler's events and actions) is a state machine with no sockets, threads or clocks,
//! [`session::Session`]; the threaded runtime (the dispatcher thread, waiting threads that
//! take the poll role, the submit path) drives it under the state lock and does the I/O.
//!
//! This crate is not the R API: profiles by name, ephemeral and sync modes and launch command
//! strings for R live in the R package and its bridge, which drive a `Host` per profile.
//!
//! How a task travels, with as few thread hand-offs as the socket floor allows (design.md §2):
//! - the submitting thread encodes the task frame, then, holding the state lock, hands it to the
//!   scheduler and carries out what the scheduler asks at once, so a task for an idle daemon is
//!   written to its socket from the submitting thread;
//! - one thread at a time polls the listener (replies, daemons coming and going, deadlines) and
//!   carries out the resulting actions: the dispatcher thread by default, but a thread blocked
//!   in [`TaskHandle::wait`] or [`Host::wait_completion`] takes that role over, so the reply
//!   wakes the waiting thread directly. After a waiter gives the role back the dispatcher leaves
//!   it free for a couple of milliseconds, so that a submit-then-wait loop keeps it;
//! - wakers and completion callbacks run on whichever thread resolved the handle, always after
//!   the state lock is released.
//! - an optional [`CompletionNotifier`] ([`HostConfig::on_complete`]) is called once per resolved
//!   task, whatever its outcome, likewise after the lock and once the handle shows it resolved:
//!   how the R bridge signals a profile's condition variable (`nextget("cv")`).
//!
//! Reliability (every task resolves exactly once, to its value or to an error code saying what
//! happened):
//! - a daemon lost while evaluating a task (killed, crashed, cut off) fails that task with 19,
//!   at once, and nothing else; tasks waiting in the queue go to the other daemons;
//! - opt-in retry: with [`SubmitOptions::retries`] (or the profile default
//!   [`HostConfig::retries`]) such a task is sent again instead, from the head of the queue,
//!   and [`TaskHandle::attempts`] counts its dispatches;
//! - opt-in pool repair: with [`HostConfig::repair`], a daemon started by [`Host::launch`] that
//!   crashes is relaunched with the same command, with back-off and a per-minute cap
//!   ([`RepairPolicy`]);
//! - daemons leaving on a limit never take a task with them: a `last` result, or for idle
//!   exits a leave notice, is acknowledged before they go (see `mirai_sched::Scheduler::result`);
//! - bad input on the listener (garbage, truncated or oversized frames, other protocol
//!   versions, connections that never say hello) is dropped with a logged reason; connections
//!   must say hello within [`HostConfig::hello_timeout`], and at most
//!   [`HostConfig::max_pending`] may be waiting to, so half-open connections cannot pile up;
//! - task payloads and results never appear in log messages or errors: logs name tasks by id
//!   and frames by kind and size.
//!
//! Tracing (OpenTelemetry, spec §3.15; the spans and their configuration are described in
//! [`mirai_trace`], re-exported as [`trace`]). [`Host::start`] takes the process's decision
//! (from the `OTEL_*` environment; off unless an OTLP endpoint is configured) and an untraced
//! host does no span work at all. A tracing host records:
//! - `daemons set <url>` for [`Host::start`] and `daemons reset <url>` for [`Host::reset`]
//!   (or the drop of the last clone), with the profile's name from [`HostConfig::compute`];
//!   the reset then exports everything buffered ([`mirai_trace::flush`]);
//! - a `mirai` span per task of [`Host::submit`] and [`Host::map`], from submission to
//!   resolution, with an error status when the evaluation failed (`miraiError`,
//!   `miraiInterrupt`) or no daemon answered (`errorValue 19 | Connection reset`, ...). Its
//!   traceparent travels in the task frame, so the daemon's `daemon eval` span is its child;
//! - `mirai_map` around [`Host::map`]'s submission, parent of its tasks' `mirai` spans;
//! - `daemon connect <url>` when a daemon completes its handshake, `daemon disconnect <url>`
//!   when its connection ends (children of the `daemons reset` span when the reset ends them).
//!
//! For the R bridge: set [`HostConfig::compute`] to the profile's name; for tasks submitted one
//! by one that belong to a map, open the map's span with [`Host::map_span`] and pass its
//! context as [`SubmitOptions::parent`]; a caller with its own span (e.g. R's `otel` package)
//! passes its traceparent through [`TraceParent::parse`] as the parent, or carries it verbatim
//! in [`SubmitOptions::trace`], in which case the host makes no `mirai` span for that task.
//! [`Host::everywhere`] rounds have no `mirai` spans. [`Host::tracing`] tells whether spans
//! are recorded.
//!
//! ```no_run
//! use mirai_host::{Host, HostConfig, SubmitOptions};
//! let host = Host::start(HostConfig::new("abstract://example"))?;
//! // ... start daemons that dial host.url() ...
//! let handle = host.submit(b"payload".to_vec(), SubmitOptions::default())?;
//! let outcome = handle.wait(None);
//! # Ok::<(), mirai_host::HostError>(())
//! ```

#![forbid(unsafe_code)]

// The public API: the host, its configuration and task handles, the protocol session, the
// launchers and RNG streams.
mod config;
mod error;
mod handle;
mod host;
pub mod launch;
mod notify;
pub mod remote;
pub mod rng;
pub mod session;
mod submit;

// The threaded runtime that drives the session.
mod body;
mod deferred;
mod dispatcher;
mod outbox;
mod poll;
mod state;
mod supervise;
mod sync;

pub use config::{
    HostConfig, RepairPolicy, SubmitOptions, DEFAULT_HELLO_TIMEOUT, DEFAULT_MAX_PENDING,
    DEFAULT_PIPELINE, MAX_FIRST_MESSAGE,
};
pub use error::HostError;
pub use handle::{Outcome, TaskHandle};
pub use host::{Host, HostStatus};
pub use mirai_proto::{RngStream, Status, TaskId};
pub use mirai_sched::{Counters, ErrorCode, Memory, Mode};
/// OpenTelemetry spans (see the crate docs, "Tracing").
pub use mirai_trace as trace;
pub use mirai_trace::TraceParent;
pub use mirai_transport::Options as TransportOptions;
pub use notify::CompletionNotifier;

#[cfg(test)]
mod tests;
