//! Protocol state machines without I/O.
//!
//! Each machine is told about pipes (connections whose SP header has been accepted), messages
//! arriving on them, application sends and receives, and the passage of time. It answers with
//! [`Transmit`]s (bytes for one pipe, header included), received messages, and its next timer.
//! The driver owns sockets, threads and clocks; a machine never blocks.
//!
//! Flow control: a pipe is *ready* after [`Machine::add_pipe`] and after every
//! [`Machine::pipe_ready`] (its previous write finished). Protocols that pick one pipe
//! (pair, push, req) send only to ready pipes and queue otherwise; broadcast protocols (pub,
//! bus, surveyor) and replies (rep, respondent) send regardless.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::protocol::Protocol;

mod bus;
mod pair;
mod pipeline;
mod pubsub;
mod replier;
mod reqrep;
mod survey;
mod util;

pub use bus::Bus0;
pub use pair::Pair;
pub use pipeline::{Pull0, Push0};
pub use pubsub::{Pub0, Sub0};
pub use replier::Replier;
pub use reqrep::Req0;
pub use survey::Surveyor0;

/// Why a machine cannot do an operation now; each maps onto an NNG code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmError {
    /// Nothing to receive, or no room to send: a blocking caller waits and retries (8).
    #[error("try again")]
    TryAgain,
    /// The protocol does not do this (recv on push, contexts on bus) (9).
    #[error("operation not supported by this protocol")]
    NotSupported,
    /// Not valid in the current state (reply without request, recv after a survey ended) (11).
    #[error("incorrect state for this operation")]
    IncorrectState,
    /// Unknown context or subscription (12).
    #[error("entry not found")]
    NotFound,
}

impl SmError {
    /// The NNG integer code.
    pub fn code(self) -> i32 {
        match self {
            SmError::TryAgain => 8,
            SmError::NotSupported => 9,
            SmError::IncorrectState => 11,
            SmError::NotFound => 12,
        }
    }
}

/// A connection, as numbered by the driver (NNG-style: positive 31-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipeId(pub u32);

/// A context: independent request/reply, survey or subscription state on one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContextId(pub u32);

impl ContextId {
    /// The socket's own context (used by plain socket send/recv).
    pub const SOCKET: ContextId = ContextId(0);
}

/// The most bytes of protocol header a machine puts before a body (a reply's backtrace of
/// `ttl-max` hops). A body built with this much spare capacity gets its header without
/// being reallocated.
pub const HEADROOM: usize = 4 * util::MAX_TTL;

/// Bytes to write to one pipe: the protocol header followed by the body (unframed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination pipe.
    pub pipe: PipeId,
    /// Protocol header then body, shared by every pipe a broadcast goes to (and by a
    /// request kept for resending), so no pipe costs a copy.
    pub msg: Arc<Vec<u8>>,
}

impl Transmit {
    /// A transmit of `msg` (header included) to `pipe`.
    pub fn new(pipe: PipeId, msg: Vec<u8>) -> Transmit {
        Transmit {
            pipe,
            msg: Arc::new(msg),
        }
    }
}

/// A message delivered to the application: its body is the message after the protocol
/// header, which stays in the buffer until [`Received::into_body`] (a reader of
/// [`Received::body`] never pays for moving a large body to the front).
#[derive(Debug, Clone, Eq)]
pub struct Received {
    /// The pipe it came from.
    pub pipe: PipeId,
    msg: Vec<u8>,
    start: usize,
}

impl Received {
    /// A message whose body is all of `body`.
    pub fn new(pipe: PipeId, body: Vec<u8>) -> Received {
        Received::after(pipe, body, 0)
    }

    /// A message whose body is `msg` after its first `header` bytes.
    pub(crate) fn after(pipe: PipeId, msg: Vec<u8>, header: usize) -> Received {
        let start = header.min(msg.len());
        Received { pipe, msg, start }
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.msg[self.start..]
    }

    /// The body as an owned buffer (moved to the front of its buffer, not copied).
    pub fn into_body(mut self) -> Vec<u8> {
        util::strip(&mut self.msg, self.start);
        self.msg
    }
}

