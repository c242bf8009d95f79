//! mirai: minimalist async evaluation, the Rust engine.
//!
//! This facade re-exports the layers so that most users need one dependency:
//! - [`proto`]: the wire frames and their encoding;
//! - [`transport`]: message connections over IPC, TCP (and TLS), native or NNG;
//! - [`sched`]: the dispatcher state machine;
//! - [`daemon`]: the worker loop;
//! - [`host`]: compute profiles, launchers and RNG streams.
//!
//! The everyday API ([`Host`], [`TaskHandle`], ...) is re-exported at the top level. It is the
//! engine, not the R package: payloads are opaque bytes that daemons' evaluators interpret.
//!
//! Start a host, launch daemon processes (the `mirai-daemon` binary, whose built-in evaluator
//! echoes `echo:<bytes>`), map tasks over them and collect the results:
//!
//! ```no_run
//! use mirai::host::launch::{local_daemon_command, DaemonArgs};
//! use mirai::{Host, HostConfig, Outcome};
//! use std::time::Duration;
//!
//! let host = Host::start(HostConfig::new("abstract://mirai-example"))?;
//! host.launch(&local_daemon_command(host.url(), &DaemonArgs::default())?, 4)?;
//! host.wait_connections(4, Duration::from_secs(10));
//! let handles = host.map((0..100).map(|i| format!("echo:{i}").into_bytes()))?;
//! for (i, h) in handles.iter().enumerate() {
//!     match h.wait(None) {
//!         Some(Outcome::Value { payload, .. }) => assert_eq!(payload, i.to_string().into_bytes()),
//!         other => eprintln!("task {i}: {other:?}"),
//!     }
//! }
//! host.reset(); // also done when the last clone of `host` is dropped
//! # Ok::<(), mirai::HostError>(())
//! ```
//!
//! Daemons can also run in-process, on threads, with any [`daemon::Evaluator`]. Handles can be
//! waited on (as here), polled as futures, or given completion callbacks:
//!
//! ```
//! use mirai::daemon::{run, AutoExit, DaemonConfig, EchoEvaluator};
//! use mirai::{Host, HostConfig, Outcome};
//!
//! let host = Host::start(HostConfig::new("tcp://127.0.0.1:0"))?;
//! let daemons: Vec<_> = (0..2)
//!     .map(|_| {
//!         let mut config = DaemonConfig::new(host.url());
//!         config.autoexit = AutoExit::Finish; // return when the host goes, not exit the process
//!         std::thread::spawn(move || run(&config, &mut EchoEvaluator))
//!     })
//!     .collect();
//! assert!(host.wait_connections(2, std::time::Duration::from_secs(30)));
//! let handles = host.map((0..10u8).map(|i| vec![i]))?;
//! for (i, h) in handles.iter().enumerate() {
//!     let outcome = h.wait(Some(std::time::Duration::from_secs(30)));
//!     assert!(matches!(outcome, Some(Outcome::Value { payload, .. }) if payload == [i as u8]));
//! }
//! drop(host);
//! for d in daemons {
//!     d.join().unwrap()?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use mirai_daemon as daemon;
pub use mirai_host as host;
pub use mirai_proto as proto;
pub use mirai_sched as sched;
pub use mirai_transport as transport;

pub use mirai_host::{Host, HostConfig, HostError, HostStatus, Outcome, SubmitOptions, TaskHandle};
