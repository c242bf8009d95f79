//! TLS for `tls+tcp://` URLs (native backend): credentials, their parsing, and zero-config
//! generation.
//!
//! A [`TlsConfig`] goes in [`crate::Options::tls`]. It carries a server part (used by
//! [`crate::Listener::bind`]) and/or a client part (used by [`crate::Connection::dial`]); each
//! is parsed and checked when built, so a bad PEM, a wrong password or a key that does not
//! belong to its certificate is reported at once, naming what is wrong. Schemes other than
//! `tls+tcp://` ignore it.
//!
//! **Authentication.** The dialer always verifies the listener's certificate against the CA it
//! was given, and checks that the certificate names the host or IP in the URL it dials (subject
//! alternative name). The listener verifies dialers only when its server part was built with a
//! client CA ([`TlsConfig::server_with_client_auth`]): then every dialer must present a
//! certificate issued by that CA, or it is refused before it is ever reported as connected.
//! A server part built with [`TlsConfig::server`] (user-supplied certificates without client
//! identities) does not ask for client certificates: that is how mutual authentication is
//! switched off.
//!
//! **Zero configuration.** [`zero_config`] makes a fresh single-use CA, a server certificate for
//! the host, and a client certificate for the daemons, all signed by that CA; the CA's private
//! key is discarded at once, so nothing else can ever be issued under it. Its
//! [`ZeroConfig::server_config`] requires client certificates, so only processes given the
//! client identity (in their launch command) can join.
//!
//! **What a refused peer sees.** The listener refuses a peer whose handshake fails (plaintext
//! bytes, unknown CA, expired or missing client certificate, ...) with a `log::warn!` naming the
//! peer's address and the reason, and sends the TLS alert that says why; the dialer's
//! [`crate::Connection::dial`] then fails with [`crate::Error::Tls`] whose text names the cause. To make
//! that possible in TLS 1.3 (where a client finishes its handshake before the server has checked
//! its certificate), the listener's first application bytes are the 8-byte greeting
//! `miraiTLS`, sent only once the peer is accepted, and `dial` returns only after receiving it.
//!
//! Ciphers and versions are rustls' safe defaults (TLS 1.3 and 1.2) with the `ring` provider.
//! Session resumption is off: each daemon makes one long-lived connection.
//!
//! **Bounds at the listener.** Handshakes run inside [`crate::Listener::poll`], non-blocking:
//! one that does not complete within [`TlsConfig::with_handshake_timeout`] (default 10 s) is
//! dropped with a warning, and at most [`TlsConfig::with_max_pending_handshakes`] (default
//! 1024) run at once; beyond that new connections wait in the kernel's backlog.
//!
//! ```
//! use mirai_transport::{tls, Connection, Event, Listener, Options};
//! // Host, once per compute profile:
//! let creds = tls::zero_config("127.0.0.1")?;
//! let host = Options { tls: Some(creds.server_config()?), ..Options::default() };
//! let listener = Listener::bind("tls+tcp://127.0.0.1:0", &host)?;
//! let url = listener.url().to_string();
//! // What a launch command carries to a daemon: the CA and the client identity.
//! let (ca, identity) = (creds.ca_cert.clone(), creds.client_identity_pem());
//! let daemon = std::thread::spawn(move || -> Result<(), mirai_transport::Error> {
//!     let tls = tls::TlsConfig::client_with_identity(&ca, &identity, &identity, None)?;
//!     let conn = Connection::dial(&url, &Options { tls: Some(tls), ..Options::default() })?;
//!     conn.send(b"ready")
//! });
//! // The listener must be polled for the handshake to complete.
//! let mut events = Vec::new();
//! while !events.iter().any(|e| matches!(e, Event::Message(..))) {
//!     listener.poll(&mut events, Some(std::time::Duration::from_secs(10)))?;
//! }
//! daemon.join().expect("daemon thread")?;
//! # Ok::<(), mirai_transport::Error>(())
//! ```
mod config;
mod describe;
mod error;
mod pem;
#[cfg(test)]
mod tests;
mod zero;

pub use config::TlsConfig;
pub(crate) use describe::{describe, Side};
pub use error::{TlsConfigCause, TlsConfigError};
pub use zero::{zero_config, zero_config_for, ZeroConfig};

use rustls::crypto::CryptoProvider;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The listener's first application bytes on a TLS connection: "you are accepted".
pub(crate) const WELCOME: &[u8; 8] = b"miraiTLS";

/// Default bound on one handshake at the listener, from accept to accepted.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default bound on handshakes in progress at one listener; beyond it the listener stops
/// accepting (new connections wait in the kernel's backlog) until some complete or time out.
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 1024;

/// How long [`crate::Connection::dial`] waits for the handshake and the listener's greeting.
/// Longer than the listener's own bound, since a dialer may first wait in the backlog.
pub const DIAL_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a TLS connection failed; decides [`crate::Error::code`] and
/// [`crate::Error::is_retryable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// A certificate was refused, by this side or by the peer (unknown CA, expired, wrong name,
    /// missing client certificate, ...). NNG code 27, "Peer could not be authenticated".
    PeerAuth,
    /// The peer did not speak TLS, broke the protocol, or closed the connection during the
    /// handshake. NNG code 26, "Cryptographic error".
    Protocol,
    /// No handshake (and greeting) within [`DIAL_HANDSHAKE_TIMEOUT`]. NNG code 5, "Timed out";
    /// worth retrying.
    Timeout,
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

fn config_err(cause: TlsConfigCause, msg: impl Into<String>) -> crate::Error {
    crate::Error::TlsConfig(TlsConfigError::new(cause, msg))
}
