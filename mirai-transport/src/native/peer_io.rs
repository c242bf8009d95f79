//! Reading from and writing to the accepted peers of a native listener.
use super::framing::{reserve_for, Frame, DIRECT_MIN, GROW_MIN};
use super::listener::{NativeListener, Peer, Poller};
use super::out_queue::OutQueue;
use super::stream::Stream;
use super::tls_stream::{flush_tls_nonblocking, tls_feed, TlsStream};
use super::{io_reason, lock, EV_IN, EV_OUT, READ_BUDGET};
use crate::sys;
use crate::{DisconnectReason, Error, Event, PeerId};
use std::io::{self, IoSlice, Write};
use std::os::fd::AsRawFd;
use std::sync::PoisonError;

impl NativeListener {
    /// Reads what TLS peer `id` has sent, emitting whole messages, and its disconnect on EOF
    /// or error.
    pub(super) fn read_tls_peer(
        &self,
        p: &mut Poller,
        id: PeerId,
        ready: u32,
        events: &mut Vec<Event>,
    ) {
        let Poller { scratch, plain, .. } = &mut *p;
        let Some(peer) = self.peer(id) else {
            return;
        };
        let Stream::Tls(t) = &peer.stream else {
            return;
        };
        let mut guard = lock(&peer.rx);
        let frame = &mut *guard;
        let hangup = ready & (libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLERR) as u32 != 0;
        let ended = |frame: &Frame| {
            if frame.mid_frame() {
                DisconnectReason::Protocol(frame.describe_truncation())
            } else {
                DisconnectReason::Closed
            }
        };
        let mut budget = READ_BUDGET;
        let mut flush = false;
        let outcome: Option<DisconnectReason> = loop {
            if budget == 0 {
                break None;
            }
            match sys::read(t.fd.as_raw_fd(), scratch) {
                Ok(0) => break Some(ended(frame)),
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    let (res, wants_write) =
                        tls_feed(t, frame, &scratch[..n], plain, self.max_message, id, events);
                    // Processing may have queued TLS output (a key update reply, an alert).
                    flush |= wants_write;
                    match res {
                        Ok(true) => break Some(ended(frame)),
                        Ok(false) => {}
                        Err(reason) => break Some(reason),
                    }
                    if n < scratch.len() && !hangup {
                        break None;
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => break None,
                    io::ErrorKind::Interrupted => continue,
                    _ => break Some(io_reason(e)),
                },
            }
        };
        drop(guard);
        if flush {
            self.flush_peer(id);
        }
        if let Some(reason) = outcome {
            self.remove_peer(p, id, reason, events);
        }
    }

    pub(super) fn flush_peer(&self, id: PeerId) {
        let Some(peer) = self.peer(id) else {
            return;
        };
        let mut out = lock(&peer.out);
        if let Stream::Tls(t) = &peer.stream {
            let fd = t.fd.as_raw_fd();
            let res = flush_tls_nonblocking(&mut lock(&t.conn), fd);
            match res {
                Ok(all_out) => {
                    // Watch EPOLLOUT exactly while rustls holds output the socket refused.
                    if all_out == out.waiting_out {
                        let ev = if all_out { EV_IN } else { EV_IN | EV_OUT };
                        match self.epoll.modify(fd, ev, id.get()) {
                            Ok(()) => out.waiting_out = !all_out,
                            Err(e) => log::debug!("epoll modify failed for peer {id}: {e}"),
                        }
                    }
                }
                Err(e) => {
                    log::debug!("write to peer {id} failed: {e}");
                    out.broken = true;
                    if out.waiting_out {
                        let _ = self.epoll.modify(fd, EV_IN, id.get());
                        out.waiting_out = false;
                    }
                    peer.stream.shutdown();
                }
            }
            return;
        }
        match out.flush(&peer.stream) {
            Ok(true) => {
                if let Err(e) = self.epoll.modify(peer.stream.fd(), EV_IN, id.get()) {
                    log::debug!("epoll modify failed for peer {id}: {e}");
                }
            }
            Ok(false) => {}
            Err(e) => {
                // Shut the socket so the read side reports the disconnect, whatever the
                // error (a reset peer already shows as EPOLLERR/EPOLLHUP).
                log::debug!("write to peer {id} failed: {e}");
                out.broken = true;
                out.chunks.clear();
                out.offset = 0;
                let _ = self.epoll.modify(peer.stream.fd(), EV_IN, id.get());
                peer.stream.shutdown();
            }
        }
    }

