//! Accepting connections at a native listener: plain ones become peers at once, TLS ones
//! pending handshakes.
use super::listener::{NativeListener, Poller};
use super::stream::Stream;
use super::{EV_IN, TOKEN_LISTEN};
use crate::sys;
use crate::PeerId;
use crate::{Error, Event};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

impl NativeListener {
    pub(super) fn accept_all(&self, p: &mut Poller, events: &mut Vec<Event>) -> Result<(), Error> {
        loop {
            if let Some(tls) = &self.tls {
                if p.handshakes.len() >= tls.max_pending {
                    // Leave further connections in the backlog until a handshake finishes
                    // (level-triggered epoll would otherwise report the socket again at once).
                    if let Err(e) = self
                        .epoll
                        .modify(self.listen_fd.as_raw_fd(), 0, TOKEN_LISTEN)
                    {
                        log::warn!("cannot pause accepting on {}: {e}", self.url);
                    } else {
                        p.accept_paused = true;
                        log::debug!(
                            "{} TLS handshakes pending on {}: accepting paused",
                            p.handshakes.len(),
                            self.url
                        );
                    }
                    return Ok(());
                }
            }
            let fd = match sys::accept(self.listen_fd.as_raw_fd()) {
                Ok(fd) => fd,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok(()),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                    _ => match e.raw_os_error() {
                        // Out of descriptors or memory: the pending connection waits in the
                        // backlog and is retried on the next round.
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                            log::warn!("cannot accept a connection on {}: {e}", self.url);
                            return Ok(());
                        }
                        Some(libc::EPROTO | libc::EPERM) => continue,
                        _ => return Err(Error::Io(e)),
                    },
                },
            };
            if self.tcp {
                if let Err(e) = sys::set_nodelay(fd.as_raw_fd()) {
                    log::debug!("TCP_NODELAY on an accepted socket failed: {e}");
                }
            } else if let Err(why) = same_user(&fd) {
                // Abstract sockets have no file permissions: the peer's credentials are the
                // only way to keep other local users out of an IPC listener.
                log::warn!("refused connection on {}: {why}", self.url);
                continue;
            }
            if let Some(tls) = &self.tls {
                self.start_handshake(p, tls, fd);
                continue;
            }
            let id = PeerId(self.next_id.fetch_add(1, Ordering::Relaxed));
            if let Err(e) = self.epoll.add(fd.as_raw_fd(), EV_IN, id.get()) {
                log::warn!("cannot watch an accepted connection on {}: {e}", self.url);
                continue;
            }
            if !self.ws_path.is_empty() {
                self.add_ws_peer(p, id, Stream::Plain(fd));
                continue;
            }
            self.add_peer(id, Stream::Plain(fd));
            events.push(Event::Connected(id));
        }
    }

    /// Who is at the other end of a plain connection, for a log line: its address over TCP,
    /// its process id over a Unix socket. Only on the paths that log, so accepting costs no
    /// extra system call.
    pub(super) fn describe_peer(&self, stream: &Stream) -> String {
        let fd = match stream {
            Stream::Tls(t) => return t.peer.clone(),
            Stream::Plain(fd) => fd,
        };
        if self.tcp {
            // A duplicate descriptor lends std's peer_addr without unsafe code.
            fd.try_clone()
                .and_then(|dup| std::net::TcpStream::from(dup).peer_addr())
                .map_or_else(|_| "an unknown address".to_string(), |a| a.to_string())
        } else {
            sys::peer_pid(fd.as_raw_fd()).map_or_else(
                |_| "a local process".to_string(),
                |pid| format!("local process {pid}"),
            )
        }
    }
}

/// Accepts a Unix-socket peer only if it runs as this process's user (or as root).
pub(super) fn same_user(fd: &OwnedFd) -> Result<(), String> {
    let me = sys::euid();
    match sys::peer_uid(fd.as_raw_fd()) {
        Ok(uid) if uid == me || uid == 0 => Ok(()),
        Ok(uid) => Err(format!(
            "peer runs as user {uid}, not as this process's user {me}"
        )),
        Err(e) => Err(format!("cannot read the peer's credentials: {e}")),
    }
}
