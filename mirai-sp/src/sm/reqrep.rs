//! req v0: a request carries a 4-byte id with the high bit set; the reply must echo it. One
//! outstanding request per context (a new send replaces the old one); unanswered requests are
//! resent after `resend-time`, and at once on another pipe if theirs disconnects.
//! The replier side (rep v0) lives in [`super::replier`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::util::{join, split_id, IdGen, ReadyRing};
use super::{ContextId, Machine, Outbox, PipeId, Received, SmError, SmOption, Transmit};
use crate::protocol::Protocol;

/// NNG's default `req:resend-time` (ms).
pub const DEFAULT_RESEND_MS: i64 = 60_000;

#[derive(Debug)]
struct Pending {
    id: u32,
    msg: Arc<Vec<u8>>,
    pipe: Option<PipeId>,
    resend_at: Option<Instant>,
}

#[derive(Debug)]
struct ReqCtx {
    resend_ms: i64,
    pending: Option<Pending>,
    reply: Option<Received>,
}

impl ReqCtx {
    fn new(resend_ms: i64) -> ReqCtx {
        ReqCtx {
            resend_ms,
            pending: None,
            reply: None,
        }
    }
}

/// req v0 with contexts.
#[derive(Debug)]
pub struct Req0 {
    ring: ReadyRing,
    ctxs: BTreeMap<ContextId, ReqCtx>,
    next_ctx: u32,
    ids: IdGen,
    by_id: HashMap<u32, ContextId>,
    unsent: VecDeque<ContextId>,
    out: Outbox,
}

impl Default for Req0 {
    fn default() -> Self {
        Req0::new()
    }
}

impl Req0 {
    /// A req machine with NNG's defaults.
    pub fn new() -> Req0 {
        let mut ctxs = BTreeMap::new();
        ctxs.insert(ContextId::SOCKET, ReqCtx::new(DEFAULT_RESEND_MS));
        Req0 {
            ring: ReadyRing::default(),
            ctxs,
            next_ctx: 1,
            ids: IdGen::new(),
            by_id: HashMap::new(),
            unsent: VecDeque::new(),
            out: Outbox::new(),
        }
    }

    /// Sends waiting requests to ready pipes.
    fn dispatch(&mut self, now: Instant) {
        while let Some(&ctx) = self.unsent.front() {
            let Some(c) = self.ctxs.get_mut(&ctx) else {
                self.unsent.pop_front();
                continue;
            };
            let Some(p) = c.pending.as_mut().filter(|p| p.pipe.is_none()) else {
                self.unsent.pop_front();
                continue;
            };
            let Some(pipe) = self.ring.take_ready() else {
                return;
            };
            self.unsent.pop_front();
            p.pipe = Some(pipe);
            p.resend_at =
                (c.resend_ms > 0).then(|| now + Duration::from_millis(c.resend_ms as u64));
            self.out.push_back(Transmit {
                pipe,
                msg: Arc::clone(&p.msg),
            });
        }
    }

    fn ctx(&mut self, ctx: ContextId) -> Result<&mut ReqCtx, SmError> {
        self.ctxs.get_mut(&ctx).ok_or(SmError::NotFound)
    }
}

impl Machine for Req0 {
    fn protocol(&self) -> Protocol {
        Protocol::Req0
    }

    fn add_pipe(&mut self, pipe: PipeId, now: Instant) -> bool {
        self.ring.add(pipe);
        self.dispatch(now);
        true
    }

    fn remove_pipe(&mut self, pipe: PipeId, now: Instant) {
        self.ring.remove(pipe);
        for (id, c) in self.ctxs.iter_mut() {
            if let Some(p) = c.pending.as_mut().filter(|p| p.pipe == Some(pipe)) {
                p.pipe = None;
                p.resend_at = None;
                self.unsent.push_back(*id);
            }
        }
        self.dispatch(now);
    }

    fn pipe_ready(&mut self, pipe: PipeId, now: Instant) {
        self.ring.set_ready(pipe);
        self.dispatch(now);
    }

    fn handle_message(&mut self, pipe: PipeId, msg: Vec<u8>, _now: Instant) {
        let Some((id, _)) = split_id(&msg) else {
            return;
        };
        let Some(ctx) = self.by_id.get(&id).copied() else {
            return;
        };
        let Some(c) = self.ctxs.get_mut(&ctx) else {
            return;
        };
        if c.pending.as_ref().is_some_and(|p| p.id == id) {
            c.pending = None;
            c.reply = Some(Received::after(pipe, msg, 4));
            self.by_id.remove(&id);
        }
    }

    fn send(
        &mut self,
        ctx: ContextId,
        body: &mut Vec<u8>,
        _pipe: Option<PipeId>,
        now: Instant,
    ) -> Result<(), SmError> {
        // An unknown context fails before the body is taken.
        self.ctx(ctx)?;
        let body = std::mem::take(body);
        let id = self.ids.next();
        let c = self.ctx(ctx)?;
        // A new request abandons the previous one: its reply will be ignored.
        let old = c.pending.take().map(|p| p.id);
        c.reply = None;
        let msg = Arc::new(join(&id.to_be_bytes(), body));
        c.pending = Some(Pending {
            id,
            msg,
            pipe: None,
            resend_at: None,
        });
        if let Some(old) = old {
            self.by_id.remove(&old);
        }
        self.by_id.insert(id, ctx);
        self.unsent.push_back(ctx);
        self.dispatch(now);
        Ok(())
    }

