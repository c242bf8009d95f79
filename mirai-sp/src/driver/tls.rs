//! `tls+tcp://` (and the TLS under `wss://`): rustls over a std `TcpStream`, shared between
//! the driver's reader and writer threads.
//!
//! NNG's tls+tcp is plain TLS, then the SP header and tcp framing. The dialer finishes the
//! handshake inside `connect`, and also waits for the listener's first application bytes (its
//! SP header): in TLS 1.3 the client is done before the server has checked the client's
//! certificate, and only that wait lets a synchronous dial report a refused certificate (27)
//! instead of succeeding and then losing the connection. The listener's handshake runs lazily
//! on the connection's own thread, through the ordinary reads and writes.
//!
//! Locks: socket bytes are only read by the (single) reader, which holds `input`; the rustls
//! state sits in `conn`, held only for in-memory work; `output` orders writes to the socket,
//! and is always taken before `conn`, so records leave in the order rustls made them.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{AlertDescription, ClientConnection, Connection, ServerConnection};

use crate::error::Error;

/// Bound on a dial's handshake (and the listener's first bytes).
pub(super) const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Input {
    tcp: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

struct Inner {
    tcp: TcpStream,
    conn: Mutex<Connection>,
    input: Mutex<Input>,
    output: Mutex<TcpStream>,
}

/// A TLS connection; clones share it (one reader, any writers).
#[derive(Clone)]
pub(crate) struct TlsStream(Arc<Inner>);

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.0.tcp.peer_addr().ok())
            .finish()
    }
}

impl TlsStream {
    fn new(tcp: TcpStream, conn: Connection) -> io::Result<TlsStream> {
        Ok(TlsStream(Arc::new(Inner {
            input: Mutex::new(Input {
                tcp: tcp.try_clone()?,
                buf: vec![0; 32 * 1024],
                start: 0,
                end: 0,
            }),
            output: Mutex::new(tcp.try_clone()?),
            conn: Mutex::new(conn),
            tcp,
        })))
    }

    /// The listener's side of an accepted connection; the handshake happens on first use.
    pub(crate) fn accept(
        tcp: TcpStream,
        cfg: Arc<rustls::ServerConfig>,
    ) -> Result<TlsStream, Error> {
        let conn = ServerConnection::new(cfg).map_err(|e| tls_error(&e))?;
        Ok(TlsStream::new(tcp, conn.into())?)
    }

    /// Completes a client handshake over `tcp` for `host` (checked against the certificate),
    /// then, with `wait_first` (tls+tcp, not wss, whose listener waits for the upgrade
    /// request), waits for the listener's first bytes: see the module docs.
    pub(crate) fn connect(
        mut tcp: TcpStream,
        host: &str,
        cfg: Arc<rustls::ClientConfig>,
        wait_first: bool,
    ) -> Result<TlsStream, Error> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| Error::AddressInvalid(format!("{host} is not a host name or address")))?;
        let mut conn = ClientConnection::new(cfg, name).map_err(|e| tls_error(&e))?;
        tcp.set_read_timeout(Some(DIAL_TIMEOUT))?;
        tcp.set_write_timeout(Some(DIAL_TIMEOUT))?;
        let shake = |conn: &mut ClientConnection, tcp: &mut TcpStream| -> Result<(), Error> {
            while conn.is_handshaking() {
                conn.complete_io(tcp).map_err(|e| io_tls_error(&e))?;
            }
            while conn.wants_write() {
                conn.complete_io(tcp).map_err(|e| io_tls_error(&e))?;
            }
            if !wait_first {
                return Ok(());
            }
            loop {
                let state = conn.process_new_packets().map_err(|e| tls_error(&e))?;
                if state.plaintext_bytes_to_read() > 0 {
                    return Ok(());
                }
                if state.peer_has_closed() {
                    return Err(Error::Crypto("the listener closed the connection".into()));
                }
                let (read, _) = conn.complete_io(tcp).map_err(|e| io_tls_error(&e))?;
                if read == 0 && !conn.wants_write() {
                    return Err(Error::Crypto(
                        "the listener closed the connection after the handshake".into(),
                    ));
                }
            }
        };
        let shaken = shake(&mut conn, &mut tcp);
        if let Err(e) = shaken {
            // Tell the listener why (the alert rustls queued), best effort.
            let _sent = conn.write_tls(&mut tcp);
            let _closed = tcp.shutdown(Shutdown::Both);
            return Err(e);
        }
        tcp.set_read_timeout(None)?;
        tcp.set_write_timeout(None)?;
        Ok(TlsStream::new(tcp, conn.into())?)
    }

    /// The underlying socket (shutdown, timeouts).
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.0.tcp
    }

    /// Writes out whatever records rustls has queued.
    fn flush_records(&self) -> io::Result<()> {
        let mut out = lock(&self.0.output);
        let mut bytes = Vec::new();
        {
            let mut c = lock(&self.0.conn);
            while c.wants_write() {
                c.write_tls(&mut bytes)?;
            }
        }
        out.write_all(&bytes)
    }

    fn read_plain(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut input = lock(&self.0.input);
        loop {
            let (fed, feed_failed, wants_write) = {
                let mut c = lock(&self.0.conn);
                match c.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if input.start < input.end {
                    let Input {
                        buf: raw,
                        start,
                        end,
                        ..
                    } = &mut *input;
                    let mut src = &raw[*start..*end];
                    let n = c.read_tls(&mut src)?;
                    *start += n;
                    let r = c.process_new_packets().err();
                    (true, r, c.wants_write())
                } else {
                    (false, None, false)
                }
            };
            if wants_write {
                self.flush_records()?;
            }
            if let Some(e) = feed_failed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // New records may hold plaintext: look before blocking on the socket.
            if !fed {
                let Input { tcp, buf: raw, .. } = &mut *input;
                let n = tcp.read(raw)?;
                if n == 0 {
                    return Ok(0);
                }
                input.start = 0;
                input.end = n;
            }
        }
    }

    fn write_plain(&self, data: &[u8]) -> io::Result<usize> {
        let mut out = lock(&self.0.output);
        let mut bytes = Vec::with_capacity(data.len() + 64);
        let n = {
            let mut c = lock(&self.0.conn);
            let n = c.writer().write(data)?;
            while c.wants_write() {
                c.write_tls(&mut bytes)?;
            }
            n
        };
        out.write_all(&bytes)?;
        Ok(n)
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_plain(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_plain(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The NNG error for a failed handshake: a refused certificate (either side's) is 27, the
/// rest 26.
pub(super) fn tls_error(e: &rustls::Error) -> Error {
    use rustls::Error as E;
    let peer_auth = match e {
        E::InvalidCertificate(_) | E::NoCertificatesPresented => true,
        E::AlertReceived(a) => matches!(
            a,
            AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateRequired
                | AlertDescription::AccessDenied
        ),
        _ => false,
    };
    if peer_auth {
        Error::PeerAuth(e.to_string())
    } else {
        Error::Crypto(e.to_string())
    }
}

/// [`tls_error`] for the I/O errors `complete_io` reports (rustls errors come wrapped).
fn io_tls_error(e: &io::Error) -> Error {
    if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls_error(t);
    }
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::TimedOut,
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
            Error::Crypto("the listener closed the connection during the TLS handshake".into())
        }
        _ => Error::Crypto(format!("TLS handshake: {e}")),
    }
}
