//! surveyor v0: a survey carries a 4-byte id with the high bit set and goes to every
//! respondent; answers echoing the id are collected until `survey-time` passes. After the
//! deadline, queued answers are discarded, late ones dropped, and receiving reports
//! `IncorrectState` until the next survey (a driver reports a receive that was already waiting
//! when the survey ended as timed out). The respondent side lives in [`super::replier`].

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::util::{join, split_id, Bounded, IdGen};
use super::{ContextId, Machine, Outbox, PipeId, Received, SmError, SmOption, Transmit};
use crate::protocol::Protocol;

/// NNG's default `surveyor:survey-time` (ms).
pub const DEFAULT_SURVEY_MS: i64 = 1000;

/// Answers kept per survey.
const ANSWER_BUFFER: usize = 128;

#[derive(Debug)]
struct Survey {
    id: u32,
    deadline: Option<Instant>,
    answers: Bounded<Received>,
}

#[derive(Debug)]
struct SurvCtx {
    survey_ms: i64,
    current: Option<Survey>,
}

/// surveyor v0 with contexts.
#[derive(Debug)]
pub struct Surveyor0 {
    pipes: Vec<PipeId>,
    ctxs: BTreeMap<ContextId, SurvCtx>,
    next_ctx: u32,
    ids: IdGen,
    by_id: HashMap<u32, ContextId>,
    out: Outbox,
}

impl Default for Surveyor0 {
    fn default() -> Self {
        Surveyor0::new()
    }
}

impl Surveyor0 {
    /// A surveyor with NNG's default survey time.
    pub fn new() -> Surveyor0 {
        let mut ctxs = BTreeMap::new();
        ctxs.insert(
            ContextId::SOCKET,
            SurvCtx {
                survey_ms: DEFAULT_SURVEY_MS,
                current: None,
            },
        );
        Surveyor0 {
            pipes: Vec::new(),
            ctxs,
            next_ctx: 1,
            ids: IdGen::new(),
            by_id: HashMap::new(),
            out: Outbox::new(),
        }
    }

    fn expire(&mut self, ctx: ContextId) {
        if let Some(s) = self.ctxs.get_mut(&ctx).and_then(|c| c.current.take()) {
            self.by_id.remove(&s.id);
        }
    }
}

impl Machine for Surveyor0 {
    fn protocol(&self) -> Protocol {
        Protocol::Surveyor0
    }

    fn add_pipe(&mut self, pipe: PipeId, _now: Instant) -> bool {
        self.pipes.push(pipe);
        true
    }

    fn remove_pipe(&mut self, pipe: PipeId, _now: Instant) {
        self.pipes.retain(|p| *p != pipe);
    }

    fn pipe_ready(&mut self, _pipe: PipeId, _now: Instant) {}

    fn handle_message(&mut self, pipe: PipeId, msg: Vec<u8>, now: Instant) {
        let Some((id, _)) = split_id(&msg) else {
            return;
        };
        let Some(&ctx) = self.by_id.get(&id) else {
            return;
        };
        let Some(s) = self.ctxs.get_mut(&ctx).and_then(|c| c.current.as_mut()) else {
            return;
        };
        if s.deadline.is_some_and(|d| now >= d) {
            return;
        }
        s.answers.push(Received::after(pipe, msg, 4), false);
    }

    fn send(
        &mut self,
        ctx: ContextId,
        body: &mut Vec<u8>,
        _pipe: Option<PipeId>,
        now: Instant,
    ) -> Result<(), SmError> {
        let ms = self.ctxs.get(&ctx).ok_or(SmError::NotFound)?.survey_ms;
        let body = std::mem::take(body);
        // A new survey ends the previous one on this context.
        self.expire(ctx);
        let id = self.ids.next();
        let msg = std::sync::Arc::new(join(&id.to_be_bytes(), body));
        for &pipe in &self.pipes {
            self.out.push_back(Transmit {
                pipe,
                msg: std::sync::Arc::clone(&msg),
            });
        }
        let deadline = (ms > 0).then(|| now + Duration::from_millis(ms as u64));
        let survey = Survey {
            id,
            deadline,
            answers: Bounded::new(ANSWER_BUFFER),
        };
        if let Some(c) = self.ctxs.get_mut(&ctx) {
            c.current = Some(survey);
        }
        self.by_id.insert(id, ctx);
        Ok(())
    }

    fn recv(&mut self, ctx: ContextId, now: Instant) -> Result<Received, SmError> {
        let c = self.ctxs.get_mut(&ctx).ok_or(SmError::NotFound)?;
        let Some(s) = c.current.as_mut() else {
            return Err(SmError::IncorrectState);
        };
        if s.deadline.is_some_and(|d| now >= d) {
            self.expire(ctx);
            return Err(SmError::IncorrectState);
        }
        s.answers.pop().ok_or(SmError::TryAgain)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.ctxs
            .values()
            .filter_map(|c| c.current.as_ref()?.deadline)
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<ContextId> = self
            .ctxs
            .iter()
            .filter(|(_, c)| {
                c.current
                    .as_ref()
                    .is_some_and(|s| s.deadline.is_some_and(|d| d <= now))
            })
            .map(|(id, _)| *id)
            .collect();
        for ctx in due {
            self.expire(ctx);
        }
    }