    /// Reads what `id` has sent, emitting whole messages, and its disconnect on EOF or error.
    pub(super) fn read_peer(
        &self,
        p: &mut Poller,
        id: PeerId,
        ready: u32,
        events: &mut Vec<Event>,
    ) {
        let Some(peer) = self.peer(id) else {
            return;
        };
        if peer.ws.is_some() {
            self.read_ws_peer(p, peer, ready, events);
            return;
        }
        if matches!(peer.stream, Stream::Tls(_)) {
            self.read_tls_peer(p, id, ready, events);
            return;
        }
        let scratch = &mut p.scratch;
        let mut guard = lock(&peer.rx);
        let frame = &mut *guard;
        let hangup = ready & (libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLERR) as u32 != 0;
        let max = self.max_message;
        let mut budget = READ_BUDGET;
        let outcome: Option<DisconnectReason> = loop {
            if budget == 0 {
                break None;
            }
            if let Some(remaining) = frame.body_remaining().filter(|r| *r >= DIRECT_MIN) {
                // Large body: read straight into the message's own buffer.
                let Some((body, total)) = frame.body.as_mut() else {
                    break None;
                };
                reserve_for(body, *total, remaining.min(GROW_MIN));
                match peer.stream.read_spare(body, remaining) {
                    Ok(0) => break Some(DisconnectReason::Protocol(frame.describe_truncation())),
                    Ok(n) => {
                        budget = budget.saturating_sub(n);
                        if body.len() == *total {
                            let (done, _) = frame.body.take().unwrap_or_default();
                            events.push(Event::Message(id, done));
                        }
                        continue;
                    }
                    Err(e) => match e.kind() {
                        io::ErrorKind::WouldBlock => break None,
                        io::ErrorKind::Interrupted => continue,
                        _ => break Some(io_reason(e)),
                    },
                }
            }
            match peer.stream.read(scratch) {
                Ok(0) => {
                    break Some(if frame.mid_frame() {
                        DisconnectReason::Protocol(frame.describe_truncation())
                    } else {
                        DisconnectReason::Closed
                    })
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    if let Err(reason) =
                        frame.feed(&scratch[..n], max, |m| events.push(Event::Message(id, m)))
                    {
                        // Worth an operator's attention (a stranger probing the port, or a
                        // peer of another protocol): say who, and why, never what it sent.
                        log::warn!(
                            "peer {id} ({}) on {} dropped: {reason}",
                            self.describe_peer(&peer.stream),
                            self.url
                        );
                        break Some(DisconnectReason::Protocol(reason));
                    }
                    // A short read means the socket is drained; level-triggered epoll tells us
                    // if more arrives, so skip the read that would only say EAGAIN.
                    if n < scratch.len() && !hangup {
                        break None;
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => break None,
                    io::ErrorKind::Interrupted => continue,
                    _ => break Some(io_reason(e)),
                },
            }
        };
        drop(guard);
        if let Some(reason) = outcome {
            self.remove_peer(p, id, reason, events);
        }
    }

    /// Forgets a peer: unregisters it, closes its socket, and reports it gone.
    pub(super) fn remove_peer(
        &self,
        _p: &mut Poller,
        id: PeerId,
        reason: DisconnectReason,
        events: &mut Vec<Event>,
    ) {
        let removed = self
            .peers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        let Some(peer) = removed else {
            return;
        };
        {
            // Under the queue lock, so a concurrent send either finished before (and its bytes
            // are flushed below or dropped) or sees `closing` and touches neither socket nor
            // epoll registration.
            let mut out = lock(&peer.out);
            if reason == DisconnectReason::Local && !out.broken {
                // Best effort: what fits in the socket now still reaches the peer.
                match &peer.stream {
                    Stream::Plain(_) => {
                        let _ = out.flush(&peer.stream);
                    }
                    Stream::Tls(t) => {
                        let mut c = lock(&t.conn);
                        c.send_close_notify();
                        let _ = flush_tls_nonblocking(&mut c, t.fd.as_raw_fd());
                    }
                }
            }
            out.closing = true;
            out.chunks.clear();
            out.offset = 0;
            let _ = self.epoll.delete(peer.stream.fd());
        }
        // Shut down now, even if a sender still holds the Arc (the fd closes when it drops).
        peer.stream.shutdown();
        log::debug!("peer {} of {} disconnected: {reason:?}", peer.id, self.url);
        // A WebSocket connection that never upgraded was never reported connected.
        let announced = peer.ws.as_ref().is_none_or(|w| lock(w).upgrade.is_none());
        if announced {
            events.push(Event::Disconnected(id, reason));
        }
    }

    /// `send` of one message, `iov` (length prefix first) of `total` bytes.
    pub(super) fn send_iov(
        &self,
        peer: &Peer,
        mut iov: &mut [IoSlice<'_>],
        total: usize,
    ) -> Result<(), Error> {
        let id = peer.id;
        let mut out = lock(&peer.out);
        if out.closing {
            return Err(Error::UnknownPeer(id));
        }
        if out.broken {
            // The connection failed; its Disconnected event is on its way. The message is
            // lost as if sent just before the failure.
            return Ok(());
        }
        if let Stream::Tls(t) = &peer.stream {
            self.send_tls(peer, &mut out, t, iov, total);
            return Ok(());
        }
        if !out.chunks.is_empty() {
            out.push_rest(iov);
            return Ok(());
        }
        let mut written = 0;
        while written < total {
            match peer.stream.write_vectored(iov, true) {
                Ok(n) => {
                    written += n;
                    IoSlice::advance_slices(&mut iov, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // The message is lost as if sent just before the failure; shutting the
                    // socket makes the poller report the disconnect.
                    log::debug!("write to peer {id} failed: {e}");
                    out.broken = true;
                    peer.stream.shutdown();
                    return Ok(());
                }
            }
        }
        if written < total {
            out.push_rest(iov);
            if let Err(e) = self
                .epoll
                .modify(peer.stream.fd(), EV_IN | EV_OUT, id.get())
            {
                // Cannot happen while the peer is registered (we hold its queue lock, and
                // removal unregisters under it); if it does, fail the peer rather than stall.
                log::warn!("cannot watch peer {id} for writability: {e}");
                out.broken = true;
                out.chunks.clear();
                out.offset = 0;
                peer.stream.shutdown();
            }
        }
        Ok(())
    }

    /// `send` to a TLS peer, under its queue lock: encrypts into rustls' output queue (which
    /// takes any amount) and writes what the socket takes now; the poller writes the rest.
    pub(super) fn send_tls(
        &self,
        peer: &Peer,
        out: &mut OutQueue,
        t: &TlsStream,
        mut iov: &mut [IoSlice<'_>],
        total: usize,
    ) {
        let id = peer.id;
        let fd = t.fd.as_raw_fd();
        let mut conn = lock(&t.conn);
        let mut pos = 0;
        // Drops leading empty parts (and every fully written part below).
        IoSlice::advance_slices(&mut iov, 0);
        while pos < total {
            match conn.writer().write_vectored(iov) {
                Ok(n) if n > 0 => {
                    pos += n;
                    IoSlice::advance_slices(&mut iov, n);
                }
                other => {
                    // The TLS session has failed; the poller reports the disconnect. The
                    // message is lost as if sent just before the failure.
                    log::debug!("TLS send to peer {id} failed: {other:?}");
                    return;
                }
            }
        }
        let res = flush_tls_nonblocking(&mut conn, fd);
        drop(conn);
        match res {
            Ok(true) => {}
            Ok(false) => {
                if !out.waiting_out {
                    match self.epoll.modify(fd, EV_IN | EV_OUT, id.get()) {
                        Ok(()) => out.waiting_out = true,
                        Err(e) => {
                            // As for plain sockets: fail the peer rather than stall.
                            log::warn!("cannot watch peer {id} for writability: {e}");
                            out.broken = true;
                            peer.stream.shutdown();
                        }
                    }
                }
            }
            Err(e) => {
                log::debug!("write to peer {id} failed: {e}");
                out.broken = true;
                peer.stream.shutdown();
            }
        }
    }
}
