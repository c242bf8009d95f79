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
//! - [`driver`]: a small blocking driver with threads over every NNG transport (`inproc`,
//!   `ipc`/`unix`, `abstract`, `tcp[46]`, `tls+tcp[46]` over rustls, `ws[46]`, `wss[46]`),
//!   so the machines can be used and tested against NNG now. The project's epoll transport
//!   can drive the same machines later.
//!
//! Driving a machine without any I/O (a rep answering one request):
//!
//! ```
//! use std::time::Instant;
//! use mirai_sp::sm::{new_machine, ContextId, PipeId};
//! use mirai_sp::Protocol;
//!
//! let now = Instant::now();
//! let mut rep = new_machine(Protocol::Rep0);
//! rep.add_pipe(PipeId(7), now);
//! // A request as it arrives from a req peer: id 0x80000001, then the body.
//! rep.handle_message(PipeId(7), vec![0x80, 0, 0, 1, b'h', b'i'], now);
//! let req = rep.recv(ContextId::SOCKET, now).unwrap();
//! assert_eq!(req.body(), b"hi");
//! rep.send(ContextId::SOCKET, &mut b"yo".to_vec(), None, now).unwrap();
//! let out = rep.poll_transmit().unwrap();
//! assert_eq!((out.pipe, out.msg.as_slice()), (PipeId(7), &[0x80, 0, 0, 1, b'y', b'o'][..]));
//! ```
//!
//! On the wire (observed against libnng 1.5.2, see `tests/wire.rs`): protocol ids pair0
//! 0x10, pair1 0x11, pub 0x20, sub 0x21, req 0x30, rep 0x31, push 0x50, pull 0x51, surveyor
//! 0x62, respondent 0x63, bus 0x70; pair1 prefixes a 4-byte hop count (1), req and surveyor a
//! 4-byte id with the high bit set that rep and respondent echo; the others send bare bodies.
//!
//! What it is not: it does not speak R (the R bridge lives elsewhere). Raw (device) mode
//! sockets are not implemented.

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
