//! pub v0 / sub v0: pub sends every message to every subscriber pipe (no header); sub keeps
//! the messages whose body starts with one of its topics (filtering is on the subscriber, as
//! in NNG), per context, in a bounded queue that by default drops the oldest when full.

use std::collections::BTreeMap;
use std::time::Instant;

use super::util::Bounded;
use super::{ContextId, Machine, Outbox, PipeId, Received, SmError, SmOption, Transmit};
use crate::protocol::Protocol;

/// pub v0.
#[derive(Debug, Default)]
pub struct Pub0 {
    pipes: Vec<PipeId>,
    out: Outbox,
}

impl Pub0 {
    /// A pub machine.
    pub fn new() -> Pub0 {
        Pub0::default()
    }
}

impl Machine for Pub0 {
    fn protocol(&self) -> Protocol {
        Protocol::Pub0
    }
    fn add_pipe(&mut self, pipe: PipeId, _now: Instant) -> bool {
        self.pipes.push(pipe);
        true
    }
    fn remove_pipe(&mut self, pipe: PipeId, _now: Instant) {
        self.pipes.retain(|p| *p != pipe);
    }
    fn pipe_ready(&mut self, _pipe: PipeId, _now: Instant) {}
    fn handle_message(&mut self, _pipe: PipeId, _msg: Vec<u8>, _now: Instant) {}
    fn send(
        &mut self,
        _ctx: ContextId,
        body: &mut Vec<u8>,
        _pipe: Option<PipeId>,
        _now: Instant,
    ) -> Result<(), SmError> {
        let body = std::mem::take(body);
        // Without subscribers the message is simply gone, as in NNG.
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
            SmOption::SendBuffer(_) => Ok(()),
            _ => Err(SmError::NotSupported),
        }
    }
}

/// NNG's default sub receive buffer.
const SUB_RECV_BUFFER: usize = 128;

#[derive(Debug)]
struct SubCtx {
    topics: Vec<Vec<u8>>,
    queue: Bounded<Received>,
    prefer_new: bool,
}

impl SubCtx {
    fn new(cap: usize, prefer_new: bool) -> SubCtx {
        SubCtx {
            topics: Vec::new(),
            queue: Bounded::new(cap),
            prefer_new,
        }
    }
    fn wants(&self, body: &[u8]) -> bool {
        self.topics.iter().any(|t| body.starts_with(t))
    }
}

/// sub v0 with contexts (each with its own topics and queue).
#[derive(Debug)]
pub struct Sub0 {
    pipes: Vec<PipeId>,
    ctxs: BTreeMap<ContextId, SubCtx>,
    next_ctx: u32,
}

impl Default for Sub0 {
    fn default() -> Self {
        Sub0::new()
    }
}

impl Sub0 {
    /// A sub machine with no subscription (it receives nothing until it subscribes).
    pub fn new() -> Sub0 {
        let mut ctxs = BTreeMap::new();
        ctxs.insert(ContextId::SOCKET, SubCtx::new(SUB_RECV_BUFFER, true));
        Sub0 {
            pipes: Vec::new(),
            ctxs,
            next_ctx: 1,
        }
    }
}

