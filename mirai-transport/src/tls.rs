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
//! [`crate::Connection::dial`] then fails with [`Error::Tls`] whose text names the cause. To make
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
use crate::Error;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
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

/// How a TLS connection failed; decides [`Error::code`] and [`Error::is_retryable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

fn config_err(msg: impl Into<String>) -> Error {
    Error::TlsConfig(msg.into())
}

/// TLS settings for listeners and/or dialers: see the [module docs](self).
///
/// Cheap to clone (the parsed configuration is shared). Its `Debug` output shows no key.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) server: Option<Arc<ServerConfig>>,
    pub(crate) client: Option<Arc<ClientConfig>>,
    client_auth: bool,
    client_identity: bool,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_pending_handshakes: usize,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server", &self.server.is_some())
            .field("requires_client_certificates", &self.client_auth)
            .field("client", &self.client.is_some())
            .field("client_identity", &self.client_identity)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_pending_handshakes", &self.max_pending_handshakes)
            .finish()
    }
}

impl TlsConfig {
    fn empty() -> TlsConfig {
        TlsConfig {
            server: None,
            client: None,
            client_auth: false,
            client_identity: false,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
        }
    }

    /// A listener that presents `cert_chain_pem` (its certificate first, then any
    /// intermediates) with `key_pem`, and does **not** ask dialers for certificates
    /// (server-only authentication, as with user-supplied certificates in mirai).
    ///
    /// `key_pem` may be PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`), SEC1
    /// (`EC PRIVATE KEY`), or encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, needing `password`).
    /// Certificate and key may be the same text (one file holding both).
    pub fn server(
        cert_chain_pem: &str,
        key_pem: &str,
        password: Option<&str>,
    ) -> Result<TlsConfig, Error> {
        Self::build_server(cert_chain_pem, key_pem, password, None)
    }

    /// Like [`TlsConfig::server`], but every dialer must present a certificate issued by a CA
    /// in `client_ca_pem`; one that does not is refused during the handshake and never
    /// reported as [`crate::Event::Connected`].
    pub fn server_with_client_auth(
        cert_chain_pem: &str,
        key_pem: &str,
        password: Option<&str>,
        client_ca_pem: &str,
    ) -> Result<TlsConfig, Error> {
        Self::build_server(cert_chain_pem, key_pem, password, Some(client_ca_pem))
    }

