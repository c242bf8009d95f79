//! NNG backend: a pair1 socket in polyamorous mode as the hub, a pair1 socket as the dialer.
//!
//! Peer ids are assigned here (one per NNG pipe, counting up, never reused). Pipe events come
//! from NNG's pipe-notify callback on NNG's own threads; messages are taken with non-blocking
//! receives from the polling thread, which sleeps in `poll(2)` on NNG's receive-ready fd and an
//! eventfd (rung by the callback and by `wake`). Taking messages on the caller's thread keeps
//! the event order simple to guarantee:
//! - `Connected` is queued at `ADD_PRE`, before NNG starts the pipe, so before any message;
//! - `Disconnected` is held back, after `REM_POST`, until a receive has found the socket's
//!   queue empty: once NNG has removed a pipe nothing more of it can enter the queue, so an
//!   empty queue means every message of that pipe has been handed out.
//!
//! No `nng::Aio` is used, which sidesteps NNG's deadlock when the last handle of an Aio drops
//! inside its own callback.
//!
//! Limits inherited from NNG: polyamorous pair1 gives each pipe a send queue of two messages
//! and drops (rather than waits) when it is full, so a burst to a peer that does not keep up
//! can lose messages. The hub-to-daemon path of mirai sends one task at a time, within that.
//! NNG reserves a buffer of the announced length as soon as a length prefix arrives (up to the
//! receive limit, so a stranger can make the hub reserve up to 4 GiB - 1 of address space per
//! connection; it becomes resident only as bytes arrive), and its receive limit is one per
//! socket, fixed when a pipe starts: `Options::max_first_message` has no NNG equivalent and is
//! ignored here.
use crate::sys::{self, EventFd};
use crate::{DisconnectReason, Error, Event, Options, PeerId, Scheme, Url};
use nng::options::{
    Options as _, ReconnectMaxTime, ReconnectMinTime, RecvFd, RecvMaxSize, SendTimeout,
};
use nng::{PipeEvent, Protocol, Socket};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Messages taken per poll round before pipe events get another look.
const RECV_BUDGET: usize = 4096;
/// Depth of the hub socket's send queue, so that `send` from any thread rarely waits for
/// NNG's dispatcher.
const HUB_SEND_BUFFER: i32 = 64;
/// A blocked dialer send wakes this often to notice the hub has gone.
const DIAL_SEND_CHECK: Duration = Duration::from_millis(100);

/// Redial delay for a dialer whose connection dropped: long enough to mean never.
const NO_REDIAL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The largest receive limit NNG accepts.
const NNG_MAX_MESSAGE: usize = u32::MAX as usize;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// NNG's error as an `io::Error` with the kinds [`Error::code`] relies on.
fn io_error(e: nng::Error) -> io::Error {
    match e {
        nng::Error::AddressInUse => io::Error::new(io::ErrorKind::AddrInUse, e),
        nng::Error::EntryNotFound => io::Error::new(io::ErrorKind::NotFound, e),
        other => io::Error::from(other),
    }
}

fn nng_error(e: nng::Error) -> Error {
    match e {
        nng::Error::Closed => Error::Closed,
        nng::Error::MessageTooLarge => Error::Nng("message too large".into()),
        other => Error::Nng(other.to_string()),
    }
}

/// The URL as NNG spells it; errors for forms NNG cannot serve.
fn nng_url(url: &Url) -> Result<String, Error> {
    match &url.scheme {
        Scheme::TlsTcp { .. } => Err(Error::UnsupportedScheme("tls+tcp".into())),
        // NNG's wss needs its TLS engine (not built into Debian's libnng): refused, as tls+tcp.
        Scheme::Wss { .. } => Err(Error::UnsupportedScheme("wss".into())),
        Scheme::Ws { port, path, .. } if url.is_wildcard_host() => {
            Ok(format!("ws://0.0.0.0:{port}{path}"))
        }
        // NNG wants an address for "every interface"; match the native backend (IPv4 any).
        Scheme::Tcp { port, .. } if url.is_wildcard_host() => Ok(format!("tcp://0.0.0.0:{port}")),
        _ => Ok(url.to_string()),
    }
}

/// The receive limit to give NNG.
fn nng_max(opts: &Options) -> usize {
    // 0 would mean "no limit" to NNG; our contract has a limit. NNG refuses limits above
    // 4 GiB - 1 (its size options are 32-bit), so that is also the largest message it takes.
    opts.max_message.clamp(1, NNG_MAX_MESSAGE)
}

