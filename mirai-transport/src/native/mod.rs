//! Native backend: std/libc sockets driven by one epoll set.
//!
//! Wire format: each message is an 8-byte little-endian length followed by that many bytes.
//!
//! Listener: the thread in [`NativeListener::poll`] accepts, reads and flushes; any thread may
//! [`NativeListener::send`], which writes straight to the socket when nothing is queued for that
//! peer (one `sendmsg` of header and body), and only queues what the socket cannot take now.
//! So a message costs one syscall each way and no thread hand-off beyond the receiver's wake-up.
//!
//! Dialer: a blocking socket with separate locks for the read and write halves, so a daemon can
//! block in `recv` on one thread while another sends.
//!
//! TLS (`tls+tcp://`): a [`Stream::Tls`] wraps the rustls state of one connection behind its own
//! lock, held only briefly and never across a blocking call. At the listener the handshake runs
//! inside the poller, non-blocking, as a pending handshake that becomes a peer (and an
//! `Event::Connected`) only once it has completed and the client is accepted; `send` encrypts
//! into rustls' own output queue under the peer's lock and writes what the socket takes, like
//! the plain path. The dialer drives the same state with blocking reads and writes, the reader
//! and the writer each taking the rustls lock only to feed, drain or encrypt.
//!
//! Files: [`framing`] (length-prefix encode/decode, pure), [`stream`] (plain or TLS socket),
//! [`tls_stream`] (rustls glue), [`out_queue`] (what a socket cannot take yet), [`listener`]
//! (the hub and its event loop), [`accept`], [`handshake`] (pending TLS connections),
//! [`peer_io`] (reading from and writing to accepted peers), [`connection`] (the dialer),
//! [`ws`] (WebSocket codec and upgrade, pure), [`ws_peer`] and [`ws_dial`] (`ws://` and
//! `wss://` at the listener and the dialer).
mod accept;
mod connection;
mod framing;
mod handshake;
mod listener;
mod out_queue;
mod peer_io;
mod stream;
mod tls_stream;
mod ws;
mod ws_dial;
mod ws_peer;

pub(crate) use connection::NativeConnection;
pub(crate) use listener::NativeListener;

use crate::{DisconnectReason, Error};
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The poller reads small messages through this buffer (one syscall for many small frames).
const SCRATCH: usize = 64 * 1024;
/// Bytes read from one peer per poll round before others get their turn.
const READ_BUDGET: usize = 8 << 20;

const TOKEN_LISTEN: u64 = u64::MAX;
const TOKEN_WAKE: u64 = u64::MAX - 1;
/// Epoll tokens of pending TLS handshakes start here; peer ids never get this far.
const TOKEN_HANDSHAKE: u64 = 1 << 62;

const EV_IN: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
const EV_OUT: u32 = libc::EPOLLOUT as u32;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge the transport: the guarded data stays consistent
    // because every critical section here leaves it valid before anything can panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io_reason(e: io::Error) -> DisconnectReason {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted => DisconnectReason::Closed,
        _ => DisconnectReason::Io(e.to_string()),
    }
}

fn closed_or_io(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected
        | io::ErrorKind::UnexpectedEof => Error::Closed,
        _ => Error::Io(e),
    }
}