    fn build_server(
        cert_chain_pem: &str,
        key_pem: &str,
        password: Option<&str>,
        client_ca_pem: Option<&str>,
    ) -> Result<TlsConfig, Error> {
        let chain = parse_certs(cert_chain_pem, "the server certificate")?;
        let key = parse_key(key_pem, password, "the server private key")?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err(format!("TLS provider: {e}")))?;
        let builder = match client_ca_pem {
            Some(ca) => {
                let roots = root_store(ca, "the client CA certificate")?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| config_err(format!("the client CA certificate: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut cfg = builder.with_single_cert(chain, key).map_err(|e| {
            config_err(format!(
                "the server certificate and key: {}",
                key_problem(&e)
            ))
        })?;
        // One long-lived connection per daemon: no resumption state to keep or send.
        cfg.send_tls13_tickets = 0;
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(TlsConfig {
            server: Some(Arc::new(cfg)),
            client_auth: client_ca_pem.is_some(),
            ..Self::empty()
        })
    }

    /// A dialer that trusts the CA certificate(s) in `ca_pem` (a CA, or a chain ending in one)
    /// to vouch for the listener, and presents no certificate of its own.
    pub fn client(ca_pem: &str) -> Result<TlsConfig, Error> {
        Self::build_client(ca_pem, None)
    }

    /// Like [`TlsConfig::client`], presenting `cert_chain_pem` (this side's certificate first)
    /// with `key_pem` to listeners that require client certificates. Certificate and key may
    /// be the same text; `password` decrypts an encrypted PKCS#8 key.
    pub fn client_with_identity(
        ca_pem: &str,
        cert_chain_pem: &str,
        key_pem: &str,
        password: Option<&str>,
    ) -> Result<TlsConfig, Error> {
        Self::build_client(ca_pem, Some((cert_chain_pem, key_pem, password)))
    }

    fn build_client(
        ca_pem: &str,
        identity: Option<(&str, &str, Option<&str>)>,
    ) -> Result<TlsConfig, Error> {
        let roots = root_store(ca_pem, "the CA certificate")?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| config_err(format!("the CA certificate: {e}")))?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err(format!("TLS provider: {e}")))?
            .with_webpki_verifier(verifier);
        let mut cfg = match identity {
            Some((chain, key, password)) => {
                let chain = parse_certs(chain, "the client certificate")?;
                let key = parse_key(key, password, "the client private key")?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    config_err(format!(
                        "the client certificate and key: {}",
                        key_problem(&e)
                    ))
                })?
            }
            None => builder.with_no_client_auth(),
        };
        cfg.resumption = rustls::client::Resumption::disabled();
        Ok(TlsConfig {
            client: Some(Arc::new(cfg)),
            client_identity: identity.is_some(),
            ..Self::empty()
        })
    }

    /// This configuration's server part with `other`'s client part (or the other way round):
    /// one `Options` that can both bind and dial, as in-process tests do. Where both have a
    /// part, `self`'s wins.
    pub fn combine(self, other: TlsConfig) -> TlsConfig {
        let from_server = if self.server.is_some() { &self } else { &other };
        let from_client = if self.client.is_some() { &self } else { &other };
        TlsConfig {
            server: from_server.server.clone(),
            client_auth: from_server.client_auth,
            handshake_timeout: from_server.handshake_timeout,
            max_pending_handshakes: from_server.max_pending_handshakes,
            client: from_client.client.clone(),
            client_identity: from_client.client_identity,
        }
    }

    /// Bounds how long the listener lets one connection take to complete its handshake
    /// (default [`DEFAULT_HANDSHAKE_TIMEOUT`]); a slower one is dropped with a warning.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsConfig {
        self.handshake_timeout = timeout;
        self
    }

    /// Bounds the handshakes in progress at the listener (default
    /// [`DEFAULT_MAX_PENDING_HANDSHAKES`], at least 1). At the bound the listener stops
    /// accepting until one finishes or times out: connections wait in the kernel's backlog.
    pub fn with_max_pending_handshakes(mut self, n: usize) -> TlsConfig {
        self.max_pending_handshakes = n.max(1);
        self
    }

    /// True if there is a listener part.
    pub fn has_server(&self) -> bool {
        self.server.is_some()
    }

    /// True if there is a dialer part.
    pub fn has_client(&self) -> bool {
        self.client.is_some()
    }

    /// True if the listener part requires and verifies client certificates.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_auth
    }

    /// True if the dialer part presents a certificate of its own.
    pub fn has_client_identity(&self) -> bool {
        self.client_identity
    }
}

fn key_problem(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "the private key does not belong to the (first) certificate".into()
        }
        other => other.to_string(),
    }
}

fn pem_problem(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "a PEM block is not terminated (missing '{}')",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { line } => format!(
            "malformed PEM begin line '{}'",
            String::from_utf8_lossy(line)
        ),
        E::Base64Decode(m) => format!("a PEM block is not valid base64 ({m})"),
        other => other.to_string(),
    }
}

/// Says what is wrong with text that should be PEM but has no usable block.
fn no_pem(pem: &str, what: &str, expected: &str) -> Error {
    if pem.trim().is_empty() {
        config_err(format!("{what} is empty"))
    } else if !pem.contains("-----BEGIN") {
        config_err(format!(
            "{what} is not PEM text (no '-----BEGIN' line); pass the file's contents, not its path"
        ))
    } else {
        config_err(format!("{what}: no {expected} block found in the PEM text"))
    }
}

fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_err(format!("{what}: {}", pem_problem(&e))))?;
    if certs.is_empty() {
        return Err(no_pem(pem, what, "'-----BEGIN CERTIFICATE-----'"));
    }
    Ok(certs)
}

fn root_store(pem: &str, what: &str) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in parse_certs(pem, what)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| config_err(format!("{what} (certificate {} in the PEM): {e}", i + 1)))?;
    }
    Ok(roots)
}

/// The text of the first PEM block labelled `label`, begin and end lines included.
fn pem_block<'a>(pem: &'a str, label: &str) -> Option<Result<&'a str, String>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)?;
    Some(match pem[start..].find(&end) {
        Some(e) => Ok(&pem[start..start + e + end.len()]),
        None => Err(format!("a PEM block is not terminated (missing '{end}')")),
    })
}

fn parse_key(
    pem: &str,
    password: Option<&str>,
    what: &str,
) -> Result<PrivateKeyDer<'static>, Error> {
    if let Some(block) = pem_block(pem, "ENCRYPTED PRIVATE KEY") {
        let block = block.map_err(|m| config_err(format!("{what}: {m}")))?;
        let Some(password) = password else {
            return Err(config_err(format!(
                "{what} is encrypted: its password is needed (`pass`)"
            )));
        };
        return decrypt_pkcs8(block, password, what);
    }
    if pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(config_err(format!(
            "{what} uses legacy OpenSSL PEM encryption, which is not supported; convert it to \
             encrypted PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
        )));
    }
    match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
        Ok(k) => Ok(k),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(no_pem(
            pem,
            what,
            "private key ('PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY' or 'ENCRYPTED \
             PRIVATE KEY')",
        )),
        Err(e) => Err(config_err(format!("{what}: {}", pem_problem(&e)))),
    }
}

