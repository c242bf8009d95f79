//! pair v0 and v1 (one peer), and pair v1 polyamorous mode (many peers, addressed by pipe).
//!
//! v0 sends bare bodies. v1 prefixes a 4-byte big-endian hop count (NNG sends 1) and drops
//! messages that claim more hops than the limit. A second peer is refused except in poly mode.

use std::collections::VecDeque;
use std::time::Instant;

use super::util::{join, Bounded, ReadyRing, MAX_TTL};
use super::{ContextId, Machine, Outbox, PipeId, Received, SmError, SmOption, Transmit};
use crate::protocol::Protocol;

/// pair v0, pair v1, or pair v1 poly.
#[derive(Debug)]
pub struct Pair {
    v1: bool,
    poly: bool,
    ring: ReadyRing,
    sendq: Bounded<(Option<PipeId>, Vec<u8>)>,
    recvq: VecDeque<Received>,
    out: Outbox,
}

impl Pair {
    /// pair v0.
    pub fn v0() -> Pair {
        Pair::build(false, false)
    }

    /// pair v1; `poly` accepts many peers.
    pub fn v1(poly: bool) -> Pair {
        Pair::build(true, poly)
    }

    fn build(v1: bool, poly: bool) -> Pair {
        Pair {
            v1,
            poly,
            ring: ReadyRing::default(),
            sendq: Bounded::new(0),
            recvq: VecDeque::new(),
            out: Outbox::new(),
        }
    }

    fn wire(&self, body: Vec<u8>) -> Vec<u8> {
        if self.v1 {
            join(&1u32.to_be_bytes(), body)
        } else {
            body
        }
    }

    /// Moves queued sends to pipes that became ready.
    fn flush(&mut self) {
        while let Some((target, body)) = self.sendq.pop() {
            let pipe = match target {
                Some(p) if self.ring.take(p) => Some(p),
                Some(_) => None,
                None => self.ring.take_ready(),
            };
            match pipe {
                Some(pipe) => {
                    let msg = self.wire(body);
                    self.out.push_back(Transmit::new(pipe, msg));
                }
                None => {
                    // Order is kept: wait for this one's pipe.
                    self.sendq.push_front((target, body));
                    return;
                }
            }
        }
    }
}

impl Machine for Pair {
    fn protocol(&self) -> Protocol {
        if self.v1 {
            Protocol::Pair1
        } else {
            Protocol::Pair0
        }
    }

    fn add_pipe(&mut self, pipe: PipeId, _now: Instant) -> bool {
        if !self.poly && self.ring.len() > 0 {
            return false;
        }
        self.ring.add(pipe);
        self.flush();
        true
    }

    fn remove_pipe(&mut self, pipe: PipeId, _now: Instant) {
        self.ring.remove(pipe);
    }

    fn pipe_ready(&mut self, pipe: PipeId, _now: Instant) {
        self.ring.set_ready(pipe);
        self.flush();
    }

    fn handle_message(&mut self, pipe: PipeId, msg: Vec<u8>, _now: Instant) {
        if !self.ring.contains(pipe) {
            return;
        }
        let header = if self.v1 {
            let Some(word) = msg.get(..4) else { return };
            let hops = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            if hops == 0 || hops as usize > MAX_TTL {
                return;
            }
            4
        } else {
            0
        };
        self.recvq.push_back(Received::after(pipe, msg, header));
    }

    fn send(
        &mut self,
        _ctx: ContextId,
        body: &mut Vec<u8>,
        pipe: Option<PipeId>,
        _now: Instant,
    ) -> Result<(), SmError> {
        let target = if self.poly {
            pipe.filter(|p| p.0 != 0)
        } else {
            None
        };
        if let Some(p) = target {
            // NNG drops a message addressed to a pipe that is gone.
            if !self.ring.contains(p) {
                return Ok(());
            }
            if self.ring.take(p) {
                let msg = self.wire(std::mem::take(body));
                self.out.push_back(Transmit::new(p, msg));
                return Ok(());
            }
        } else if let Some(p) = self.ring.take_ready() {
            let msg = self.wire(std::mem::take(body));
            self.out.push_back(Transmit::new(p, msg));
            return Ok(());
        }
        if self.sendq.is_full() {
            return Err(SmError::TryAgain);
        }
        self.sendq.push((target, std::mem::take(body)), false);
        Ok(())
    }

