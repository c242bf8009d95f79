//! [`TlsConfig`]: the server and client parts of TLS settings, built from PEM text.
use super::pem::{key_problem, parse_certs, parse_key, root_store};
use super::{
    config_err, provider, TlsConfigCause as Cause, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_PENDING_HANDSHAKES,
};
use crate::Error;
use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use std::sync::Arc;
use std::time::Duration;

/// TLS settings for listeners and/or dialers: see the [module docs](crate::tls).
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
            .map_err(|e| config_err(Cause::Other, format!("TLS provider: {e}")))?;
        let builder = match client_ca_pem {
            Some(ca) => {
                let roots = root_store(ca, "the client CA certificate")?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| {
                            config_err(
                                Cause::CertificateRejected,
                                format!("the client CA certificate: {e}"),
                            )
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut cfg = builder.with_single_cert(chain, key).map_err(|e| {
            let (cause, why) = key_problem(&e);
            config_err(cause, format!("the server certificate and key: {why}"))
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
            .map_err(|e| {
                config_err(
                    Cause::CertificateRejected,
                    format!("the CA certificate: {e}"),
                )
            })?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err(Cause::Other, format!("TLS provider: {e}")))?
            .with_webpki_verifier(verifier);
        Self::finish_client(builder, identity)
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

    /// The listener part as a rustls configuration, for transports outside this crate (the
    /// SP driver's `tls+tcp://` and `wss://`). `None` without a server part.
    pub fn rustls_server_config(&self) -> Option<Arc<ServerConfig>> {
        self.server.clone()
    }

    /// The dialer part as a rustls configuration (see [`TlsConfig::rustls_server_config`]).
    /// `None` without a client part.
    pub fn rustls_client_config(&self) -> Option<Arc<ClientConfig>> {
        self.client.clone()
    }

    /// Completes either kind of dialer configuration: its identity (if any), and session
    /// resumption off.
    fn finish_client(
        builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
        identity: Option<(&str, &str, Option<&str>)>,
    ) -> Result<TlsConfig, Error> {
        let mut cfg = match identity {
            Some((chain, key, password)) => {
                let chain = parse_certs(chain, "the client certificate")?;
                let key = parse_key(key, password, "the client private key")?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    let (cause, why) = key_problem(&e);
                    config_err(cause, format!("the client certificate and key: {why}"))
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
}

impl TlsConfig {
    /// A dialer that does **not** verify the listener's certificate (NNG's auth modes "none"
    /// and "optional", as `nanonext::tls_config()` makes them), presenting `identity`
    /// (certificate chain, key, key password) to listeners that ask for one. `ca_pem`, when
    /// given, is parsed (so a bad PEM is reported) but not used to verify. The handshake's
    /// signatures are still checked: only the certificate's trust is not.
    pub fn client_unverified(
        ca_pem: Option<&str>,
        identity: Option<(&str, &str, Option<&str>)>,
    ) -> Result<TlsConfig, Error> {
        if let Some(ca) = ca_pem {
            root_store(ca, "the CA certificate")?;
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err(Cause::Other, format!("TLS provider: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider())));
        Self::finish_client(builder, identity)
    }
}

/// Accepts any server certificate ([`TlsConfig::client_unverified`]); handshake signatures
/// are verified with the provider's algorithms.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
