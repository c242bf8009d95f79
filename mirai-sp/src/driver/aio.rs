//! Asynchronous sends and receives: operations parked on the socket until the machine can do
//! them, their deadline passes, they are cancelled, or the socket closes. Each completes by
//! calling its callback exactly once (never for a cancelled one), outside the socket's lock.

use std::time::{Duration, Instant};

use super::Inner;
use crate::error::Error;
use crate::sm::{ContextId, PipeId, Received, SmError};

/// The callback of an asynchronous operation, called once with its outcome on a driver
/// thread (or the caller's, if it completes at once). It must not block on the socket.
pub type Done<T> = Box<dyn FnOnce(Result<T, Error>) + Send>;

/// Identifies a pending asynchronous operation, for [`super::Socket::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpId(pub(super) u64);

/// A completion to run once the lock is released.
pub(super) type Fire = Box<dyn FnOnce() + Send>;

pub(super) enum Op {
    Recv(Done<Received>),
    Send {
        body: Vec<u8>,
        pipe: Option<PipeId>,
        done: Done<()>,
    },
}

pub(super) struct Waiter {
    pub(super) id: OpId,
    pub(super) ctx: ContextId,
    pub(super) deadline: Option<Instant>,
    /// Whether the operation was tried once already (a survey that ended meanwhile then reads
    /// as a timeout, as for blocking calls).
    pub(super) tried: bool,
    pub(super) op: Op,
}

impl Waiter {
    pub(super) fn new(id: OpId, ctx: ContextId, timeout: Option<Duration>, op: Op) -> Waiter {
        Waiter {
            id,
            ctx,
            deadline: timeout.map(|d| Instant::now() + d),
            tried: false,
            op,
        }
    }

    /// The completion with `r` as outcome (a send's body is dropped).
    pub(super) fn fail(self, e: Error) -> Fire {
        match self.op {
            Op::Recv(done) => Box::new(move || done(Err(e))),
            Op::Send { done, .. } => Box::new(move || done(Err(e))),
        }
    }
}

impl Inner {
    /// Tries every parked operation in the order posted; returns the completions of those
    /// that finished (done, failed or expired).
    pub(super) fn service(&mut self, now: Instant) -> Vec<Fire> {
        let mut fires = Vec::new();
        if self.waiters.is_empty() {
            return fires;
        }
        let mut keep = std::collections::VecDeque::with_capacity(self.waiters.len());
        while let Some(mut w) = self.waiters.pop_front() {
            let r = match &mut w.op {
                Op::Recv(_) => self.machine.recv(w.ctx, now).map(Some),
                Op::Send { body, pipe, .. } => {
                    self.machine.send(w.ctx, body, *pipe, now).map(|()| None)
                }
            };
            let outcome = match r {
                Ok(v) => Ok(v),
                Err(SmError::TryAgain) => match w.deadline {
                    Some(d) if now >= d => Err(Error::TimedOut),
                    _ => {
                        w.tried = true;
                        keep.push_back(w);
                        continue;
                    }
                },
                Err(SmError::IncorrectState) if w.tried => Err(Error::TimedOut),
                Err(SmError::NotFound) => Err(Error::Closed),
                Err(e) => Err(e.into()),
            };
            fires.push(match (w.op, outcome) {
                (Op::Recv(done), Ok(Some(m))) => Box::new(move || done(Ok(m))) as Fire,
                (Op::Send { done, .. }, Ok(_)) => Box::new(move || done(Ok(()))),
                (Op::Recv(done), Ok(None)) => Box::new(move || done(Err(Error::IncorrectState))),
                (Op::Recv(done), Err(e)) => Box::new(move || done(Err(e))),
                (Op::Send { done, .. }, Err(e)) => Box::new(move || done(Err(e))),
            });
        }
        // Their transmits are written by the caller's next flush (`Shared::settle` loops).
        self.waiters = keep;
        fires
    }

    /// The earliest deadline of a parked operation.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.waiters.iter().filter_map(|w| w.deadline).min()
    }

    /// Fails every parked operation on `ctx` (all of them for `None`) with `e`.
    pub(super) fn fail_waiters(
        &mut self,
        ctx: Option<ContextId>,
        e: impl Fn() -> Error,
    ) -> Vec<Fire> {
        let (gone, keep): (Vec<_>, Vec<_>) = self
            .waiters
            .drain(..)
            .partition(|w| ctx.is_none_or(|c| c == w.ctx));
        self.waiters = keep.into();
        gone.into_iter().map(|w| w.fail(e())).collect()
    }
}