    fn open_context(&mut self) -> Result<ContextId, SmError> {
        let id = ContextId(self.next_ctx);
        self.next_ctx += 1;
        let ms = self.ctxs[&ContextId::SOCKET].survey_ms;
        self.ctxs.insert(
            id,
            SurvCtx {
                survey_ms: ms,
                current: None,
            },
        );
        Ok(id)
    }

    fn close_context(&mut self, ctx: ContextId) -> Result<(), SmError> {
        if ctx == ContextId::SOCKET {
            return Err(SmError::NotSupported);
        }
        self.expire(ctx);
        self.ctxs.remove(&ctx).map(|_| ()).ok_or(SmError::NotFound)
    }

    fn set_option(&mut self, ctx: ContextId, opt: SmOption) -> Result<(), SmError> {
        let c = self.ctxs.get_mut(&ctx).ok_or(SmError::NotFound)?;
        match opt {
            SmOption::SurveyTime(ms) => c.survey_ms = ms,
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

    fn survey(m: &mut Surveyor0, now: Instant) -> Vec<Transmit> {
        m.send(S, &mut b"?".to_vec(), None, now).unwrap();
        std::iter::from_fn(|| m.poll_transmit()).collect()
    }

    #[test]
    fn survey_goes_to_all_with_high_bit_id() {
        let now = Instant::now();
        let mut m = Surveyor0::new();
        assert_eq!(m.recv(S, now), Err(SmError::IncorrectState));
        m.add_pipe(PipeId(1), now);
        m.add_pipe(PipeId(2), now);
        let ts = survey(&mut m, now);
        assert_eq!(ts.len(), 2);
        assert!(ts[0].msg[0] & 0x80 != 0);
        assert_eq!(ts[0].msg, ts[1].msg);
        assert_eq!(
            m.poll_timeout(),
            Some(now + Duration::from_millis(DEFAULT_SURVEY_MS as u64))
        );
    }

    #[test]
    fn answers_within_deadline_late_ones_dropped() {
        let now = Instant::now();
        let mut m = Surveyor0::new();
        m.set_option(S, SmOption::SurveyTime(100)).unwrap();
        m.add_pipe(PipeId(1), now);
        let t = survey(&mut m, now).remove(0);
        let id = &t.msg[..4];
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
        m.handle_message(
            PipeId(1),
            join(id, b"yes".to_vec()),
            now + Duration::from_millis(10),
        );
        m.handle_message(PipeId(1), join(&[0x80, 0, 0, 0], b"stale".to_vec()), now);
        assert_eq!(m.recv(S, now).unwrap().body(), b"yes");
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
        let late = now + Duration::from_millis(100);
        m.handle_message(PipeId(1), join(id, b"late".to_vec()), late);
        m.handle_timeout(late);
        assert_eq!(m.poll_timeout(), None);
        assert_eq!(m.recv(S, late), Err(SmError::IncorrectState));
    }

    #[test]
    fn unread_answers_are_discarded_at_deadline() {
        let now = Instant::now();
        let mut m = Surveyor0::new();
        m.set_option(S, SmOption::SurveyTime(50)).unwrap();
        m.add_pipe(PipeId(1), now);
        let t = survey(&mut m, now).remove(0);
        m.handle_message(PipeId(1), t.msg.to_vec(), now);
        assert_eq!(
            m.recv(S, now + Duration::from_millis(60)),
            Err(SmError::IncorrectState)
        );
        // A new survey makes receiving valid again.
        survey(&mut m, now);
        assert_eq!(m.recv(S, now), Err(SmError::TryAgain));
    }

    #[test]
    fn contexts_run_separate_surveys() {
        let now = Instant::now();
        let mut m = Surveyor0::new();
        m.add_pipe(PipeId(1), now);
        let a = m.open_context().unwrap();
        let b = m.open_context().unwrap();
        m.send(a, &mut b"a".to_vec(), None, now).unwrap();
        m.send(b, &mut b"b".to_vec(), None, now).unwrap();
        let ta = m.poll_transmit().unwrap();
        let tb = m.poll_transmit().unwrap();
        m.handle_message(PipeId(1), ta.msg.to_vec(), now);
        assert_eq!(m.recv(b, now), Err(SmError::TryAgain));
        assert_eq!(m.recv(a, now).unwrap().body(), b"a");
        m.handle_message(PipeId(1), tb.msg.to_vec(), now);
        assert_eq!(m.recv(b, now).unwrap().body(), b"b");
    }
}
