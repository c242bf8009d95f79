//! push v0 / pull v0: push hands each message to the next ready puller, round robin; pull
//! receives from every pusher. No header.

use std::collections::VecDeque;
use std::time::Instant;

use super::util::{Bounded, ReadyRing};
use super::{ContextId, Machine, Outbox, PipeId, Received, SmError, SmOption, Transmit};
use crate::protocol::Protocol;

/// push v0.
#[derive(Debug)]
pub struct Push0 {
    ring: ReadyRing,
    sendq: Bounded<Vec<u8>>,
    out: Outbox,
}

impl Push0 {
    /// A push machine with NNG's default send buffer (0: sends wait for a ready puller).
    pub fn new() -> Push0 {
        Push0 {
            ring: ReadyRing::default(),
            sendq: Bounded::new(0),
            out: Outbox::new(),
        }
    }

    fn flush(&mut self) {
        while !self.sendq.is_empty() {
            let Some(pipe) = self.ring.take_ready() else {
                return;
            };
            if let Some(msg) = self.sendq.pop() {
                self.out.push_back(Transmit::new(pipe, msg));
            }
        }
    }
}

impl Default for Push0 {
    fn default() -> Self {
        Push0::new()
    }
}

impl Machine for Push0 {
    fn protocol(&self) -> Protocol {
        Protocol::Push0
    }
    fn add_pipe(&mut self, pipe: PipeId, _now: Instant) -> bool {
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
    fn handle_message(&mut self, _pipe: PipeId, _msg: Vec<u8>, _now: Instant) {}
    fn send(
        &mut self,
        _ctx: ContextId,
        body: &mut Vec<u8>,
        _pipe: Option<PipeId>,
        _now: Instant,
    ) -> Result<(), SmError> {
        if self.sendq.is_empty() {
            if let Some(pipe) = self.ring.take_ready() {
                let msg = std::mem::take(body);
                self.out.push_back(Transmit::new(pipe, msg));
                return Ok(());
            }
        }
        if self.sendq.is_full() {
            return Err(SmError::TryAgain);
        }
        self.sendq.push(std::mem::take(body), false);
        Ok(())
    }
    fn recv(&mut self, _ctx: ContextId, _now: Instant) -> Result<Received, SmError> {
        Err(SmError::NotSupported)
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
            _ => return Err(SmError::NotSupported),
        }
        Ok(())
    }
}

/// pull v0.
#[derive(Debug, Default)]
pub struct Pull0 {
    pipes: Vec<PipeId>,
    recvq: VecDeque<Received>,
}

impl Pull0 {
    /// A pull machine.
    pub fn new() -> Pull0 {
        Pull0::default()
    }
}

impl Machine for Pull0 {
    fn protocol(&self) -> Protocol {
        Protocol::Pull0
    }
    fn add_pipe(&mut self, pipe: PipeId, _now: Instant) -> bool {
        self.pipes.push(pipe);
        true
    }
    fn remove_pipe(&mut self, pipe: PipeId, _now: Instant) {
        self.pipes.retain(|p| *p != pipe);
    }
    fn pipe_ready(&mut self, _pipe: PipeId, _now: Instant) {}
    fn handle_message(&mut self, pipe: PipeId, msg: Vec<u8>, _now: Instant) {
        if self.pipes.contains(&pipe) {
            self.recvq.push_back(Received::new(pipe, msg));
        }
    }
    fn send(
        &mut self,
        _ctx: ContextId,
        _body: &mut Vec<u8>,
        _pipe: Option<PipeId>,
        _now: Instant,
    ) -> Result<(), SmError> {
        Err(SmError::NotSupported)
    }
    fn recv(&mut self, _ctx: ContextId, _now: Instant) -> Result<Received, SmError> {
        self.recvq.pop_front().ok_or(SmError::TryAgain)
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_round_robins_ready_pullers() {
        let now = Instant::now();
        let mut m = Push0::new();
        m.add_pipe(PipeId(1), Instant::now());
        m.add_pipe(PipeId(2), Instant::now());
        for _ in 0..2 {
            m.send(ContextId::SOCKET, &mut b"j".to_vec(), None, now)
                .unwrap();
        }
        let got: Vec<_> = std::iter::from_fn(|| m.poll_transmit())
            .map(|t| t.pipe)
            .collect();
        assert_eq!(got, [PipeId(1), PipeId(2)]);
        assert_eq!(
            m.send(ContextId::SOCKET, &mut b"j".to_vec(), None, now),
            Err(SmError::TryAgain)
        );
        m.pipe_ready(PipeId(2), Instant::now());
        m.send(ContextId::SOCKET, &mut b"j".to_vec(), None, now)
            .unwrap();
        assert_eq!(m.poll_transmit().unwrap().pipe, PipeId(2));
        assert_eq!(m.recv(ContextId::SOCKET, now), Err(SmError::NotSupported));
    }

    #[test]
    fn push_buffer_drains_in_order() {
        let now = Instant::now();
        let mut m = Push0::new();
        m.set_option(ContextId::SOCKET, SmOption::SendBuffer(4))
            .unwrap();
        m.send(ContextId::SOCKET, &mut b"1".to_vec(), None, now)
            .unwrap();
        m.send(ContextId::SOCKET, &mut b"2".to_vec(), None, now)
            .unwrap();
        m.add_pipe(PipeId(7), Instant::now());
        assert_eq!(*m.poll_transmit().unwrap().msg, b"1");
        m.pipe_ready(PipeId(7), Instant::now());
        assert_eq!(*m.poll_transmit().unwrap().msg, b"2");
    }

    #[test]
    fn pull_receives_and_cannot_send() {
        let now = Instant::now();
        let mut m = Pull0::new();
        m.add_pipe(PipeId(3), Instant::now());
        m.handle_message(PipeId(3), b"w".to_vec(), now);
        m.handle_message(PipeId(8), b"stranger".to_vec(), now);
        assert_eq!(
            m.recv(ContextId::SOCKET, now).unwrap(),
            Received::new(PipeId(3), b"w".to_vec())
        );
        assert_eq!(m.recv(ContextId::SOCKET, now), Err(SmError::TryAgain));
        assert_eq!(
            m.send(ContextId::SOCKET, &mut vec![], None, now),
            Err(SmError::NotSupported)
        );
    }
}
