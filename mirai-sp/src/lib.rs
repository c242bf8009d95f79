//! NNG-compatible Scalability Protocols, the protocol core of the `nanonext` package.
//!
//! This crate implements the SP protocols that NNG speaks (pair v0/v1, req/rep, pub/sub,
//! push/pull, bus, surveyor/respondent) so that the project's R package `nanonext` can offer
//! NNG-style sockets on its own Rust core while staying wire-compatible with real NNG peers.
//!
//! Layers, quinn-proto style:
//! - [`handshake`], [`frame`], [`protocol`]: the pure wire layer (connection header,
//!   tcp/ipc framing with a size bound, protocol ids).
//! - [`sm`]: one sans-IO state machine per protocol: pipes and messages in, [`sm::Transmit`]s
//!   and received messages out, timers driven by the caller's clock.
//! - [`driver`]: a small blocking driver over std tcp and unix sockets with threads, so the
//!   machines can be used and tested against NNG now. The project's epoll transport can drive
//!   the same machines later.
//!
//! What it is not: it does not speak R (the R bridge lives elsewhere), and it has no TLS,
//! websocket, `inproc://` or `abstract://` transport yet; those will come through
//! `mirai-transport`. Raw (device) mode sockets are not implemented.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod driver;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod protocol;
pub mod sm;

pub use driver::{Socket, SocketOptions};
pub use error::{Error, WireError};
pub use protocol::Protocol;
