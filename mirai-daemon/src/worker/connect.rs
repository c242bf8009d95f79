//! A worker's connection: dialling (once, or until a host answers), the handshake, and
//! redialling after a loss (`autoexit = FALSE`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use mirai_proto::{Frame, Hello, PROTOCOL_VERSION};
use mirai_transport::Connection;

use super::Worker;
use crate::held::Held;
use crate::session::{Session, Step};
use crate::watchdog::Watchdog;
use crate::{AutoExit, DaemonError, Evaluator, ExitCode};

/// One live connection and the watchdog that guards it.
pub(super) struct Link {
    // Declared before `conn` so that it is stopped before the socket it polls is closed.
    watchdog: Option<Watchdog>,
    /// Shared with the result flusher ([`Held`]).
    pub(super) conn: Arc<Connection>,
}

impl Link {
    fn new(conn: Connection, autoexit: AutoExit, busy: &Arc<AtomicBool>) -> Link {
        let watchdog = match (autoexit, conn.raw_fd()) {
            (AutoExit::Exit, Some(fd)) => match Watchdog::start(fd, Arc::clone(busy)) {
                Ok(w) => Some(w),
                Err(e) => {
                    log::warn!("mirai daemon: cannot start the autoexit watchdog: {e}");
                    None
                }
            },
            _ => None,
        };
        Link {
            watchdog,
            conn: Arc::new(conn),
        }
    }
}

impl Link {
    /// Closes the connection. The watchdog is stopped first: our own shutdown of the socket
    /// looks like a hang-up to it, and it must not poll a descriptor about to be closed.
    fn close(&mut self) {
        drop(self.watchdog.take());
        self.conn.close();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.close();
    }
}

/// How a handshake ended.
pub(super) enum Handshake {
    Ready,
    Done(ExitCode),
    Lost,
}

impl Worker<'_> {
    /// The connection was lost. `Ok(Some(code))`: the loop ends with `code`; `Ok(None)`: a new
    /// connection to the same URL replaced `link` (`autoexit = FALSE`).
    pub(super) fn reconnect(
        &mut self,
        link: &mut Link,
        ev: &mut dyn Evaluator,
    ) -> Result<Option<ExitCode>, DaemonError> {
        if self.cfg.autoexit != AutoExit::Stay {
            return Ok(Some(ExitCode::Disconnected));
        }
        // Tasks, cancels and held results of the old host mean nothing to the next one.
        self.session = Session::new(self.max_frame());
        self.held = Held::default();
        link.close();
        log::info!("mirai daemon: connection lost; redialling {}", self.cfg.url);
        match self.connect(false, ev)? {
            Ok(new) => {
                *link = new;
                Ok(None)
            }
            Err(code) => Ok(Some(code)),
        }
    }

    /// Dials and completes the handshake. `first`: the initial dial (synchronous unless
    /// `asyncdial`, and not subject to limits); otherwise a redial, retried until a host
    /// answers or a limit is reached. `Ok(Err(code))`: the loop ends with `code`.
    pub(super) fn connect(
        &mut self,
        mut first: bool,
        ev: &mut dyn Evaluator,
    ) -> Result<Result<Link, ExitCode>, DaemonError> {
        let cfg = self.cfg;
        let opts = &cfg.transport;
        loop {
            let conn = if first && !self.cfg.asyncdial {
                Connection::dial(&self.cfg.url, opts).map_err(DaemonError::dial)?
            } else {
                let limits = !first;
                let deadline = if limits { self.deadline() } else { None };
                match Connection::dial_retry(&self.cfg.url, opts, || {
                    deadline.is_some_and(|d| Instant::now() >= d)
                }) {
                    Ok(c) => c,
                    Err(e) => match self.idle_limit().filter(|_| limits) {
                        Some(code) => return Ok(Err(code)),
                        None => return Err(DaemonError::dial(e)),
                    },
                }
            };
            let link = Link::new(conn, self.cfg.autoexit, &self.busy);
            match self.handshake(&link, ev, !first)? {
                Handshake::Ready => return Ok(Ok(link)),
                Handshake::Done(code) => return Ok(Err(code)),
                Handshake::Lost if self.cfg.autoexit == AutoExit::Stay => {
                    drop(link);
                    first = false;
                }
                Handshake::Lost => return Ok(Err(ExitCode::Disconnected)),
            }
        }
    }

    /// Hello, then the host's init bundle, handed to the evaluator.
    fn handshake(
        &mut self,
        link: &Link,
        ev: &mut dyn Evaluator,
        limits: bool,
    ) -> Result<Handshake, DaemonError> {
        let hello = Frame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            pid: std::process::id(),
        });
        if let Err(e) = link.conn.send(&mirai_proto::encode(&hello)) {
            log::warn!("mirai daemon: cannot send hello: {e}");
            return Ok(Handshake::Lost);
        }
        loop {
            let timeout = if limits {
                self.deadline()
                    .map(|d| d.saturating_duration_since(Instant::now()))
            } else {
                None
            };
            match link.conn.recv(timeout) {
                Ok(Some(bytes)) => {
                    let mut session = Session::new(self.max_frame());
                    return match session.on_frame(&bytes) {
                        Step::Init(init) => {
                            ev.init(&init).map_err(DaemonError::Init)?;
                            self.session = session;
                            Ok(Handshake::Ready)
                        }
                        Step::Exit => Ok(Handshake::Done(ExitCode::Disconnected)),
                        Step::Fatal(why) | Step::Lost(why) => Err(DaemonError::Protocol(why)),
                        other => Err(DaemonError::Protocol(format!(
                            "unexpected step {other:?} during the handshake"
                        ))),
                    };
                }
                Ok(None) => {
                    if let Some(code) = self.idle_limit() {
                        return Ok(Handshake::Done(code));
                    }
                }
                // A TLS refusal will not go away by redialling: say why instead of exiting 0.
                Err(e @ mirai_transport::Error::Tls { .. }) => return Err(DaemonError::dial(e)),
                Err(e) => {
                    if !matches!(e, mirai_transport::Error::Closed) {
                        log::warn!("mirai daemon: connection failed during handshake: {e}");
                    }
                    return Ok(Handshake::Lost);
                }
            }
        }
    }
}