fn decrypt_pkcs8(block: &str, password: &str, what: &str) -> Result<PrivateKeyDer<'static>, Error> {
    let (_, doc) = pkcs8::der::Document::from_pem(block)
        .map_err(|e| config_err(format!("{what}: malformed encrypted key PEM ({e})")))?;
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
        .map_err(|e| config_err(format!("{what}: malformed encrypted key ({e})")))?;
    let wrong = || {
        config_err(format!(
            "{what}: cannot decrypt it: wrong password (or a damaged key)"
        ))
    };
    let plain = match info.decrypt(password.as_bytes()) {
        Ok(p) => p,
        Err(pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm {
            oid,
        })) => {
            return Err(config_err(format!(
                "{what}: unsupported key encryption algorithm {oid}; re-encrypt with \
                 `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
            )))
        }
        Err(_) => return Err(wrong()),
    };
    // CBC padding alone lets about one wrong password in 256 through: the result must also
    // be a well-formed key.
    if pkcs8::PrivateKeyInfo::try_from(plain.as_bytes()).is_err() {
        return Err(wrong());
    }
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}

/// Credentials generated for one compute profile by [`zero_config`]: PEM text.
///
/// `server_cert`/`server_key` stay on the host; `ca_cert`, `client_cert` and `client_key` go
/// to the daemons (in their launch command). The CA's own key no longer exists.
#[derive(Clone)]
pub struct ZeroConfig {
    /// The single-use CA certificate: daemons verify the host with it, and the host verifies
    /// daemons with it.
    pub ca_cert: String,
    /// The host's certificate (CN and subject alternative names = the host names given).
    pub server_cert: String,
    /// The host's private key (PKCS#8). Never leaves the host.
    pub server_key: String,
    /// The daemons' certificate (CN `mirai daemon`), for client authentication.
    pub client_cert: String,
    /// The daemons' private key (PKCS#8).
    pub client_key: String,
}

impl std::fmt::Debug for ZeroConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroConfig")
            .field("ca_cert", &self.ca_cert)
            .field("server_cert", &self.server_cert)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

impl ZeroConfig {
    /// The listener side: presents the server certificate and **requires** client
    /// certificates from this CA (mutual authentication).
    pub fn server_config(&self) -> Result<TlsConfig, Error> {
        TlsConfig::server_with_client_auth(&self.server_cert, &self.server_key, None, &self.ca_cert)
    }

    /// The daemon side: trusts this CA and presents the client certificate.
    pub fn client_config(&self) -> Result<TlsConfig, Error> {
        TlsConfig::client_with_identity(&self.ca_cert, &self.client_cert, &self.client_key, None)
    }

    /// Client certificate followed by its key in one PEM text, for a launch command; feed it
    /// back as both `cert_chain_pem` and `key_pem` of [`TlsConfig::client_with_identity`].
    pub fn client_identity_pem(&self) -> String {
        format!("{}{}", self.client_cert, self.client_key)
    }
}

/// Generates single-use credentials for a host reached as `host` (an IP address or DNS name,
/// IPv6 with or without brackets): see [`ZeroConfig`] and [`zero_config_for`].
pub fn zero_config(host: &str) -> Result<ZeroConfig, Error> {
    zero_config_for(&[host])
}