impl PartialEq for Received {
    fn eq(&self, other: &Received) -> bool {
        self.pipe == other.pipe && self.body() == other.body()
    }
}

/// A per-context protocol option.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmOption {
    /// `req:resend-time` in ms (0 or negative: never resend).
    ResendTime(i64),
    /// `surveyor:survey-time` in ms.
    SurveyTime(i64),
    /// `sub:subscribe`: add a topic prefix (empty: everything).
    Subscribe(Vec<u8>),
    /// `sub:unsubscribe`: remove a topic prefix added before.
    Unsubscribe(Vec<u8>),
    /// `sub:prefnew`: when the receive queue is full, drop the oldest (true) or the new one.
    PreferNew(bool),
    /// `recv-buffer`: messages queued for the application (at least 1 is kept).
    RecvBuffer(usize),
    /// `send-buffer`: messages queued while no pipe is ready.
    SendBuffer(usize),
}

/// What every protocol machine does. Errors are NNG-coded [`SmError`]s; `TryAgain` means
/// "not now" and a blocking driver waits for a change and calls again.
pub trait Machine: Send {
    /// Which protocol this is.
    fn protocol(&self) -> Protocol;
    /// A new pipe. Returns false if the protocol refuses it (pair already has its peer): the
    /// driver then closes that connection.
    fn add_pipe(&mut self, pipe: PipeId, now: Instant) -> bool;
    /// A pipe went away.
    fn remove_pipe(&mut self, pipe: PipeId, now: Instant);
    /// The previous transmit to `pipe` has been written.
    fn pipe_ready(&mut self, pipe: PipeId, now: Instant);
    /// A message (header and body) arrived on `pipe`.
    fn handle_message(&mut self, pipe: PipeId, msg: Vec<u8>, now: Instant);
    /// The application sends `body` on `ctx`; `pipe` selects one pipe where the protocol
    /// allows it (poly), else it is ignored. On success the machine has taken the body (left
    /// empty); on an error it is untouched, so a blocked sender retries without a copy.
    fn send(
        &mut self,
        ctx: ContextId,
        body: &mut Vec<u8>,
        pipe: Option<PipeId>,
        now: Instant,
    ) -> Result<(), SmError>;
    /// The application receives on `ctx`.
    fn recv(&mut self, ctx: ContextId, now: Instant) -> Result<Received, SmError>;
    /// Next bytes to write, if any.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When [`Machine::handle_timeout`] must next be called.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Time has reached `now`: run due timers.
    fn handle_timeout(&mut self, now: Instant);
    /// Opens a context (protocols with contexts only; else `NotSupported`).
    fn open_context(&mut self) -> Result<ContextId, SmError> {
        Err(SmError::NotSupported)
    }
    /// Closes a context opened before.
    fn close_context(&mut self, _ctx: ContextId) -> Result<(), SmError> {
        Err(SmError::NotSupported)
    }
    /// Sets an option on `ctx` (or the socket, `ContextId::SOCKET`).
    fn set_option(&mut self, _ctx: ContextId, _opt: SmOption) -> Result<(), SmError> {
        Err(SmError::NotSupported)
    }
}

/// A machine for `proto` with NNG's default options.
pub fn new_machine(proto: Protocol) -> Box<dyn Machine> {
    match proto {
        Protocol::Pair0 => Box::new(Pair::v0()),
        Protocol::Pair1 => Box::new(Pair::v1(false)),
        Protocol::Pub0 => Box::new(Pub0::new()),
        Protocol::Sub0 => Box::new(Sub0::new()),
        Protocol::Req0 => Box::new(Req0::new()),
        Protocol::Rep0 => Box::new(Replier::rep0()),
        Protocol::Push0 => Box::new(Push0::new()),
        Protocol::Pull0 => Box::new(Pull0::new()),
        Protocol::Surveyor0 => Box::new(Surveyor0::new()),
        Protocol::Respondent0 => Box::new(Replier::respondent0()),
        Protocol::Bus0 => Box::new(Bus0::new()),
    }
}

/// Queue of transmits shared by the machines' implementations.
pub(crate) type Outbox = VecDeque<Transmit>;