impl Machine for Sub0 {
    fn protocol(&self) -> Protocol {
        Protocol::Sub0
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
        if !self.pipes.contains(&pipe) {
            return;
        }
        for c in self.ctxs.values_mut() {
            if c.wants(&msg) {
                let prefer_new = c.prefer_new;
                c.queue.push(Received::new(pipe, msg.clone()), prefer_new);
            }
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
    fn recv(&mut self, ctx: ContextId, _now: Instant) -> Result<Received, SmError> {
        let c = self.ctxs.get_mut(&ctx).ok_or(SmError::NotFound)?;
        c.queue.pop().ok_or(SmError::TryAgain)
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
    fn open_context(&mut self) -> Result<ContextId, SmError> {
        let id = ContextId(self.next_ctx);
        self.next_ctx += 1;
        let s = &self.ctxs[&ContextId::SOCKET];
        let c = SubCtx::new(s.queue_cap(), s.prefer_new);
        self.ctxs.insert(id, c);
        Ok(id)
    }
    fn close_context(&mut self, ctx: ContextId) -> Result<(), SmError> {
        if ctx == ContextId::SOCKET {
            return Err(SmError::NotSupported);
        }
        self.ctxs.remove(&ctx).map(|_| ()).ok_or(SmError::NotFound)
    }
    fn set_option(&mut self, ctx: ContextId, opt: SmOption) -> Result<(), SmError> {
        let c = self.ctxs.get_mut(&ctx).ok_or(SmError::NotFound)?;
        match opt {
            SmOption::Subscribe(t) => {
                if !c.topics.contains(&t) {
                    c.topics.push(t);
                }
            }
            SmOption::Unsubscribe(t) => {
                let i = c
                    .topics
                    .iter()
                    .position(|x| *x == t)
                    .ok_or(SmError::NotFound)?;
                c.topics.remove(i);
                // Queued messages no longer subscribed to are discarded, as in NNG.
                let topics = &c.topics;
                c.queue
                    .retain(|m| topics.iter().any(|t| m.body().starts_with(t)));
            }
            SmOption::PreferNew(b) => c.prefer_new = b,
            SmOption::RecvBuffer(n) => c.queue.set_cap(n.max(1)),
            _ => return Err(SmError::NotSupported),
        }
        Ok(())
    }
}

impl SubCtx {
    fn queue_cap(&self) -> usize {
        self.queue.cap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ContextId = ContextId::SOCKET;

    #[test]
    fn pub_broadcasts_to_all_pipes() {
        let now = Instant::now();
        let mut m = Pub0::new();
        m.send(S, &mut b"lost".to_vec(), None, now).unwrap();
        assert_eq!(m.poll_transmit(), None);
        m.add_pipe(PipeId(1), now);
        m.add_pipe(PipeId(2), now);
        m.send(S, &mut b"news".to_vec(), None, now).unwrap();
        let to: Vec<_> = std::iter::from_fn(|| m.poll_transmit())
            .map(|t| t.pipe)
            .collect();
        assert_eq!(to, [PipeId(1), PipeId(2)]);
        assert_eq!(m.recv(S, now), Err(SmError::NotSupported));
    }

    #[test]
    fn sub_filters_by_prefix_and_unsubscribes() {
        let now = Instant::now();
        let mut m = Sub0::new();
        m.add_pipe(PipeId(1), now);
        m.handle_message(PipeId(1), b"news 1".to_vec(), now);
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
        m.set_option(S, SmOption::Subscribe(b"news".to_vec()))
            .unwrap();
        m.handle_message(PipeId(1), b"news 2".to_vec(), now);
        m.handle_message(PipeId(1), b"sport".to_vec(), now);
        m.handle_message(PipeId(1), b"new".to_vec(), now);
        assert_eq!(m.recv(S, now).unwrap().body(), b"news 2");
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
        m.set_option(S, SmOption::Unsubscribe(b"news".to_vec()))
            .unwrap();
        assert_eq!(
            m.set_option(S, SmOption::Unsubscribe(b"x".to_vec())),
            Err(SmError::NotFound)
        );
        m.handle_message(PipeId(1), b"news 3".to_vec(), now);
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
    }

    #[test]
    fn empty_topic_matches_everything_and_full_queue_drops_oldest() {
        let now = Instant::now();
        let mut m = Sub0::new();
        m.add_pipe(PipeId(1), now);
        m.set_option(S, SmOption::Subscribe(vec![])).unwrap();
        m.set_option(S, SmOption::RecvBuffer(2)).unwrap();
        for b in [b"a", b"b", b"c"] {
            m.handle_message(PipeId(1), b.to_vec(), now);
        }
        assert_eq!(m.recv(S, now).unwrap().body(), b"b");
        assert_eq!(m.recv(S, now).unwrap().body(), b"c");
    }

    #[test]
    fn contexts_filter_independently() {
        let now = Instant::now();
        let mut m = Sub0::new();
        m.add_pipe(PipeId(1), now);
        let c = m.open_context().unwrap();
        m.set_option(c, SmOption::Subscribe(b"x".to_vec())).unwrap();
        m.handle_message(PipeId(1), b"xy".to_vec(), now);
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
        assert_eq!(m.recv(c, now).unwrap().body(), b"xy");
        assert_eq!(
            m.send(S, &mut vec![], None, now),
            Err(SmError::NotSupported)
        );
    }
}