/// Like [`zero_config`] for a host reached under several names or addresses (the first is the
/// certificate's CN; all become subject alternative names).
///
/// Keys are ECDSA P-256. Certificates are valid from one day before generation (so modest
/// clock differences between host and daemons do not matter) until 2030-12-31 23:59:59 UTC
/// (mirai's upstream choice), or one year after generation if that is later.
pub fn zero_config_for(hosts: &[&str]) -> Result<ZeroConfig, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    let gen_err = |e: rcgen::Error| config_err(format!("cannot generate credentials: {e}"));
    let mut names = Vec::new();
    for h in hosts {
        let h = h.trim().trim_start_matches('[').trim_end_matches(']');
        if h.is_empty() || h == "*" {
            return Err(config_err(
                "zero-config TLS needs the host name or IP address that daemons dial, not an \
                 empty or wildcard host",
            ));
        }
        names.push(h.to_string());
    }
    let Some(cn) = names.first().cloned() else {
        return Err(config_err(
            "zero-config TLS needs at least one host name or IP",
        ));
    };
    let now = time::OffsetDateTime::now_utc();
    let not_before = now - time::Duration::days(1);
    let not_after = rcgen::date_time_ymd(2030, 12, 31)
        .replace_time(time::Time::from_hms(23, 59, 59).map_err(|e| config_err(e.to_string()))?)
        .max(now + time::Duration::days(365));
    let dn = |cn: &str| {
        let mut d = DistinguishedName::new();
        d.push(DnType::CommonName, cn);
        d.push(DnType::OrganizationName, "mirai");
        d
    };

    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca = CertificateParams::default();
    // Verifiers find an issuer by name: each CA gets its own (from its random public key), so
    // another profile's certificate is reported as from an unknown issuer, not as a forgery.
    let tag: String = ca_key
        .public_key_raw()
        .iter()
        .skip(1)
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    ca.distinguished_name = dn(&format!("mirai single-use CA {tag} for {cn}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key).map_err(gen_err)?;

    let server_key = KeyPair::generate().map_err(gen_err)?;
    let mut server = CertificateParams::default();
    server.distinguished_name = dn(&cn);
    server.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| config_err(format!("'{n}' is not a valid host name"))),
        })
        .collect::<Result<_, _>>()?;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    server.not_before = not_before;
    server.not_after = not_after;
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .map_err(gen_err)?;

    let client_key = KeyPair::generate().map_err(gen_err)?;
    let mut client = CertificateParams::default();
    client.distinguished_name = dn("mirai daemon");
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.use_authority_key_identifier_extension = true;
    client.not_before = not_before;
    client.not_after = not_after;
    let client_cert = client
        .signed_by(&client_key, &ca_cert, &ca_key)
        .map_err(gen_err)?;
    // `ca_key` is dropped here: the CA can sign nothing else.
    Ok(ZeroConfig {
        ca_cert: ca_cert.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    })
}

// ---------------------------------------------------------------------------------------------
// Explaining failures

/// Which side is describing a failure.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The listener, about a dialing peer.
    Listener,
    /// The dialer, about the listener.
    Dialer,
}

fn cert_problem(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => "unknown issuer: it was not signed by a trusted CA".into(),
        C::Expired | C::ExpiredContext { .. } => "the certificate has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "the certificate is not valid yet (check the clocks)".into()
        }
        C::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "the certificate is not valid for '{}', the host dialed (it names {})",
            expected.to_str(),
            presented.join(", ")
        ),
        C::NotValidForName => "the certificate is not valid for the host name or IP dialed".into(),
        C::BadSignature => "bad certificate signature".into(),
        C::BadEncoding => "malformed certificate".into(),
        C::Revoked => "the certificate has been revoked".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "the certificate is not issued for this use (TLS server or client)".into()
        }
        other => format!("bad certificate ({other:?})"),
    }
}

fn alert_problem(a: rustls::AlertDescription) -> (String, bool) {
    use rustls::AlertDescription as A;
    let (text, auth) = match a {
        A::UnknownCA => (
            "unknown CA: our certificate is not from the CA it trusts",
            true,
        ),
        A::BadCertificate => ("bad certificate", true),
        A::CertificateExpired => ("our certificate has expired", true),
        A::CertificateRevoked => ("our certificate has been revoked", true),
        A::CertificateUnknown => ("certificate unknown", true),
        A::UnsupportedCertificate => ("unsupported certificate", true),
        A::CertificateRequired => (
            "a client certificate is required and none was configured",
            true,
        ),
        A::AccessDenied => ("access denied", true),
        A::HandshakeFailure => ("handshake failure (no common TLS parameters)", false),
        A::ProtocolVersion => ("no common TLS version", false),
        A::DecodeError | A::UnexpectedMessage => {
            ("it could not understand our TLS messages", false)
        }
        _ => return (format!("alert {a:?}"), false),
    };
    (text.to_string(), auth)
}

