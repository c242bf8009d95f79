//! Addresses and byte streams for the driver: `tcp://host:port` and `ipc:///path`
//! (`unix://` alias) over std sockets.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use crate::error::Error;
use crate::frame::Framing;

/// A parsed endpoint address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// `tcp://host:port` (host may be `*` or empty on a listener: all interfaces).
    Tcp(String, u16),
    /// `ipc://path` or `unix://path`.
    Ipc(PathBuf),
}

impl Addr {
    /// Parses a URL. Malformed input is `AddressInvalid`; another scheme `UnsupportedScheme`.
    pub fn parse(url: &str) -> Result<Addr, Error> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::AddressInvalid(url.to_string()))?;
        match scheme {
            "tcp" | "tcp4" | "tcp6" => {
                let (host, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| Error::AddressInvalid(url.to_string()))?;
                let port = port
                    .parse()
                    .map_err(|_| Error::AddressInvalid(url.to_string()))?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Ok(Addr::Tcp(host.to_string(), port))
            }
            "ipc" | "unix" if !rest.is_empty() => Ok(Addr::Ipc(PathBuf::from(rest))),
            "ipc" | "unix" => Err(Error::AddressInvalid(url.to_string())),
            other => Err(Error::UnsupportedScheme(other.to_string())),
        }
    }

    /// The framing this transport uses.
    pub fn framing(&self) -> Framing {
        match self {
            Addr::Tcp(..) => Framing::Tcp,
            Addr::Ipc(_) => Framing::Ipc,
        }
    }

    fn host_for_bind(host: &str) -> &str {
        if host.is_empty() || host == "*" {
            "0.0.0.0"
        } else {
            host
        }
    }
}

/// A connected byte stream.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix domain socket.
    Unix(UnixStream),
}

impl Stream {
    /// Connects to `addr`.
    pub fn connect(addr: &Addr) -> Result<Stream, Error> {
        match addr {
            Addr::Tcp(host, port) => {
                let mut last = None;
                let addrs = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|_| Error::AddressInvalid(format!("{host}:{port}")))?;
                for a in addrs {
                    match TcpStream::connect(a) {
                        Ok(s) => {
                            s.set_nodelay(true)?;
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.map_or(Error::ConnectionRefused, map_connect))
            }
            Addr::Ipc(path) => UnixStream::connect(path)
                .map(Stream::Unix)
                .map_err(map_connect),
        }
    }

    /// A second handle on the same stream (for the writer thread).
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    /// Shuts both directions down, waking any thread blocked on it.
    pub fn shutdown(&self) {
        // Already-closed streams report an error that changes nothing.
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// Sets the read timeout (used during the handshake only).
    pub fn set_read_timeout(&self, d: Option<std::time::Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(d),
            Stream::Unix(s) => s.set_read_timeout(d),
        }
    }
}

fn map_connect(e: io::Error) -> Error {
    match e.kind() {
        // A missing ipc path means nobody listens there.
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Error::ConnectionRefused,
        _ => Error::Io(e),
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub enum Bound {
    /// TCP listener.
    Tcp(TcpListener),
    /// Unix listener and its path (removed on close).
    Unix(UnixListener, PathBuf),
}

impl Bound {
    /// Binds `addr`. A stale ipc file (nobody accepting) is replaced, as NNG does.
    pub fn bind(addr: &Addr) -> Result<Bound, Error> {
        match addr {
            Addr::Tcp(host, port) => {
                let host = Addr::host_for_bind(host);
                let l = TcpListener::bind((host, *port)).map_err(map_bind)?;
                Ok(Bound::Tcp(l))
            }
            Addr::Ipc(path) => match UnixListener::bind(path) {
                Ok(l) => Ok(Bound::Unix(l, path.clone())),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    if UnixStream::connect(path).is_ok() {
                        return Err(Error::AddressInUse);
                    }
                    std::fs::remove_file(path)?;
                    let l = UnixListener::bind(path).map_err(map_bind)?;
                    Ok(Bound::Unix(l, path.clone()))
                }
                Err(e) => Err(map_bind(e)),
            },
        }
    }

    /// The address actually bound (tcp port 0 resolved).
    pub fn local(&self) -> Result<Addr, Error> {
        match self {
            Bound::Tcp(l) => {
                let a = l.local_addr()?;
                Ok(Addr::Tcp(a.ip().to_string(), a.port()))
            }
            Bound::Unix(_, p) => Ok(Addr::Ipc(p.clone())),
        }
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Bound::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            Bound::Unix(l, _) => Ok(Stream::Unix(l.accept()?.0)),
        }
    }
}

fn map_bind(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::AddrInUse => Error::AddressInUse,
        io::ErrorKind::AddrNotAvailable => Error::AddressInvalid(e.to_string()),
        _ => Error::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            Addr::parse("tcp://127.0.0.1:0").unwrap(),
            Addr::Tcp("127.0.0.1".into(), 0)
        );
        assert_eq!(
            Addr::parse("tcp://[::1]:80").unwrap(),
            Addr::Tcp("::1".into(), 80)
        );
        assert_eq!(
            Addr::parse("ipc:///tmp/x").unwrap(),
            Addr::Ipc("/tmp/x".into())
        );
        assert_eq!(Addr::parse("unix://rel").unwrap(), Addr::Ipc("rel".into()));
        assert_eq!(Addr::parse("tcp://nope").unwrap_err().code(), 15);
        assert_eq!(Addr::parse("ws://a:1").unwrap_err().code(), 9);
        assert_eq!(Addr::parse("garbage").unwrap_err().code(), 15);
    }
}
