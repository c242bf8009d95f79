//! WebSocket peers of a native listener (`ws://`): the upgrade, bounded in size and time, then
//! frames decoded into messages, pings answered, a close answered and reported.
use super::listener::{NativeListener, Peer, Poller};
use super::stream::Stream;
use super::tls_stream::{tls_ingest, IngestError};
use super::ws::{self, WsDecoder, WsEvent};
use super::{io_reason, lock, READ_BUDGET};
use crate::sys;
use crate::tls::{self, Side};
use crate::{DisconnectReason, Event, PeerId};
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Instant;

/// Receive state of a WebSocket peer.
pub(super) struct WsRx {
    /// The upgrade request so far; `None` once upgraded (and reported `Connected`).
    pub(super) upgrade: Option<Vec<u8>>,
    pub(super) dec: WsDecoder,
}

impl NativeListener {
    /// Reads what WebSocket peer `peer` has sent: its upgrade, then frames.
    pub(super) fn read_ws_peer(
        &self,
        p: &mut Poller,
        peer: Arc<Peer>,
        ready: u32,
        events: &mut Vec<Event>,
    ) {
        let hangup = ready & (libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLERR) as u32 != 0;
        let mut budget = READ_BUDGET;
        let mut scratch = std::mem::take(&mut p.scratch);
        let outcome: Option<DisconnectReason> = loop {
            if budget == 0 {
                break None;
            }
            // Raw bytes (ciphertext over wss): the TLS layer, if any, is applied in `ws_input`.
            match sys::read(peer.stream.fd(), &mut scratch) {
                Ok(0) => break Some(self.ws_ended(&peer)),
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    if let Err(reason) = self.ws_input(p, &peer, &scratch[..n], events) {
                        break Some(reason);
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
        p.scratch = scratch;
        if let Some(reason) = outcome {
            self.remove_peer(p, peer.id, reason, events);
        }
    }

    /// Why a WebSocket peer whose socket ended is gone.
    fn ws_ended(&self, peer: &Peer) -> DisconnectReason {
        match &peer.ws {
            Some(w) if lock(w).dec.mid_message() => {
                DisconnectReason::Protocol(lock(w).dec.describe_truncation())
            }
            _ => DisconnectReason::Closed,
        }
    }

    /// Handles bytes read from a WebSocket peer's socket: decrypts them over wss, then feeds
    /// the upgrade or the frame decoder. Errs with the reason to drop the peer.
    pub(super) fn ws_input(
        &self,
        p: &mut Poller,
        peer: &Peer,
        raw: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), DisconnectReason> {
        let Stream::Tls(t) = &peer.stream else {
            return self.ws_plain(peer, raw, events);
        };
        let mut plain = Vec::new();
        let mut conn = lock(&t.conn);
        let res = tls_ingest(&mut conn, raw, &mut p.plain, |d| {
            plain.extend_from_slice(d);
            Ok(())
        });
        let wants_write = conn.wants_write();
        drop(conn);
        if wants_write {
            self.flush_peer(peer.id);
        }
        let ended = match res {
            Ok(ended) => ended,
            Err(IngestError::Tls(e)) => {
                let (reason, _) = tls::describe(&e, Side::Listener);
                log::warn!("TLS peer {} ({}) dropped: {reason}", peer.id, t.peer);
                return Err(DisconnectReason::Protocol(format!("TLS: {reason}")));
            }
            Err(IngestError::Frame(reason)) => return Err(DisconnectReason::Protocol(reason)),
        };
        self.ws_plain(peer, &plain, events)?;
        if ended {
            return Err(self.ws_ended(peer));
        }
        Ok(())
    }

    /// Feeds plaintext from a WebSocket peer to its upgrade or its frame decoder.
    fn ws_plain(
        &self,
        peer: &Peer,
        data: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), DisconnectReason> {
        let Some(ws_rx) = &peer.ws else { return Ok(()) };
        let mut data = data;
        let id = peer.id;
        let mut tail = Vec::new();
        let mut rx = lock(ws_rx);
        if let Some(buf) = rx.upgrade.as_mut() {
            let had = buf.len();
            buf.extend_from_slice(data);
            match ws::parse_request(buf, &self.ws_path) {
                Ok(None) => return Ok(()),
                Err(reason) => {
                    drop(rx);
                    self.ws_refuse(peer, &reason);
                    return Err(DisconnectReason::Protocol(reason));
                }
                Ok(Some(up)) => {
                    tail.extend_from_slice(
                        &data[up.consumed.saturating_sub(had).min(data.len())..],
                    );
                    rx.upgrade = None;
                    self.send_raw(peer, up.response.as_bytes());
                    log::debug!("WebSocket peer {id} upgraded on {}", self.url);
                    events.push(Event::Connected(id));
                    data = &tail;
                }
            }
        }
        let mut closed = false;
        let mut replies: Vec<Vec<u8>> = Vec::new();
        let res = rx.dec.feed(data, self.max_message, |e| match e {
            WsEvent::Message(m) => events.push(Event::Message(id, m)),
            WsEvent::Reply(r) => replies.push(r),
            WsEvent::Closed => closed = true,
        });
        drop(rx);
        for r in replies {
            self.send_raw(peer, &r);
        }
        if let Err(reason) = res {
            log::warn!("WebSocket peer {id} on {} dropped: {reason}", self.url);
            return Err(DisconnectReason::Protocol(reason));
        }
        if closed {
            return Err(DisconnectReason::Closed);
        }
        Ok(())
    }

    /// Logs a refused upgrade and answers it with `400 Bad Request` (best effort).
    fn ws_refuse(&self, peer: &Peer, reason: &str) {
        log::warn!(
            "refused WebSocket connection from {} on {}: {reason}",
            self.describe_peer(&peer.stream),
            self.url
        );
        self.send_raw(
            peer,
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        );
    }

    /// Writes bytes already framed (an upgrade response, a pong) to `peer`, in order with
    /// its messages.
    pub(super) fn send_raw(&self, peer: &Peer, bytes: &[u8]) {
        let mut iov = [IoSlice::new(bytes)];
        if let Err(e) = self.send_iov(peer, &mut iov, bytes.len()) {
            log::debug!("reply to peer {} failed: {e}", peer.id);
        }
    }

    /// Drops WebSocket connections whose upgrade is late; returns the next deadline.
    pub(super) fn expire_ws_upgrades(&self, p: &mut Poller, events: &mut Vec<Event>) {
        if p.ws_pending.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut late: Vec<PeerId> = Vec::new();
        p.ws_pending.retain(|&(id, deadline)| {
            let Some(peer) = self.peer(id) else {
                return false;
            };
            let upgrading = peer.ws.as_ref().is_some_and(|w| lock(w).upgrade.is_some());
            if upgrading && deadline <= now {
                late.push(id);
            }
            upgrading && deadline > now
        });
        for id in late {
            log::warn!(
                "WebSocket connection on {} dropped: no upgrade within {:?}",
                self.url,
                crate::tls::DEFAULT_HANDSHAKE_TIMEOUT
            );
            self.remove_peer(
                p,
                id,
                DisconnectReason::Protocol("no WebSocket upgrade in time".into()),
                events,
            );
        }
    }
}
