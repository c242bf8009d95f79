//! WebSocket peers of a native listener (`ws://`): the upgrade, bounded in size and time, then
//! frames decoded into messages, pings answered, a close answered and reported.
use super::listener::{NativeListener, Peer, Poller};
use super::ws::{self, WsDecoder, WsEvent};
use super::{io_reason, lock, READ_BUDGET};
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
        let Some(ws_rx) = &peer.ws else { return };
        let id = peer.id;
        let hangup = ready & (libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLERR) as u32 != 0;
        let mut budget = READ_BUDGET;
        let mut replies: Vec<Vec<u8>> = Vec::new();
        let mut rx = lock(ws_rx);
        let outcome: Option<DisconnectReason> = loop {
            if budget == 0 {
                break None;
            }
            let n = match peer.stream.read(&mut p.scratch) {
                Ok(0) => {
                    break Some(if rx.dec.mid_message() {
                        DisconnectReason::Protocol(rx.dec.describe_truncation())
                    } else {
                        DisconnectReason::Closed
                    })
                }
                Ok(n) => n,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => break None,
                    io::ErrorKind::Interrupted => continue,
                    _ => break Some(io_reason(e)),
                },
            };
            budget = budget.saturating_sub(n);
            let mut data = &p.scratch[..n];
            if let Some(buf) = rx.upgrade.as_mut() {
                buf.extend_from_slice(data);
                match ws::parse_request(buf, &self.ws_path) {
                    Ok(None) => {
                        if n < p.scratch.len() && !hangup {
                            break None;
                        }
                        continue;
                    }
                    Err(reason) => {
                        self.ws_refuse(&peer, &reason);
                        break Some(DisconnectReason::Protocol(reason));
                    }
                    Ok(Some(up)) => {
                        let had = buf.len() - n;
                        rx.upgrade = None;
                        self.send_raw(&peer, up.response.as_bytes());
                        log::debug!("WebSocket peer {id} upgraded on {}", self.url);
                        events.push(Event::Connected(id));
                        data = &p.scratch[up.consumed.saturating_sub(had).min(n)..n];
                    }
                }
            }
            let mut closed = false;
            let res = rx.dec.feed(data, self.max_message, |e| match e {
                WsEvent::Message(m) => events.push(Event::Message(id, m)),
                WsEvent::Reply(r) => replies.push(r),
                WsEvent::Closed => closed = true,
            });
            for r in replies.drain(..) {
                self.send_raw(&peer, &r);
            }
            if let Err(reason) = res {
                log::warn!("WebSocket peer {id} on {} dropped: {reason}", self.url);
                break Some(DisconnectReason::Protocol(reason));
            }
            if closed {
                break Some(DisconnectReason::Closed);
            }
            if n < p.scratch.len() && !hangup {
                break None;
            }
        };
        drop(rx);
        if let Some(reason) = outcome {
            self.remove_peer(p, id, reason, events);
        }
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
