//! mirai: minimalist async evaluation, the Rust engine.
//!
//! This facade re-exports the layers so that most users need one dependency:
//! - [`proto`]: the wire frames and their encoding;
//! - [`transport`]: message connections over IPC, TCP (and TLS), native or NNG;
//! - [`sched`]: the dispatcher state machine;
//! - [`daemon`]: the worker loop;
//! - [`host`]: compute profiles, launchers and RNG streams.
//!
//! The everyday API ([`Host`], [`TaskHandle`], ...) is re-exported at the top level.

pub use mirai_daemon as daemon;
pub use mirai_host as host;
pub use mirai_proto as proto;
pub use mirai_sched as sched;
pub use mirai_transport as transport;

pub use mirai_host::{Host, HostConfig, HostError, HostStatus, Outcome, SubmitOptions, TaskHandle};
