//! The answering side of req/rep (rep v0) and of survey (respondent v0). Both keep the
//! incoming message's backtrace (4-byte words up to the one with the high bit set) and send
//! it back in front of the answer, on the pipe the question came from. One question is held
//! per context; answering without one is `IncorrectState`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Instant;

use super::util::{backtrace, join};
use super::{ContextId, Machine, Outbox, PipeId, Received, SmError, SmOption, Transmit};
use crate::protocol::Protocol;

/// rep v0 or respondent v0, with contexts.
#[derive(Debug)]
pub struct Replier {
    proto: Protocol,
    pipes: HashSet<PipeId>,
    incoming: VecDeque<(Vec<u8>, Received)>,
    ctxs: BTreeMap<ContextId, Option<(PipeId, Vec<u8>)>>,
    next_ctx: u32,
    out: Outbox,
}

impl Replier {
    /// rep v0.
    pub fn rep0() -> Replier {
        Replier::build(Protocol::Rep0)
    }

    /// respondent v0.
    pub fn respondent0() -> Replier {
        Replier::build(Protocol::Respondent0)
    }

    fn build(proto: Protocol) -> Replier {
        let mut ctxs = BTreeMap::new();
        ctxs.insert(ContextId::SOCKET, None);
        Replier {
            proto,
            pipes: HashSet::new(),
            incoming: VecDeque::new(),
            ctxs,
            next_ctx: 1,
            out: Outbox::new(),
        }
    }
}

impl Machine for Replier {
    fn protocol(&self) -> Protocol {
        self.proto
    }

    fn add_pipe(&mut self, pipe: PipeId, _now: Instant) -> bool {
        self.pipes.insert(pipe);
        true
    }

    fn remove_pipe(&mut self, pipe: PipeId, _now: Instant) {
        self.pipes.remove(&pipe);
        self.incoming.retain(|(_, m)| m.pipe != pipe);
    }

    fn pipe_ready(&mut self, _pipe: PipeId, _now: Instant) {}

    fn handle_message(&mut self, pipe: PipeId, msg: Vec<u8>, _now: Instant) {
        if !self.pipes.contains(&pipe) {
            return;
        }
        if let Some(bt) = backtrace(&msg).map(<[u8]>::to_vec) {
            let n = bt.len();
            self.incoming.push_back((bt, Received::after(pipe, msg, n)));
        }
    }

    fn send(
        &mut self,
        ctx: ContextId,
        body: &mut Vec<u8>,
        _pipe: Option<PipeId>,
        _now: Instant,
    ) -> Result<(), SmError> {
        let slot = self.ctxs.get_mut(&ctx).ok_or(SmError::NotFound)?;
        let (pipe, bt) = slot.take().ok_or(SmError::IncorrectState)?;
        let body = std::mem::take(body);
        // The asker may have gone; the answer is then dropped, as NNG does.
        if self.pipes.contains(&pipe) {
            self.out.push_back(Transmit::new(pipe, join(&bt, body)));
        }
        Ok(())
    }

    fn recv(&mut self, ctx: ContextId, _now: Instant) -> Result<Received, SmError> {
        let slot = self.ctxs.get_mut(&ctx).ok_or(SmError::NotFound)?;
        let (bt, m) = self.incoming.pop_front().ok_or(SmError::TryAgain)?;
        *slot = Some((m.pipe, bt));
        Ok(m)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn open_context(&mut self) -> Result<ContextId, SmError> {
        let id = ContextId(self.next_ctx);
        self.next_ctx += 1;
        self.ctxs.insert(id, None);
        Ok(id)
    }

    fn close_context(&mut self, ctx: ContextId) -> Result<(), SmError> {
        if ctx == ContextId::SOCKET {
            return Err(SmError::NotSupported);
        }
        self.ctxs.remove(&ctx).map(|_| ()).ok_or(SmError::NotFound)
    }

    fn set_option(&mut self, _ctx: ContextId, opt: SmOption) -> Result<(), SmError> {
        match opt {
            SmOption::SendBuffer(_) | SmOption::RecvBuffer(_) => Ok(()),
            _ => Err(SmError::NotSupported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ContextId = ContextId::SOCKET;

    #[test]
    fn reply_carries_backtrace_to_origin_pipe() {
        let now = Instant::now();
        let mut m = Replier::rep0();
        assert_eq!(
            m.send(S, &mut b"r".to_vec(), None, now),
            Err(SmError::IncorrectState)
        );
        m.add_pipe(PipeId(5), now);
        // One hop recorded by a device, then the request id.
        m.handle_message(PipeId(5), vec![0, 0, 0, 9, 0x80, 0, 0, 2, b'q'], now);
        let r = m.recv(S, now).unwrap();
        assert_eq!((r.pipe, r.body()), (PipeId(5), &b"q"[..]));
        m.send(S, &mut b"r".to_vec(), None, now).unwrap();
        let t = m.poll_transmit().unwrap();
        assert_eq!(
            t,
            Transmit::new(PipeId(5), vec![0, 0, 0, 9, 0x80, 0, 0, 2, b'r'])
        );
        assert_eq!(
            m.send(S, &mut b"again".to_vec(), None, now),
            Err(SmError::IncorrectState)
        );
    }

    #[test]
    fn malformed_requests_are_dropped() {
        let now = Instant::now();
        let mut m = Replier::respondent0();
        m.add_pipe(PipeId(1), now);
        m.handle_message(PipeId(1), vec![0, 0], now);
        m.handle_message(PipeId(1), vec![0; 64], now);
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
    }

    #[test]
    fn answer_to_departed_pipe_is_dropped() {
        let now = Instant::now();
        let mut m = Replier::rep0();
        m.add_pipe(PipeId(1), now);
        m.handle_message(PipeId(1), vec![0x80, 0, 0, 1], now);
        m.recv(S, now).unwrap();
        m.remove_pipe(PipeId(1), now);
        m.send(S, &mut b"late".to_vec(), None, now).unwrap();
        assert_eq!(m.poll_transmit(), None);
    }

    #[test]
    fn contexts_answer_concurrently() {
        let now = Instant::now();
        let mut m = Replier::rep0();
        m.add_pipe(PipeId(1), now);
        let a = m.open_context().unwrap();
        let b = m.open_context().unwrap();
        m.handle_message(PipeId(1), vec![0x80, 0, 0, 1, b'1'], now);
        m.handle_message(PipeId(1), vec![0x80, 0, 0, 2, b'2'], now);
        assert_eq!(m.recv(a, now).unwrap().body(), b"1");
        assert_eq!(m.recv(b, now).unwrap().body(), b"2");
        m.send(b, &mut vec![], None, now).unwrap();
        m.send(a, &mut vec![], None, now).unwrap();
        assert_eq!(*m.poll_transmit().unwrap().msg, [0x80, 0, 0, 2]);
        assert_eq!(*m.poll_transmit().unwrap().msg, [0x80, 0, 0, 1]);
    }
}