/// Sleeps in `poll(2)` until NNG's receive-ready fd `recv_fd` is readable, `notify` rings or
/// `deadline` passes. Returns false, without sleeping, if the deadline has passed already.
fn wait_ready(recv_fd: RawFd, notify: &EventFd, deadline: Option<Instant>) -> Result<bool, Error> {
    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    if left == Some(Duration::ZERO) {
        return Ok(false);
    }
    let mut fds = [
        libc::pollfd {
            fd: recv_fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: notify.raw(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    sys::poll(&mut fds, sys::timeout_ms(left))?;
    Ok(true)
}

/// NNG's refusal of an address to listen or dial at as our error; `io` wraps any other cause
/// with the URL as given ([`Error::Bind`] or [`Error::Connect`]).
fn endpoint_error(url: &Url, e: nng::Error, io: fn(String, io::Error) -> Error) -> Error {
    match e {
        nng::Error::NotSupported => Error::UnsupportedScheme(url.scheme.name().to_string()),
        nng::Error::AddressInvalid => Error::InvalidUrl {
            url: url.to_string(),
            reason: "NNG rejects this address".into(),
        },
        e => io(url.to_string(), io_error(e)),
    }
}

fn new_socket(opts: &Options) -> Result<Socket, Error> {
    let socket = Socket::new(Protocol::Pair1).map_err(nng_error)?;
    socket
        .set_opt::<RecvMaxSize>(nng_max(opts))
        .map_err(nng_error)?;
    Ok(socket)
}

mod hub_ffi;

/// Hub bookkeeping shared with NNG's pipe-notify callback.
#[derive(Default)]
struct HubState {
    next_id: PeerId,
    /// Pipe id to peer id, for every pipe whose `Disconnected` has not been reported yet.
    ids: HashMap<u32, PeerId>,
    /// Peers that may be sent to (not removed, not disconnected locally), with their pipe.
    live: HashMap<PeerId, u32>,
    /// Pipes by peer id until their `Disconnected` is reported.
    pipes: HashMap<PeerId, u32>,
    /// `Connected` events not yet handed to `poll`.
    connects: VecDeque<PeerId>,
    /// Peers NNG has removed, whose `Disconnected` waits for the receive queue to drain.
    removed: Vec<PeerId>,
    /// Peers closed with `disconnect`.
    local: HashSet<PeerId>,
}

struct HubShared {
    state: Mutex<HubState>,
    notify: EventFd,
}

impl HubShared {
    fn pipe_event(&self, pipe: u32, ev: nng::ffi::nng_pipe_ev) {
        let mut st = lock(&self.state);
        match ev {
            nng::ffi::NNG_PIPE_EV_ADD_PRE => {
                let id = st.next_id;
                st.next_id.0 += 1;
                st.ids.insert(pipe, id);
                st.live.insert(id, pipe);
                st.pipes.insert(id, pipe);
                st.connects.push_back(id);
            }
            nng::ffi::NNG_PIPE_EV_REM_POST => {
                if let Some(&id) = st.ids.get(&pipe) {
                    st.live.remove(&id);
                    st.removed.push(id);
                }
            }
            _ => return,
        }
        drop(st);
        self.notify.notify();
    }
}

/// NNG's pipe callback for the hub. `arg` is the listener's `HubShared`.
unsafe extern "C" fn hub_pipe_event(
    pipe: nng::ffi::nng_pipe,
    ev: nng::ffi::nng_pipe_ev,
    arg: *mut std::ffi::c_void,
) {
    // SAFETY: `arg` is `Arc::as_ptr` of the HubShared that the listener keeps alive until after
    // its socket is closed (see `NngListener` field order).
    let shared = unsafe { &*(arg as *const HubShared) };
    // Never unwind into C.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shared.pipe_event(hub_ffi::pipe_id(pipe), ev)
    }))
    .is_err()
    {
        std::process::abort();
    }
}

pub(crate) struct NngListener {
    // Declared (so dropped) before `shared`: closing the socket ends the callbacks that use it.
    socket: hub_ffi::HubSocket,
    shared: Arc<HubShared>,
    url: String,
    woken: AtomicBool,
    recv_fd: RawFd,
    poll_lock: Mutex<()>,
}

