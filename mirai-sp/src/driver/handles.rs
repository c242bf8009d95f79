//! The public handles of dialers and listeners. A handle names an endpoint of its socket;
//! dropping it leaves the endpoint running (it ends with its socket or [`Dialer::close`]).

use std::sync::Arc;
use std::time::Duration;

use super::endpoint::{self, Endpoint, EndpointKind, EndpointStats};
use super::stream::{Addr, TransportOptions};
use super::url::Url;
use super::Shared;
use crate::error::Error;

/// Registers a new, unstarted endpoint of `kind` for `url`; its id.
pub(super) fn create(
    shared: &Arc<Shared>,
    kind: EndpointKind,
    url: &str,
    opts: &TransportOptions,
) -> Result<Handle, Error> {
    let url = Url::parse(url)?;
    // TLS options against the scheme are checked now, as NNG does when creating.
    if opts.tls.is_some() && !url.scheme.is_tls() {
        return Err(Error::NotSupported);
    }
    let mut g = shared.lock();
    if g.closed {
        return Err(Error::Closed);
    }
    let id = endpoint::next_id();
    g.endpoints
        .insert(id, Endpoint::new(kind, url, opts.clone()));
    Ok(Handle {
        shared: Arc::clone(shared),
        id,
    })
}

/// What both handles hold.
pub(super) struct Handle {
    shared: Arc<Shared>,
    id: u32,
}

impl Handle {
    fn with<T>(&self, f: impl FnOnce(&mut Endpoint) -> T) -> Result<T, Error> {
        let mut g = self.shared.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        g.endpoints.get_mut(&self.id).map(f).ok_or(Error::NotFound)
    }

    /// Changes the transport options of an endpoint not yet started.
    fn with_unstarted(&self, f: impl FnOnce(&mut TransportOptions)) -> Result<(), Error> {
        self.with(|e| {
            if e.started {
                return Err(Error::IncorrectState);
            }
            f(&mut e.opts);
            Ok(())
        })?
    }

    fn close(&self) -> Result<(), Error> {
        let mut g = self.shared.lock();
        let ep = g.endpoints.remove(&self.id).ok_or(Error::NotFound)?;
        g.shutdown_pipes_of(self.id);
        drop(g);
        self.shared.wake_all();
        ep.stop();
        Ok(())
    }

    fn pipes(&self) -> usize {
        let g = self.shared.lock();
        g.pipes.values().filter(|p| p.endpoint == self.id).count()
    }
}

/// A dialer: connects to its URL, and reconnects whenever the connection ends.
pub struct Dialer(pub(super) Handle);

/// A listener: accepts connections at its URL.
pub struct Listener(pub(super) Handle);

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer").field("id", &self.0.id).finish()
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("id", &self.0.id).finish()
    }
}

macro_rules! common {
    () => {
        /// The endpoint's id (positive, unique in the process).
        pub fn id(&self) -> u32 {
            self.0.id
        }

        /// Closes the endpoint and its connections; `NotFound` if it was closed already,
        /// `Closed` after its socket closed.
        pub fn close(&self) -> Result<(), Error> {
            self.0.close()
        }

        /// Whether the endpoint has been started (and not closed).
        pub fn is_started(&self) -> bool {
            self.0.with(|e| e.started).unwrap_or(false)
        }

        /// Whether the endpoint still exists (neither it nor its socket closed).
        pub fn is_open(&self) -> bool {
            self.0.with(|_| ()).is_ok()
        }

        /// Connections of this endpoint now.
        pub fn pipe_count(&self) -> usize {
            self.0.pipes()
        }

        /// Its counters.
        pub fn stats(&self) -> Result<EndpointStats, Error> {
            self.0.with(|e| e.stats)
        }

        /// Sets `recv-size-max` for its connections made from now on (0: no limit).
        pub fn set_recv_max(&self, max: usize) -> Result<(), Error> {
            self.0.with(|e| e.recv_max = Some(max))
        }

        /// Sets `tcp-nodelay` for its tcp connections (tcp, tls+tcp; ws and wss dialers too).
        /// Before start only: the settings are fixed when it starts (`IncorrectState` after).
        pub fn set_tcp_nodelay(&self, on: bool) -> Result<(), Error> {
            self.0.with_unstarted(|o| o.nodelay = on)
        }

        /// Sets `tcp-keepalive` (`SO_KEEPALIVE`) as [`Self::set_tcp_nodelay`] does no-delay.
        pub fn set_tcp_keepalive(&self, on: bool) -> Result<(), Error> {
            self.0.with_unstarted(|o| o.keepalive = on)
        }

        /// Its `tcp-nodelay` and `tcp-keepalive` settings.
        pub fn tcp_options(&self) -> Result<(bool, bool), Error> {
            self.0.with(|e| (e.opts.nodelay, e.opts.keepalive))
        }

        /// Its `recv-size-max` (the socket's unless set).
        pub fn recv_max(&self) -> Result<usize, Error> {
            let socket = self.0.shared.lock().recv_max;
            self.0.with(|e| e.recv_max.unwrap_or(socket))
        }
    };
}

impl Dialer {
    common!();

    /// Starts dialing. `sync`: connect and handshake now, failing with the error (the dialer
    /// then stays unstarted); else connect in the background. `IncorrectState` if started.
    pub fn start(&self, sync: bool) -> Result<(), Error> {
        endpoint::start_dialer(&self.0.shared, self.0.id, sync)
    }

    /// Sets this dialer's pause between reconnection attempts.
    pub fn set_reconnect(&self, d: Duration) -> Result<(), Error> {
        self.0.with(|e| e.reconnect = Some(d))
    }

    /// This dialer's pause between reconnection attempts (the socket's unless set).
    pub fn reconnect(&self) -> Result<Duration, Error> {
        let socket = self.0.shared.lock().reconnect;
        self.0.with(|e| e.reconnect.unwrap_or(socket))
    }
}

impl Listener {
    common!();

    /// Binds and starts accepting; returns the bound URL (tcp port 0 resolved).
    /// `IncorrectState` if started already.
    pub fn start(&self) -> Result<String, Error> {
        endpoint::start_listener(&self.0.shared, self.0.id)
    }

    /// The bound port of a started tcp, tls+tcp or ws listener.
    pub fn bound_port(&self) -> Option<u16> {
        self.0
            .with(|e| e.local.as_ref().and_then(Addr::port))
            .ok()
            .flatten()
    }
}
