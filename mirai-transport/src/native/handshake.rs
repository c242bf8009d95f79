//! TLS handshakes at a native listener: pending connections that are not peers yet, driven
//! non-blocking inside the poller, promoted to peers once accepted or refused with a reason.
use super::listener::{ListenTls, NativeListener, Poller};
use super::stream::Stream;
use super::tls_stream::{flush_tls_nonblocking, tls_feed, TlsStream};
use super::{lock, EV_IN, EV_OUT, READ_BUDGET, TOKEN_HANDSHAKE, TOKEN_LISTEN};
use crate::sys;
use crate::tls::{self, Side, WELCOME};
use crate::Event;
use crate::PeerId;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A TLS connection accepted but not yet authenticated: not a peer, no id, no events.
pub(super) struct Handshake {
    pub(super) fd: OwnedFd,
    /// Always the server side.
    pub(super) conn: rustls::Connection,
    /// The peer's address, for log lines.
    pub(super) addr: String,
    pub(super) deadline: Instant,
    /// EPOLLOUT is being watched (the socket did not take a whole handshake flight).
    pub(super) waiting_out: bool,
}

impl NativeListener {
    /// Registers an accepted TLS connection as a pending handshake.
    pub(super) fn start_handshake(&self, p: &mut Poller, tls: &ListenTls, fd: OwnedFd) {
        // std's TcpStream reports the peer address; the descriptor goes straight back.
        let tcp = std::net::TcpStream::from(fd);
        let addr = tcp
            .peer_addr()
            .map_or_else(|_| "an unknown address".to_string(), |a| a.to_string());
        let fd = OwnedFd::from(tcp);
        let conn = match rustls::ServerConnection::new(Arc::clone(&tls.config)) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("cannot start a TLS session for {addr} on {}: {e}", self.url);
                return;
            }
        };
        let token = TOKEN_HANDSHAKE + p.next_handshake;
        p.next_handshake += 1;
        if let Err(e) = self.epoll.add(fd.as_raw_fd(), EV_IN, token) {
            log::warn!("cannot watch a connection from {addr} on {}: {e}", self.url);
            return;
        }
        p.handshakes.insert(
            token,
            Handshake {
                fd,
                conn: rustls::Connection::Server(conn),
                addr,
                deadline: Instant::now() + tls.handshake_timeout,
                waiting_out: false,
            },
        );
    }

    /// Watches the listening socket again once handshakes are below the bound.
    pub(super) fn maybe_resume_accept(&self, p: &mut Poller) {
        let Some(tls) = &self.tls else { return };
        if p.accept_paused && p.handshakes.len() < tls.max_pending {
            match self.epoll.modify(
                self.listen_fd.as_raw_fd(),
                libc::EPOLLIN as u32,
                TOKEN_LISTEN,
            ) {
                Ok(()) => p.accept_paused = false,
                Err(e) => log::warn!("cannot resume accepting on {}: {e}", self.url),
            }
        }
    }

    /// Drops handshakes that have run past their deadline.
    pub(super) fn expire_handshakes(&self, p: &mut Poller) {
        if p.handshakes.is_empty() {
            return;
        }
        let now = Instant::now();
        let late: Vec<u64> = p
            .handshakes
            .iter()
            .filter(|(_, h)| h.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for token in late {
            let timeout = self
                .tls
                .as_ref()
                .map_or(Duration::ZERO, |t| t.handshake_timeout);
            self.refuse(
                p,
                token,
                format!("no TLS handshake completed within {timeout:?}"),
            );
        }
    }

    /// Ends a pending handshake: tells the peer why if rustls has an alert for it, logs the
    /// reason, and closes the connection.
    pub(super) fn refuse(&self, p: &mut Poller, token: u64, reason: String) {
        let Some(mut hs) = p.handshakes.remove(&token) else {
            return;
        };
        let fd = hs.fd.as_raw_fd();
        let _ = self.epoll.delete(fd);
        let _ = flush_tls_nonblocking(&mut hs.conn, fd);
        // Closing with unread input would send a reset that could overtake the alert: read
        // what is there first (a bounded amount: a flooding peer just gets the reset).
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match sys::read(fd, &mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        log::warn!(
            "refused TLS connection from {} on {}: {reason}",
            hs.addr,
            self.url
        );
        drop(hs.fd);
        self.maybe_resume_accept(p);
    }

    /// Advances a pending handshake with what its socket has; promotes it to a peer once the
    /// handshake is complete, or refuses it.
    pub(super) fn drive_handshake(&self, p: &mut Poller, token: u64, events: &mut Vec<Event>) {
        let Poller {
            handshakes,
            scratch,
            ..
        } = &mut *p;
        let Some(hs) = handshakes.get_mut(&token) else {
            return;
        };
        let fd = hs.fd.as_raw_fd();
        // Bytes read past the end of the handshake belong to the peer's first messages.
        let mut rest: Vec<u8> = Vec::new();
        // A handshake is a few KiB: a peer that keeps sending may not hold the poller.
        let mut budget = READ_BUDGET;
        let failure: Option<String> = 'io: loop {
            if !hs.conn.is_handshaking() || budget == 0 {
                break None;
            }
            let n = match sys::read(fd, scratch) {
                Ok(0) => {
                    break Some("the peer closed the connection during the TLS handshake".into())
                }
                Ok(n) => n,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => break None,
                    io::ErrorKind::Interrupted => continue,
                    _ => break Some(format!("I/O error during the TLS handshake: {e}")),
                },
            };
            budget = budget.saturating_sub(n);
            let mut data = &scratch[..n];
            while !data.is_empty() {
                if !hs.conn.is_handshaking() {
                    rest.extend_from_slice(data);
                    break;
                }
                match hs.conn.read_tls(&mut data) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => break 'io Some(format!("TLS error: {e}")),
                }
                if let Err(e) = hs.conn.process_new_packets() {
                    break 'io Some(tls::describe(&e, Side::Listener).0);
                }
            }
        };
        if let Some(reason) = failure {
            self.refuse(p, token, reason);
            return;
        }
        let all_out = match flush_tls_nonblocking(&mut hs.conn, fd) {
            Ok(all_out) => all_out,
            Err(e) => {
                self.refuse(p, token, format!("I/O error during the TLS handshake: {e}"));
                return;
            }
        };
        if hs.conn.is_handshaking() {
            if all_out == hs.waiting_out {
                let ev = if all_out { EV_IN } else { EV_IN | EV_OUT };
                match self.epoll.modify(fd, ev, token) {
                    Ok(()) => hs.waiting_out = !all_out,
                    Err(e) => {
                        self.refuse(p, token, format!("cannot watch the connection: {e}"));
                    }
                }
            }
            return;
        }
        if let Some(hs) = p.handshakes.remove(&token) {
            self.promote(p, hs, &rest, events);
        }
    }

    /// Turns a completed handshake into a peer: greets it, reports it connected, and delivers
    /// whatever it sent along with the end of its handshake.
    pub(super) fn promote(
        &self,
        p: &mut Poller,
        hs: Handshake,
        rest: &[u8],
        events: &mut Vec<Event>,
    ) {
        self.maybe_resume_accept(p);
        let Handshake {
            fd, mut conn, addr, ..
        } = hs;
        // Messages are queued in rustls whatever their size: `send` must never block or refuse.
        conn.set_buffer_limit(None);
        // The greeting goes first, so it precedes anything sent after `Connected`. Over wss the
        // upgrade's response says "accepted" instead.
        if !self.ws_path.is_empty() {
            let id = PeerId(self.next_id.fetch_add(1, Ordering::Relaxed));
            if let Err(e) = self.epoll.modify(fd.as_raw_fd(), EV_IN, id.get()) {
                log::warn!(
                    "cannot watch the connection from {addr} on {}: {e}",
                    self.url
                );
                return;
            }
            let stream = Stream::Tls(Box::new(TlsStream::new(fd, conn, addr)));
            let peer = self.add_ws_peer(p, id, stream);
            if let Err(reason) = self.ws_input(p, &peer, rest, events) {
                self.remove_peer(p, id, reason, events);
            }
            return;
        }
        if let Err(e) = conn.writer().write_all(WELCOME) {
            log::warn!("TLS session with {addr} on {} failed: {e}", self.url);
            return;
        }
        let id = PeerId(self.next_id.fetch_add(1, Ordering::Relaxed));
        if let Err(e) = self.epoll.modify(fd.as_raw_fd(), EV_IN, id.get()) {
            log::warn!(
                "cannot watch the connection from {addr} on {}: {e}",
                self.url
            );
            return;
        }
        log::debug!("TLS peer {id} from {addr} accepted on {}", self.url);
        let peer = self.add_peer(id, Stream::Tls(Box::new(TlsStream::new(fd, conn, addr))));
        events.push(Event::Connected(id));
        let mut outcome = None;
        if let Stream::Tls(t) = &peer.stream {
            let mut frame = lock(&peer.rx);
            outcome = tls_feed(
                t,
                &mut frame,
                rest,
                &mut p.plain,
                self.max_message,
                id,
                events,
            )
            .0
            .err();
        }
        self.flush_peer(id);
        if let Some(reason) = outcome {
            self.remove_peer(p, id, reason, events);
        }
    }
}