impl NngListener {
    pub(crate) fn bind(url: &Url, opts: &Options) -> Result<Self, Error> {
        let target = nng_url(url)?;
        let bind_err = |e| endpoint_error(url, e, |url, source| Error::Bind { url, source });
        // Created before the socket so that, on an early return, the socket drops first.
        let shared = Arc::new(HubShared {
            state: Mutex::new(HubState {
                next_id: PeerId(1),
                ..HubState::default()
            }),
            notify: EventFd::new()?,
        });
        let socket = hub_ffi::HubSocket::open_poly().map_err(nng_error)?;
        socket
            .set_size(nng::ffi::NNG_OPT_RECVMAXSZ, nng_max(opts))
            .map_err(nng_error)?;
        socket
            .set_int(nng::ffi::NNG_OPT_SENDBUF, HUB_SEND_BUFFER)
            .map_err(nng_error)?;
        // SAFETY: `shared` is stored in the listener beside the socket and outlives it.
        unsafe {
            socket.pipe_notify(
                hub_pipe_event,
                Arc::as_ptr(&shared) as *mut std::ffi::c_void,
            )
        }
        .map_err(nng_error)?;
        let ipc_mode = matches!(url.scheme, Scheme::Ipc(_)).then_some(0o600);
        let want_port = matches!(
            url.scheme,
            Scheme::Tcp { port: 0, .. } | Scheme::Ws { port: 0, .. }
        );
        let port = socket
            .listen(&target, ipc_mode, want_port)
            .map_err(bind_err)?;
        let bound = match port {
            Some(p) => url.with_port(p),
            None => url.clone(),
        };
        let recv_fd = socket
            .get_int(nng::ffi::NNG_OPT_RECVFD)
            .map_err(nng_error)?;
        Ok(NngListener {
            socket,
            shared,
            url: bound.to_string(),
            woken: AtomicBool::new(false),
            recv_fd,
            poll_lock: Mutex::new(()),
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn poll(
        &self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        let _one_poller = lock(&self.poll_lock);
        let deadline = timeout.map(|t| Instant::now() + t);
        let before = events.len();
        loop {
            // Reset before looking, so an event arriving after the look rings again.
            self.shared.notify.drain();
            let removals = {
                let mut st = lock(&self.shared.state);
                events.extend(st.connects.drain(..).map(Event::Connected));
                std::mem::take(&mut st.removed)
            };
            let mut drained = false;
            for _ in 0..RECV_BUDGET {
                let (pipe, body) = match self.socket.try_recv().map_err(nng_error)? {
                    Some(m) => m,
                    None => {
                        drained = true;
                        break;
                    }
                };
                let mut st = lock(&self.shared.state);
                // A pipe added since the look above: its Connected goes first.
                events.extend(st.connects.drain(..).map(Event::Connected));
                match st.ids.get(&pipe) {
                    Some(&id) => events.push(Event::Message(id, body)),
                    None => log::warn!("NNG delivered a message from unknown pipe {pipe}; dropped"),
                }
            }
            {
                let mut st = lock(&self.shared.state);
                if drained {
                    for id in removals {
                        if let Some(pipe) = st.pipes.remove(&id) {
                            st.ids.remove(&pipe);
                        }
                        let reason = if st.local.remove(&id) {
                            DisconnectReason::Local
                        } else {
                            DisconnectReason::Closed
                        };
                        events.push(Event::Disconnected(id, reason));
                    }
                } else {
                    // Messages may still be queued: report these removals on a later round.
                    let later = std::mem::replace(&mut st.removed, removals);
                    st.removed.extend(later);
                }
            }
            if self.woken.swap(false, Ordering::AcqRel) || events.len() > before {
                return Ok(());
            }
            if !wait_ready(self.recv_fd, &self.shared.notify, deadline)? {
                return Ok(());
            }
        }
    }

    pub(crate) fn send(&self, peer: PeerId, parts: &[&[u8]]) -> Result<(), Error> {
        let pipe = lock(&self.shared.state)
            .live
            .get(&peer)
            .copied()
            .ok_or(Error::UnknownPeer(peer))?;
        self.socket.send_to(pipe, parts).map_err(nng_error)
    }

    pub(crate) fn disconnect(&self, peer: PeerId) {
        let pipe = {
            let mut st = lock(&self.shared.state);
            let pipe = st.live.remove(&peer);
            if pipe.is_some() {
                st.local.insert(peer);
            }
            pipe
        };
        // Outside the lock: the pipe callback takes it.
        if let Some(p) = pipe {
            hub_ffi::pipe_close(p);
        }
    }

    pub(crate) fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.shared.notify.notify();
    }
}

/// Dialer state shared with the pipe-notify callback.
struct DialShared {
    /// A pipe has existed: any later one is an automatic redial, which we refuse, because a
    /// connection that has gone stays gone (the daemon decides what to do).
    had_pipe: AtomicBool,
    /// The hub's side of the connection has gone.
    remote_gone: AtomicBool,
    notify: EventFd,
}

pub(crate) struct NngConnection {
    socket: Socket,
    dialer: Mutex<Option<nng::Dialer>>,
    shared: Arc<DialShared>,
    local_closed: AtomicBool,
    recv_fd: RawFd,
    recv_lock: Mutex<()>,
}

impl NngConnection {
    pub(crate) fn dial(url: &Url, opts: &Options) -> Result<Self, Error> {
        let target = nng_url(url)?;
        if let Scheme::Tcp { port: 0, .. } = url.scheme {
            return Err(Error::InvalidUrl {
                url: url.to_string(),
                reason: "port 0 can only be used to listen".into(),
            });
        }
        let socket = new_socket(opts)?;
        socket
            .set_opt::<SendTimeout>(Some(DIAL_SEND_CHECK))
            .map_err(nng_error)?;
        let shared = Arc::new(DialShared {
            had_pipe: AtomicBool::new(false),
            remote_gone: AtomicBool::new(false),
            notify: EventFd::new()?,
        });
        let cb_shared = Arc::clone(&shared);
        socket
            .pipe_notify(move |pipe, ev| match ev {
                PipeEvent::AddPre => {
                    let redial = cb_shared.had_pipe.swap(true, Ordering::AcqRel);
                    if redial {
                        // Closing at ADD_PRE is allowed: the socket never sees this pipe.
                        pipe.close();
                    }
                }
                PipeEvent::RemovePost => {
                    cb_shared.remote_gone.store(true, Ordering::Release);
                    cb_shared.notify.notify();
                }
                _ => {}
            })
            .map_err(nng_error)?;
        let dial_err = |e| endpoint_error(url, e, |url, source| Error::Connect { url, source });
        let builder = nng::DialerBuilder::new(&socket, &target).map_err(dial_err)?;
        // A connection that has gone stays gone: push NNG's automatic redial out of reach
        // (set on the dialer itself: it does not take the socket's setting), so the hub never
        // sees a peer flicker back after a disconnect. The pipe callback refuses any redial
        // that happens anyway.
        builder
            .set_opt::<ReconnectMinTime>(Some(NO_REDIAL))
            .map_err(nng_error)?;
        builder
            .set_opt::<ReconnectMaxTime>(Some(NO_REDIAL))
            .map_err(nng_error)?;
        builder
            .set_opt::<RecvMaxSize>(nng_max(opts))
            .map_err(nng_error)?;
        // Synchronous: the first attempt's failure comes back here at once.
        let dialer = builder.start(false).map_err(|(_, e)| dial_err(e))?;
        let recv_fd = socket.get_opt::<RecvFd>().map_err(nng_error)?;
        Ok(NngConnection {
            socket,
            dialer: Mutex::new(Some(dialer)),
            shared,
            local_closed: AtomicBool::new(false),
            recv_fd,
            recv_lock: Mutex::new(()),
        })
    }

    fn gone(&self) -> bool {
        self.local_closed.load(Ordering::Acquire) || self.shared.remote_gone.load(Ordering::Acquire)
    }

    pub(crate) fn send(&self, parts: &[&[u8]]) -> Result<(), Error> {
        let mut m = nng::Message::with_capacity(parts.iter().map(|p| p.len()).sum());
        for part in parts {
            m.push_back(part);
        }
        loop {
            if self.gone() {
                return Err(Error::Closed);
            }
            match self.socket.send(m) {
                Ok(()) => return Ok(()),
                // Still blocked behind the peer: look again whether it has gone.
                Err((back, nng::Error::TimedOut)) => m = back,
                Err((_, e)) => return Err(nng_error(e)),
            }
        }
    }

    pub(crate) fn recv(&self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, Error> {
        let _one_reader = lock(&self.recv_lock);
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.local_closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            // Read before trying: if the hub was already gone and the queue is empty, every
            // message it sent has been received.
            let remote_gone = self.shared.remote_gone.load(Ordering::Acquire);
            match self.socket.try_recv() {
                Ok(m) => return Ok(Some(m.as_slice().to_vec())),
                Err(nng::Error::TryAgain) => {}
                Err(e) => return Err(nng_error(e)),
            }
            if remote_gone {
                return Err(Error::Closed);
            }
            if !wait_ready(self.recv_fd, &self.shared.notify, deadline)? {
                return Ok(None);
            }
        }
    }

    pub(crate) fn close(&self) {
        self.local_closed.store(true, Ordering::Release);
        self.shared.notify.notify();
        // Closing the dialer closes its pipe (the hub sees the disconnect) and stops redials.
        // The socket, and with it the fd a concurrent recv may poll, lives until drop.
        if let Some(d) = lock(&self.dialer).take() {
            // Through the C call: the wrapper panics on return codes we do not care about.
            // SAFETY: NNG validates the dialer id; a closed one only yields an error code.
            unsafe { nng::ffi::nng_dialer_close(d.nng_dialer()) };
        }
    }
}