    fn recv(&mut self, ctx: ContextId, _now: Instant) -> Result<Received, SmError> {
        let c = self.ctx(ctx)?;
        if let Some(r) = c.reply.take() {
            return Ok(r);
        }
        if c.pending.is_some() {
            Err(SmError::TryAgain)
        } else {
            Err(SmError::IncorrectState)
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.ctxs
            .values()
            .filter_map(|c| c.pending.as_ref()?.resend_at)
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        for (id, c) in self.ctxs.iter_mut() {
            if let Some(p) = c
                .pending
                .as_mut()
                .filter(|p| p.resend_at.is_some_and(|t| t <= now))
            {
                // Resend through whichever pipe is ready next (maybe the same one).
                p.pipe = None;
                p.resend_at = None;
                self.unsent.push_back(*id);
            }
        }
        self.dispatch(now);
    }

    fn open_context(&mut self) -> Result<ContextId, SmError> {
        let id = ContextId(self.next_ctx);
        self.next_ctx += 1;
        let resend = self.ctxs[&ContextId::SOCKET].resend_ms;
        self.ctxs.insert(id, ReqCtx::new(resend));
        Ok(id)
    }

    fn close_context(&mut self, ctx: ContextId) -> Result<(), SmError> {
        if ctx == ContextId::SOCKET {
            return Err(SmError::NotSupported);
        }
        let c = self.ctxs.remove(&ctx).ok_or(SmError::NotFound)?;
        if let Some(p) = c.pending {
            self.by_id.remove(&p.id);
        }
        Ok(())
    }

    fn set_option(&mut self, ctx: ContextId, opt: SmOption) -> Result<(), SmError> {
        match opt {
            SmOption::ResendTime(ms) => self.ctx(ctx)?.resend_ms = ms,
            SmOption::SendBuffer(_) | SmOption::RecvBuffer(_) => {}
            _ => return Err(SmError::NotSupported),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ContextId = ContextId::SOCKET;

    fn id_of(t: &Transmit) -> [u8; 4] {
        t.msg[..4].try_into().unwrap()
    }

    #[test]
    fn request_id_has_high_bit_and_reply_matches() {
        let now = Instant::now();
        let mut m = Req0::new();
        assert_eq!(m.recv(S, now), Err(SmError::IncorrectState));
        m.add_pipe(PipeId(1), now);
        m.send(S, &mut b"q".to_vec(), None, now).unwrap();
        let t = m.poll_transmit().unwrap();
        assert!(t.msg[0] & 0x80 != 0);
        assert_eq!(&t.msg[4..], b"q");
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
        // A reply with another id is ignored.
        m.handle_message(PipeId(1), vec![0x80, 0, 0, 0, b'x'], now);
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
        m.handle_message(PipeId(1), join(&id_of(&t), b"a".to_vec()), now);
        assert_eq!(m.recv(S, now).unwrap().body(), b"a");
        assert_eq!(m.recv(S, now), Err(SmError::IncorrectState));
    }

    #[test]
    fn resends_after_resend_time() {
        let now = Instant::now();
        let mut m = Req0::new();
        m.set_option(S, SmOption::ResendTime(100)).unwrap();
        m.add_pipe(PipeId(1), now);
        m.send(S, &mut b"q".to_vec(), None, now).unwrap();
        let first = m.poll_transmit().unwrap();
        assert_eq!(m.poll_timeout(), Some(now + Duration::from_millis(100)));
        m.pipe_ready(PipeId(1), now);
        m.handle_timeout(now + Duration::from_millis(50));
        assert_eq!(m.poll_transmit(), None);
        m.handle_timeout(now + Duration::from_millis(100));
        assert_eq!(m.poll_transmit(), Some(first));
    }

    #[test]
    fn moves_request_when_its_pipe_goes() {
        let now = Instant::now();
        let mut m = Req0::new();
        m.add_pipe(PipeId(1), now);
        m.add_pipe(PipeId(2), now);
        m.send(S, &mut b"q".to_vec(), None, now).unwrap();
        assert_eq!(m.poll_transmit().unwrap().pipe, PipeId(1));
        m.remove_pipe(PipeId(1), now);
        assert_eq!(m.poll_transmit().unwrap().pipe, PipeId(2));
    }

    #[test]
    fn waits_for_a_pipe_and_new_request_replaces_old() {
        let now = Instant::now();
        let mut m = Req0::new();
        m.send(S, &mut b"old".to_vec(), None, now).unwrap();
        m.send(S, &mut b"new".to_vec(), None, now).unwrap();
        m.add_pipe(PipeId(1), now);
        let t = m.poll_transmit().unwrap();
        assert_eq!(&t.msg[4..], b"new");
        assert_eq!(m.poll_transmit(), None);
    }

    #[test]
    fn contexts_have_independent_requests() {
        let now = Instant::now();
        let mut m = Req0::new();
        m.add_pipe(PipeId(1), now);
        m.add_pipe(PipeId(2), now);
        let a = m.open_context().unwrap();
        let b = m.open_context().unwrap();
        m.send(a, &mut b"A".to_vec(), None, now).unwrap();
        m.send(b, &mut b"B".to_vec(), None, now).unwrap();
        let ta = m.poll_transmit().unwrap();
        let tb = m.poll_transmit().unwrap();
        m.handle_message(tb.pipe, join(&id_of(&tb), b"rb".to_vec()), now);
        m.handle_message(ta.pipe, join(&id_of(&ta), b"ra".to_vec()), now);
        assert_eq!(m.recv(a, now).unwrap().body(), b"ra");
        assert_eq!(m.recv(b, now).unwrap().body(), b"rb");
        m.close_context(a).unwrap();
        assert_eq!(m.recv(a, now), Err(SmError::NotFound));
    }
}