/// A sentence naming the cause of `e`, and its kind.
pub(crate) fn describe(e: &rustls::Error, side: Side) -> (String, TlsErrorKind) {
    use rustls::Error as R;
    let peer = match side {
        Side::Listener => "the dialing peer",
        Side::Dialer => "the listener",
    };
    match e {
        R::InvalidCertificate(c) => (
            format!("{peer}'s certificate was refused: {}", cert_problem(c)),
            TlsErrorKind::PeerAuth,
        ),
        R::NoCertificatesPresented => (
            format!("{peer} presented no certificate, and one is required"),
            TlsErrorKind::PeerAuth,
        ),
        R::AlertReceived(a) => {
            let (text, auth) = alert_problem(*a);
            (
                format!("{peer} refused the connection: {text}"),
                if auth {
                    TlsErrorKind::PeerAuth
                } else {
                    TlsErrorKind::Protocol
                },
            )
        }
        R::InvalidMessage(_) | R::InappropriateMessage { .. } => (
            match side {
                Side::Listener => format!(
                    "{peer} does not speak TLS (a plaintext tcp:// client on a tls+tcp:// \
                     port?): {e}"
                ),
                Side::Dialer => {
                    format!("{peer} does not speak TLS (is it a plain tcp:// listener?): {e}")
                }
            },
            TlsErrorKind::Protocol,
        ),
        other => (
            format!("TLS error with {peer}: {other}"),
            TlsErrorKind::Protocol,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_text(r: Result<TlsConfig, Error>) -> String {
        match r {
            Err(Error::TlsConfig(m)) => m,
            Err(other) => panic!("expected a TLS configuration error, got {other:?}"),
            Ok(c) => panic!("expected an error, got {c:?}"),
        }
    }

    #[test]
    fn zero_config_builds_both_sides() {
        let z = zero_config("127.0.0.1").unwrap();
        assert!(z.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(z.server_key.contains("PRIVATE KEY"));
        let s = z.server_config().unwrap();
        assert!(s.has_server() && s.requires_client_certificates() && !s.has_client());
        let c = z.client_config().unwrap();
        assert!(c.has_client() && c.has_client_identity() && !c.has_server());
        let both = s.combine(c);
        assert!(both.has_server() && both.has_client());
        // The identity bundle parses as both certificate and key.
        TlsConfig::client_with_identity(
            &z.ca_cert,
            &z.client_identity_pem(),
            &z.client_identity_pem(),
            None,
        )
        .unwrap();
        let dbg = format!("{z:?} {both:?}");
        assert!(!dbg.contains("PRIVATE KEY"), "Debug shows no key: {dbg}");
    }

    #[test]
    fn zero_config_refuses_wildcard_hosts() {
        for h in ["", "*", " "] {
            assert!(matches!(zero_config(h), Err(Error::TlsConfig(m)) if m.contains("wildcard")));
        }
        assert!(zero_config("[::1]").is_ok());
        assert!(zero_config_for(&["localhost", "127.0.0.1", "::1"]).is_ok());
    }

    #[test]
    fn bad_pem_is_named() {
        let z = zero_config("localhost").unwrap();
        let m = config_text(TlsConfig::server("", &z.server_key, None));
        assert!(m.contains("server certificate is empty"), "{m}");
        let m = config_text(TlsConfig::server("/etc/ssl/cert.pem", &z.server_key, None));
        assert!(m.contains("not PEM text") && m.contains("path"), "{m}");
        let m = config_text(TlsConfig::server(&z.server_key, &z.server_key, None));
        assert!(m.contains("no '-----BEGIN CERTIFICATE-----'"), "{m}");
        let m = config_text(TlsConfig::server(&z.server_cert, &z.server_cert, None));
        assert!(
            m.contains("server private key") && m.contains("no private key"),
            "{m}"
        );
        let truncated = &z.server_cert[..z.server_cert.len() - 30];
        let m = config_text(TlsConfig::server(truncated, &z.server_key, None));
        assert!(m.contains("not terminated"), "{m}");
        let garbled = z.server_cert.replacen('M', "!", 1);
        let m = config_text(TlsConfig::server(&garbled, &z.server_key, None));
        assert!(m.contains("base64"), "{m}");
        let m = config_text(TlsConfig::server(&z.server_cert, &z.client_key, None));
        assert!(m.contains("does not belong"), "{m}");
        let m = config_text(TlsConfig::client("nonsense"));
        assert!(m.contains("CA certificate is not PEM text"), "{m}");
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let m = config_text(TlsConfig::server(&z.server_cert, legacy, Some("x")));
        assert!(m.contains("legacy OpenSSL"), "{m}");
    }

    #[test]
    fn descriptions_name_the_cause() {
        let (t, k) = describe(
            &rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            Side::Dialer,
        );
        assert!(t.contains("unknown issuer"), "{t}");
        assert_eq!(k, TlsErrorKind::PeerAuth);
        let (t, k) = describe(
            &rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
            Side::Dialer,
        );
        assert!(t.contains("client certificate is required"), "{t}");
        assert_eq!(k, TlsErrorKind::PeerAuth);
        let (t, k) = describe(
            &rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
            Side::Listener,
        );
        assert!(t.contains("plaintext"), "{t}");
        assert_eq!(k, TlsErrorKind::Protocol);
    }
}