    fn recv(&mut self, _ctx: ContextId, _now: Instant) -> Result<Received, SmError> {
        self.recvq.pop_front().ok_or(SmError::TryAgain)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn set_option(&mut self, _ctx: ContextId, opt: SmOption) -> Result<(), SmError> {
        match opt {
            SmOption::SendBuffer(n) => self.sendq.set_cap(n),
            SmOption::RecvBuffer(_) => {}
            _ => return Err(SmError::NotSupported),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Instant {
        Instant::now()
    }

    #[test]
    fn v0_sends_bare_and_refuses_second_peer() {
        let mut m = Pair::v0();
        assert_eq!(
            m.send(ContextId::SOCKET, &mut b"a".to_vec(), None, now()),
            Err(SmError::TryAgain)
        );
        assert!(m.add_pipe(PipeId(1), Instant::now()));
        assert!(!m.add_pipe(PipeId(2), Instant::now()));
        m.send(ContextId::SOCKET, &mut b"a".to_vec(), None, now())
            .unwrap();
        assert_eq!(
            m.poll_transmit(),
            Some(Transmit::new(PipeId(1), b"a".to_vec()))
        );
        // Busy until written.
        assert_eq!(
            m.send(ContextId::SOCKET, &mut b"b".to_vec(), None, now()),
            Err(SmError::TryAgain)
        );
        m.pipe_ready(PipeId(1), Instant::now());
        m.send(ContextId::SOCKET, &mut b"b".to_vec(), None, now())
            .unwrap();
        m.handle_message(PipeId(1), b"in".to_vec(), now());
        assert_eq!(m.recv(ContextId::SOCKET, now()).unwrap().body(), b"in");
        assert_eq!(m.recv(ContextId::SOCKET, now()), Err(SmError::TryAgain));
    }

    #[test]
    fn queued_send_goes_out_when_peer_arrives() {
        let mut m = Pair::v0();
        m.set_option(ContextId::SOCKET, SmOption::SendBuffer(2))
            .unwrap();
        m.send(ContextId::SOCKET, &mut b"q".to_vec(), None, now())
            .unwrap();
        assert_eq!(m.poll_transmit(), None);
        m.add_pipe(PipeId(4), Instant::now());
        assert_eq!(m.poll_transmit().map(|t| t.pipe), Some(PipeId(4)));
    }

    #[test]
    fn v1_hop_count_header() {
        let mut m = Pair::v1(false);
        m.add_pipe(PipeId(1), Instant::now());
        m.send(ContextId::SOCKET, &mut b"x".to_vec(), None, now())
            .unwrap();
        assert_eq!(*m.poll_transmit().unwrap().msg, [0, 0, 0, 1, b'x']);
        m.handle_message(PipeId(1), vec![0, 0, 0, 1, b'y'], now());
        m.handle_message(PipeId(1), vec![0, 0, 0, 200, b'z'], now());
        m.handle_message(PipeId(1), vec![0, 0], now());
        assert_eq!(m.recv(ContextId::SOCKET, now()).unwrap().body(), b"y");
        assert_eq!(m.recv(ContextId::SOCKET, now()), Err(SmError::TryAgain));
    }

    #[test]
    fn poly_addresses_pipes() {
        let mut m = Pair::v1(true);
        assert!(m.add_pipe(PipeId(1), Instant::now()) && m.add_pipe(PipeId(2), Instant::now()));
        m.send(
            ContextId::SOCKET,
            &mut b"to2".to_vec(),
            Some(PipeId(2)),
            now(),
        )
        .unwrap();
        assert_eq!(m.poll_transmit().unwrap().pipe, PipeId(2));
        m.send(
            ContextId::SOCKET,
            &mut b"gone".to_vec(),
            Some(PipeId(9)),
            now(),
        )
        .unwrap();
        assert_eq!(m.poll_transmit(), None);
        m.handle_message(PipeId(1), vec![0, 0, 0, 1, b'a'], now());
        assert_eq!(m.recv(ContextId::SOCKET, now()).unwrap().pipe, PipeId(1));
    }
}
