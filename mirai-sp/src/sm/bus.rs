//! bus v0: every message sent goes to every directly connected peer (no header, no
//! forwarding); received messages are queued, and dropped when the queue is full.

use std::time::Instant;

use super::util::Bounded;
use super::{ContextId, Machine, Outbox, PipeId, Received, SmError, SmOption, Transmit};
use crate::protocol::Protocol;

/// NNG's default bus receive buffer.
const BUS_RECV_BUFFER: usize = 16;

/// bus v0.
#[derive(Debug)]
pub struct Bus0 {
    pipes: Vec<PipeId>,
    recvq: Bounded<Received>,
    out: Outbox,
}

impl Default for Bus0 {
    fn default() -> Self {
        Bus0::new()
    }
}

impl Bus0 {
    /// A bus machine.
    pub fn new() -> Bus0 {
        Bus0 {
            pipes: Vec::new(),
            recvq: Bounded::new(BUS_RECV_BUFFER),
            out: Outbox::new(),
        }
    }
}

impl Machine for Bus0 {
    fn protocol(&self) -> Protocol {
        Protocol::Bus0
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
            self.recvq.push(Received::new(pipe, msg), false);
        }
    }
    fn send(
        &mut self,
        _ctx: ContextId,
        body: &mut Vec<u8>,
        _pipe: Option<PipeId>,
        _now: Instant,
    ) -> Result<(), SmError> {
        let body = std::mem::take(body);
        let msg = std::sync::Arc::new(body);
        for &pipe in &self.pipes {
            self.out.push_back(Transmit {
                pipe,
                msg: std::sync::Arc::clone(&msg),
            });
        }
        Ok(())
    }
    fn recv(&mut self, _ctx: ContextId, _now: Instant) -> Result<Received, SmError> {
        self.recvq.pop().ok_or(SmError::TryAgain)
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
            SmOption::RecvBuffer(n) => self.recvq.set_cap(n.max(1)),
            SmOption::SendBuffer(_) => {}
            _ => return Err(SmError::NotSupported),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ContextId = ContextId::SOCKET;

    #[test]
    fn broadcasts_and_receives_from_any_peer() {
        let now = Instant::now();
        let mut m = Bus0::new();
        m.add_pipe(PipeId(1), now);
        m.add_pipe(PipeId(2), now);
        m.add_pipe(PipeId(3), now);
        m.remove_pipe(PipeId(2), now);
        m.send(S, &mut b"all".to_vec(), None, now).unwrap();
        let to: Vec<_> = std::iter::from_fn(|| m.poll_transmit())
            .map(|t| t.pipe)
            .collect();
        assert_eq!(to, [PipeId(1), PipeId(3)]);
        m.handle_message(PipeId(3), b"hi".to_vec(), now);
        // A message is not forwarded to the other peers.
        assert_eq!(m.poll_transmit(), None);
        assert_eq!(m.recv(S, now).unwrap().pipe, PipeId(3));
        assert_eq!(m.open_context(), Err(SmError::NotSupported));
    }

    #[test]
    fn full_queue_drops_new_messages() {
        let now = Instant::now();
        let mut m = Bus0::new();
        m.add_pipe(PipeId(1), now);
        m.set_option(S, SmOption::RecvBuffer(1)).unwrap();
        m.handle_message(PipeId(1), b"1".to_vec(), now);
        m.handle_message(PipeId(1), b"2".to_vec(), now);
        assert_eq!(m.recv(S, now).unwrap().body(), b"1");
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
    }
}
