//! Contexts: independent request/reply, survey or subscription state on one socket.

use std::sync::Arc;
use std::time::Duration;

use super::aio::{Op, OpId};
use super::{cancel, fire, Done, OpHandle, Shared};
use crate::error::Error;
use crate::sm::{ContextId, Received, SmError, SmOption};

/// Independent request/reply, survey or subscription state on a socket.
pub struct Context {
    shared: Arc<Shared>,
    id: ContextId,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("id", &self.id.0).finish()
    }
}

impl Context {
    pub(super) fn new(shared: Arc<Shared>, id: ContextId) -> Context {
        Context { shared, id }
    }

    /// The context's id within its socket.
    pub fn id(&self) -> ContextId {
        self.id
    }

    /// Sends on this context (a request, survey or reply).
    pub fn send(&self, body: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        self.send_vec(body.to_vec(), timeout)
    }

    /// [`Context::send`] of a body the caller gives up: no copy is made.
    pub fn send_vec(&self, mut body: Vec<u8>, timeout: Option<Duration>) -> Result<(), Error> {
        let ctx = self.id;
        self.shared
            .blocking(timeout, |m, now| m.send(ctx, &mut body, None, now))
            .map_err(ctx_closed)
    }

    /// Receives on this context.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        self.recv_msg(timeout).map(Received::into_body)
    }

    /// Receives on this context, with the pipe the message came from.
    pub fn recv_msg(&self, timeout: Option<Duration>) -> Result<Received, Error> {
        let ctx = self.id;
        self.shared
            .blocking(timeout, |m, now| m.recv(ctx, now))
            .map_err(ctx_closed)
    }

    /// Sends on this context in the background (see [`Socket::send_async`](crate::Socket::send_async)).
    pub fn send_async(&self, body: Vec<u8>, timeout: Option<Duration>, done: Done<()>) -> OpId {
        let op = Op::Send {
            body,
            pipe: None,
            done,
        };
        self.shared.park(self.id, timeout, op)
    }

    /// Receives on this context in the background (see [`Socket::recv_async`](crate::Socket::recv_async)).
    pub fn recv_async(&self, timeout: Option<Duration>, done: Done<Received>) -> OpId {
        self.shared.park(self.id, timeout, Op::Recv(done))
    }

    /// Cancels a pending asynchronous operation (see [`Socket::cancel`](crate::Socket::cancel)).
    pub fn cancel(&self, op: OpId) -> bool {
        cancel(&self.shared, op)
    }

    /// A handle for other threads on this context's operations.
    pub fn op_handle(&self) -> OpHandle {
        OpHandle {
            shared: Arc::clone(&self.shared),
            ctx: self.id,
        }
    }

    /// Sets a protocol option for this context only.
    pub fn set_option(&self, opt: SmOption) -> Result<(), Error> {
        let mut g = self.shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        g.machine.set_option(self.id, opt).map_err(|e| match e {
            SmError::NotFound => Error::Closed,
            e => e.into(),
        })?;
        self.shared.settle(g);
        Ok(())
    }

    /// Closes the context; its pending operations fail with `Closed`, later ones too.
    pub fn close(&self) -> Result<(), Error> {
        let mut g = self.shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        g.machine
            .close_context(self.id)
            .map_err(|_| Error::Closed)?;
        let fires = g.fail_waiters(Some(self.id), || Error::Closed);
        drop(g);
        self.shared.wake_all();
        fire(fires);
        Ok(())
    }
}

/// A context the machine no longer knows has been closed.
fn ctx_closed(e: Error) -> Error {
    match e {
        Error::NotFound => Error::Closed,
        e => e,
    }
}
